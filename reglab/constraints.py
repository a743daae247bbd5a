"""Weight constraints applied in place after each optimizer step: max-norm, unit-norm, non-negative.

A constraint is a callable ``constraint(module) -> None`` that projects the
parameters its :class:`~reglab.selectors.Selector` picks (by default the weights,
not biases or normalization parameters), in place and under ``no_grad``. Call it
right after ``optimizer.step()``; that is what Keras does with ``kernel_constraint``.

Axis semantics (where Keras and PyTorch disagree):
    Keras stores a Dense kernel as ``(in, out)`` and ``MaxNorm(axis=0)`` (its default)
    takes the norm over axis 0, i.e. over each output unit's incoming weights. PyTorch
    stores ``Linear.weight`` as ``(out, in)`` and ``Conv*.weight`` as ``(out, in, *k)``,
    so the same per-unit constraint is a norm over dim 1, or over every dim but 0 for a
    convolution. Here ``axis=None`` (the default) means exactly that: per output unit,
    the dropout paper's max-norm. A ``ConvTranspose*.weight`` is ``(in, out/groups, *k)``:
    there ``axis=None`` takes each output channel's weights (dims 0 and 2.. within its
    group), found from the module, so only a call on the model sees that layout (``project_``
    alone takes dim 0 as the unit). An explicit ``axis`` is in PyTorch's layout: the dims
    the norm is taken over (``axis=0`` on a Linear weight constrains each *input*
    feature's outgoing weights, which is Keras's ``axis=1``). A 1-D parameter (when a
    selector picks biases) is normed as a whole.

References:
    Srivastava et al., "Dropout: a simple way to prevent neural networks from
    overfitting", JMLR 2014 (max-norm regularization, section 5.1).
    Keras ``keras.constraints.MaxNorm``, ``UnitNorm``, ``NonNeg``.
"""

from __future__ import annotations

import numbers

import torch
from torch import nn

from reglab._validation import Interval, check_scalar, fail
from reglab.selectors import Selection, Selector

__all__ = ["Constraint", "MaxNorm", "UnitNorm", "NonNeg", "KERAS_EPSILON"]

#: ``keras.backend.epsilon()``: Keras adds it to the norm in MaxNorm and UnitNorm.
KERAS_EPSILON = 1e-7

Axis = int | tuple[int, ...] | None


def _check_axis(axis: object, owner: str) -> tuple[int, ...] | None:
    if axis is None:
        return None
    items = (axis,) if isinstance(axis, numbers.Integral) else axis
    if (
        not isinstance(items, tuple | list)
        or not items
        or not all(isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in items)
    ):
        raise fail(owner, "axis", "None (per output unit), an int or a tuple of ints", axis)
    if len(set(items)) < len(items):
        raise fail(owner, "axis", "distinct dims (each at most once)", tuple(items))
    return tuple(int(a) for a in items)


class Constraint:
    """Base class: applies :meth:`project_` to each selected parameter, in place, under ``no_grad``.

    Subclasses implement ``project_(param)``, the in-place projection of one tensor
    (callable on its own, under ``no_grad``).

    Args:
        selector: which parameters to constrain; default ``Selector()`` (weights with
            ``ndim >= 2`` outside normalization layers).
    """

    def __init__(self, selector: Selector | None = None):
        if selector is not None and not isinstance(selector, Selector):
            raise fail(type(self).__name__, "selector", "a reglab.selectors.Selector or None", selector)
        self.selector = selector if selector is not None else Selector()

    def __call__(self, module: nn.Module) -> None:
        selected = self.check(module)  # every tensor first: never leave a model half-projected
        with torch.no_grad():
            for _, param in selected:
                self.project_(param)

    def check(self, module: nn.Module) -> list[tuple[str, nn.Parameter]]:
        """The parameters this constraint projects in ``module``; raises, as a call would, when the
        selector picks none or an argument does not fit one (the Trainer asks before the first step).

        Example:
            >>> [name for name, _ in MaxNorm(3.0).check(nn.Linear(3, 2))]
            ['weight']
        """
        selected = self.selector.select(module, type(self).__name__)
        for name, param in selected:
            self._check(param, name)
        return selected

    def _check(self, param: torch.Tensor, name: str) -> None:
        pass

    def project_(self, param: torch.Tensor) -> None:
        raise NotImplementedError

    def describe(self, module: nn.Module) -> Selection:
        """What this constraint touches in ``module``, printable.

        Example:
            >>> print(NonNeg().describe(nn.Linear(3, 2)))
            NonNeg constrains 1 tensor, 6 parameters: weight (skipped: bias)
        """
        return self.selector.describe(module, label=f"{type(self).__name__} constrains")


