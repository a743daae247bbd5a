"""Augmentations by name, for study configs: ``make("signal_shift", max_shift=4)``.

``from_config`` builds one transform from ``{"name": ..., **kwargs}`` or a ``Compose``
from a list of them.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from reglab._validation import InvalidParameterError, did_you_mean, fail
from reglab.augment import image, signal, tabular, text
from reglab.augment.base import Compose

__all__ = ["REGISTRY", "available", "check", "make", "from_config"]

REGISTRY: dict[str, Callable[..., Any] | str] = {
    # image (kornia)
    "hflip": image.RandomHorizontalFlip,
    "rotation": image.RandomRotation,
    "crop": image.RandomCrop,
    "resized_crop": image.RandomResizedCrop,
    "color_jitter": image.ColorJitter,
    "erasing": image.RandomErasing,
    # 1-D signals
    "signal_shift": signal.RandomShift,
    "amplitude_scale": signal.AmplitudeScale,
    "gaussian_noise1d": signal.GaussianNoise1d,
    "time_mask": signal.TimeMask,
    "signal_default": signal.signal_default,
    # tabular; mixup lives in reglab.targets (soft targets) and is resolved when first made
    "feature_noise": tabular.FeatureNoise,
    "feature_dropout": tabular.FeatureDropout,
    "mixup": "reglab.targets:Mixup",
    # text
    "random_swap": text.RandomSwap,
    "random_deletion": text.RandomDeletion,
    "random_insertion": text.RandomInsertion,
    "synonym_replacement": text.SynonymReplacement,
    "back_translation": text.BackTranslation,
}


def _resolve(name: str) -> Callable[..., Any] | None:
    """The factory for ``name``; ``None`` for a lazy entry whose module is not installed."""
    entry = REGISTRY[name]
    if not isinstance(entry, str):
        return entry
    module, _, attr = entry.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        return None


def available() -> list[str]:
    """Names accepted by :func:`make` (lazy entries only when their module provides them).

    Example:
        >>> "signal_shift" in available()
        True
    """
    return [name for name in REGISTRY if _resolve(name) is not None]


def check(name: str, /, keywords: Mapping[str, Any] | None = None, *, complete: bool = True) -> None:
    """Raise the one-line error ``make(name, **keywords)`` would for an unknown name or keyword, or
    (``complete=True``) a missing required keyword, without building the transform.

    Example:
        >>> check("signal_shift", {"max_shift": 4})
        >>> try:
        ...     check("signal_shift", {"max_shif": 4}, complete=False)
        ... except ValueError as error:
        ...     print(str(error).split(";")[0])
        The augmentation 'signal_shift' does not take the keyword 'max_shif'
    """
    kwargs = dict(keywords or {})
    names = available()
    if name not in names:
        listed = ", ".join(repr(n) for n in names)
        hint = did_you_mean(name, names) if isinstance(name, str) else ""
        raise InvalidParameterError(
            f"The 'name' parameter of reglab.augment.make must be one of {listed}. "
            f"Got {name!r} instead.{hint}"
        )
    factory = _resolve(name)
    parameters = inspect.signature(factory).parameters
    accepted = list(parameters)
    for key in kwargs:
        if key not in accepted:
            raise InvalidParameterError(
                f"The augmentation {name!r} does not take the keyword {key!r}; it takes "
                f"{', '.join(repr(a) for a in accepted) or 'no keywords'}.{did_you_mean(key, accepted)}"
            )
    for key, param in parameters.items() if complete else ():
        if param.default is inspect.Parameter.empty and key not in kwargs:
            raise InvalidParameterError(
                f"The augmentation {name!r} needs the keyword {key!r}; it takes "
                f"{', '.join(repr(a) for a in accepted)}."
            )


def make(name: str, /, **kwargs: Any) -> Callable[..., Any]:
    """Build the augmentation registered as ``name`` with ``kwargs``.

    Example:
        >>> make("signal_shift", max_shift=4)
        RandomShift(max_shift=4, circular=True)
    """
    check(name, kwargs)
    return _resolve(name)(**kwargs)


def from_config(spec: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> Callable[..., Any]:
    """One transform from ``{"name": ..., **kwargs}``, or a ``Compose`` from a list of such dicts.

    Example:
        >>> from_config([{"name": "signal_shift", "max_shift": 4}, {"name": "time_mask", "max_width": 3}])
        Compose([RandomShift(max_shift=4, circular=True), TimeMask(max_width=3, value=0.0)])
    """
    if isinstance(spec, Mapping):
        if "name" not in spec:
            allowed = "a dict with a 'name' key (see reglab.augment.available())"
            raise fail("from_config", "spec", allowed, spec)
        options = {k: v for k, v in spec.items() if k != "name"}
        return make(spec["name"], **options)
    if isinstance(spec, Sequence) and not isinstance(spec, str):
        return Compose([from_config(s) for s in spec])
    raise fail("from_config", "spec", "a dict {'name': ..., **kwargs} or a list of them", spec)
