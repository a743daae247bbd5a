"""Conversions between the regularization conventions of Keras, PyTorch, scikit-learn and glmnet.

reglab has one internal convention, the Keras formula ``l1·Σ|w| + l2·Σw²`` added to
the *mean* data loss. Every function here maps another framework's settings to the
pair ``Strengths(l1, l2)`` or back; the penalty classes expose them as classmethods
(``ElasticNet.from_sklearn``, ``L2.from_weight_decay``, ...). The formulas, with the
frameworks' sources, are tabulated in ``docs/conventions.md``.

Two scalings matter and are easy to miss:

* scikit-learn's Lasso / ElasticNet and glmnet's gaussian family use ``1/(2n)·RSS``,
  which is ``0.5 * mean squared error`` (not ``F.mse_loss``, which has no ``0.5``;
  with ``F.mse_loss`` double both strengths).
* Ridge and LogisticRegression put the penalty next to a *sum* over samples, and
  MLPClassifier divides its penalty by the batch size, so converting those needs
  ``n_samples``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from reglab._validation import Interval, check_int, check_scalar, fail

__all__ = [
    "Strengths",
    "from_keras",
    "from_sklearn_lasso",
    "to_sklearn_lasso",
    "from_sklearn_elastic_net",
    "to_sklearn_elastic_net",
    "from_glmnet",
    "to_glmnet",
    "from_weight_decay",
    "to_weight_decay",
    "from_ridge",
    "to_ridge",
    "from_logistic_regression",
    "to_logistic_regression",
    "from_mlp",
    "to_mlp",
]

_NONNEG = Interval(0, math.inf, closed="left")
_POS = Interval(0, math.inf, closed="neither")
_POS_C = Interval(0, math.inf, closed="right")  # C may be inf (scikit-learn: no penalty)
_RATIO = Interval(0, 1)


class Strengths(NamedTuple):
    """Keras-convention strengths: the penalty is ``l1·Σ|w| + l2·Σw²``."""

    l1: float
    l2: float


def _n(n_samples: int, owner: str) -> int:
    return check_int(n_samples, "n_samples", owner=owner, interval=Interval(1, None))


def _strengths(l1: float, l2: float, owner: str) -> tuple[float, float]:
    """reglab's ``(l1, l2)`` checked: finite, non-negative numbers."""
    return (check_scalar(l1, "l1", owner=owner, interval=_NONNEG),
            check_scalar(l2, "l2", owner=owner, interval=_NONNEG))


def _ratio(l1: float, l2: float, weight_l1: float, weight_l2: float) -> tuple[float, float]:
    """Split ``weight_l1·l1 + weight_l2·l2`` into (total, l1 share); share 1.0 when both are 0."""
    total = weight_l1 * l1 + weight_l2 * l2
    return total, (weight_l1 * l1 / total if total > 0 else 1.0)


def from_keras(l1: float = 0.0, l2: float = 0.0) -> Strengths:
    """Keras ``L1L2(l1, l2)``: ``l1·Σ|w| + l2·Σw²``, reglab's own convention, unchanged.

    Example:
        >>> from_keras(l1=0.01)
        Strengths(l1=0.01, l2=0.0)
    """
    return Strengths(
        check_scalar(l1, "l1", owner="from_keras", interval=_NONNEG),
        check_scalar(l2, "l2", owner="from_keras", interval=_NONNEG),
    )


def from_sklearn_lasso(alpha: float) -> Strengths:
    """scikit-learn ``Lasso(alpha)``: ``1/(2n)·RSS + alpha·||w||₁`` -> ``l1 = alpha``.

    Example:
        >>> from_sklearn_lasso(0.5)
        Strengths(l1=0.5, l2=0.0)
    """
    return Strengths(check_scalar(alpha, "alpha", owner="Lasso conversion", interval=_NONNEG), 0.0)


def to_sklearn_lasso(l1: float, l2: float) -> dict[str, float]:
    """Inverse of :func:`from_sklearn_lasso`; raises when ``l2 != 0`` (Lasso has no L2 term).

    Example:
        >>> to_sklearn_lasso(0.5, 0.0)
        {'alpha': 0.5}
    """
    l1, l2 = _strengths(l1, l2, "to_sklearn_lasso")
    if l2 != 0:
        raise fail("Lasso conversion", "l2", "0 (scikit-learn's Lasso has no L2 term; use ElasticNet)", l2)
    return {"alpha": l1}


def from_sklearn_elastic_net(alpha: float, l1_ratio: float = 0.5) -> Strengths:
    """scikit-learn ``ElasticNet``: ``1/(2n)·RSS + alpha·l1_ratio·||w||₁ + alpha·(1-l1_ratio)/2·||w||²``.

    So ``l1 = alpha·l1_ratio`` and ``l2 = alpha·(1 - l1_ratio)/2`` relative to ``0.5 * MSE``.

    Example:
        >>> from_sklearn_elastic_net(alpha=1.0, l1_ratio=0.5)
        Strengths(l1=0.5, l2=0.25)
    """
    alpha = check_scalar(alpha, "alpha", owner="ElasticNet.from_sklearn", interval=_NONNEG)
    l1_ratio = check_scalar(l1_ratio, "l1_ratio", owner="ElasticNet.from_sklearn", interval=_RATIO)
    return Strengths(alpha * l1_ratio, alpha * (1 - l1_ratio) / 2)


