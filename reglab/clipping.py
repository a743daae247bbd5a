"""Gradient clipping, called between ``loss.backward()`` and ``optimizer.step()``.

Every clipper is a callable ``clip(parameters) -> float`` that clips the gradients
in place and returns the total L2 norm (``norm_type`` for :class:`ClipGradNorm`) of
the gradients *before* clipping, for the training history. ``parameters`` is a
module or an iterable of parameters; parameters without a gradient are skipped.

Where frameworks disagree:
    Keras ``global_clipnorm=c`` and PyTorch ``clip_grad_norm_(max_norm=c)`` both scale
    all gradients together, Keras by ``c / max(norm, c)`` and PyTorch by
    ``min(1, c / (norm + 1e-6))``: where clipping acts (norm > c) the two factors differ by the
    relative amount ``1e-6 / norm``, below ``1e-6 / c`` (so above 1e-6 for ``c < 1``). Keras
    ``clipnorm=c`` clips each variable's gradient on its own (:class:`ClipGradNormPerTensor`),
    which changes the direction of the whole update. Keras ``clipvalue`` is :class:`ClipGradValue`.

A non-finite norm (a NaN or inf gradient) is counted in ``nonfinite_steps_`` and,
with ``on_nonfinite="warn"`` (the default), reported by a ``RuntimeWarning``;
``"raise"`` stops with a :class:`reglab.errors.UserError` before anything is changed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable

import torch
from torch import nn

from reglab._validation import Interval, check_option, check_scalar, fail
from reglab.errors import UserError

__all__ = ["ClipGradNorm", "ClipGradValue", "ClipGradNormPerTensor"]

Params = nn.Module | torch.Tensor | Iterable[torch.Tensor]
_ON_NONFINITE = ("warn", "raise", "ignore")


def _with_grad(parameters: Params, owner: str = "clipping") -> list[torch.Tensor]:
    if isinstance(parameters, nn.Module):
        parameters = parameters.parameters()
    elif isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    allowed = "a module, a tensor or an iterable of tensors"
    if not isinstance(parameters, Iterable):
        raise fail(owner, "parameters", allowed, parameters)
    parameters = list(parameters)
    if not all(isinstance(p, torch.Tensor) for p in parameters):
        raise fail(owner, "parameters", allowed, parameters)
    params = [p for p in parameters if p.grad is not None]
    sparse = [i for i, p in enumerate(params) if p.grad.is_sparse]
    if sparse:  # torch's norms and clamps have no sparse kernels
        raise UserError(
            f"{owner}: {len(sparse)} parameter(s) have sparse gradients (e.g. nn.Embedding(sparse=True)); "
            "gradient clipping needs dense ones (sparse=False)."
        )
    return params


class _Clipper:
    def __init__(self, on_nonfinite: str):
        self.on_nonfinite = check_option(
            on_nonfinite, "on_nonfinite", owner=type(self).__name__, options=_ON_NONFINITE
        )
        self.nonfinite_steps_ = 0
        self.last_norm_: float | None = None

    def _total_norm(self, params: list[torch.Tensor], norm_type: float = 2.0) -> torch.Tensor:
        grads = [p.grad for p in params]
        norm = torch.nn.utils.get_total_norm(grads, norm_type) if grads else torch.zeros(())
        total = self.last_norm_ = float(norm)
        if not math.isfinite(total):
            self.nonfinite_steps_ += 1
            message = (
                f"{type(self).__name__}: the gradient norm is {total} (a NaN or inf gradient) "
                f"at call {self.nonfinite_steps_}; lower the learning rate or check the loss and inputs."
            )
            if self.on_nonfinite == "raise":
                raise UserError(message)
            if self.on_nonfinite == "warn":
                warnings.warn(message, RuntimeWarning, stacklevel=3)
        return norm

    def state_dict(self) -> dict:
        return {"nonfinite_steps_": self.nonfinite_steps_, "last_norm_": self.last_norm_}

    def load_state_dict(self, state: dict) -> None:
        self.nonfinite_steps_, self.last_norm_ = state["nonfinite_steps_"], state["last_norm_"]


class ClipGradNorm(_Clipper):
    """Scale all gradients together so that their global norm is at most ``max_norm``.

    Calls ``torch.nn.utils.clip_grads_with_norm_`` (PyTorch's ``clip_grad_norm_``
    semantics); equivalent to Keras ``global_clipnorm`` up to a relative ``1e-6 / max_norm``
    (PyTorch adds an absolute 1e-6 to the norm it divides by).

    Args:
        max_norm: the largest allowed global norm.
        norm_type: the p of the p-norm (``inf`` for the max-norm).
        on_nonfinite: ``"warn"``, ``"raise"`` or ``"ignore"`` a NaN/inf norm.

    Example:
        >>> w = nn.Parameter(torch.zeros(2))
        >>> w.grad = torch.tensor([3.0, 4.0])
        >>> ClipGradNorm(1.0)([w])
        5.0
        >>> [round(g, 4) for g in w.grad.tolist()]
        [0.6, 0.8]
    """

    def __init__(self, max_norm: float, norm_type: float = 2.0, *, on_nonfinite: str = "warn"):
        super().__init__(on_nonfinite)
        self.max_norm = check_scalar(
            max_norm, "max_norm", owner="ClipGradNorm", interval=Interval(0, None, closed="neither")
        )
        self.norm_type = check_scalar(
            norm_type, "norm_type", owner="ClipGradNorm", interval=Interval(0, math.inf, closed="right")
        )

    def __call__(self, parameters: Params) -> float:
        params = _with_grad(parameters, type(self).__name__)
        total = self._total_norm(params, self.norm_type)
        if params:
            torch.nn.utils.clip_grads_with_norm_(params, self.max_norm, total)
        return float(total)

    def __repr__(self) -> str:
        return f"ClipGradNorm(max_norm={self.max_norm}, norm_type={self.norm_type})"


class ClipGradValue(_Clipper):
    """Clamp every gradient element to ``[-value, value]`` (``clip_grad_value_``; Keras ``clipvalue``).

    Returns the global L2 norm before clipping.

    Example:
        >>> w = nn.Parameter(torch.zeros(2))
        >>> w.grad = torch.tensor([3.0, -0.5])
        >>> round(ClipGradValue(1.0)(w), 4), w.grad.tolist()
        (3.0414, [1.0, -0.5])
    """

    def __init__(self, value: float, *, on_nonfinite: str = "warn"):
        super().__init__(on_nonfinite)
        self.value = check_scalar(
            value, "value", owner="ClipGradValue", interval=Interval(0, None, closed="neither")
        )

    def __call__(self, parameters: Params) -> float:
        params = _with_grad(parameters, type(self).__name__)
        total = self._total_norm(params)
        if params:
            torch.nn.utils.clip_grad_value_(params, self.value)
        return float(total)

    def __repr__(self) -> str:
        return f"ClipGradValue(value={self.value})"


class ClipGradNormPerTensor(_Clipper):
    """Clip each gradient tensor to L2 norm ``max_norm`` on its own (Keras ``clipnorm``).

    Keras's ``clip_by_norm``: ``g * max_norm / max(norm(g), max_norm)``. Returns the
    global L2 norm before clipping.

    Example:
        >>> a, b = nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(1))
        >>> a.grad, b.grad = torch.tensor([3.0, 4.0]), torch.tensor([0.5])
        >>> _ = ClipGradNormPerTensor(1.0)([a, b])
        >>> [round(g, 4) for g in a.grad.tolist()], b.grad.tolist()
        ([0.6, 0.8], [0.5])
    """

    def __init__(self, max_norm: float, *, on_nonfinite: str = "warn"):
        super().__init__(on_nonfinite)
        self.max_norm = check_scalar(
            max_norm, "max_norm", owner="ClipGradNormPerTensor", interval=Interval(0, None, closed="neither")
        )

    def __call__(self, parameters: Params) -> float:
        params = _with_grad(parameters, type(self).__name__)
        total = self._total_norm(params)
        with torch.no_grad():
            for p in params:
                p.grad.mul_(self.max_norm / torch.linalg.vector_norm(p.grad).clamp(min=self.max_norm))
        return float(total)

    def __repr__(self) -> str:
        return f"ClipGradNormPerTensor(max_norm={self.max_norm})"
