"""Image augmentations through kornia, on batches ``(N, C, H, W)``, ``(N, H, W)`` or flat ``(N, H*W)``.

kornia's augmentations draw their parameters from torch's global RNG and take no
``generator``. To keep the batch-transform contract (same generator seed, same output)
without disturbing the caller's global RNG, each call draws one seed from ``generator``,
forks the global RNG (``torch.random.fork_rng``) of the CPU and of the images' GPU, seeds those
two with that seed, runs the kornia module, and restores their state on exit (no other GPU's
generator is touched).

Flat inputs need ``shape=(C, H, W)`` or ``(H, W)``: they are reshaped to images, augmented
and flattened back. Each example gets its own random parameters.

References:
    Riba et al., "Kornia: an open source differentiable computer vision library for
    PyTorch", WACV 2020. Zhong et al., "Random erasing data augmentation", AAAI 2020.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import kornia.augmentation as K
import torch
from torch import nn

from reglab._validation import Interval, check_generator, check_int, check_scalar, fail
from reglab.augment.base import check_batch

__all__ = [
    "KorniaTransform",
    "RandomHorizontalFlip",
    "RandomRotation",
    "RandomCrop",
    "RandomResizedCrop",
    "ColorJitter",
    "RandomErasing",
]


def _check_shape(shape: Sequence[int] | None, owner: str) -> tuple[int, int, int] | None:
    if shape is None:
        return None
    shape = tuple(shape)
    if len(shape) == 2:
        shape = (1, *shape)
    if len(shape) != 3 or not all(isinstance(s, int) and s > 0 for s in shape):
        raise fail(owner, "shape", "None, (H, W) or (C, H, W) of positive ints", shape)
    return shape


def _pair(value, name: str, owner: str, interval: Interval) -> tuple[float, float]:
    """A ``(low, high)`` range of floats inside ``interval`` with ``low <= high``."""
    if not (isinstance(value, Sequence) and len(value) == 2):
        raise fail(owner, name, f"a pair (low, high) in the range {interval}", value)
    low, high = (check_scalar(v, name, owner=owner, interval=interval) for v in value)
    if low > high:
        raise fail(owner, name, "a pair (low, high) with low <= high", value)
    return low, high


class KorniaTransform:
    """Run any ``kornia.augmentation`` module as a seeded batch transform.

    Args:
        augmentation: a kornia augmentation (or ``AugmentationSequential``).
        shape: ``(C, H, W)`` or ``(H, W)`` of one example when inputs are flat ``(N, H*W)``.

    Example:
        >>> import kornia.augmentation as K
        >>> t = KorniaTransform(K.RandomVerticalFlip(p=1.0), shape=(2, 2))
        >>> t(torch.tensor([[1.0, 2.0, 3.0, 4.0]]), None, generator=torch.Generator())[0].tolist()
        [[3.0, 4.0, 1.0, 2.0]]
    """

    owner = "KorniaTransform"

    def __init__(self, augmentation: nn.Module, shape: Sequence[int] | None = None):
        if not isinstance(augmentation, nn.Module):
            raise fail(self.owner, "augmentation", "a kornia.augmentation module", augmentation)
        self.augmentation = augmentation
        self.shape = _check_shape(shape, self.owner)

    def _images(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 4:
            return x
        if x.ndim == 3:
            return x.unsqueeze(1)
        if self.shape is None or math.prod(self.shape) != x.shape[1]:
            allowed = f"(C, H, W) with C*H*W == {x.shape[1]} for flat inputs"
            raise fail(self.owner, "shape", allowed, self.shape)
        return x.reshape(x.shape[0], *self.shape)

    def __call__(self, x: torch.Tensor, y, *, generator: torch.Generator):
        check_generator(generator, self.owner, required=True)
        x = check_batch(x, self.owner, (2, 3, 4), "(N, C, H, W), (N, H, W) or (N, H*W) with shape=")
        images = self._images(x)
        self._check_images(images)
        # Drawn on the generator's device (a Trainer's is on the training device, CUDA there).
        seed = int(torch.randint(0, 2**63 - 1, (1,), generator=generator, device=generator.device))
        devices = [images.device.index or 0] if images.is_cuda else []
        # kornia samples from the global RNG: seed a forked copy so the caller's state is untouched.
        # Only the forked generators are seeded: torch.manual_seed would also reseed (or, before CUDA
        # starts, queue a reseed of) every GPU, which fork_rng does not restore.
        with torch.random.fork_rng(devices=devices):
            torch.random.default_generator.manual_seed(seed)
            for index in devices:
                torch.cuda.default_generators[index].manual_seed(seed)
            out = self.augmentation(images)
        if x.ndim == 2:
            out = out.reshape(x.shape[0], -1)
        elif x.ndim == 3:
            out = out.squeeze(1)
        return out.to(x.dtype), y

    def _check_images(self, images: torch.Tensor) -> None:
        """Refuse, in one line, images this transform cannot take (subclasses; any by default)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.augmentation!r}, shape={self.shape})"


