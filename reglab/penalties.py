"""Weight penalties added to the loss: L1, L2, elastic net, group lasso.

One convention, Keras's: ``L1(a)`` is ``a·Σ|w|``, ``L2(b)`` is ``b·Σw²`` (not
``b/2``), summed over the parameters chosen by a :class:`~reglab.selectors.Selector`
and added to the *mean* data loss. ``ElasticNet`` is ``L1 + L2``; any two penalties
add into a :class:`Sum`. Every penalty also has ``prox_(param, lr)``, the proximal
operator of ``lr * penalty`` applied in place, used by :func:`reglab.optim.proximal`
to produce exact zeros. Conversions from other frameworks' conventions are
classmethods (``ElasticNet.from_sklearn``, ``L2.from_weight_decay``, ...); see
``docs/conventions.md``.

References:
    Tibshirani, "Regression shrinkage and selection via the lasso", JRSS-B 1996.
    Zou & Hastie, "Regularization and variable selection via the elastic net", JRSS-B 2005.
    Yuan & Lin, "Model selection and estimation in regression with grouped variables", JRSS-B 2006.
    Parikh & Boyd, "Proximal algorithms", 2014 (the proximal operators below).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor, nn

from reglab import conventions as conv
from reglab._validation import Interval, check_bool, check_scalar, fail
from reglab.selectors import REVALIDATE_EVERY, Selection, Selector, invalidate, structure_version

__all__ = ["Penalty", "L1", "L2", "ElasticNet", "GroupLasso", "Sum", "Attached", "attach", "attached"]

_STRENGTH = Interval(0, math.inf, closed="left")
_ATTR = "_reglab_penalties"


def _selector(selector: Selector | None, owner: str) -> Selector:
    if selector is None:
        return Selector()
    if not isinstance(selector, Selector):
        raise fail(owner, "selector", "a reglab.Selector or None", selector)
    return selector


Target = nn.Module | Sequence[Tensor]
#: One penalty's gradient ``(params, terms, scale)``: d(penalty)/dw is ``scale * term`` for each
#: tensor (fresh tensors, no autograd). A scale other than 1 must multiply exactly (L1's signs), so
#: that adding it with ``alpha=scale`` (one fused pass) rounds as autograd's two steps do.
Part = tuple[Sequence[Tensor], list[Tensor], float]


class Penalty:
    """Base class: a penalty over the parameters its selector picks.

    Two ways to train with a penalty, with the same gradients: add ``penalty(model)``
    to the loss (autograd differentiates it), or call :meth:`add_grad_` after the data
    loss's ``backward()``, which adds ``d(penalty)/dw`` to each selected ``.grad`` in
    place with a few ``torch._foreach_*`` calls, like optax's ``add_decayed_weights``.
    The second is what :class:`reglab.Trainer` does: it builds no autograd graph for
    the penalty, so it costs less per step.

    Subclasses implement :meth:`value` (of a module's selection or of a list of tensors)
    and :meth:`prox_`, and may implement ``_grad(params)`` (the gradient by hand);
    without it :meth:`add_grad_` asks autograd for ``value``'s gradient.
    """

    selector: Selector

    @property
    def _owner(self) -> str:
        """The name errors about this penalty's selection blame (the term's own class by default)."""
        return self.__dict__.get("_owner_name", type(self).__name__)

    @_owner.setter
    def _owner(self, name: str) -> None:
        self.__dict__["_owner_name"] = name

    def value(self, target: Target) -> Tensor:
        """The penalty of a module's selected parameters, or of a list of tensors (no selection).

        Differentiable; wrap it in ``torch.no_grad()`` to log it.
        """
        raise NotImplementedError

    def _params(self, target: Target) -> Sequence[Tensor]:
        if isinstance(target, nn.Module):
            return self.selector.parameters(target, self._owner)
        return _flat(target)

    def prox_(self, param: Tensor, lr: float) -> Tensor:
        """Apply the proximal operator of ``lr * penalty`` to ``param`` in place and return it."""
        raise NotImplementedError

    def prox_all_(self, params: Sequence[Tensor], lr: float) -> None:
        """:meth:`prox_` on each tensor (subclasses fuse it with ``torch._foreach_*``)."""
        for p in params:
            self.prox_(p, lr)

    def parameters(self, module: nn.Module) -> list[nn.Parameter]:
        """The parameters of ``module`` this penalty applies to (raises if none)."""
        return list(self.selector.parameters(module, self._owner))

    def __call__(self, module: nn.Module) -> Tensor:
        return self.value(self.parameters(module))

    def _grad(self, params: Sequence[Tensor]) -> list[Tensor]:
        # Fallback for penalties without a hand-written gradient: autograd on detached leaves,
        # so the caller's graph and .grad are untouched.
        with torch.enable_grad():
            leaves = [p.detach().requires_grad_() for p in params]
            return list(torch.autograd.grad(self.value(leaves), leaves, materialize_grads=True))

    def _grad_part(self, params: Sequence[Tensor]) -> Part:
        return params, self._grad(params), 1.0

    def _grad_part_value(self, params: Sequence[Tensor]) -> tuple[Part, Tensor]:
        """The gradient part and the value; subclasses reuse the part's work for the value."""
        return self._grad_part(params), self.value(params)

    def _grad_parts(self, module: nn.Module, values: list[Tensor] | None = None) -> list[Part]:
        params = self.selector.parameters(module, self._owner)
        if values is None:
            return [self._grad_part(params)]
        part, value = self._grad_part_value(params)
        values.append(value)
        return [part]

    def add_grad_(self, module: nn.Module, *, return_value: bool = False) -> Tensor | None:
        """Add ``d(penalty(module))/dw`` to the ``.grad`` of each selected parameter, in place.

        After ``loss.backward()``, the gradients equal those of
        ``(loss + penalty(module)).backward()`` (bit for bit in float64 for L1, L2 and
        GroupLasso; to a few ulps for ElasticNet, whose fused path saves a pass, see
        :meth:`ElasticNet.add_grad_`). A ``.grad`` that is ``None`` is set; parameters with
        ``requires_grad=False`` are skipped, as autograd would. With ``return_value=True``
        it also returns ``penalty(module)`` (detached), computed from the same pass where it
        can be (L1's value from the signs of its gradient): cheaper than a separate
        ``penalty.value(module)`` when a caller needs both on the same step.

        Example:
            >>> layer = nn.Linear(2, 1)
            >>> with torch.no_grad():
            ...     _ = layer.weight.copy_(torch.tensor([[3.0, -4.0]]))
            >>> layer(torch.ones(1, 2)).sum().backward()
            >>> L1(0.5).add_grad_(layer, return_value=True)
            tensor(3.5000)
            >>> layer.weight.grad
            tensor([[1.5000, 0.5000]])
        """
        with torch.no_grad():
            values: list[Tensor] | None = [] if return_value else None
            _add_to_grads_(*_merge(self._grad_parts(module, values)))
            if values is None:
                return None
            if len(values) == 1:
                return values[0]
            if values:
                return torch.stack(values).sum()
            return _zero_like_params(module)

    def describe(self, module: nn.Module) -> Selection:
        """What this penalty touches, e.g. ``L2 regularizes 3 tensors, 14,100 parameters: ...``."""
        return self.selector.describe(module, label=f"{type(self).__name__} regularizes", owner=self._owner)

    def leaves(self) -> tuple[Penalty, ...]:
        """The single-kind penalties this one is made of (itself unless it is a :class:`Sum`)."""
        return (self,)

    def __add__(self, other: Penalty) -> Sum:
        if not isinstance(other, Penalty):
            return NotImplemented
        return Sum((self, other))

    def __radd__(self, other: object) -> Penalty:
        # sum([p1, p2]) starts from 0.
        if isinstance(other, int) and other == 0:
            return self
        return NotImplemented


