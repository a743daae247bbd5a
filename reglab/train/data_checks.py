"""Tensors checked against the model that will train on them, so a mistake reads as one line.

Without these checks a wrong feature count surfaces as ``mat1 and mat2 shapes cannot be
multiplied`` (or from inside a TorchScript kernel), a label past the last class as
``Target 3 is out of bounds``, and NaN inputs as a non-finite loss several steps later.
"""

from __future__ import annotations

import torch
from torch import nn

from reglab.errors import UserError
from reglab.models import CNN1D, CNN2D, MLP

__all__ = ["check_tensors"]


def check_tensors(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, owner: str, name: str, task: str,
    loss: str = "auto",
) -> None:
    """Raise a one-line ``UserError`` when ``(x, y)`` cannot train ``model``.

    For a ``reglab.models.MLP`` / ``CNN1D`` / ``CNN2D`` ``x`` must be floating-point, with the model's
    input size of features an example (``size * size`` for a ``CNN2D``: ``(N, size**2)`` or images).
    For classification (integer ``y``) ``y`` holds one class index per example, within the model's
    outputs for a reglab model (``{0, 1}`` for one output), non-negative otherwise. Floating-point
    ``x`` must be finite. ``loss`` is the Trainer's loss name (``"auto"`` or one of
    ``reglab.train.trainer.LOSSES``), for the message.

    Example:
        >>> y = torch.tensor([0, 3])
        >>> try:
        ...     check_tensors(MLP(4, 3, hidden=()), torch.zeros(2, 4), y, owner="fit", name="train",
        ...                   task="classification")
        ... except UserError as error:
        ...     print(error)
        fit: train y has labels 0..3; expected class indices 0..2 (the MLP has 3 outputs), one per example.
    """
    kind = type(model).__name__
    features = None
    if isinstance(model, (MLP, CNN1D)):
        features = model.in_features if isinstance(model, MLP) else model.length
    elif isinstance(model, CNN2D):  # one channel of size x size pixels, flat or as an image
        features = model.size**2
    if features is not None and not torch.is_floating_point(x):
        raise UserError(
            f"{owner}: {name} x has dtype {x.dtype}; the {kind} takes floating-point features "
            "(convert with x.float())."
        )
    if features is not None and (x.dim() < 2 or x[0].numel() != features):
        shapes = f"(N, {features})"
        if isinstance(model, CNN2D):
            shapes += f" or (N, 1, {model.size}, {model.size})"
        raise UserError(
            f"{owner}: {name} x has shape {tuple(x.shape)}; the {kind} takes {features} features an "
            f"example (x of shape {shapes})."
        )
    if task == "classification" and torch.is_floating_point(y) and y.dim() == 1 and len(y):
        # Class indices stored as floats (a CSV's 0.0 / 1.0 / 2.0): the Trainer reads them as integers.
        fractional = y != y.round()  # NaN too
        if bool(fractional.any()):
            value = float(y[fractional.nonzero()[0, 0]])
            raise UserError(
                f"{owner}: {name} y holds {value:g}, not a class index; classification takes integer "
                "labels 0..C-1, one per example (or soft targets of shape (N, C))."
            )
        y = y.long()
    if task == "classification" and not torch.is_floating_point(y) and len(y):
        outputs = model.out_features if isinstance(model, (MLP, CNN1D, CNN2D)) else None
        classes = None if outputs is None else max(outputs, 2)  # one output: binary labels 0 and 1
        low, high = int(y.min()), int(y.max())
        if y.dim() != 1 or low < 0 or (classes is not None and high >= classes):
            found = f"shape {tuple(y.shape)}" if y.dim() != 1 else f"labels {low}..{high}"
            expected, of = "non-negative class indices", ""
            if classes is not None:
                expected = f"class indices 0..{classes - 1}"
                of = f" (the {kind} has {outputs} output{'s' * (outputs > 1)})"
            raise UserError(f"{owner}: {name} y has {found}; expected {expected}{of}, one per example.")
    if task == "regression" and isinstance(model, (MLP, CNN1D, CNN2D)) and len(y):
        targets = 1 if y.dim() == 1 else y[0].numel()
        if model.out_features != targets:
            outputs = model.out_features
            given = f"float y of shape {tuple(y.shape)}, trained with MSE"
            advice = "for classes pass integer labels (y.long()) or task='classification', else match"
            if loss != "auto":  # a regression loss named: the targets are meant as regression targets
                given, advice = f"y of shape {tuple(y.shape)}, trained with loss={loss!r}", "match"
            raise UserError(
                f"{owner}: {name} y holds {targets} regression target{'s' * (targets > 1)} an example "
                f"({given}), but the {kind} has {outputs} output{'s' * (outputs > 1)}; {advice} the model's "
                "outputs to the targets."
            )
    if torch.is_floating_point(x) and not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise UserError(f"{owner}: {name} x has {bad} NaN or infinite values; clean or impute them.")
