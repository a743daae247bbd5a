"""Per-member configurations: validation and the (K, 1) hyperparameter tensors used in one step."""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import torch

from reglab._validation import Interval, InvalidParameterError, check_int, check_scalar, did_you_mean, fail

__all__ = ["MemberConfig", "parse_configs", "MAX_DROPOUT"]

_OWNER = "Population"
_NONNEG = Interval(0, None)


@dataclass(frozen=True)
class MemberConfig:
    """One member's hyperparameters (all regularizers off by default).

    Strengths follow reglab's internal convention (the Keras formula
    ``l1·Σ|w| + l2·Σw²`` over the weights, not biases or norm parameters):

    * ``l1``, ``l2``: penalty added to the mean data loss (gradient ``l1·sign(w) + 2·l2·w``).
    * ``weight_decay``: coupled decay as in ``torch.optim.SGD/Adam(weight_decay=)``, i.e.
      ``wd·w`` added to the gradient (the penalty ``wd/2·Σw²``).
    * ``decoupled_decay``: AdamW-style ``w <- w - lr·wd·w`` outside the adaptive scaling.
    * ``prox_l1``, ``prox_l2``: proximal step of ``lr·(l1·Σ|w| + l2·Σw²)`` after each update
      (exact zeros), as ``reglab.optim.proximal``.
    * ``max_norm``: Keras ``MaxNorm`` per output unit, ``w·clip(n, 0, c)/(1e-7 + n)``; ``None`` is off (as
      is NaN, a DataFrame's empty cell, so a grid's rows from ``df.to_dict("records")`` may leave it out).
    * ``dropout``: rate after every hidden activation (MLP) / before the head (CNN1D).
    * ``noise``: standard deviation of additive Gaussian noise on the inputs (training only).
    * ``label_smoothing``: as ``torch.nn.functional.cross_entropy(label_smoothing=)``, in the training
      loss only: ``val_loss`` and ``evaluate`` are plain cross-entropy (as the Trainer's with
      ``augment=reglab.LabelSmoothing``), so members with different rates compare on one scale.
    * ``seed``: member initialization: the member is built under ``torch.manual_seed(seed)``; with
      ``data_order="per_member"`` it also seeds the member's batch order.

    Example:
        >>> MemberConfig(lr=1e-3, l2=1e-4).l2
        0.0001
    """

    lr: float = 1e-3
    l1: float = 0.0
    l2: float = 0.0
    weight_decay: float = 0.0
    decoupled_decay: float = 0.0
    prox_l1: float = 0.0
    prox_l2: float = 0.0
    max_norm: float | None = None
    dropout: float = 0.0
    noise: float = 0.0
    label_smoothing: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        for key, value in _checked(self.__dict__, "MemberConfig", "").items():
            object.__setattr__(self, key, value)  # frozen: numbers normalized to float / int once


# Dropout rates must stay below this: higher rates round to 1 in the 16-bit masks
# (reglab.population._dropout). A study's schema refuses them too (a recipe fails validation, not its group).
MAX_DROPOUT = 1 - 2**-17

_INTERVALS = {
    "lr": Interval(0, None, closed="neither"),
    "dropout": Interval(0, MAX_DROPOUT, closed="left"),
    "label_smoothing": Interval(0, 1, closed="left"),  # as the Trainer's and a study's
    "max_norm": Interval(0, None, closed="neither"),
}
KEYS = tuple(f.name for f in fields(MemberConfig))


def _checked(raw: Mapping[str, Any], owner: str, prefix: str) -> dict[str, Any]:
    """``raw``'s values validated (a floating-point number or, for ``seed``, an integer; ``max_norm``
    may be ``None``), each error naming the field as ``prefix + key``."""
    values: dict[str, Any] = {}
    for key, value in raw.items():
        name = prefix + key
        if key == "seed":  # torch.manual_seed takes 64-bit seeds
            values[key] = check_int(value, name, owner=owner, interval=Interval(0, 2**63 - 1))
        elif key == "max_norm" and (value is None or _is_nan(value)):
            # Off. A DataFrame holds a missing bound as NaN, and df.to_dict("records") passes it on.
            values[key] = None
        elif key == "max_norm":
            try:
                values[key] = check_scalar(value, name, owner=owner, interval=_INTERVALS[key])
            except InvalidParameterError:
                allowed = "a float in the range (0, inf), or None (or NaN, a DataFrame's empty cell) for none"
                raise fail(owner, name, allowed, value) from None
        else:
            values[key] = check_scalar(value, name, owner=owner, interval=_INTERVALS.get(key, _NONNEG))
    return values