class RandomHorizontalFlip(KorniaTransform):
    """Mirror each image left-right with probability ``p`` (``kornia.augmentation.RandomHorizontalFlip``).

    Example:
        >>> t = RandomHorizontalFlip(p=1.0, shape=(1, 2))
        >>> t(torch.tensor([[1.0, 2.0]]), None, generator=torch.Generator())[0].tolist()
        [[2.0, 1.0]]
    """

    owner = "RandomHorizontalFlip"

    def __init__(self, p: float = 0.5, shape: Sequence[int] | None = None):
        self.p = check_scalar(p, "p", owner=self.owner, interval=Interval(0, 1))
        super().__init__(K.RandomHorizontalFlip(p=self.p), shape)


class RandomRotation(KorniaTransform):
    """Rotate each image by an angle uniform in ``[-degrees, degrees]`` (bilinear, zero fill).

    Example:
        >>> t = RandomRotation(15.0, shape=(8, 8))
        >>> t(torch.rand(2, 64), None, generator=torch.Generator())[0].shape
        torch.Size([2, 64])
    """

    owner = "RandomRotation"

    def __init__(self, degrees: float = 15.0, p: float = 1.0, shape: Sequence[int] | None = None):
        self.degrees = check_scalar(degrees, "degrees", owner=self.owner, interval=Interval(0, 180))
        self.p = check_scalar(p, "p", owner=self.owner, interval=Interval(0, 1))
        super().__init__(K.RandomRotation(degrees=self.degrees, p=self.p), shape)


class RandomCrop(KorniaTransform):
    """Zero-pad each image by ``padding`` pixels, then crop a random ``size`` window.

    With ``size`` equal to the image size this is the classic pad-and-crop translation.

    Example:
        >>> t = RandomCrop((8, 8), padding=1, shape=(1, 8, 8))
        >>> t(torch.rand(3, 64), None, generator=torch.Generator())[0].shape
        torch.Size([3, 64])
    """

    owner = "RandomCrop"

    def __init__(self, size: Sequence[int], padding: int = 0, shape: Sequence[int] | None = None):
        self.size = tuple(_check_shape(size, self.owner)[1:])
        self.padding = check_int(padding, "padding", owner=self.owner, interval=Interval(0, None))
        super().__init__(K.RandomCrop(self.size, padding=self.padding or None), shape)

    def _check_images(self, images: torch.Tensor) -> None:
        # kornia would pad a too-small image silently, changing the example's size (and a flat input's
        # feature count).
        room = (images.shape[-2] + 2 * self.padding, images.shape[-1] + 2 * self.padding)
        if self.size[0] > room[0] or self.size[1] > room[1]:
            raise fail(self.owner, "size", f"at most {room} for {tuple(images.shape[-2:])} images with "
                       f"padding={self.padding}", self.size)


