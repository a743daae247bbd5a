"""Which parameters a penalty, a weight-decay group or a constraint touches.

Selection is kept apart from regularization (as optax keeps masks apart from
transforms): every regularizer takes a :class:`Selector` and reports what it
selected. The default rule is the one most codebases converge on (timm, nanoGPT):
regularize the weights of Linear, Conv and Embedding layers (``ndim >= 2``), never
biases and never the affine parameters of normalization layers, and respect the
model's own ``no_weight_decay()`` hook.

Selections are cached, because a penalty selects on every training step and the walk
over sub-modules costs more than the penalty's arithmetic. The rule: a
:class:`Selector` remembers its selection per module (weakly keyed, so a model can be
freed) and walks the module again when

* torch has registered a sub-module or a parameter anywhere since (``model.fc = ...``,
  ``add_module``, ``register_parameter``, ``Sequential.append``,
  ``load_state_dict(assign=True)``, building any module); torch reports these through
  its global registration hooks, which bump a process-wide structure version;
* :func:`invalidate` was called: do so after removing a sub-module or parameter
  (``del model.fc``, ``Sequential.pop``) or editing ``_modules`` / ``_parameters``
  directly, which torch does not report;
* or it has answered :data:`REVALIDATE_EVERY` times from the cache, a safety net that
  bounds how long an unreported removal goes unseen.

A module's ``no_weight_decay()`` hook is read when the module is walked, not on every call.
"""

from __future__ import annotations

import fnmatch
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from reglab._validation import Interval, check_bool, check_int, fail

__all__ = [
    "NORM_TYPES",
    "REVALIDATE_EVERY",
    "Selection",
    "Selector",
    "invalidate",
    "structure_version",
    "weight_norm",
]

#: A cached selection is re-walked after answering this many calls without a structure change.
REVALIDATE_EVERY = 100

_version = 0  # bumped on every sub-module / parameter registration anywhere in the process


def invalidate(*_: object) -> None:
    """Forget every cached selection: call it after removing a sub-module or a parameter.

    Additions and replacements are seen without it (torch reports them); removals
    (``del model.fc``, ``Sequential.pop``) and direct ``_modules`` edits are not.

    Example:
        >>> model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
        >>> selector = Selector()
        >>> len(selector.select(model))
        2
        >>> del model[1]
        >>> invalidate()
        >>> len(selector.select(model))
        1
    """
    global _version
    _version += 1


def structure_version() -> int:
    """A counter that changes whenever module structure may have changed (for caches like ours).

    Example:
        >>> before = structure_version()
        >>> _ = nn.Linear(2, 2)  # registers two parameters
        >>> structure_version() > before
        True
    """
    return _version


# Global hooks are the only signal torch gives when a module's structure changes; they cost one
# integer increment per registration. Removals have no hook (see invalidate and REVALIDATE_EVERY).
_HOOKS = (
    torch.nn.modules.module.register_module_module_registration_hook(invalidate),
    torch.nn.modules.module.register_module_parameter_registration_hook(invalidate),
)

#: Normalization layers whose parameters are never selected by default, whatever their ndim.
NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.LazyBatchNorm1d,
    nn.LazyBatchNorm2d,
    nn.LazyBatchNorm3d,
    nn.SyncBatchNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    nn.LazyInstanceNorm1d,
    nn.LazyInstanceNorm2d,
    nn.LazyInstanceNorm3d,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.RMSNorm,
    nn.LocalResponseNorm,
)


@dataclass(frozen=True)
class Selection:
    """What a selector picked in one module: printable, e.g. ``print(L2(1e-4).describe(model))``.

    Attributes:
        label: who selected, e.g. ``"L2 regularizes"``.
        names: qualified names of the selected parameters, in ``named_parameters`` order.
        numels: number of elements of each selected parameter.
        skipped: qualified names of the parameters left out.
    """

    label: str
    names: tuple[str, ...]
    numels: tuple[int, ...]
    skipped: tuple[str, ...] = ()

    @property
    def num_tensors(self) -> int:
        return len(self.names)

    @property
    def num_params(self) -> int:
        return sum(self.numels)

    def __str__(self) -> str:
        tensors = "tensor" if self.num_tensors == 1 else "tensors"
        text = f"{self.label} {self.num_tensors} {tensors}, {self.num_params:,} parameters: "
        text += ", ".join(self.names)
        if len(self.skipped) > 3:  # long lists of biases say little
            return text + f" (skipped: {len(self.skipped)} tensors)"
        return text + (f" (skipped: {', '.join(self.skipped)})" if self.skipped else "")