def _is_nan(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isnan(value)


# Keys that Keras, the Trainer or a tuner's search space spell differently: what a member's config calls them.
_RENAMED = {
    "learning_rate": "A member's config calls it 'lr'.",
    "wd": "A member's config calls it 'weight_decay'.",
    "decoupled": "A member's config gives AdamW's decay strength as 'decoupled_decay'.",
    "penalty": "A member's config gives its penalty's strength as 'l1' / 'l2' (added to the loss) or "
               "'prox_l1' / 'prox_l2' (proximal).",
    "proximal": "A member's config gives proximal strengths as 'prox_l1' / 'prox_l2'.",
    "dropout_rate": "A member's config calls it 'dropout'.",
    "gaussian_noise": "A member's config gives the noise's standard deviation as 'noise'.",
    "stddev": "A member's config gives the noise's standard deviation as 'noise'.",
    "kernel_constraint": "A member's config gives the max-norm bound as 'max_norm'.",
}
# Settings every member shares: arguments of Population or of Population.fit, not config keys.
_SHARED = ("optimizer", "betas", "eps", "momentum", "nesterov", "data_order", "dropout_masks", "dtype",
           "device", "threads")
_FIT = ("epochs", "batch_size", "early_stopping", "checkpoint", "progress")


def _unknown_key_hint(key: Any) -> str:
    """How to say an unknown config key: its name here, or where a setting shared by all members goes."""
    if key in _RENAMED:
        return f" {_RENAMED[key]}"
    if key in _SHARED:
        return f" It is shared by all members: pass Population(..., {key}=...)."
    if key in _FIT:
        return f" It is shared by all members: pass Population.fit(..., {key}=...)."
    return did_you_mean(key, KEYS)


def _one(raw: Any, index: int) -> MemberConfig:
    if isinstance(raw, MemberConfig):
        return raw  # validated when it was made
    if dataclasses.is_dataclass(raw) and not isinstance(raw, type):
        raw = dataclasses.asdict(raw)  # a tuner's / Hydra's structured config: its fields are the keys
    if type(raw).__name__ == "Series" and type(raw).__module__.startswith("pandas"):
        # iterrows() turns a row's ints (seed) into floats: the row is not the config that was meant.
        allowed = "a dict, a dataclass or a MemberConfig (for a DataFrame's rows: df.to_dict('records'))"
        raise fail(_OWNER, f"configs[{index}]", allowed, "a pandas Series")
    if not isinstance(raw, Mapping):
        raise fail(_OWNER, f"configs[{index}]", "a dict, a dataclass or a MemberConfig", raw)
    for key in raw:
        if key not in KEYS:
            raise InvalidParameterError(
                f"The 'configs[{index}]' parameter of {_OWNER} has an unknown key {key!r}; "
                f"allowed keys are {', '.join(KEYS)}.{_unknown_key_hint(key)}"
            )
    return MemberConfig(**_checked(raw, _OWNER, f"configs[{index}]."))


def parse_configs(configs: Sequence[Any]) -> list[MemberConfig]:
    """Validate a list of dicts / dataclasses / ``MemberConfig`` objects (at least one)."""
    if type(configs).__name__ == "DataFrame" and type(configs).__module__.startswith("pandas"):
        allowed = "a non-empty list of dicts, dataclasses or MemberConfig (for a DataFrame, "
        allowed += "configs=df.to_dict('records'))"
        raise fail(_OWNER, "configs", allowed, f"a pandas DataFrame with columns {list(configs.columns)}")
    if isinstance(configs, (str, bytes, Mapping)) or not isinstance(configs, Sequence) or not configs:
        raise fail(_OWNER, "configs", "a non-empty list of dicts, dataclasses or MemberConfig", configs)
    return [_one(c, i) for i, c in enumerate(configs)]


def column(configs: Sequence[MemberConfig], key: str, *, dtype: torch.dtype, device: Any) -> torch.Tensor:
    """The (K, 1) tensor of one hyperparameter across members (``None`` max-norm reads as inf)."""
    vals = [getattr(c, key) for c in configs]
    vals = [float("inf") if v is None else float(v) for v in vals]
    return torch.tensor(vals, dtype=dtype, device=device).unsqueeze(1)
