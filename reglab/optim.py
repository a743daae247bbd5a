"""The optimizer side of regularization: decay groups, proximal steps, sparsity.

Three ways to regularize with an optimizer, which are *not* the same thing:

* **Coupled weight decay** (``torch.optim.SGD``/``Adam`` ``weight_decay=wd``) adds
  ``wd·w`` to the gradient: exactly the penalty ``L2(wd/2)`` in the loss.
* **Decoupled weight decay** (``torch.optim.AdamW``) shrinks ``w <- w - lr·wd·w``
  outside Adam's adaptive scaling (Loshchilov & Hutter, 2019). Under Adam this is not
  an L2 penalty: every weight decays at the same relative rate, whatever its
  gradient history. :func:`param_groups` gives either kind of decay only to the
  selected weights.
* **Proximal steps** (:func:`proximal`) apply a penalty's proximal operator after the
  optimizer's step, so L1 and group lasso produce exact zeros, which subgradient
  descent on ``|w|`` never does.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from reglab._validation import Interval, check_scalar, fail
from reglab.penalties import Attached, Penalty, Sum
from reglab.selectors import Selector

__all__ = ["param_groups", "proximal", "ProximalOptimizer", "sparsity"]


def param_groups(
    model: nn.Module, weight_decay: float, selector: Selector | None = None
) -> list[dict[str, Any]]:
    """Torch parameter groups that decay only the selected weights (not biases or norms).

    The first group holds the selected parameters with ``weight_decay``; the second
    (omitted when empty) the rest with ``weight_decay=0``. Each group also lists the
    parameter ``names``. Pass them to any torch optimizer:

    * ``SGD``/``Adam`` (coupled): equivalent to ``L2.from_weight_decay(wd)`` in the loss.
    * ``AdamW`` (decoupled): ``w <- w - lr·wd·w`` each step, independent of Adam's
      moments; not equivalent to any penalty under Adam. PyTorch multiplies by ``lr``,
      so the decay follows the LR schedule.

    Example:
        >>> from reglab.models import MLP
        >>> groups = param_groups(MLP(4, 2, hidden=(3,)), weight_decay=0.01)
        >>> [(g["weight_decay"], g["names"]) for g in groups]
        [(0.01, ['hidden.0.linear.weight', 'out.weight']), (0.0, ['hidden.0.linear.bias', 'out.bias'])]
        >>> opt = torch.optim.AdamW(groups, lr=1e-3)
    """
    wd = check_scalar(
        weight_decay, "weight_decay", owner="param_groups", interval=Interval(0, math.inf, "left")
    )
    if selector is not None and not isinstance(selector, Selector):
        raise fail("param_groups", "selector", "a reglab.Selector or None", selector)
    selector = selector or Selector()
    selected = selector.select(model, "param_groups")  # raises when nothing would be decayed
    _, rest = selector.partition(model)
    groups = [{"params": [p for _, p in selected], "names": [n for n, _ in selected], "weight_decay": wd}]
    if rest:
        groups.append({"params": [p for _, p in rest], "names": [n for n, _ in rest], "weight_decay": 0.0})
    return groups


class ProximalOptimizer(torch.optim.Optimizer):
    """A torch optimizer followed by a penalty's proximal step; build it with :func:`proximal`.

    The wrapper shares the inner optimizer's ``param_groups``, ``state`` and
    ``defaults`` (the same objects), so an LR scheduler may be given either the
    wrapper or ``wrapper.optimizer``: both change the ``lr`` the proximal step reads.
    ``state_dict()``/``load_state_dict()`` are the inner optimizer's; the proximal step
    itself has no state.
    """

    # Optimizer.__init__ is deliberately not called: it would build param groups of its
    # own, and the point of the wrapper is to share the inner optimizer's.
    def __init__(self, optimizer: torch.optim.Optimizer, plan: list[tuple[int, Penalty, list[torch.Tensor]]]):
        self.optimizer = optimizer
        self._plan = plan
        self._optimizer_step_pre_hooks = {}
        self._optimizer_step_post_hooks = {}

    @property
    def param_groups(self) -> list[dict[str, Any]]:  # type: ignore[override]
        return self.optimizer.param_groups

    @param_groups.setter
    def param_groups(self, value: list[dict[str, Any]]) -> None:
        self.optimizer.param_groups = value

    @property
    def state(self) -> Any:  # type: ignore[override]
        return self.optimizer.state

    @property
    def defaults(self) -> dict[str, Any]:  # type: ignore[override]
        return self.optimizer.defaults

    def __repr__(self) -> str:
        return f"ProximalOptimizer({self.optimizer!r})"

    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    @torch.no_grad()
    def prox_(self) -> None:
        """Apply the proximal step with each group's current ``lr`` (``step`` calls it)."""
        for group_index, penalty, params in self._plan:
            penalty.prox_all_(params, float(self.optimizer.param_groups[group_index]["lr"]))

    def step(self, closure: Any = None) -> Any:  # type: ignore[override]
        """The inner optimizer's step, then the proximal step; returns the closure's loss."""
        loss = self.optimizer.step(closure) if closure is not None else self.optimizer.step()
        self.prox_()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:  # type: ignore[override]
        return self.optimizer.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:  # type: ignore[override]
        self.optimizer.load_state_dict(state_dict)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        raise fail(
            "ProximalOptimizer",
            "add_param_group",
            "called on the inner optimizer before wrapping (the proximal plan is fixed)",
            "a call on the wrapper",
        )


def _targets(
    optimizer: torch.optim.Optimizer, penalty: Penalty, model: nn.Module | None
) -> Iterator[tuple[Penalty, torch.Tensor]]:
    # Frozen tensors (requires_grad=False) are left alone, as torch's optimizers leave them.
    owned = [p for g in optimizer.param_groups for p in g["params"] if p.requires_grad]
    for leaf in penalty.leaves():
        if model is not None:
            yield from ((leaf, p) for p in leaf.parameters(model) if p.requires_grad)
        else:
            yield from ((leaf, p) for p in owned if p.ndim >= 2)