def _zero_like_params(module: nn.Module) -> Tensor:
    """A zero penalty with the dtype and device of the module's parameters."""
    first = next(module.parameters(), None)
    if first is None:
        return torch.zeros(())
    return torch.zeros((), dtype=first.dtype, device=first.device)


def _flat(params: Sequence[Tensor]) -> list[Tensor]:
    if not params:
        raise fail("Penalty.value", "params", "a non-empty list of tensors", list(params))
    return list(params)


_LOW = (torch.float16, torch.bfloat16)


def _wide(t: Tensor) -> Tensor:
    """``t`` in float32 when it is float16 / bfloat16, else itself.

    A penalty's sums run in float32 for half-precision weights and the value is rounded once at the
    end: float16 sums overflow past 65504, so L2(1e-4) of a 300 x 300 N(0, 1) weight was inf where
    the value, 9.0, is a float16 number.
    """
    return t.float() if t.dtype in _LOW else t


def _narrow(value: Tensor, like: Tensor) -> Tensor:
    """A value computed by way of :func:`_wide`, back in the weights' dtype."""
    return value.to(like.dtype) if like.dtype in _LOW else value


def _scaled(part: Part) -> list[Tensor]:
    _, terms, scale = part
    if scale != 1.0:
        torch._foreach_mul_(terms, scale)
    return terms


def _merge(parts: list[Part]) -> Part:
    """One gradient term per distinct tensor, summing the parts' terms."""
    if len(parts) == 1:
        return parts[0]
    if not parts:  # Attached() on a model with nothing attached
        return (), [], 1.0
    first = parts[0][0]
    if all(params is first for params, _, _ in parts):  # one cached selection (ElasticNet): fused sums
        # Start from an unscaled part and add the others with alpha=scale (exact, see Part).
        base = next((i for i, part in enumerate(parts) if part[2] == 1.0), 0)
        total = _scaled(parts[base])
        for i, (_, terms, scale) in enumerate(parts):
            if i != base:
                torch._foreach_add_(total, terms, alpha=scale)
        return first, total, 1.0
    merged: dict[int, list[Tensor]] = {}
    for part in parts:
        for p, t in zip(part[0], _scaled(part)):
            slot = merged.get(id(p))
            if slot is None:
                merged[id(p)] = [p, t]
            else:
                slot[1] = slot[1] + t
    return tuple(p for p, _ in merged.values()), [t for _, t in merged.values()], 1.0