class _NormConstraint(Constraint):
    def __init__(self, axis: Axis = None, selector: Selector | None = None):
        super().__init__(selector)
        self.axis = _check_axis(axis, type(self).__name__)

    def _check(self, param: torch.Tensor, name: str) -> None:
        if self.axis is not None and (
            any(not -param.ndim <= d < param.ndim for d in self.axis)
            or len({d % param.ndim for d in self.axis}) < len(self.axis)  # (1, -1) on a matrix: one dim twice
        ):
            raise fail(
                type(self).__name__,
                "axis",
                f"distinct dims of every selected parameter ({name} has {param.ndim})",
                self.axis if len(self.axis) > 1 else self.axis[0],
            )

    def _norms(self, param: torch.Tensor) -> torch.Tensor:
        dims = self.axis if self.axis is not None else (tuple(range(1, param.ndim)) or (0,))
        return torch.linalg.vector_norm(param, dim=dims, keepdim=True)

    def _scale_(self, param: torch.Tensor, norms: torch.Tensor) -> None:
        raise NotImplementedError

    def project_(self, param: torch.Tensor) -> None:
        self._scale_(param, self._norms(param))

    def __call__(self, module: nn.Module) -> None:
        selected = self.check(module)
        # A transposed conv's output channels are its weight's dim 1 (per group), not dim 0.
        transposed = {
            id(m.weight): m.groups
            for m in module.modules()
            if isinstance(m, nn.modules.conv._ConvTransposeNd) and isinstance(m.weight, torch.Tensor)
        }
        with torch.no_grad():
            for _, param in selected:
                groups = transposed.get(id(param)) if self.axis is None else None
                if groups is None:
                    self.project_(param)
                else:
                    units = param.unflatten(0, (groups, -1))  # a view for any strides
                    dims = (1, *range(3, units.ndim))
                    self._scale_(units, torch.linalg.vector_norm(units, dim=dims, keepdim=True))


class MaxNorm(_NormConstraint):
    """Rescale each unit's weight vector whose L2 norm exceeds ``c`` back to norm ``c``.

    Keras's exact formula, ``w * clip(norm, 0, c) / (eps + norm)`` with
    ``eps = 1e-7``: vectors already inside the ball are multiplied by
    ``norm / (norm + 1e-7)``, i.e. left alone up to a relative 1e-7.

    Args:
        c: the largest allowed norm (Keras ``max_value``, default 2; the dropout
            paper used 3 to 4).
        axis: dims the norm is taken over, in PyTorch's layout; ``None`` = per
            output unit (see the module docstring for Keras's ``axis``).
        selector: which parameters to constrain.

    Example:
        >>> layer = nn.Linear(3, 2)
        >>> with torch.no_grad():
        ...     _ = layer.weight.fill_(10.0)
        >>> MaxNorm(1.0)(layer)
        >>> [round(n, 6) for n in torch.linalg.vector_norm(layer.weight, dim=1).tolist()]
        [1.0, 1.0]
    """

    def __init__(self, c: float = 2.0, axis: Axis = None, selector: Selector | None = None):
        super().__init__(axis, selector)
        self.c = check_scalar(c, "c", owner="MaxNorm", interval=Interval(0, None, closed="neither"))

    def _scale_(self, param: torch.Tensor, norms: torch.Tensor) -> None:
        param.mul_(norms.clamp(0.0, self.c) / (KERAS_EPSILON + norms))

    def __repr__(self) -> str:
        return f"MaxNorm(c={self.c}, axis={self.axis})"


class UnitNorm(_NormConstraint):
    """Scale each unit's weight vector to unit L2 norm: Keras's ``w / (eps + norm)``, ``eps = 1e-7``.

    Example:
        >>> layer = nn.Linear(3, 2)
        >>> UnitNorm()(layer)
        >>> torch.linalg.vector_norm(layer.weight, dim=1).allclose(torch.ones(2))
        True
    """

    def _scale_(self, param: torch.Tensor, norms: torch.Tensor) -> None:
        param.div_(KERAS_EPSILON + norms)

    def __repr__(self) -> str:
        return f"UnitNorm(axis={self.axis})"


class NonNeg(Constraint):
    """Set negative weights to zero (Keras ``NonNeg``).

    Example:
        >>> layer = nn.Linear(4, 4)
        >>> NonNeg()(layer)
        >>> bool((layer.weight >= 0).all())
        True
    """

    def project_(self, param: torch.Tensor) -> None:
        param.clamp_(min=0.0)

    def __repr__(self) -> str:
        return "NonNeg()"
