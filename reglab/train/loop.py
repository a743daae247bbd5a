"""Data sources for the trainer, the documented batch order, and the regularization read-outs.

Kept apart from :mod:`reglab.train.trainer` so the population engine can import the
exact batch order (:func:`epoch_batches`) instead of re-deriving it.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, default_collate

from reglab._validation import InvalidParameterError, fail, shown
from reglab.errors import UserError
from reglab.optim import param_groups, sparsity
from reglab.selectors import Selector, weight_norm

__all__ = [
    "Source", "as_tensor", "as_source", "as_pair", "epoch_order", "epoch_batches", "weight_stats",
    "decay_groups",
]


@dataclass
class Source:
    """Training or evaluation data in one of three shapes: tensors, a map-style Dataset, a DataLoader."""

    x: torch.Tensor | None = None
    y: torch.Tensor | None = None
    dataset: Dataset | None = None
    loader: DataLoader | None = None

    def __len__(self) -> int:
        if self.x is not None:
            return int(self.x.shape[0])
        if self.dataset is not None:
            return len(self.dataset)  # type: ignore[arg-type]
        return len(self.loader.dataset)  # type: ignore[union-attr, arg-type]

    def take(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The examples at ``idx`` as one batch ``(x, y)``."""
        if self.x is not None:
            return self.x[idx], self.y[idx]  # type: ignore[index]
        items = [self.dataset[int(i)] for i in idx]  # type: ignore[index]
        return as_pair(default_collate(items), "a Dataset item")

    def first_targets(self) -> torch.Tensor:
        """Targets of a first batch, to infer the task (integer targets: classification)."""
        if self.y is not None:
            return self.y
        if self.dataset is not None:
            return self.take(torch.arange(min(len(self), 64)))[1]
        return as_pair(next(iter(self.loader)), "a DataLoader batch")[1]  # type: ignore[arg-type]


