import kornia.augmentation as K
import pytest
import torch

from reglab._validation import InvalidParameterError
from reglab.augment import (
    ColorJitter,
    RandomCrop,
    RandomErasing,
    RandomHorizontalFlip,
    RandomResizedCrop,
    RandomRotation,
)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def images(n=6, c=1, size=8):
    return torch.rand(n, c, size, size, generator=gen(42))


def test_flip_equals_torch_flip_for_images_and_flat_inputs():
    x = images()
    out, y = RandomHorizontalFlip(p=1.0)(x, "y", generator=gen())
    assert y == "y" and torch.equal(out, torch.flip(x, dims=[-1]))
    flat, _ = RandomHorizontalFlip(p=1.0, shape=(8, 8))(x.reshape(6, 64), None, generator=gen())
    assert torch.equal(flat, torch.flip(x, dims=[-1]).reshape(6, 64))
    same, _ = RandomHorizontalFlip(p=0.0)(x, None, generator=gen())
    assert torch.equal(same, x)


def test_flip_flips_about_half_per_example():
    x = torch.rand(400, 1, 4, 4, generator=gen(1))
    out, _ = RandomHorizontalFlip(p=0.5)(x, None, generator=gen(2))
    flipped = torch.tensor([torch.equal(o, torch.flip(i, dims=[-1])) for o, i in zip(out, x)])
    unchanged = torch.tensor([torch.equal(o, i) for o, i in zip(out, x)])
    assert bool((flipped | unchanged).all())
    assert abs(flipped.double().mean().item() - 0.5) < 5 * (0.25 / 400) ** 0.5


@pytest.mark.parametrize(
    "transform",
    [
        RandomRotation(30.0),
        RandomCrop((8, 8), padding=2),
        RandomResizedCrop((8, 8), scale=(0.5, 1.0)),
        ColorJitter(brightness=0.3, contrast=0.3),
        RandomErasing(p=1.0),
    ],
    ids=lambda t: type(t).__name__,
)
def test_kornia_transforms_are_seeded_and_leave_global_rng(transform):
    x = images()
    state = torch.get_rng_state()
    a, _ = transform(x, None, generator=gen(1))
    assert torch.equal(torch.get_rng_state(), state)  # the fork restored the global RNG
    b, _ = transform(x, None, generator=gen(1))
    c, _ = transform(x, None, generator=gen(2))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, b) and not torch.equal(a, c) and not torch.equal(a, x)


def test_kornia_transforms_on_cpu_images_leave_every_gpu_generator_alone(monkeypatch):
    # torch.manual_seed reseeds every GPU (queued until CUDA starts, where it has not), and fork_rng
    # restores only the devices it was given: a CPU batch reseeded the training GPU's dropout RNG.
    reseeded = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", reseeded.append)
    monkeypatch.setattr(torch.cuda, "manual_seed", reseeded.append)
    a, _ = RandomRotation(30.0)(images(), None, generator=gen(1))
    assert reseeded == []
    monkeypatch.undo()
    seed = int(torch.randint(0, 2**63 - 1, (1,), generator=gen(1)))
    with torch.random.fork_rng(devices=[]):  # the CPU stream is seeded as before: the same numbers
        torch.manual_seed(seed)
        reference = K.RandomRotation(degrees=30.0, p=1.0)(images())
    assert torch.equal(a, reference)


def test_crop_without_padding_is_identity_and_erasing_zeroes_a_rectangle():
    x = images() + 1.0
    same, _ = RandomCrop((8, 8))(x, None, generator=gen())
    assert torch.equal(same, x)
    out, _ = RandomErasing(p=1.0, scale=(0.1, 0.3))(x, None, generator=gen(3))
    for img in out[:, 0]:
        rows, cols = (img == 0).nonzero(as_tuple=True)
        assert len(rows) > 0
        box = img[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        assert bool((box == 0).all())  # the erased pixels form one rectangle


def test_image_errors():
    expected = r"'shape' parameter of RandomHorizontalFlip must be \(C, H, W\) with C\*H\*W == 64"
    with pytest.raises(InvalidParameterError, match=expected):
        RandomHorizontalFlip()(torch.rand(2, 64), None, generator=gen())
    expected = r"'scale' parameter of RandomErasing must be a pair \(low, high\) with low <= high"
    with pytest.raises(InvalidParameterError, match=expected):
        RandomErasing(scale=(0.5, 0.1))
    expected = r"'degrees' parameter of RandomRotation must be a float in the range \[0, 180\]"
    with pytest.raises(InvalidParameterError, match=expected):
        RandomRotation(-5)


def test_what_kornia_would_do_silently_or_deep_inside_is_one_clear_error():
    gray = torch.rand(2, 1, 8, 8)
    message = r"'size' parameter of RandomCrop must be at most \(8, 8\) for \(8, 8\) images with padding=0"
    with pytest.raises(InvalidParameterError, match=message):
        RandomCrop((10, 10))(gray, None, generator=gen())  # kornia pads: a flat input would change size
    assert RandomCrop((10, 10), padding=1)(gray, None, generator=gen())[0].shape == (2, 1, 10, 10)
    for jitter in (ColorJitter(hue=0.3), ColorJitter(saturation=0.9)):  # kornia: raises / does nothing
        with pytest.raises(InvalidParameterError, match=r"must be 0 for images that are not 3-channel RGB"):
            jitter(gray, None, generator=gen())
    assert ColorJitter(hue=0.3)(torch.rand(2, 3, 8, 8), None, generator=gen())[0].shape == (2, 3, 8, 8)
    with pytest.raises(InvalidParameterError, match=r"'value' parameter of RandomErasing must be a float in"):
        RandomErasing(value=5.0)
