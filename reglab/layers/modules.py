"""Thin ``nn.Module`` wrappers around :mod:`reglab.layers.functional`.

Each module validates its rate once, takes an optional ``generator`` (kept as an
attribute, not as state) and follows ``module.training``. torch's own dropout
family is re-exported unchanged: ``Dropout``, ``Dropout1d``/``2d``/``3d`` and
``AlphaDropout`` draw from the global RNG.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import AlphaDropout, Dropout, Dropout1d, Dropout2d, Dropout3d

from reglab._validation import Interval, check_bool, check_generator, check_scalar, fail
from reglab.layers import functional as RF

__all__ = [
    "Dropout",
    "Dropout1d",
    "Dropout2d",
    "Dropout3d",
    "AlphaDropout",
    "DropConnect",
    "DropPath",
    "GaussianNoise",
    "GaussianDropout",
]


class DropConnect(nn.Module):
    """Wrap an ``nn.Linear`` so that its weights are dropped during training (Wan et al. 2013).

    The wrapped layer keeps its parameters (so penalties, selectors and optimizers
    see ``layer.weight``); in eval mode this is exactly the wrapped layer.

    Args:
        layer: the ``nn.Linear`` to wrap.
        p: probability of dropping each weight, in [0, 1).
        generator: optional ``torch.Generator`` for the masks.

    Example:
        >>> layer = DropConnect(nn.Linear(4, 2), p=0.3).eval()
        >>> torch.equal(layer(torch.ones(1, 4)), layer.layer(torch.ones(1, 4)))
        True
    """

    def __init__(self, layer: nn.Linear, p: float = 0.5, *, generator: torch.Generator | None = None):
        super().__init__()
        if not isinstance(layer, nn.Linear):
            raise fail("DropConnect", "layer", "an nn.Linear", type(layer).__name__)
        self.layer = layer
        self.p = RF.check_rate(p, "DropConnect")
        self.generator = check_generator(generator, "DropConnect")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return RF.drop_connect(
            x, self.layer.weight, self.layer.bias, self.p, training=self.training, generator=self.generator
        )

    def extra_repr(self) -> str:
        return f"p={self.p}"


class DropPath(nn.Module):
    """Stochastic depth for a residual branch: drops whole samples, scales survivors by ``1/(1-p)``.

    Example:
        >>> DropPath(0.2).eval()(torch.ones(2, 3)).tolist()
        [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    """

    def __init__(
        self, p: float = 0.0, *, scale_by_keep: bool = True, generator: torch.Generator | None = None
    ):
        super().__init__()
        self.p = RF.check_rate(p, "DropPath")
        self.scale_by_keep = check_bool(scale_by_keep, "scale_by_keep", owner="DropPath")
        self.generator = check_generator(generator, "DropPath")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return RF.drop_path(
            x, self.p, training=self.training, generator=self.generator, scale_by_keep=self.scale_by_keep
        )

    def extra_repr(self) -> str:
        return f"p={self.p}"


class GaussianNoise(nn.Module):
    """Additive Gaussian noise with standard deviation ``sigma``, in training only (Keras ``GaussianNoise``).

    Example:
        >>> GaussianNoise(0.1).eval()(torch.zeros(2)).tolist()
        [0.0, 0.0]
    """

    def __init__(self, sigma: float, *, generator: torch.Generator | None = None):
        super().__init__()
        self.sigma = check_scalar(sigma, "sigma", owner="GaussianNoise", interval=Interval(0, None))
        self.generator = check_generator(generator, "GaussianNoise")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return RF.gaussian_noise(x, self.sigma, training=self.training, generator=self.generator)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}"


class GaussianDropout(nn.Module):
    """Multiplicative ``N(1, p/(1-p))`` noise, in training only (Keras ``GaussianDropout(rate)``).

    Example:
        >>> GaussianDropout(0.5).eval()(torch.ones(2)).tolist()
        [1.0, 1.0]
    """

    def __init__(self, p: float, *, generator: torch.Generator | None = None):
        super().__init__()
        self.p = RF.check_rate(p, "GaussianDropout")
        self.generator = check_generator(generator, "GaussianDropout")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return RF.gaussian_dropout(x, self.p, training=self.training, generator=self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"