def _add_to_grads_(params: Sequence[Tensor], terms: list[Tensor], scale: float) -> None:
    """``p.grad += scale * term`` for each pair, as autograd accumulates (``None`` grads are set)."""
    if not params:
        return
    if all(p.grad is not None and p.requires_grad and p.grad.layout == torch.strided for p in params):
        torch._foreach_add_([p.grad for p in params], terms, alpha=scale)
        return
    terms = _scaled((params, terms, scale))
    for p, t in zip(params, terms):
        if not p.requires_grad:
            continue
        if p.grad is None:
            p.grad = t
        elif p.grad.layout != torch.strided:  # sparse (Embedding(sparse=True)): the sum is dense
            p.grad = t + p.grad  # torch adds a sparse tensor to a dense one, not the other way round
        else:
            p.grad.add_(t)


def soft_threshold_(params: Sequence[Tensor], threshold: float) -> None:
    """``w <- sign(w)·max(|w| - threshold, 0)`` on every tensor, in place (exact zeros).

    Written with ``torch._foreach_*`` because ``torch.nn.functional.softshrink`` is
    neither in place nor fused over a list of tensors.

    Example:
        >>> w = torch.tensor([-2.0, 0.5, 3.0])
        >>> soft_threshold_([w], 1.0)
        >>> w
        tensor([-1.,  0.,  2.])
    """
    with torch.no_grad():
        params = list(params)
        signs = torch._foreach_sign(params)
        torch._foreach_abs_(params)
        torch._foreach_sub_(params, threshold)
        torch._foreach_clamp_min_(params, 0.0)
        torch._foreach_mul_(params, signs)


def _group_soft_threshold_(param: Tensor, threshold: float) -> None:
    """Shrink each slice ``param[i]`` towards 0 by ``threshold`` in L2 norm (exact zero slices)."""
    with torch.no_grad():
        rows = param.view(param.shape[0], -1) if param.ndim else param.view(1, 1)
        norms = torch.linalg.vector_norm(rows, dim=1, keepdim=True)
        # max(1 - t/||g||, 0) with ||g|| = 0 giving 0 rather than nan.
        scale = torch.clamp_min(1 - threshold / norms.clamp_min(torch.finfo(param.dtype).tiny), 0.0)
        rows.mul_(scale)


class L1(Penalty):
    """Lasso penalty ``strength · Σ|w|`` (Keras ``L1``); its proximal step is soft-thresholding.

    Args:
        strength: ``l1`` in the Keras formula, ``>= 0``.
        selector: which parameters (default: weights, not biases or norms).

    Example:
        >>> from reglab.models import MLP
        >>> model = MLP(4, 2, hidden=(3,))
        >>> penalty = L1(1e-4)
        >>> penalty(model).shape
        torch.Size([])
        >>> print(penalty.describe(model.out))
        L1 regularizes 1 tensor, 6 parameters: weight (skipped: bias)
    """

    def __init__(self, strength: float, *, selector: Selector | None = None):
        self.strength = check_scalar(strength, "strength", owner=type(self).__name__, interval=_STRENGTH)
        self.selector = _selector(selector, type(self).__name__)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.strength!r})"

    def value(self, target: Target) -> Tensor:
        # abs().sum() per tensor: on CPU about 1.5x faster than _foreach_norm(params, 1), same gradient.
        params = self._params(target)
        return _narrow(self.strength * torch.stack([_wide(p).abs().sum() for p in params]).sum(), params[0])

    def _grad_part(self, params: Sequence[Tensor]) -> Part:
        # strength·sign(w): autograd's gradient of |w| is sign(w), 0 at 0, and ±strength is exact.
        return params, list(torch._foreach_sign(params)), self.strength

    def _grad_part_value(self, params: Sequence[Tensor]) -> tuple[Part, Tensor]:
        # Σ|w| = Σ w·sign(w): one dot product per tensor over the signs the gradient needs anyway,
        # instead of an abs() copy and a sum.
        part = self._grad_part(params)
        dots = [torch.dot(_wide(p).reshape(-1), _wide(s).reshape(-1)) for p, s in zip(params, part[1])]
        value = self.strength * (dots[0] if len(dots) == 1 else torch.stack(dots).sum())
        return part, _narrow(value, params[0])

    def prox_(self, param: Tensor, lr: float) -> Tensor:
        soft_threshold_([param], lr * self.strength)
        return param

    def prox_all_(self, params: Sequence[Tensor], lr: float) -> None:
        soft_threshold_(params, lr * self.strength)

    @classmethod
    def from_keras(cls, l1: float, *, selector: Selector | None = None) -> L1:
        """Keras ``L1(l1)`` (``l1·Σ|w|``, reglab's own convention): ``L1(l1)``.

        Example:
            >>> L1.from_keras(0.01).to_keras()
            {'l1': 0.01}
        """
        return cls(conv.from_keras(l1=l1).l1, selector=selector)

    def to_keras(self) -> dict[str, float]:
        """Keras ``L1`` keyword arguments: ``{"l1": strength}``."""
        return {"l1": self.strength}

    @classmethod
    def from_sklearn(cls, alpha: float, *, selector: Selector | None = None) -> L1:
        """scikit-learn ``Lasso(alpha)`` with the loss ``0.5 * MSE``: ``L1(alpha)``.

        Example:
            >>> L1.from_sklearn(0.5)
            L1(0.5)
        """
        return cls(conv.from_sklearn_lasso(alpha).l1, selector=selector)

    def to_sklearn(self) -> dict[str, float]:
        """Keyword arguments for scikit-learn's ``Lasso``: ``{"alpha": strength}``."""
        return conv.to_sklearn_lasso(self.strength, 0.0)

    def to_glmnet(self) -> dict[str, float]:
        """glmnet ``(lambda_, alpha=1)``."""
        return conv.to_glmnet(self.strength, 0.0)

    def to_weight_decay(self) -> float:
        """Always raises: PyTorch's ``weight_decay`` cannot express an L1 penalty."""
        return conv.to_weight_decay(self.strength, 0.0)