def to_sklearn_elastic_net(l1: float, l2: float) -> dict[str, float]:
    """Inverse of :func:`from_sklearn_elastic_net`: ``alpha = l1 + 2·l2``, ``l1_ratio = l1/alpha``.

    With no penalty at all, ``alpha = 0`` and any ``l1_ratio`` is equivalent; 1.0 is returned.

    Example:
        >>> to_sklearn_elastic_net(0.5, 0.25)
        {'alpha': 1.0, 'l1_ratio': 0.5}
    """
    l1, l2 = _strengths(l1, l2, "to_sklearn_elastic_net")
    alpha, ratio = _ratio(l1, l2, 1.0, 2.0)
    return {"alpha": alpha, "l1_ratio": ratio}


def from_glmnet(lambda_: float, alpha: float = 1.0, *, y_std: float = 1.0) -> Strengths:
    """glmnet ``(lambda, alpha)``: ``1/(2n)·RSS + λ[(1-α)/2·||β||² + α·||β||₁]`` (gaussian family).

    glmnet's gaussian fit always divides ``y`` by its standard deviation ``s`` (1/n
    formula, about the mean when it fits an intercept), solves with ``λ/s`` and scales
    the coefficients back (``vlam=ulam/ys`` in its Fortran), whatever ``standardize``
    says. In terms of the unscaled ``y`` the lasso part is unchanged and the ridge part
    is divided by ``s``: pass ``y_std=s`` to get ``l2 = λ(1-α)/(2s)``. The default 1
    is exact for an already standardized ``y`` and for the binomial family (mean
    log-loss, no scaling). glmnet's ``alpha`` is scikit-learn's ``l1_ratio`` and its
    ``lambda`` is scikit-learn's ``alpha``. See docs/conventions.md for ``X``.

    Example:
        >>> from_glmnet(lambda_=1.0, alpha=1.0)
        Strengths(l1=1.0, l2=0.0)
        >>> from_glmnet(lambda_=1.0, alpha=0.0, y_std=2.0)
        Strengths(l1=0.0, l2=0.25)
    """
    lambda_ = check_scalar(lambda_, "lambda_", owner="ElasticNet.from_glmnet", interval=_NONNEG)
    alpha = check_scalar(alpha, "alpha", owner="ElasticNet.from_glmnet", interval=_RATIO)
    y_std = check_scalar(y_std, "y_std", owner="ElasticNet.from_glmnet", interval=_POS)
    strengths = Strengths(lambda_ * alpha, lambda_ * (1 - alpha) / (2 * y_std))
    if math.isinf(strengths.l2):
        raise fail("ElasticNet.from_glmnet", "y_std", "large enough that λ(1-α)/(2·y_std) is finite", y_std)
    return strengths


def to_glmnet(l1: float, l2: float, *, y_std: float = 1.0) -> dict[str, float]:
    """Inverse of :func:`from_glmnet`: ``lambda = l1 + 2·y_std·l2``, ``alpha = l1/lambda``.

    Example:
        >>> to_glmnet(0.5, 0.25)
        {'lambda_': 1.0, 'alpha': 0.5}
    """
    l1, l2 = _strengths(l1, l2, "to_glmnet")
    y_std = check_scalar(y_std, "y_std", owner="to_glmnet", interval=_POS)
    lam, ratio = _ratio(l1, l2, 1.0, 2.0 * y_std)
    if math.isinf(lam):
        raise fail("to_glmnet", "l1 + 2·y_std·l2", "a finite float", lam)
    return {"lambda_": lam, "alpha": ratio}


def from_weight_decay(weight_decay: float) -> Strengths:
    """PyTorch coupled ``weight_decay`` (SGD, Adam, RMSprop: ``g <- g + wd·w``) is ``l2 = wd/2``.

    Not valid for ``AdamW``'s decoupled decay, which is no penalty at all (see
    :func:`reglab.optim.param_groups`).

    Example:
        >>> from_weight_decay(1e-4)
        Strengths(l1=0.0, l2=5e-05)
    """
    wd = check_scalar(weight_decay, "weight_decay", owner="L2.from_weight_decay", interval=_NONNEG)
    return Strengths(0.0, wd / 2)


def to_weight_decay(l1: float, l2: float) -> float:
    """Inverse of :func:`from_weight_decay`; raises for an L1 term (weight decay is L2 only).

    Example:
        >>> to_weight_decay(0.0, 5e-05)
        0.0001
    """
    l1, l2 = _strengths(l1, l2, "to_weight_decay")
    if l1 != 0:
        raise fail("to_weight_decay", "l1", "0 (PyTorch's weight_decay is an L2 penalty only)", l1)
    return 2 * l2


