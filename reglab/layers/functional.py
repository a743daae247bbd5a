"""Stochastic regularization layers as pure functions.

Every function takes the randomness and the mode explicitly: ``generator=`` (a
``torch.Generator`` on the input's device, or ``None`` for the global RNG) and
``training=``. Each is the identity when ``training`` is false or the rate is 0.

References:
    Srivastava et al., "Dropout: a simple way to prevent neural networks from
    overfitting", JMLR 2014 (Gaussian dropout, section 10).
    Wan et al., "Regularization of neural networks using DropConnect", ICML 2013.
    Huang et al., "Deep networks with stochastic depth", ECCV 2016 (drop path).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from reglab._validation import Interval, check_bool, check_scalar, fail

__all__ = ["dropout", "drop_connect", "drop_path", "gaussian_noise", "gaussian_dropout", "check_rate"]

_RATE = Interval(0, 1, closed="left")


def check_rate(p: float, owner: str, name: str = "p") -> float:
    """Validate a drop rate in [0, 1); a rate of 1 would divide by zero in the inverted scaling.

    Example:
        >>> check_rate(0.1, "DropPath")
        0.1
    """
    return check_scalar(p, name, owner=owner, interval=_RATE)


def _keep_mask(shape: tuple[int, ...], p: float, like: torch.Tensor, generator: torch.Generator | None):
    # bernoulli_ takes a generator, torch.nn.functional.dropout does not: this is why the mask is drawn here.
    return torch.empty(shape, dtype=like.dtype, device=like.device).bernoulli_(1.0 - p, generator=generator)


def dropout(
    x: torch.Tensor, p: float, *, training: bool, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Inverted dropout (as ``torch.nn.functional.dropout``) with an explicit generator.

    Each element is zeroed with probability ``p`` and the survivors are scaled by
    ``1 / (1 - p)``, so the expectation is unchanged.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> dropout(torch.ones(2, 3), 0.5, training=True, generator=g).unique().tolist()
        [0.0, 2.0]
    """
    p = check_rate(p, "dropout")
    training = check_bool(training, "training", owner="dropout")
    if not training or p == 0.0:
        return x
    return x * _keep_mask(tuple(x.shape), p, x, generator) / (1.0 - p)


def drop_connect(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    p: float = 0.5,
    *,
    training: bool,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """A linear layer whose weights (not activations) are dropped: ``x @ (M * W / (1 - p)).T + b``.

    One weight mask is drawn per call and shared by the batch (as most
    implementations do; Wan et al. draw one per example, which costs a weight
    copy per example). The bias is never dropped. Inverted scaling keeps the
    expected output equal to the plain layer's, so evaluation is the plain layer.

    Example:
        >>> w, x = torch.ones(2, 3), torch.ones(4, 3)
        >>> drop_connect(x, w, p=0.5, training=False).tolist()[0]
        [3.0, 3.0]
    """
    p = check_rate(p, "drop_connect")
    training = check_bool(training, "training", owner="drop_connect")
    if training and p > 0.0:
        weight = weight * _keep_mask(tuple(weight.shape), p, weight, generator) / (1.0 - p)
    return F.linear(x, weight, bias)


def drop_path(
    x: torch.Tensor,
    p: float,
    *,
    training: bool,
    generator: torch.Generator | None = None,
    scale_by_keep: bool = True,
) -> torch.Tensor:
    """Stochastic depth: zero whole samples of a residual branch with probability ``p``.

    Survivors are scaled by ``1 / (1 - p)`` (``scale_by_keep``), as in timm's
    ``drop_path``. Use it on the branch, ``h + drop_path(block(h), p, ...)``.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> y = drop_path(torch.ones(6, 4), 0.5, training=True, generator=g)
        >>> sorted(set(y.sum(1).tolist())) in ([0.0, 8.0], [0.0], [8.0])
        True
    """
    p = check_rate(p, "drop_path")
    training = check_bool(training, "training", owner="drop_path")
    scale_by_keep = check_bool(scale_by_keep, "scale_by_keep", owner="drop_path")
    if x.ndim == 0:
        raise fail("drop_path", "x", "a batch of examples (at least one dimension)", "a 0-d tensor")
    if not training or p == 0.0:
        return x
    mask = _keep_mask((x.shape[0],) + (1,) * (x.ndim - 1), p, x, generator)
    return x * mask / (1.0 - p) if scale_by_keep else x * mask


def gaussian_noise(
    x: torch.Tensor, sigma: float, *, training: bool, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Additive zero-mean Gaussian noise ``x + sigma * N(0, 1)`` (Keras ``GaussianNoise(stddev)``).

    Example:
        >>> gaussian_noise(torch.zeros(3), 0.1, training=False).tolist()
        [0.0, 0.0, 0.0]
    """
    sigma = check_scalar(sigma, "sigma", owner="gaussian_noise", interval=Interval(0, None))
    training = check_bool(training, "training", owner="gaussian_noise")
    if not training or sigma == 0.0:
        return x
    noise = torch.randn(x.shape, dtype=x.dtype, device=x.device, generator=generator)
    return x + sigma * noise


def gaussian_dropout(
    x: torch.Tensor, p: float, *, training: bool, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Multiplicative Gaussian noise ``x * N(1, p / (1 - p))`` (Keras ``GaussianDropout(rate)``).

    The variance ``p / (1 - p)`` equals that of inverted Bernoulli dropout at rate
    ``p`` (Srivastava et al. 2014, section 10), so the two are interchangeable in
    their first two moments.

    Example:
        >>> gaussian_dropout(torch.ones(3), 0.2, training=False).tolist()
        [1.0, 1.0, 1.0]
    """
    p = check_rate(p, "gaussian_dropout")
    training = check_bool(training, "training", owner="gaussian_dropout")
    if not training or p == 0.0:
        return x
    noise = torch.randn(x.shape, dtype=x.dtype, device=x.device, generator=generator)
    return x * (1.0 + math.sqrt(p / (1.0 - p)) * noise)
