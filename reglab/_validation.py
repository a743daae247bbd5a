"""Argument validation at the public boundary, in one message format.

Every public constructor and loader checks its arguments here, so that a user
mistake produces one line that names the parameter, the owner, what is allowed
and what was given, in the style of scikit-learn::

    The 'strength' parameter of L1 must be a float in the range [0, inf). Got -1.0 instead.

Inside the library, validated values are trusted; never ``assert`` on user input.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "InvalidParameterError",
    "Interval",
    "check_scalar",
    "check_generator",
    "check_device",
    "check_option",
    "check_monitor",
    "check_progress",
    "check_int",
    "check_bool",
    "did_you_mean",
    "fail",
    "shown",
]


class InvalidParameterError(ValueError, TypeError):
    """A user-supplied argument is invalid.

    Subclasses both ``ValueError`` and ``TypeError`` (as scikit-learn's does), so
    callers catching either keep working.
    """


def fail(owner: str, name: str, allowed: str, got: Any) -> InvalidParameterError:
    """Build the one-format error: ``The 'name' parameter of owner must be allowed. Got got instead.``

    Returns the exception so the caller writes ``raise fail(...)``, keeping the
    raise visible at the call site.
    """
    return InvalidParameterError(
        f"The {name!r} parameter of {owner} must be {allowed}. Got {shown(got)} instead."
    )


_SHOWN_CHARS = 120


def shown(value: Any) -> str:
    """``repr(value)`` on one short line: arrays as their kind, dtype and shape, long reprs cut.

    Example:
        >>> import torch
        >>> shown((torch.zeros(3500, 40), [1, 2]))
        '(a float32 tensor of shape (3500, 40), [1, 2])'
        >>> len(shown("x" * 200))
        120
    """
    # A class (np.float64, torch.Tensor) has shape and dtype too, as descriptors: not an array.
    shape = None if isinstance(value, type) else getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if isinstance(shape, tuple) and dtype is not None and len(shape) > 0:  # torch tensor, NumPy array, ...
        kind = "tensor" if type(value).__module__.startswith("torch") else "array"
        return f"a {str(dtype).removeprefix('torch.')} {kind} of shape {tuple(shape)}"
    if isinstance(value, (tuple, list)) and len(value) <= 8:
        parts = [shown(v) for v in value]
        text = ", ".join(parts) + ("," if isinstance(value, tuple) and len(value) == 1 else "")
        text = f"({text})" if isinstance(value, tuple) else f"[{text}]"
    else:
        text = repr(value)
    text = " ".join(text.split()) if "\n" in text else text
    if len(text) > _SHOWN_CHARS:
        text = text[: _SHOWN_CHARS - 4] + "..." + text[-1]
    return text


@dataclass(frozen=True)
class Interval:
    """A closed, open or half-open numeric range, printed the mathematical way.

    Example:
        >>> str(Interval(0, 1, closed="left"))
        '[0, 1)'
    """

    low: float | None = None
    high: float | None = None
    closed: Literal["both", "left", "right", "neither"] = "both"

    def __contains__(self, value: float) -> bool:
        low_open = self.closed in ("right", "neither")
        high_open = self.closed in ("left", "neither")
        if self.low is not None and (value < self.low or (value == self.low and low_open)):
            return False
        return not (self.high is not None and (value > self.high or (value == self.high and high_open)))

    def __str__(self) -> str:
        left = "[" if self.closed in ("both", "left") and self.low is not None else "("
        right = "]" if self.closed in ("both", "right") and self.high is not None else ")"
        low = "-inf" if self.low is None else _fmt(self.low)
        high = "inf" if self.high is None else _fmt(self.high)
        return f"{left}{low}, {high}{right}"


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def check_scalar(
    value: Any,
    name: str,
    *,
    owner: str,
    interval: Interval = Interval(),
) -> float:
    """Return ``value`` as a float if it is a finite real number inside ``interval``.

    Example:
        >>> check_scalar(0.5, "p", owner="DropPath", interval=Interval(0, 1, closed="left"))
        0.5
    """
    allowed = f"a float in the range {interval}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise fail(owner, name, allowed, value)
    value = float(value)
    # An unbounded side (None) prints as an open "inf)": infinity is outside it, as NaN is outside every
    # range. A range closed at math.inf, "(0, inf]", takes it (a p-norm's p, for the max-norm).
    infinite_bound = math.isinf(value) and value in (interval.low, interval.high)
    if math.isnan(value) or value not in interval or (math.isinf(value) and not infinite_bound):
        raise fail(owner, name, allowed, value)
    return value


def check_int(value: Any, name: str, *, owner: str, interval: Interval = Interval()) -> int:
    """Return ``value`` if it is an integer (not a bool) inside ``interval``.

    Example:
        >>> check_int(3, "patience", owner="EarlyStopping", interval=Interval(0, None))
        3
    """
    allowed = f"an int in the range {interval}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise fail(owner, name, allowed, value)
    if int(value) not in interval:
        raise fail(owner, name, allowed, value)
    return int(value)


def check_bool(value: Any, name: str, *, owner: str) -> bool:
    """Return ``value`` if it is a bool."""
    if not isinstance(value, bool):
        raise fail(owner, name, "a bool", value)
    return value


def did_you_mean(value: str, options: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest option, or ``""``."""
    close = difflib.get_close_matches(str(value), [str(o) for o in options], n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def check_option(value: Any, name: str, *, owner: str, options: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``options``; otherwise list them and suggest the nearest.

    Example:
        >>> check_option("max", "mode", owner="EarlyStopping", options=("min", "max"))
        'max'
    """
    options = list(options)
    if value in options:
        return value
    listed = ", ".join(repr(o) for o in options)
    hint = did_you_mean(value, [o for o in options if isinstance(o, str)]) if isinstance(value, str) else ""
    raise InvalidParameterError(
        f"The {name!r} parameter of {owner} must be one of {listed}. Got {shown(value)} instead.{hint}"
    )


def check_progress(progress: Any, owner: str) -> str:
    """``"auto"``, ``"rich"``, ``"plain"`` or ``"off"``; ``True`` / ``False`` mean ``"auto"`` / ``"off"``
    (as ``Study.run(progress=)`` takes them).

    Example:
        >>> check_progress(False, "Trainer")
        'off'
    """
    if progress is True or progress is False:
        return "auto" if progress else "off"
    return check_option(progress, "progress", owner=owner, options=("auto", "rich", "plain", "off"))


def check_monitor(monitor: Any, owner: str, metrics: Sequence[str]) -> Any:
    """Return ``monitor`` if the fit logs it (``metrics``); a ``val_*`` metric of a fit without
    validation data says so instead of suggesting the nearest ``train_*`` name.

    Example:
        >>> check_monitor("train_loss", "EarlyStopping", ["epoch", "train_loss"])
        'train_loss'
    """
    validated = any(m.startswith("val_") for m in metrics)
    if isinstance(monitor, str) and monitor.startswith("val_") and not validated:
        listed = ", ".join(repr(m) for m in metrics)
        allowed = f"one of {listed} (this fit has no validation data: pass val to fit to monitor {monitor!r})"
        raise fail(owner, "monitor", allowed, monitor)
    return check_option(monitor, "monitor", owner=owner, options=metrics)


def check_generator(generator: Any, owner: str, *, required: bool = False, allow_random: bool = False) -> Any:
    """Return ``generator`` if it is a ``torch.Generator``, ``None`` (the global RNG) unless ``required``,
    or a ``random.Random`` when ``allow_random`` (text transforms draw from python's generator).

    Example:
        >>> check_generator(None, "DropPath") is None
        True
    """
    import random

    import torch  # here: reglab._validation is imported by modules that need no torch at import

    kinds = "a torch.Generator or random.Random" if allow_random else "a torch.Generator"
    if isinstance(generator, torch.Generator) or (allow_random and isinstance(generator, random.Random)):
        return generator
    if generator is None and not required:
        return generator
    raise fail(owner, "generator", kinds if required else f"None (the global RNG) or {kinds}", generator)


def check_device(device: Any, owner: str) -> Any:
    """``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"auto"`` (CUDA when available) or a ``torch.device``, as a
    ``torch.device`` this machine has.

    Example:
        >>> check_device("cpu", "Trainer")
        device(type='cpu')
    """
    import torch  # here: see check_generator

    allowed = "'cpu', 'cuda', 'cuda:N', 'auto' or a torch.device"
    if isinstance(device, str):
        if device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            device = torch.device(device)
        except RuntimeError:
            raise fail(owner, "device", allowed, device) from None
    if not isinstance(device, torch.device) or device.type not in ("cpu", "cuda"):
        raise fail(owner, "device", allowed, device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise fail(owner, "device", "'cpu' or 'auto' (no CUDA device is available)", str(device))
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            allowed = f"'cuda:0' to 'cuda:{count - 1}' ({count} CUDA devices here)"
            raise fail(owner, "device", allowed, str(device))
    return device