class L2(Penalty):
    """Ridge penalty ``strength · Σw²`` (Keras ``L2``; PyTorch's ``weight_decay=wd`` is ``L2(wd/2)``).

    Its proximal step is the scaling ``w <- w / (1 + 2·lr·strength)``.

    Args:
        strength: ``l2`` in the Keras formula, ``>= 0``.
        selector: which parameters (default: weights, not biases or norms).

    Example:
        >>> layer = nn.Linear(2, 1)
        >>> with torch.no_grad():
        ...     _ = layer.weight.copy_(torch.tensor([[3.0, 4.0]]))
        >>> L2(0.1)(layer)
        tensor(2.5000, grad_fn=<MulBackward0>)
    """

    def __init__(self, strength: float, *, selector: Selector | None = None):
        self.strength = check_scalar(strength, "strength", owner=type(self).__name__, interval=_STRENGTH)
        self.selector = _selector(selector, type(self).__name__)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.strength!r})"

    def value(self, target: Target) -> Tensor:
        # One dot product of the flattened weights: faster than squaring per-tensor norms, and its
        # gradient is exactly 2·strength·w, so L2(wd/2) matches SGD's weight_decay bit for bit.
        params = self._params(target)
        flat = _wide(torch.cat([p.reshape(-1) for p in params]))
        return _narrow(self.strength * torch.dot(flat, flat), params[0])

    def _grad(self, params: Sequence[Tensor]) -> list[Tensor]:
        # A separate multiply, not add_(w, alpha=2s): that one fuses (FMA) and rounds differently
        # from autograd, whose strength·w + strength·w is exactly (2·strength)·w.
        return list(torch._foreach_mul(params, 2 * self.strength))

    def prox_(self, param: Tensor, lr: float) -> Tensor:
        with torch.no_grad():
            return param.div_(1 + 2 * lr * self.strength)

    def prox_all_(self, params: Sequence[Tensor], lr: float) -> None:
        with torch.no_grad():
            torch._foreach_div_(list(params), 1 + 2 * lr * self.strength)

    @classmethod
    def from_keras(cls, l2: float, *, selector: Selector | None = None) -> L2:
        """Keras ``L2(l2)`` (``l2·Σw²``, no ½: reglab's own convention): ``L2(l2)``.

        Example:
            >>> L2.from_keras(0.01).to_keras()
            {'l2': 0.01}
        """
        return cls(conv.from_keras(l2=l2).l2, selector=selector)

    def to_keras(self) -> dict[str, float]:
        """Keras ``L2`` keyword arguments: ``{"l2": strength}``."""
        return {"l2": self.strength}

    @classmethod
    def from_weight_decay(cls, weight_decay: float, *, selector: Selector | None = None) -> L2:
        """The penalty equal to PyTorch's coupled ``weight_decay`` (SGD, Adam): ``L2(wd / 2)``.

        Example:
            >>> L2.from_weight_decay(1e-4)
            L2(5e-05)
        """
        return cls(conv.from_weight_decay(weight_decay).l2, selector=selector)

    @classmethod
    def from_ridge(cls, alpha: float, *, n_samples: int, selector: Selector | None = None) -> L2:
        """scikit-learn ``Ridge(alpha)`` on ``n_samples`` rows, with the loss ``0.5 * MSE``.

        Example:
            >>> L2.from_ridge(10.0, n_samples=100)
            L2(0.05)
        """
        return cls(conv.from_ridge(alpha, n_samples).l2, selector=selector)

    @classmethod
    def from_logistic_regression(cls, C: float, *, n_samples: int, selector: Selector | None = None) -> L2:
        """scikit-learn ``LogisticRegression(C)`` (L2) on ``n_samples`` rows, with the mean log-loss.

        Example:
            >>> L2.from_logistic_regression(1.0, n_samples=50)
            L2(0.01)
        """
        return cls(conv.from_logistic_regression(C, n_samples).l2, selector=selector)

    @classmethod
    def from_mlp(cls, alpha: float, *, n_samples: int, selector: Selector | None = None) -> L2:
        """scikit-learn ``MLPClassifier(alpha)``; ``n_samples`` is the batch size (sgd/adam).

        Example:
            >>> L2.from_mlp(1e-4, n_samples=200)
            L2(2.5e-07)
        """
        return cls(conv.from_mlp(alpha, n_samples).l2, selector=selector)

    def to_weight_decay(self) -> float:
        """PyTorch's coupled ``weight_decay``: ``2 · strength``."""
        return conv.to_weight_decay(0.0, self.strength)

    def to_sklearn(self) -> dict[str, float]:
        """scikit-learn ``ElasticNet`` keyword arguments (``l1_ratio=0``)."""
        return conv.to_sklearn_elastic_net(0.0, self.strength)

    def to_glmnet(self, *, y_std: float = 1.0) -> dict[str, float]:
        """glmnet ``(lambda_, alpha=0)``; ``y_std`` as in :meth:`ElasticNet.from_glmnet`."""
        return conv.to_glmnet(0.0, self.strength, y_std=y_std)

    def to_ridge(self, *, n_samples: int) -> dict[str, float]:
        """scikit-learn ``Ridge`` keyword arguments for ``n_samples`` rows."""
        return conv.to_ridge(0.0, self.strength, n_samples)

    def to_logistic_regression(self, *, n_samples: int) -> dict[str, float]:
        """scikit-learn ``LogisticRegression`` keyword arguments for ``n_samples`` rows."""
        return conv.to_logistic_regression(0.0, self.strength, n_samples)

    def to_mlp(self, *, n_samples: int) -> dict[str, float]:
        """scikit-learn ``MLPClassifier`` ``alpha`` for batches of ``n_samples``."""
        return conv.to_mlp(0.0, self.strength, n_samples)


