"""The batch-transform protocol and ``Compose``.

A batch transform is any callable ``t(x, y, *, generator) -> (x, y)`` (see
``docs/architecture.md``): it gets a training batch and a ``torch.Generator`` and
returns the transformed batch. All randomness comes from ``generator``, so the same
generator seed gives the same output. Text transforms take python token lists and
also accept a ``random.Random`` as the generator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol, runtime_checkable

import torch

from reglab._validation import fail

__all__ = ["BatchTransform", "Compose", "check_batch"]


@runtime_checkable
class BatchTransform(Protocol):
    """``t(x, y, *, generator) -> (x, y)``, applied to training batches only."""

    def __call__(self, x: Any, y: Any, *, generator: Any) -> tuple[Any, Any]: ...


def check_batch(x: Any, owner: str, ndims: tuple[int, ...], layout: str) -> torch.Tensor:
    """Raise the one-format error unless ``x`` is a floating tensor with one of ``ndims`` dimensions."""
    if not isinstance(x, torch.Tensor) or x.ndim not in ndims or not x.is_floating_point():
        got = f"tensor of shape {tuple(x.shape)} ({x.dtype})" if isinstance(x, torch.Tensor) else x
        raise fail(owner, "x", f"a floating tensor of shape {layout}", got)
    return x


class Compose:
    """Apply batch transforms in order, threading one generator through all of them.

    Example:
        >>> from reglab.augment.signal import AmplitudeScale, RandomShift
        >>> t = Compose([RandomShift(2), AmplitudeScale(0.9, 1.1)])
        >>> x, y = t(torch.ones(4, 10), torch.zeros(4), generator=torch.Generator().manual_seed(0))
        >>> x.shape
        torch.Size([4, 10])
    """

    def __init__(self, transforms: Iterable[Callable[..., tuple[Any, Any]]]):
        self.transforms = list(transforms)
        for i, t in enumerate(self.transforms):
            if not callable(t):
                raise fail("Compose", f"transforms[{i}]", "a callable t(x, y, *, generator)", t)

    def __call__(self, x: Any, y: Any, *, generator: Any) -> tuple[Any, Any]:
        for t in self.transforms:
            x, y = t(x, y, generator=generator)
        return x, y

    def __len__(self) -> int:
        return len(self.transforms)

    def __repr__(self) -> str:
        inner = ", ".join(repr(t) for t in self.transforms)
        return f"Compose([{inner}])"
