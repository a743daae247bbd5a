"""Augmentations for tabular inputs of shape ``(N, F)`` (standardized features).

Tabular mixup is ``reglab.targets.Mixup`` (soft targets), registered here by name as
``"mixup"``; it is not duplicated in this module.
"""

from __future__ import annotations

import torch

from reglab._validation import Interval, check_bool, check_generator, check_scalar
from reglab.augment.base import check_batch
from reglab.layers.functional import dropout, gaussian_noise

__all__ = ["FeatureNoise", "FeatureDropout"]


class FeatureNoise:
    """Add Gaussian noise of standard deviation ``sigma`` to every feature.

    On standardized features ``sigma`` is in units of each feature's training std.

    Example:
        >>> x, _ = FeatureNoise(0.1)(torch.zeros(4, 3), None, generator=torch.Generator().manual_seed(0))
        >>> x.shape
        torch.Size([4, 3])
    """

    def __init__(self, sigma: float = 0.1):
        self.sigma = check_scalar(sigma, "sigma", owner="FeatureNoise", interval=Interval(0, None))

    def __call__(self, x: torch.Tensor, y, *, generator: torch.Generator):
        check_generator(generator, "FeatureNoise", required=True)
        x = check_batch(x, "FeatureNoise", (2,), "(N, F)")
        return gaussian_noise(x, self.sigma, training=True, generator=generator), y

    def __repr__(self) -> str:
        return f"FeatureNoise(sigma={self.sigma})"


class FeatureDropout:
    """Set each feature of each example to 0 with probability ``p``.

    By default the survivors are not rescaled: on standardized features a zero is the
    training mean, so this imitates missing values imputed by the mean. ``rescale=True``
    gives inverted dropout on the inputs (survivors times ``1 / (1 - p)``).

    Example:
        >>> x, _ = FeatureDropout(0.5)(torch.ones(2, 4), None, generator=torch.Generator().manual_seed(0))
        >>> sorted(x.unique().tolist())
        [0.0, 1.0]
    """

    def __init__(self, p: float = 0.1, rescale: bool = False):
        self.p = check_scalar(p, "p", owner="FeatureDropout", interval=Interval(0, 1, closed="left"))
        self.rescale = check_bool(rescale, "rescale", owner="FeatureDropout")

    def __call__(self, x: torch.Tensor, y, *, generator: torch.Generator):
        check_generator(generator, "FeatureDropout", required=True)
        x = check_batch(x, "FeatureDropout", (2,), "(N, F)")
        if self.rescale:
            return dropout(x, self.p, training=True, generator=generator), y
        # The dropout layer always rescales; mean imputation needs the bare mask.
        keep = torch.empty_like(x).bernoulli_(1.0 - self.p, generator=generator)
        return x * keep, y

    def __repr__(self) -> str:
        return f"FeatureDropout(p={self.p}, rescale={self.rescale})"