class GroupLasso(Penalty):
    """Group lasso ``strength · Σ_g c_g·‖w_g‖₂`` over units: the slices ``w[i]`` of each weight.

    A unit's group is its incoming weights: a row of a Linear weight ``(out, in)``, an
    output channel of a Conv weight ``(out, in, *k)``, a row of an Embedding. A ConvTranspose
    weight is laid out ``(in, out / groups, *k)``, so there a slice is an *input* channel's
    outgoing weights, and the penalty prunes input channels (unlike ``MaxNorm``, which finds
    the output channels of a transposed convolution from its module). With
    ``size_scaled=True``, ``c_g = sqrt(group size)`` as in Yuan & Lin (2006), so that
    layers with more inputs per unit are not favoured; otherwise ``c_g = 1``. The
    proximal step shrinks each group's norm by ``lr·strength·c_g`` and zeroes whole
    units (structured sparsity).

    Example:
        >>> layer = nn.Linear(2, 2, bias=False)
        >>> with torch.no_grad():
        ...     _ = layer.weight.copy_(torch.tensor([[3.0, 4.0], [0.0, 1.0]]))
        >>> GroupLasso(0.5)(layer)
        tensor(3., grad_fn=<MulBackward0>)
    """

    def __init__(self, strength: float, *, size_scaled: bool = False, selector: Selector | None = None):
        self.strength = check_scalar(strength, "strength", owner="GroupLasso", interval=_STRENGTH)
        self.size_scaled = check_bool(size_scaled, "size_scaled", owner="GroupLasso")
        self.selector = _selector(selector, "GroupLasso")

    def __repr__(self) -> str:
        return f"GroupLasso({self.strength!r}{', size_scaled=True' if self.size_scaled else ''})"

    def _weight(self, param: Tensor) -> float:
        return math.sqrt(param[0].numel()) if self.size_scaled and param.ndim else 1.0

    def value(self, target: Target) -> Tensor:
        # One reduction per tensor: groups of different tensors have different sizes.
        params = self._params(target)
        terms = [
            self._weight(p) * torch.linalg.vector_norm(_wide(p).reshape(p.shape[0], -1), dim=1).sum()
            for p in params
        ]
        return _narrow(self.strength * torch.stack(terms).sum(), params[0])

    def _grad(self, params: Sequence[Tensor]) -> list[Tensor]:
        out = []
        for p in params:
            rows = p.reshape(p.shape[0], -1)
            norms = torch.linalg.vector_norm(rows, dim=1, keepdim=True)
            # Autograd's formula for the norm's gradient, (w / ||w||)·g with 0 for a zero group.
            unit = (rows / norms).masked_fill_(norms == 0, 0.0)
            out.append(unit.mul_(self.strength * self._weight(p)).view_as(p))
        return out

    def prox_(self, param: Tensor, lr: float) -> Tensor:
        _group_soft_threshold_(param, lr * self.strength * self._weight(param))
        return param


