"""Data augmentation as seeded batch transforms ``t(x, y, *, generator) -> (x, y)``.

Image transforms run kornia; 1-D signal, tabular and text transforms are in their own
modules. ``make(name, **kwargs)`` / ``from_config`` build them by name for study configs.

Example:
    >>> import torch
    >>> from reglab import augment
    >>> t = augment.signal_default()
    >>> x, y = t(torch.randn(8, 40), torch.zeros(8), generator=torch.Generator().manual_seed(0))
    >>> x.shape
    torch.Size([8, 40])
"""

from reglab.augment.base import BatchTransform, Compose
from reglab.augment.image import (
    ColorJitter,
    KorniaTransform,
    RandomCrop,
    RandomErasing,
    RandomHorizontalFlip,
    RandomResizedCrop,
    RandomRotation,
)
from reglab.augment.registry import available, from_config, make
from reglab.augment.signal import AmplitudeScale, GaussianNoise1d, RandomShift, TimeMask, signal_default
from reglab.augment.tabular import FeatureDropout, FeatureNoise
from reglab.augment.text import (
    BackTranslation,
    RandomDeletion,
    RandomInsertion,
    RandomSwap,
    SynonymReplacement,
)

__all__ = [
    "BatchTransform",
    "Compose",
    "available",
    "make",
    "from_config",
    "KorniaTransform",
    "RandomHorizontalFlip",
    "RandomRotation",
    "RandomCrop",
    "RandomResizedCrop",
    "ColorJitter",
    "RandomErasing",
    "RandomShift",
    "AmplitudeScale",
    "GaussianNoise1d",
    "TimeMask",
    "signal_default",
    "FeatureNoise",
    "FeatureDropout",
    "RandomSwap",
    "RandomDeletion",
    "RandomInsertion",
    "SynonymReplacement",
    "BackTranslation",
]