class RandomResizedCrop(KorniaTransform):
    """Crop a random area fraction in ``scale`` with aspect ratio in ``ratio``, resized to ``size``.

    Example:
        >>> t = RandomResizedCrop((8, 8), scale=(0.5, 1.0))
        >>> t(torch.rand(2, 1, 8, 8), None, generator=torch.Generator())[0].shape
        torch.Size([2, 1, 8, 8])
    """

    owner = "RandomResizedCrop"

    def __init__(
        self,
        size: Sequence[int],
        scale: tuple[float, float] = (0.08, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        shape: Sequence[int] | None = None,
    ):
        self.size = tuple(_check_shape(size, self.owner)[1:])
        self.scale = _pair(scale, "scale", self.owner, Interval(0, 1, closed="right"))
        self.ratio = _pair(ratio, "ratio", self.owner, Interval(0, None, closed="neither"))
        super().__init__(K.RandomResizedCrop(self.size, scale=self.scale, ratio=self.ratio), shape)


class ColorJitter(KorniaTransform):
    """Random brightness, contrast, saturation and hue changes (kornia's ``ColorJitter``).

    Saturation and hue need 3-channel (RGB) images; brightness and contrast work on any.
    Images must hold values in [0, 1]: kornia clips its output to that range, so standardized
    inputs (``scale=True``) are refused rather than losing every negative value.

    Example:
        >>> t = ColorJitter(brightness=0.2, contrast=0.2)
        >>> t(torch.rand(2, 1, 4, 4), None, generator=torch.Generator())[0].shape
        torch.Size([2, 1, 4, 4])
    """

    owner = "ColorJitter"

    def __init__(
        self,
        brightness: float = 0.0,
        contrast: float = 0.0,
        saturation: float = 0.0,
        hue: float = 0.0,
        p: float = 1.0,
        shape: Sequence[int] | None = None,
    ):
        unit = Interval(0, 1)
        self.brightness = check_scalar(brightness, "brightness", owner=self.owner, interval=unit)
        self.contrast = check_scalar(contrast, "contrast", owner=self.owner, interval=unit)
        self.saturation = check_scalar(saturation, "saturation", owner=self.owner, interval=unit)
        self.hue = check_scalar(hue, "hue", owner=self.owner, interval=Interval(0, 0.5))
        self.p = check_scalar(p, "p", owner=self.owner, interval=unit)
        aug = K.ColorJitter(self.brightness, self.contrast, self.saturation, self.hue, p=self.p)
        super().__init__(aug, shape)

    def _check_images(self, images: torch.Tensor) -> None:
        low, high = (float(v) for v in torch.aminmax(images))
        if low < 0 or high > 1:
            raise fail(self.owner, "x", "images with values in [0, 1] (kornia clips the jittered images to "
                       "[0, 1]); load them unscaled and divided by their largest value, e.g. "
                       "from_tensors(x / 16, y, scale=False) for digits",
                       f"values in [{low:.3g}, {high:.3g}]")
        # kornia raises for hue and silently skips saturation on images that are not RGB.
        if (self.saturation or self.hue) and images.shape[1] != 3:
            raise fail(self.owner, "saturation / hue", "0 for images that are not 3-channel RGB",
                       f"{self.saturation} / {self.hue} on {images.shape[1]}-channel images")


class RandomErasing(KorniaTransform):
    """Erase a random rectangle (area fraction in ``scale``) to ``value`` with probability ``p``.

    Example:
        >>> t = RandomErasing(p=1.0)
        >>> t(torch.ones(2, 1, 8, 8), None, generator=torch.Generator())[0].min().item()
        0.0
    """

    owner = "RandomErasing"

    def __init__(
        self,
        p: float = 0.5,
        scale: tuple[float, float] = (0.02, 0.33),
        ratio: tuple[float, float] = (0.3, 3.3),
        value: float = 0.0,
        shape: Sequence[int] | None = None,
    ):
        self.p = check_scalar(p, "p", owner=self.owner, interval=Interval(0, 1))
        self.scale = _pair(scale, "scale", self.owner, Interval(0, 1, closed="right"))
        self.ratio = _pair(ratio, "ratio", self.owner, Interval(0, None, closed="neither"))
        # kornia's range: images are taken as values in [0, 1].
        self.value = check_scalar(value, "value", owner=self.owner, interval=Interval(0, 1))
        aug = K.RandomErasing(scale=self.scale, ratio=self.ratio, value=self.value, p=self.p)
        super().__init__(aug, shape)