class Sum(Penalty):
    """The sum of penalties, each over its own selection; built by ``p1 + p2``.

    ``prox_`` is exact for any mix of L1, GroupLasso and L2 on the same tensor: it merges
    terms of the same kind and applies soft-thresholding, then group soft-thresholding,
    then the L2 scaling (the proximal operator of the sparse group elastic net factors in
    that order). Other penalty types are applied after, in order (an approximation).

    Example:
        >>> p = L1(1e-3) + L2(1e-4)
        >>> p
        Sum(L1(0.001), L2(0.0001))
    """

    def __init__(self, terms: Iterable[Penalty]):
        flat: list[Penalty] = []
        for t in terms:
            if not isinstance(t, Penalty):
                raise fail("Sum", "terms", "reglab penalties", t)
            flat += t.leaves()
        if not flat:
            raise fail("Sum", "terms", "at least one penalty", [])
        self.terms = tuple(flat)

    def __repr__(self) -> str:
        return f"Sum({', '.join(map(repr, self.terms))})"

    def leaves(self) -> tuple[Penalty, ...]:
        return self.terms

    def __call__(self, module: nn.Module) -> Tensor:
        return self.value(module)

    def value(self, target: Target) -> Tensor:
        return torch.stack([t.value(target) for t in self.terms]).sum()

    def _grad_parts(self, module: nn.Module, values: list[Tensor] | None = None) -> list[Part]:
        return [part for t in self.terms for part in t._grad_parts(module, values)]

    def describe(self, module: nn.Module) -> Selection:
        parts = [t.describe(module) for t in self.terms]
        names = tuple(dict.fromkeys(n for s in parts for n in s.names))
        numel = {n: k for s in parts for n, k in zip(s.names, s.numels)}
        label = f"{' + '.join(type(t).__name__ for t in self.terms)} regularizes"
        return Selection(label, names, tuple(numel[n] for n in names))

    def _merged(self, param: Tensor) -> tuple[float, float, float, list[Penalty]]:
        l1 = sum(t.strength for t in self.terms if type(t) is L1)
        l2 = sum(t.strength for t in self.terms if type(t) is L2)
        group = sum(t.strength * t._weight(param) for t in self.terms if type(t) is GroupLasso)
        other = [t for t in self.terms if type(t) not in (L1, L2, GroupLasso)]
        return l1, group, l2, other

    def prox_(self, param: Tensor, lr: float) -> Tensor:
        l1, group, l2, other = self._merged(param)
        if l1:
            soft_threshold_([param], lr * l1)
        if group:
            _group_soft_threshold_(param, lr * group)
        if l2:
            with torch.no_grad():
                param.div_(1 + 2 * lr * l2)
        for t in other:
            t.prox_(param, lr)
        return param


