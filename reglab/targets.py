"""Batch transforms that produce soft targets: label smoothing, mixup and cutmix.

Each follows the batch-transform protocol of ``docs/architecture.md``:
``t(x, y, *, generator) -> (x, y_soft)`` where ``y`` holds class indices ``(N,)``
or probabilities ``(N, K)`` and ``y_soft`` is float probabilities ``(N, K)``, which
``torch.nn.functional.cross_entropy`` accepts directly. Because soft targets are
accepted as input, the transforms chain (mixup, then label smoothing). They are
meant for training batches only. Each class has a functional twin.

References:
    Szegedy et al., "Rethinking the Inception architecture", CVPR 2016 (label smoothing).
    Zhang et al., "mixup: beyond empirical risk minimization", ICLR 2018.
    Yun et al., "CutMix: regularization strategy to train strong classifiers with
    localizable features", ICCV 2019.
"""

from __future__ import annotations

import math

import scipy.special
import torch
import torch.nn.functional as F

from reglab._validation import Interval, check_generator, check_int, check_scalar, fail

__all__ = [
    "LabelSmoothing",
    "Mixup",
    "CutMix",
    "label_smoothing",
    "mixup",
    "cutmix",
    "soft_targets",
]


def soft_targets(
    y: torch.Tensor, num_classes: int, *, dtype: torch.dtype | None = None, owner: str = "soft_targets"
):
    """Class indices ``(N,)`` to one-hot float ``(N, K)``; probabilities ``(N, K)`` pass through.

    Indices may be whole-number floats (``[2.0, 0.0]``), as the Trainer's cross-entropy takes them.

    ``dtype`` defaults to the probabilities' own dtype, or torch's default dtype for indices.

    Example:
        >>> soft_targets(torch.tensor([2, 0]), 3).tolist()
        [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    """
    if y.is_floating_point() and y.ndim == 2 and y.shape[1] == num_classes:
        return y.to(dtype or y.dtype)
    dtype = dtype or torch.get_default_dtype()
    if y.is_floating_point() and y.ndim == 1:
        # Whole-number float labels (a CSV's, numpy's) are class indices, as the Trainer's cross-entropy
        # and timm's one_hot take them; a fraction is not a class.
        bad = y[~torch.isfinite(y) | (y != y.round())]
        if len(bad):
            raise fail(owner, "y", "whole-number class indices of shape (N,)",
                       f"{y.dtype} labels with the fraction {float(bad[0])}")
        y = y.long()
    if y.is_floating_point() or y.dtype == torch.bool or y.ndim != 1:
        raise fail(
            owner,
            "y",
            f"class indices of shape (N,) or probabilities of shape (N, {num_classes})",
            f"{y.dtype} tensor of shape {tuple(y.shape)}",
        )
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        bad = int(y.min()) if int(y.min()) < 0 else int(y.max())
        raise fail(owner, "y", f"class indices in [0, {num_classes})", bad)
    return F.one_hot(y.long(), num_classes).to(dtype)  # one_hot takes int64 only (numpy's int32 on Windows)


def _target_dtype(x: torch.Tensor) -> torch.dtype:
    return x.dtype if x.is_floating_point() else torch.get_default_dtype()


def _check_pair(x: torch.Tensor, y: torch.Tensor, owner: str) -> None:
    if not x.is_floating_point():
        raise fail(owner, "x", "a floating-point tensor", f"{x.dtype} tensor")
    if y.shape[:1] != x.shape[:1]:
        raise fail(owner, "y", f"one target per sample of x ({x.shape[0]})", f"shape {tuple(y.shape)}")


def _beta(alpha: float, generator: torch.Generator | None) -> float:
    # torch.distributions.Beta samples through torch._standard_gamma, which takes no generator.
    # Inverting the Beta CDF (scipy) at one uniform drawn from the caller's generator keeps the draw
    # tied to that generator, costs one random number, and is exact.
    u = float(torch.rand((), generator=generator, dtype=torch.float64, device=_device(generator)))
    return float(scipy.special.betaincinv(alpha, alpha, u))