def proximal(
    optimizer: torch.optim.Optimizer, penalty: Penalty, model: nn.Module | None = None
) -> ProximalOptimizer:
    """Wrap ``optimizer`` so that each ``step()`` is followed by ``penalty``'s proximal step.

    The loss must hold only the data term: after the inner step, each selected tensor
    ``w`` becomes ``prox_{lr·penalty}(w)`` with its group's current ``lr``
    (soft-thresholding for L1, so small weights become exactly 0). With plain
    full-batch SGD this is ISTA (proximal gradient descent). Parameters are selected
    by the penalty's selector on ``model`` when given, else all the optimizer's
    parameters with ``ndim >= 2`` (so pass ``model`` whenever the penalty has its own
    selector, the model has normalization layers with 2-D weights, or a
    ``no_weight_decay()`` hook: only the model tells them apart). Parameters with
    ``requires_grad=False`` are never touched. A tensor selected by several terms of a
    :class:`~reglab.penalties.Sum` gets their exact joint proximal step.

    LR schedulers: pass the wrapper or ``wrapper.optimizer``; both work (the param
    groups are shared).

    Example:
        >>> from reglab.penalties import L1
        >>> model = nn.Linear(3, 1)
        >>> opt = proximal(torch.optim.SGD(model.parameters(), lr=0.1), L1(100.0), model)
        >>> model(torch.ones(4, 3)).pow(2).mean().backward()
        >>> opt.step()
        >>> bool((model.weight == 0).all())
        True
    """
    if not isinstance(optimizer, torch.optim.Optimizer) or isinstance(optimizer, ProximalOptimizer):
        raise fail("proximal", "optimizer", "a torch.optim.Optimizer (not already proximal)", optimizer)
    if not isinstance(penalty, Penalty):
        raise fail("proximal", "penalty", "a reglab penalty (L1, L2, ElasticNet, GroupLasso, ...)", penalty)
    if any(isinstance(leaf, Attached) for leaf in penalty.leaves()):
        # Refused here, not at the first step(): attached penalties have no proximal step of their own.
        allowed = ("a penalty with a proximal step (L1, L2, ElasticNet, GroupLasso); attached penalties "
                   "act through the gradient: add Attached() to the loss or its add_grad_ after backward()")
        raise fail("proximal", "penalty", allowed, penalty)
    if model is not None and not isinstance(model, nn.Module):
        raise fail("proximal", "model", "a torch.nn.Module or None", type(model).__name__)
    if model is None:
        # Without the model, parameters have no names or owning layers to select by.
        custom = [leaf for leaf in penalty.leaves() if repr(leaf.selector) != "Selector()"]
        if custom:
            allowed = f"the model, to apply {custom[0]._owner}'s {custom[0].selector!r} (not None)"
            raise fail("proximal", "model", allowed, None)
    group_of = {id(p): i for i, g in enumerate(optimizer.param_groups) for p in g["params"]}
    leaves_of: dict[int, list[Penalty]] = {}
    tensors: dict[int, torch.Tensor] = {}
    for leaf, p in _targets(optimizer, penalty, model):
        if id(p) not in group_of:
            allowed = "a module whose selected parameters the optimizer updates"
            got = f"a selected parameter of shape {tuple(p.shape)} that the optimizer does not hold"
            raise fail("proximal", "model", allowed, got)
        leaves_of.setdefault(id(p), []).append(leaf)
        tensors[id(p)] = p
    if not tensors:
        allowed = "an optimizer with at least one parameter of ndim >= 2"
        raise fail("proximal", "optimizer", allowed, type(optimizer).__name__)
    # Batch tensors sharing a group and the same terms so each penalty fuses them with _foreach ops.
    batches: dict[tuple[int, tuple[int, ...]], tuple[Penalty, list[torch.Tensor]]] = {}
    for key, leaves in leaves_of.items():
        combo = leaves[0] if len(leaves) == 1 else Sum(leaves)
        batch = batches.setdefault((group_of[key], tuple(map(id, leaves))), (combo, []))
        batch[1].append(tensors[key])
    plan = [(g, combo, params) for (g, _), (combo, params) in batches.items()]
    return ProximalOptimizer(optimizer, plan)


def sparsity(model: nn.Module, selector: Selector | None = None) -> dict[str, float]:
    """Fraction of exact zeros in the selected weights of each layer, plus ``"overall"``.

    Layers are keyed by their module name (``"hidden.0.linear"``); a parameter of ``model`` itself (a bare
    ``nn.Linear``) by its parameter name (``"weight"``), since the root module's name is empty.

    Example:
        >>> layer = nn.Linear(2, 2)
        >>> with torch.no_grad():
        ...     _ = layer.weight.copy_(torch.tensor([[0.0, 1.0], [0.0, 0.0]]))
        >>> sparsity(nn.Sequential(layer))
        {'0': 0.75, 'overall': 0.75}
    """
    selected = (selector or Selector()).select(model, "sparsity")
    zeros: dict[str, list[int]] = {}
    with torch.no_grad():
        for name, p in selected:
            # The root module's own parameters would share the empty name "": key them by parameter name.
            layer = name.rpartition(".")[0] or name
            counts = zeros.setdefault(layer, [0, 0])
            counts[0] += int((p == 0).sum())
            counts[1] += p.numel()
    out = {layer: z / n for layer, (z, n) in zeros.items()}
    out["overall"] = sum(z for z, _ in zeros.values()) / sum(n for _, n in zeros.values())
    return out