class ElasticNet(Sum):
    """Elastic net ``l1·Σ|w| + l2·Σw²`` (Keras ``L1L2``): ``L1(l1) + L2(l2)`` on one selection.

    Args:
        l1: the L1 strength, ``>= 0``.
        l2: the L2 strength (of ``Σw²``, not ``Σw²/2``), ``>= 0``.
        selector: which parameters (default: weights, not biases or norms).

    Example:
        >>> ElasticNet(l1=1e-3, l2=1e-4)
        ElasticNet(l1=0.001, l2=0.0001)
        >>> ElasticNet.from_sklearn(alpha=1.0, l1_ratio=0.5).to_sklearn()
        {'alpha': 1.0, 'l1_ratio': 0.5}
    """

    def __init__(self, l1: float = 0.0, l2: float = 0.0, *, selector: Selector | None = None):
        l1 = check_scalar(l1, "l1", owner="ElasticNet", interval=_STRENGTH)
        l2 = check_scalar(l2, "l2", owner="ElasticNet", interval=_STRENGTH)
        selector = _selector(selector, "ElasticNet")
        self.selector = selector
        super().__init__((L1(l1, selector=selector), L2(l2, selector=selector)))
        for term in self.terms:
            term._owner = "ElasticNet"  # an empty selection is ElasticNet's selector's fault

    @property
    def l1(self) -> float:
        return self.terms[0].strength

    @property
    def l2(self) -> float:
        return self.terms[1].strength

    def __repr__(self) -> str:
        return f"ElasticNet(l1={self.l1!r}, l2={self.l2!r})"

    def describe(self, module: nn.Module) -> Selection:
        return self.selector.describe(module, label="ElasticNet regularizes", owner="ElasticNet")

    def add_grad_(self, module: nn.Module, *, return_value: bool = False) -> Tensor | None:
        """Add ``l1·sign(w) + 2·l2·w`` to each selected ``.grad`` (see :meth:`Penalty.add_grad_`).

        Three passes, not the four that reproduce autograd's rounding: the signs, then
        ``grad += l1·sign(w)`` (exact product), then ``grad += 2·l2·w`` as one fused multiply-add.
        autograd rounds ``2·l2·w`` and ``l1·sign(w) + 2·l2·w`` before adding them to ``.grad``;
        this path rounds ``grad + l1·sign(w)`` instead, so an element can differ from autograd's in
        its last bit or two (a few ulps of the largest of the three terms, never more). The pass
        saved is a quarter of the penalty's cost (benchmarks/penalty_overhead.py). With ``l1`` or
        ``l2`` at 0, with a ``.grad`` that is ``None`` or sparse, or inside a :class:`Sum`, the
        gradient is autograd's bit for bit.

        Example:
            >>> layer = nn.Linear(2, 1)
            >>> with torch.no_grad():
            ...     _ = layer.weight.copy_(torch.tensor([[3.0, -4.0]]))
            >>> layer(torch.ones(1, 2)).sum().backward()
            >>> ElasticNet(l1=0.5, l2=0.25).add_grad_(layer, return_value=True)
            tensor(9.7500)
            >>> layer.weight.grad
            tensor([[ 3.0000, -1.5000]])
        """
        params = self.selector.parameters(module, "ElasticNet")
        l1, l2 = self.l1, self.l2
        ready = all(p.grad is not None and p.requires_grad and p.grad.layout == torch.strided for p in params)
        if l1 == 0.0 or l2 == 0.0 or not ready:
            return super().add_grad_(module, return_value=return_value)
        with torch.no_grad():
            grads = [p.grad for p in params]
            signs = torch._foreach_sign(params)
            torch._foreach_add_(grads, signs, alpha=l1)
            torch._foreach_add_(grads, params, alpha=2 * l2)  # fused: a pass fewer than mul, then add
            if not return_value:
                return None
            # Σ|w| = Σ w·sign(w) over the signs already drawn (as L1's value path); L2's own value.
            dots = [torch.dot(_wide(p).reshape(-1), _wide(s).reshape(-1)) for p, s in zip(params, signs)]
            return _narrow(l1 * torch.stack(dots).sum(), params[0]) + self.terms[1].value(params)

    @classmethod
    def from_keras(cls, l1: float = 0.0, l2: float = 0.0, *, selector: Selector | None = None) -> ElasticNet:
        """Keras ``L1L2(l1, l2)``: the same numbers."""
        return cls(*conv.from_keras(l1, l2), selector=selector)

    @classmethod
    def from_sklearn(
        cls, alpha: float, l1_ratio: float = 0.5, *, selector: Selector | None = None
    ) -> ElasticNet:
        """scikit-learn ``ElasticNet(alpha, l1_ratio)`` with the loss ``0.5 * MSE``.

        ``l1 = alpha·l1_ratio``, ``l2 = alpha·(1 - l1_ratio)/2``.
        """
        return cls(*conv.from_sklearn_elastic_net(alpha, l1_ratio), selector=selector)

    @classmethod
    def from_glmnet(
        cls, lambda_: float, alpha: float = 1.0, *, y_std: float = 1.0, selector: Selector | None = None
    ) -> ElasticNet:
        """glmnet ``(lambda, alpha)``: ``l1 = λ·α``, ``l2 = λ·(1 - α)/(2·y_std)``.

        ``y_std``: the 1/n standard deviation of ``y`` for glmnet's gaussian family, which
        scales ``y`` internally (see :func:`reglab.conventions.from_glmnet`); 1 for a
        standardized ``y`` or the binomial family.
        """
        return cls(*conv.from_glmnet(lambda_, alpha, y_std=y_std), selector=selector)

    @classmethod
    def from_logistic_regression(
        cls, C: float, *, n_samples: int, l1_ratio: float = 0.5, selector: Selector | None = None
    ) -> ElasticNet:
        """scikit-learn ``LogisticRegression(C, l1_ratio)`` on ``n_samples`` rows, mean log-loss."""
        return cls(*conv.from_logistic_regression(C, n_samples, l1_ratio), selector=selector)

    def to_keras(self) -> dict[str, float]:
        """Keras ``L1L2`` keyword arguments."""
        return {"l1": self.l1, "l2": self.l2}

    def to_sklearn(self) -> dict[str, float]:
        """scikit-learn ``ElasticNet`` keyword arguments ``{"alpha", "l1_ratio"}``."""
        return conv.to_sklearn_elastic_net(self.l1, self.l2)

    def to_glmnet(self, *, y_std: float = 1.0) -> dict[str, float]:
        """glmnet ``{"lambda_", "alpha"}``; ``y_std`` as in :meth:`from_glmnet`."""
        return conv.to_glmnet(self.l1, self.l2, y_std=y_std)

    def to_weight_decay(self) -> float:
        """PyTorch's coupled ``weight_decay``; raises unless ``l1 == 0``."""
        return conv.to_weight_decay(self.l1, self.l2)

    def to_logistic_regression(self, *, n_samples: int) -> dict[str, float]:
        """scikit-learn ``LogisticRegression`` ``{"C", "l1_ratio"}`` for ``n_samples`` rows."""
        return conv.to_logistic_regression(self.l1, self.l2, n_samples)