def from_ridge(alpha: float, n_samples: int) -> Strengths:
    """scikit-learn ``Ridge(alpha)``: ``||y - Xw||² + alpha·||w||²`` (sums, not means).

    Dividing by ``2n`` gives ``1/(2n)·RSS + alpha/(2n)·||w||²``, so ``l2 = alpha/(2n)``
    relative to ``0.5 * MSE``.

    Example:
        >>> from_ridge(10.0, n_samples=100)
        Strengths(l1=0.0, l2=0.05)
    """
    alpha = check_scalar(alpha, "alpha", owner="L2.from_ridge", interval=_NONNEG)
    return Strengths(0.0, alpha / (2 * _n(n_samples, "L2.from_ridge")))


def to_ridge(l1: float, l2: float, n_samples: int) -> dict[str, float]:
    """Inverse of :func:`from_ridge`: ``alpha = 2·n·l2``; raises for an L1 term.

    Example:
        >>> to_ridge(0.0, 0.05, n_samples=100)
        {'alpha': 10.0}
    """
    l1, l2 = _strengths(l1, l2, "to_ridge")
    if l1 != 0:
        raise fail("to_ridge", "l1", "0 (scikit-learn's Ridge has no L1 term)", l1)
    return {"alpha": 2 * _n(n_samples, "to_ridge") * l2}


def from_logistic_regression(C: float, n_samples: int, l1_ratio: float = 0.0) -> Strengths:
    """scikit-learn ``LogisticRegression(C, l1_ratio)``: ``C·Σ log-loss + (1-ρ)/2·||w||² + ρ·||w||₁``.

    Dividing by ``C·n`` gives the mean log-loss plus ``ρ/(C·n)·||w||₁ + (1-ρ)/(2·C·n)·||w||²``.
    ``C = inf`` is no penalty. (``penalty="l1"`` is ``l1_ratio=1``.)

    Example:
        >>> from_logistic_regression(C=1.0, n_samples=50)
        Strengths(l1=0.0, l2=0.01)
    """
    owner = "from_logistic_regression"
    C = check_scalar(C, "C", owner=owner, interval=_POS_C)
    n = _n(n_samples, owner)
    rho = check_scalar(l1_ratio, "l1_ratio", owner=owner, interval=_RATIO)
    strengths = Strengths(rho / (C * n), (1 - rho) / (2 * C * n))
    if math.isinf(strengths.l1) or math.isinf(strengths.l2):
        raise fail(owner, "C", f"large enough that 1/(C·n) is a finite float (n = {n})", C)
    return strengths


def to_logistic_regression(l1: float, l2: float, n_samples: int) -> dict[str, float]:
    """Inverse of :func:`from_logistic_regression`: ``1/C = n·(l1 + 2·l2)``; ``C = inf`` for no penalty.

    Example:
        >>> to_logistic_regression(0.0, 0.01, n_samples=50)
        {'C': 1.0, 'l1_ratio': 0.0}
    """
    l1, l2 = _strengths(l1, l2, "to_logistic_regression")
    total, ratio = _ratio(l1, l2, 1.0, 2.0)
    n = _n(n_samples, "to_logistic_regression")
    if total > 0 and math.isinf(1.0 / (n * total)):  # inf would read as "no penalty"
        allowed = f"large enough that 1/(n·(l1 + 2·l2)) is finite (n = {n})"
        raise fail("to_logistic_regression", "l1 + 2·l2", allowed, total)
    return {"C": 1.0 / (n * total) if total > 0 else math.inf, "l1_ratio": ratio if total > 0 else 0.0}


def from_mlp(alpha: float, n_samples: int) -> Strengths:
    """scikit-learn ``MLPClassifier/MLPRegressor(alpha)``: ``0.5·alpha·||W||²/n`` added to the mean loss.

    ``n`` is the number of samples in the batch the loss is computed on: the batch
    size for ``solver="sgd"``/``"adam"``, the training-set size for ``"lbfgs"``.
    So ``l2 = alpha/(2n)``.

    Example:
        >>> from_mlp(1e-4, n_samples=200)
        Strengths(l1=0.0, l2=2.5e-07)
    """
    alpha = check_scalar(alpha, "alpha", owner="L2.from_mlp", interval=_NONNEG)
    return Strengths(0.0, alpha / (2 * _n(n_samples, "L2.from_mlp")))


def to_mlp(l1: float, l2: float, n_samples: int) -> dict[str, float]:
    """Inverse of :func:`from_mlp`: ``alpha = 2·n·l2``; raises for an L1 term.

    Example:
        >>> to_mlp(0.0, 0.25, n_samples=200)
        {'alpha': 100.0}
    """
    l1, l2 = _strengths(l1, l2, "to_mlp")
    if l1 != 0:
        raise fail("to_mlp", "l1", "0 (scikit-learn's MLP alpha is an L2 penalty only)", l1)
    return {"alpha": 2 * _n(n_samples, "to_mlp") * l2}