def as_pair(batch: Any, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` as ``(x, y)``; anything else (a dict, a triple) is one clear error.

    Example:
        >>> as_pair([torch.zeros(2, 3), torch.ones(2)], "a batch")[1].tolist()
        [1.0, 1.0]
    """
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], batch[1]
    if isinstance(batch, dict):
        shape = f"is a dict with keys {sorted(map(str, batch))}"
    elif isinstance(batch, (tuple, list)):
        shape = f"holds {len(batch)} values"
    else:
        shape = f"is a {type(batch).__name__}"
    raise UserError(f"{what} {shape}; the Trainer takes (x, y) pairs: make each item (input, target).")


def as_tensor(value: Any, *, owner: str, name: str) -> torch.Tensor:
    """``torch.as_tensor(value)`` (a list of floats: float32, of ints: int64; a NumPy array keeps its dtype),
    refused in one line when ``value`` is not numbers (ragged rows, strings, object arrays).

    Example:
        >>> as_tensor([[0.5, 1.0]], owner="Trainer", name="train").dtype
        torch.float32
    """
    if isinstance(value, torch.Tensor):
        return value
    try:
        return torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as exc:
        allowed = "(x, y) of numbers: tensors, NumPy arrays or (nested) lists with rows of equal length"
        reason = str(exc).splitlines()[0].split(". ")[0] if str(exc) else type(exc).__name__
        # fail()'s format, with torch's reason after it (fail would cut a long "got" short).
        raise InvalidParameterError(
            f"The {name!r} parameter of {owner} must be {allowed}. Got {shown(value)} instead "
            f"(torch.as_tensor: {reason[:100]})."
        ) from None


def as_source(data: Any, *, owner: str = "Trainer", name: str = "train") -> Source:
    """Accept ``(x, y)`` tensors or arrays, a ``TensorSplit`` (``.x``, ``.y``), a Dataset or a DataLoader."""
    if isinstance(data, Source):
        return data
    if isinstance(data, DataLoader):
        if hasattr(data.dataset, "__len__") and len(data.dataset) == 0:  # type: ignore[arg-type]
            raise fail(owner, name, "a DataLoader over a non-empty dataset", "an empty one")
        return Source(loader=data)
    # A TensorSplit is a Dataset too, but its tensors are used as such: checked before training
    # (feature count, labels against the outputs) and batched by indexing (the same batches as
    # collating its items, without a Python call per example). Another Dataset with .x / .y may
    # transform its items, so it is read item by item.
    # Looked up, not imported: a TensorSplit exists only once its module is loaded, and importing
    # reglab.data (scikit-learn's model_selection) would change Python's global random state.
    splits = sys.modules.get("reglab.data.splits")
    plain = hasattr(data, "x") and hasattr(data, "y") and not isinstance(data, Dataset)
    if plain or (splits is not None and isinstance(data, splits.TensorSplit)):
        data = (data.x, data.y)
    if isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = (as_tensor(v, owner=owner, name=name) for v in data)
        if x.ndim == 0 or y.ndim == 0 or x.shape[0] != y.shape[0] or x.shape[0] == 0:  # 0-d: no rows at all
            raise fail(
                owner,
                name,
                "(x, y) with the same non-zero number of rows",
                f"{tuple(x.shape)}, {tuple(y.shape)}",
            )
        # Integer labels of any width (int32 from numpy on Windows, uint8, bool) are int64 class
        # indices for torch's losses, which take no other integer type.
        integer = not (torch.is_floating_point(y) or torch.is_complex(y))
        return Source(x=x, y=y.long() if integer and y.dtype != torch.int64 else y)
    if isinstance(data, Dataset) and hasattr(data, "__len__"):
        if len(data) == 0:
            raise fail(owner, name, "a non-empty Dataset", "an empty one")
        return Source(dataset=data)
    allowed = "(x, y) tensors, a TensorSplit, a DataSplits, a map-style torch Dataset or a DataLoader"
    if isinstance(data, float) and not isinstance(data, bool):
        # Keras' validation_split habit: say how reglab holds out a fraction.
        error = fail(owner, name, allowed, data)
        raise InvalidParameterError(
            f"{error} To hold out a fraction, split first: splits = reglab.data.from_tensors(x, y, "
            f"val_size={data:g}, test_size=0), then fit(splits)."
        )
    raise fail(owner, name, allowed, type(data).__name__)


def epoch_order(n: int, generator: torch.Generator) -> torch.Tensor:
    """One epoch's example order: ``torch.randperm(n, generator=generator)`` (CPU generator)."""
    return torch.randperm(n, generator=generator)


def has_batch_norm(model: nn.Module) -> bool:
    """Whether ``model`` has a BatchNorm layer, so a training batch of one example is skipped.

    torch's BatchNorm refuses a training batch with one value per channel, and one example has no
    batch statistics to normalize by (its variance is 0, and the running variance's unbiased update
    divides by 0). The Trainer and the population engine therefore skip a training batch of one
    example (the last partial batch when ``n % batch_size == 1``), as ``drop_last`` would.
    """
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def check_batch_norm_batches(batch_norm: bool, n: int | None, batch_size: int, owner: str) -> bool:
    """``batch_norm`` (whether single-example batches are skipped), after refusing training that
    would leave a BatchNorm model no batch of two examples (``n`` examples, ``None`` when streamed)."""
    if not batch_norm:
        return False
    if batch_size == 1 or n == 1:
        what = "batch_size=1" if batch_size == 1 else "1 training example"
        raise UserError(
            f"{owner}: the model has BatchNorm, which needs training batches of at least 2 examples; "
            f"got {what}. Use batch_size >= 2 and at least 2 training examples, or norm='layer'."
        )
    return True


def epoch_batches(
    source: Source, batch_size: int, generator: torch.Generator | None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of one epoch: ``perm[k*B:(k+1)*B]`` for ``perm = randperm(n)``, last partial batch kept.

    ``generator=None`` gives the data in stored order (evaluation). A DataLoader keeps its own
    sampler and batch size.
    """
    if source.loader is not None:
        for batch in source.loader:
            yield as_pair(batch, "a DataLoader batch")
        return
    n = len(source)
    order = epoch_order(n, generator) if generator is not None else torch.arange(n)
    for start in range(0, n, batch_size):
        yield source.take(order[start : start + batch_size])


def _optional(module: str, name: str) -> Any:
    """A function from a sibling reglab module, or None while that module is not installed."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


@torch.no_grad()
def weight_stats(model: nn.Module) -> tuple[float, float]:
    """``(L2 norm, fraction of exact zeros)`` of the default-selected (regularized) weights.

    Uses :func:`reglab.selectors.weight_norm` and :func:`reglab.optim.sparsity`; a model
    with no selectable weight (say, biases only) gives ``(0.0, 0.0)``.
    """
    if not Selector().partition(model)[0]:
        return 0.0, 0.0
    return weight_norm(model), sparsity(model)["overall"]


def decay_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Optimizer groups from :func:`reglab.optim.param_groups`: decay on weights, none on biases / norms.

    A nonzero ``weight_decay`` for a model with no weight to decay is refused: it was dropped without a word.
    """
    if not Selector().partition(model)[0]:
        if weight_decay:
            shapes = ", ".join(f"{n} {tuple(p.shape)}" for n, p in list(model.named_parameters())[:5])
            allowed = (f"0 for a model with no weight to decay (decay goes to parameters with ndim >= 2 "
                       f"outside normalization layers; this model has {shapes or 'no parameters'}); to "
                       "decay every parameter pass optimizer=lambda p: torch.optim.SGD(p, lr=..., "
                       "weight_decay=...)")
            raise fail("Trainer", "weight_decay", allowed, weight_decay)
        return [{"params": [p for p in model.parameters() if p.requires_grad], "weight_decay": 0.0}]
    return param_groups(model, weight_decay=weight_decay)