def attach(layer: nn.Module, penalty: Penalty) -> nn.Module:
    """Attach ``penalty`` to one layer, like Keras's ``kernel_regularizer``; returns the layer.

    The penalty applies to the layer's parameters picked by its selector (by default
    the weight, not the bias). :func:`attached` sums every attached penalty of a model;
    :class:`Attached` is the same sum as a penalty (with :meth:`~Penalty.add_grad_`).
    The attachment is a plain attribute, so it survives ``copy.deepcopy``.

    Example:
        >>> model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
        >>> _ = attach(model[0], L2(0.01))
        >>> attached(model).item() > 0
        True
    """
    if not isinstance(layer, nn.Module):
        raise fail("attach", "layer", "a torch.nn.Module", type(layer).__name__)
    if not isinstance(penalty, Penalty) or isinstance(penalty, Attached):
        raise fail("attach", "penalty", "a reglab penalty (L1, L2, ElasticNet, GroupLasso, ...)", penalty)
    for leaf in penalty.leaves():  # fail now, not at the first training step
        if not leaf.selector.partition(layer)[0]:
            names = ", ".join(n for n, _ in layer.named_parameters()) or "no parameters"
            allowed = f"a layer with a parameter that {leaf._owner}'s {leaf.selector!r} picks"
            raise fail("attach", "layer", allowed, f"{type(layer).__name__} with {names}")
    object.__setattr__(layer, _ATTR, (*getattr(layer, _ATTR, ()), penalty))
    invalidate()  # an attribute set no torch hook reports: cached attachment lists must be rebuilt
    return layer


class _Found:
    """A model's cached ``(layer, penalty)`` attachments (weak references to the layers)."""

    __slots__ = ("version", "calls", "pairs")

    def __init__(self, model: nn.Module):
        self.version, self.calls = structure_version(), 0
        self.pairs = tuple(
            (weakref.ref(sub), p) for sub in model.modules() for p in getattr(sub, _ATTR, ())
        )


_FOUND: weakref.WeakKeyDictionary[nn.Module, _Found] = weakref.WeakKeyDictionary()


class Attached(Penalty):
    """The penalties attached with :func:`attach` anywhere in a model, as one penalty.

    ``Attached()(model)`` equals :func:`attached`; ``Attached().add_grad_(model)`` adds
    their gradient. The list of attachments is cached per model under the same rule as
    :class:`~reglab.selectors.Selector` selections (see :mod:`reglab.selectors`).
    ``L1(1e-4) + Attached()`` is the whole penalty the Trainer applies.

    Example:
        >>> model = nn.Sequential(nn.Linear(2, 2, bias=False))
        >>> with torch.no_grad():
        ...     _ = model[0].weight.fill_(1.0)
        >>> Attached()(attach(model, L1(0.5)))
        tensor(2., grad_fn=<SumBackward0>)
        >>> [type(p).__name__ for _, p in Attached().pairs(model)]
        ['L1']
    """

    selector = None  # type: ignore[assignment]  # each attached penalty has its own

    def __repr__(self) -> str:
        return "Attached()"

    def pairs(self, model: nn.Module) -> list[tuple[nn.Module, Penalty]]:
        """The ``(layer, penalty)`` attachments found in ``model``, in ``model.modules()`` order."""
        if not isinstance(model, nn.Module):
            raise fail("Attached", "model", "a torch.nn.Module", type(model).__name__)
        found = _FOUND.get(model)
        if found is None or found.version != structure_version() or found.calls >= REVALIDATE_EVERY:
            found = _FOUND[model] = _Found(model)
        found.calls += 1
        out = [(ref(), p) for ref, p in found.pairs]
        if any(sub is None for sub, _ in out):  # a layer was dropped and freed: look again
            del _FOUND[model]
            return self.pairs(model)
        return out  # type: ignore[return-value]

    def value(self, target: Target) -> Tensor:
        if not isinstance(target, nn.Module):
            raise fail("Attached.value", "target", "a torch.nn.Module (attachments live on layers)", target)
        terms = [p(sub) for sub, p in self.pairs(target)]
        if terms:
            return torch.stack(terms).sum()
        return _zero_like_params(target)

    def __call__(self, module: nn.Module) -> Tensor:
        return self.value(module)

    def _grad_parts(self, module: nn.Module, values: list[Tensor] | None = None) -> list[Part]:
        return [part for sub, p in self.pairs(module) for part in p._grad_parts(sub, values)]

    def parameters(self, module: nn.Module) -> list[nn.Parameter]:
        merged = {id(p): p for sub, pen in self.pairs(module) for p in pen.parameters(sub)}
        return list(merged.values())

    def describe(self, module: nn.Module) -> Selection:
        names = {id(p): n for n, p in module.named_parameters()}
        params = self.parameters(module)
        return Selection(
            "Attached penalties regularize",
            tuple(names.get(id(p), "?") for p in params),
            tuple(p.numel() for p in params),
        )

    def prox_(self, param: Tensor, lr: float) -> Tensor:
        raise fail(
            "Attached", "prox_", "not called: attached penalties act through the gradient", "a call"
        )


def attached(model: nn.Module) -> Tensor:
    """The sum of the penalties attached with :func:`attach` anywhere in ``model`` (0 when none).

    Example:
        >>> attached(nn.Linear(2, 2))
        tensor(0.)
    """
    return Attached()(model)