def _patterns(value: str | Iterable[str] | None, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    items = (value,) if isinstance(value, str) else tuple(value) if isinstance(value, Iterable) else None
    if items is None or not all(isinstance(v, str) for v in items):
        raise fail("Selector", name, "a str or a list of str (fnmatch patterns)", value)
    return items


def _types(value: type | Iterable[type] | None, name: str) -> tuple[type[nn.Module], ...]:
    if value is None:
        return ()
    items = (value,) if isinstance(value, type) else tuple(value) if isinstance(value, Iterable) else None
    if items is None or not all(isinstance(t, type) and issubclass(t, nn.Module) for t in items):
        raise fail("Selector", name, "an nn.Module subclass or a tuple of them", value)
    return items


def _matches(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


Pairs = tuple[tuple[str, nn.Parameter], ...]


class _Entry:
    """One module's cached partition and when it was computed."""

    __slots__ = ("version", "calls", "selected", "rest", "params")

    def __init__(self, selected: Pairs, rest: Pairs):
        self.version, self.calls = _version, 0
        self.selected, self.rest = selected, rest
        self.params = tuple(p for _, p in selected)


class Selector:
    """Pick the parameters of a module that a regularizer applies to.

    A parameter is a *candidate* when, if ``include`` or ``include_types`` is given,
    its name matches an ``include`` pattern or the module owning it is an instance of
    ``include_types``; otherwise (the default rule) when ``param.ndim >= min_ndim`` and
    its owner is not a normalization layer (:data:`NORM_TYPES`). A candidate is
    *selected* unless its name matches ``exclude``, its owner is an instance of
    ``exclude_types``, or it is listed (name or fnmatch pattern, timm-style) by the
    ``no_weight_decay()`` method of the model or of a sub-module (names relative to
    that sub-module). Names are the qualified names of ``module.named_parameters()``.

    Args:
        include: fnmatch patterns of parameter names to select instead of the default rule.
        exclude: fnmatch patterns of parameter names never to select.
        include_types: module types whose parameters (all of them, biases included) to
            select instead of the default rule.
        exclude_types: module types whose parameters are never selected.
        min_ndim: the default rule's minimum number of dimensions.
        use_no_weight_decay: honour ``no_weight_decay()`` hooks.

    Example:
        >>> from reglab.models import MLP
        >>> model = MLP(4, 2, hidden=(3,), norm="batch")
        >>> [name for name, _ in Selector().select(model)]
        ['hidden.0.linear.weight', 'out.weight']
        >>> [name for name, _ in Selector(exclude="out.*").select(model)]
        ['hidden.0.linear.weight']
        >>> [name for name, _ in Selector(include_types=nn.Linear, exclude="*.bias").select(model)]
        ['hidden.0.linear.weight', 'out.weight']
    """

    def __init__(
        self,
        *,
        include: str | Iterable[str] | None = None,
        exclude: str | Iterable[str] | None = None,
        include_types: type | Iterable[type] | None = None,
        exclude_types: type | Iterable[type] | None = None,
        min_ndim: int = 2,
        use_no_weight_decay: bool = True,
    ):
        self.include = _patterns(include, "include")
        self.exclude = _patterns(exclude, "exclude")
        self.include_types = _types(include_types, "include_types")
        self.exclude_types = _types(exclude_types, "exclude_types")
        self.min_ndim = check_int(min_ndim, "min_ndim", owner="Selector", interval=Interval(0, None))
        self.use_no_weight_decay = check_bool(use_no_weight_decay, "use_no_weight_decay", owner="Selector")
        self._cache: weakref.WeakKeyDictionary[nn.Module, _Entry] = weakref.WeakKeyDictionary()

    def __getstate__(self) -> dict[str, Any]:
        # The cache holds weak references (not picklable) to modules of this process only.
        return {k: v for k, v in self.__dict__.items() if k != "_cache"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._cache = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        args = [
            f"{k}={v!r}"
            for k, v in (
                ("include", self.include),
                ("exclude", self.exclude),
                ("include_types", tuple(t.__name__ for t in self.include_types)),
                ("exclude_types", tuple(t.__name__ for t in self.exclude_types)),
            )
            if v
        ]
        if self.min_ndim != 2:
            args.append(f"min_ndim={self.min_ndim}")
        if not self.use_no_weight_decay:
            args.append("use_no_weight_decay=False")
        return f"Selector({', '.join(args)})"

    def _no_decay(self, module: nn.Module) -> tuple[str, ...]:
        if not self.use_no_weight_decay:
            return ()
        out: list[str] = []
        for prefix, sub in module.named_modules():
            hook = getattr(sub, "no_weight_decay", None)
            if callable(hook):
                out += [f"{prefix}.{n}" if prefix else n for n in hook()]
        return tuple(out)

    def _candidate(self, name: str, param: torch.Tensor, owner: nn.Module) -> bool:
        if self.include or self.include_types:
            return _matches(name, self.include) or isinstance(owner, self.include_types)
        return param.ndim >= self.min_ndim and not isinstance(owner, NORM_TYPES)

    def _walk(self, module: nn.Module) -> tuple[Pairs, Pairs]:
        no_decay = self._no_decay(module)
        selected, rest = [], []
        seen: set[int] = set()
        # Walk owners rather than module.named_parameters() because the owner's type decides
        # (a BatchNorm weight is excluded whatever its shape); shared parameters count once.
        for prefix, owner in module.named_modules():
            for local, param in owner.named_parameters(recurse=False):
                if id(param) in seen:
                    continue
                seen.add(id(param))
                name = f"{prefix}.{local}" if prefix else local
                keep = (
                    self._candidate(name, param, owner)
                    and not _matches(name, self.exclude)
                    and not isinstance(owner, self.exclude_types)
                    and not _matches(name, no_decay)
                )
                (selected if keep else rest).append((name, param))
        return tuple(selected), tuple(rest)

    def _entry(self, module: nn.Module) -> _Entry:
        """The cached partition of ``module``, re-walked by the rule in the module docstring."""
        entry = self._cache.get(module)
        if entry is not None and entry.version == _version and entry.calls < REVALIDATE_EVERY:
            entry.calls += 1
            return entry
        entry = _Entry(*self._walk(module))
        # A lazy parameter changes shape in place when materialized, which no hook reports.
        if not any(isinstance(p, nn.parameter.UninitializedParameter) for p in entry.params):
            self._cache[module] = entry
        return entry

    def partition(
        self, module: nn.Module
    ) -> tuple[list[tuple[str, nn.Parameter]], list[tuple[str, nn.Parameter]]]:
        """Split ``module``'s parameters into ``(selected, rest)``, each a list of ``(name, param)``.

        Does not raise when nothing is selected (``param_groups`` uses it for "the rest").
        """
        if not isinstance(module, nn.Module):  # before the cache: only modules are weakly hashable
            raise fail("Selector", "module", "a torch.nn.Module", type(module).__name__)
        entry = self._entry(module)
        return list(entry.selected), list(entry.rest)

    def parameters(self, module: nn.Module, owner: str | None = None) -> tuple[nn.Parameter, ...]:
        """The selected parameters as a tuple, from the cache (the fast path penalties use).

        Raises like :meth:`select` when nothing is selected.

        Example:
            >>> layer = nn.Linear(3, 2)
            >>> Selector().parameters(layer) == (layer.weight,)
            True
        """
        if not isinstance(module, nn.Module):
            raise fail("Selector", "module", "a torch.nn.Module", type(module).__name__)
        entry = self._entry(module)
        if not entry.params:
            self._raise_empty(module, entry.rest, owner)
        return entry.params

    def _raise_empty(self, module: nn.Module, rest: Pairs, owner: str | None = None) -> None:
        names = ", ".join(n for n, _ in rest) or "no parameters"
        if owner is not None:  # the selector of a penalty, constraint or param_groups: blame it there
            raise fail(
                owner,
                "selector",
                f"a Selector that picks at least one parameter of {type(module).__name__} "
                f"(it matches nothing among: {names})",
                self,
            )
        raise fail(
            "Selector",
            "module",
            f"a module with at least one parameter selected by {self!r} (it matches nothing)",
            f"{type(module).__name__} with {names}",
        )

    def select(self, module: nn.Module, owner: str | None = None) -> list[tuple[str, nn.Parameter]]:
        """Return the selected ``(name, parameter)`` pairs; raise if there are none (naming ``owner``'s
        ``selector`` parameter when given).

        Example:
            >>> [n for n, _ in Selector().select(nn.Linear(3, 2))]
            ['weight']
        """
        selected, rest = self.partition(module)
        if not selected:
            self._raise_empty(module, tuple(rest), owner)
        return selected

    def describe(
        self, module: nn.Module, label: str = "Selector selects", owner: str | None = None
    ) -> Selection:
        """Summarize the selection, e.g. ``Selector selects 2 tensors, 18 parameters: ...``.

        Example:
            >>> print(Selector().describe(nn.Linear(3, 2)))
            Selector selects 1 tensor, 6 parameters: weight (skipped: bias)
        """
        selected = self.select(module, owner)
        _, rest = self.partition(module)
        return Selection(
            label=label,
            names=tuple(n for n, _ in selected),
            numels=tuple(p.numel() for _, p in selected),
            skipped=tuple(n for n, _ in rest),
        )


def weight_norm(module: nn.Module, selector: Selector | None = None) -> float:
    """The L2 norm of the selected weights taken together (for the training history).

    Example:
        >>> layer = nn.Linear(2, 1, bias=False)
        >>> with torch.no_grad():
        ...     _ = layer.weight.copy_(torch.tensor([[3.0, 4.0]]))
        >>> weight_norm(layer)
        5.0
    """
    params = list((selector or Selector()).parameters(module))
    with torch.no_grad():
        return float(torch.linalg.vector_norm(torch.stack(torch._foreach_norm(params, 2))))