def _device(generator: torch.Generator | None) -> torch.device | None:
    # A draw takes place on its generator's device: the Trainer's is on the training device (CUDA
    # there), and torch refuses a CUDA generator for a CPU draw. None: the global RNG, on the CPU.
    return None if generator is None else generator.device


def _perm(n: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return torch.randperm(n, generator=generator, device=_device(generator)).to(device)


def label_smoothing(y: torch.Tensor, eps: float, num_classes: int, *, dtype: torch.dtype | None = None):
    """Smoothed targets ``(1 - eps) * onehot + eps / K``: what ``cross_entropy(label_smoothing=eps)`` uses.

    Example:
        >>> [round(v, 6) for v in label_smoothing(torch.tensor([0]), 0.3, 3)[0].tolist()]
        [0.8, 0.1, 0.1]
    """
    eps = check_scalar(eps, "eps", owner="label_smoothing", interval=Interval(0, 1))
    num_classes = check_int(num_classes, "num_classes", owner="label_smoothing", interval=Interval(2, None))
    y = soft_targets(y, num_classes, dtype=dtype, owner="label_smoothing")
    return y * (1.0 - eps) + eps / num_classes


def mixup(
    x: torch.Tensor,
    y: torch.Tensor,
    alpha: float,
    num_classes: int,
    *,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mix each sample with a random partner: ``lam * x + (1 - lam) * x[perm]``, same for the targets.

    One ``lam ~ Beta(alpha, alpha)`` per batch (as Zhang et al. and timm), then one
    permutation, both drawn from ``generator``.

    Example:
        >>> x, y = torch.eye(4), torch.tensor([0, 1, 2, 3])
        >>> xm, ym = mixup(x, y, 0.4, 4, generator=torch.Generator().manual_seed(0))
        >>> torch.allclose(xm, ym)  # x is the one-hot of y here, so the mixes agree
        True
    """
    alpha = check_scalar(alpha, "alpha", owner="mixup", interval=Interval(0, None, closed="neither"))
    num_classes = check_int(num_classes, "num_classes", owner="mixup", interval=Interval(2, None))
    _check_pair(x, y, "mixup")
    check_generator(generator, "mixup")
    y = soft_targets(y, num_classes, dtype=_target_dtype(x), owner="mixup")
    lam = _beta(alpha, generator)
    perm = _perm(x.shape[0], generator, x.device)
    return x * lam + x[perm] * (1.0 - lam), y * lam + y[perm] * (1.0 - lam)


def cutmix(
    x: torch.Tensor,
    y: torch.Tensor,
    alpha: float,
    num_classes: int,
    *,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Paste a random box from a partner sample; mix the targets by the exact pasted fraction.

    ``x`` is ``(N, C, H, W)`` (a rectangle), ``(N, C, L)`` or ``(N, L)`` (a segment).
    ``lam ~ Beta(alpha, alpha)`` sets the box: side ``S * (1 - lam) ** (1 / d)`` along
    each of the ``d`` spatial dims, centred uniformly and clipped at the border (as in
    Yun et al.). The target weight is then recomputed from the box actually pasted,
    ``lam = 1 - box_area / total_area``. One box and one permutation per batch.

    Example:
        >>> x = torch.arange(2.0)[:, None].expand(2, 10)  # sample i is all i
        >>> xm, ym = cutmix(x, torch.tensor([0, 1]), 1.0, 2, generator=torch.Generator().manual_seed(1))
        >>> torch.allclose(ym[:, 1], xm.mean(1))  # class-1 weight = fraction of pixels from sample 1
        True
    """
    alpha = check_scalar(alpha, "alpha", owner="cutmix", interval=Interval(0, None, closed="neither"))
    num_classes = check_int(num_classes, "num_classes", owner="cutmix", interval=Interval(2, None))
    check_generator(generator, "cutmix")
    _check_pair(x, y, "cutmix")
    if x.ndim not in (2, 3, 4):
        raise fail(
            "cutmix", "x", "a tensor of shape (N, L), (N, C, L) or (N, C, H, W)", f"shape {tuple(x.shape)}"
        )
    y = soft_targets(y, num_classes, dtype=_target_dtype(x), owner="cutmix")
    lam = _beta(alpha, generator)
    perm = _perm(x.shape[0], generator, x.device)
    sizes = x.shape[2:] if x.ndim == 4 else x.shape[-1:]
    box: list[slice] = []
    for size in sizes:
        cut = int(size * (1.0 - lam) ** (1.0 / len(sizes)))
        centre = int(torch.randint(size, (), generator=generator, device=_device(generator)))
        lo = centre - cut // 2
        box.append(slice(max(lo, 0), min(lo + cut, size)))
    index = (slice(None),) * (x.ndim - len(sizes)) + tuple(box)
    mixed = x.clone()
    mixed[index] = x[perm][index]
    lam = 1.0 - math.prod(s.stop - s.start for s in box) / math.prod(sizes)
    return mixed, y * lam + y[perm] * (1.0 - lam)


class LabelSmoothing:
    """Batch transform: ``(x, y) -> (x, (1 - eps) * onehot(y) + eps / K)``.

    Cross-entropy with these targets equals
    ``torch.nn.functional.cross_entropy(logits, y, label_smoothing=eps)``; Keras's
    ``CategoricalCrossentropy(label_smoothing=eps)`` uses the same formula.

    Example:
        >>> x, y = LabelSmoothing(0.1, 4)(torch.zeros(2, 3), torch.tensor([0, 3]))
        >>> [round(v, 3) for v in y[0].tolist()]
        [0.925, 0.025, 0.025, 0.025]
    """

    def __init__(self, eps: float, num_classes: int):
        self.eps = check_scalar(eps, "eps", owner="LabelSmoothing", interval=Interval(0, 1))
        self.num_classes = check_int(
            num_classes, "num_classes", owner="LabelSmoothing", interval=Interval(2, None)
        )

    def __call__(self, x: torch.Tensor, y: torch.Tensor, *, generator: torch.Generator | None = None):
        return x, label_smoothing(y, self.eps, self.num_classes, dtype=_target_dtype(x))

    def __repr__(self) -> str:
        return f"LabelSmoothing(eps={self.eps}, num_classes={self.num_classes})"


class Mixup:
    """Batch transform: mixup with ``lam ~ Beta(alpha, alpha)`` (see :func:`mixup`).

    Example:
        >>> t = Mixup(0.2, 3)
        >>> g = torch.Generator().manual_seed(0)
        >>> x, y = t(torch.randn(4, 5), torch.tensor([0, 1, 2, 0]), generator=g)
        >>> y.shape, torch.allclose(y.sum(1), torch.ones(4))
        (torch.Size([4, 3]), True)
    """

    def __init__(self, alpha: float, num_classes: int):
        self.alpha = check_scalar(alpha, "alpha", owner="Mixup", interval=Interval(0, None, closed="neither"))
        self.num_classes = check_int(num_classes, "num_classes", owner="Mixup", interval=Interval(2, None))

    def __call__(self, x: torch.Tensor, y: torch.Tensor, *, generator: torch.Generator | None = None):
        return mixup(x, y, self.alpha, self.num_classes, generator=generator)

    def __repr__(self) -> str:
        return f"Mixup(alpha={self.alpha}, num_classes={self.num_classes})"


class CutMix:
    """Batch transform: cutmix for images ``(N, C, H, W)`` and signals ``(N, L)``/``(N, C, L)``.

    Example:
        >>> t = CutMix(1.0, 10)
        >>> x, y = t(torch.randn(4, 1, 8, 8), torch.arange(4), generator=torch.Generator().manual_seed(0))
        >>> x.shape, y.shape
        (torch.Size([4, 1, 8, 8]), torch.Size([4, 10]))
    """

    def __init__(self, alpha: float, num_classes: int):
        self.alpha = check_scalar(
            alpha, "alpha", owner="CutMix", interval=Interval(0, None, closed="neither")
        )
        self.num_classes = check_int(num_classes, "num_classes", owner="CutMix", interval=Interval(2, None))

    def __call__(self, x: torch.Tensor, y: torch.Tensor, *, generator: torch.Generator | None = None):
        return cutmix(x, y, self.alpha, self.num_classes, generator=generator)

    def __repr__(self) -> str:
        return f"CutMix(alpha={self.alpha}, num_classes={self.num_classes})"
