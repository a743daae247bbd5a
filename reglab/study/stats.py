"""Summary statistics of a study: t-intervals and paired comparisons (scipy).

Given the metric's name, an interval is clipped to the values the metric can take
(:func:`reglab.study.schema.metric_range`): with 2 seeds a t-interval of an accuracy easily passes 1.

Example:
    >>> s = mean_ci([0.70, 0.72, 0.74])
    >>> round(s["mean"], 2), round(s["low"], 3), round(s["high"], 3)
    (0.72, 0.67, 0.77)
    >>> s = mean_ci([0.9, 1.0], metric="test_accuracy")   # the t-interval is [0.315, 1.585]
    >>> round(s["low"], 3), s["high"]
    (0.315, 1.0)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

from reglab._validation import Interval, check_scalar
from reglab.study.schema import metric_range

__all__ = ["mean_ci", "paired_comparison", "kfold_test_to_train"]


def mean_ci(values: Sequence[float], confidence: float = 0.95, *, metric: str | None = None,
            test_to_train: float = 0.0) -> dict[str, Any]:
    """Mean and two-sided t-interval over ``values`` (seeds, or seeds x folds).

    With one value, or values without spread (equal up to rounding), the interval is undefined and
    reported as ``nan`` (as ``scipy.stats.t.interval`` gives it for a zero spread). With ``metric``,
    the interval is clipped to the metric's range (:func:`~reglab.study.schema.metric_range`:
    an accuracy's to [0, 1], a loss's to >= 0); the mean is left as it is. ``confidence`` is a
    fraction in (0, 1), e.g. 0.95.

    ``test_to_train`` is, for values from cross-validation folds, each fold's validation size over
    its training size (``1 / (k - 1)`` for k folds; 0, the default, for independent values). Folds
    share most of their training data, so their scores are correlated and the plain ``s / sqrt(n)``
    understates the spread; the standard error is then Nadeau and Bengio's corrected one
    (Machine Learning 52, 2003; "corrected repeated k-fold" in Bouckaert and Frank, 2004):
    ``s * sqrt(1 / n + test_to_train)``, with ``n - 1`` degrees of freedom.
    """
    confidence = _check_confidence(confidence, "mean_ci")
    ratio = _check_ratio(test_to_train, "mean_ci")
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    n = int(x.size)
    if n == 0:
        return {"mean": math.nan, "low": math.nan, "high": math.nan, "n": 0, "std": math.nan}
    mean = float(x.mean())
    if n < 2:
        return {"mean": mean, "low": math.nan, "high": math.nan, "n": n, "std": math.nan}
    sem = float(stats.sem(x)) if ratio == 0 else float(x.std(ddof=1)) * math.sqrt(1 / n + ratio)
    if _no_spread(x):  # scipy's t-interval is undefined (nan) there, not a zero-width certainty
        low = high = math.nan
    else:
        low, high = (float(v) for v in stats.t.interval(confidence, n - 1, loc=mean, scale=sem))
        low, high = _clip(low, high, metric_range(metric) if metric else (-math.inf, math.inf))
    return {"mean": mean, "low": low, "high": high, "n": n, "std": float(x.std(ddof=1))}


def paired_comparison(
    treatment: Mapping[Any, float], baseline: Mapping[Any, float], confidence: float = 0.95, *,
    metric: str | None = None, test_to_train: float = 0.0,
) -> dict[str, Any]:
    """Paired difference ``treatment - baseline`` over the keys both share (seed, or (seed, fold)).

    Returns the mean difference, its t-interval, the paired t-test p-value
    (``scipy.stats.ttest_rel``) and the number of pairs. With ``metric``, the interval is clipped to
    the differences the metric allows: [-1, 1] for an accuracy; a loss's differences are unbounded.
    With ``test_to_train`` > 0 (pairs from cross-validation folds, see :func:`mean_ci`) the interval
    and the p-value are Nadeau and Bengio's corrected resampled t-test's.

    Example:
        >>> r = paired_comparison({0: 0.8, 1: 0.9, 2: 0.85}, {0: 0.7, 1: 0.8, 2: 0.76})
        >>> round(r["diff"], 3), r["n"]
        (0.097, 3)
    """
    confidence = _check_confidence(confidence, "paired_comparison")
    ratio = _check_ratio(test_to_train, "paired_comparison")
    keys = sorted(
        k for k in treatment
        if k in baseline and _finite(treatment[k]) and _finite(baseline[k])
    )
    a = np.asarray([treatment[k] for k in keys], dtype=float)
    b = np.asarray([baseline[k] for k in keys], dtype=float)
    ci = mean_ci(list(a - b), confidence, test_to_train=ratio)
    if metric:
        low, high = metric_range(metric)
        ci["low"], ci["high"] = _clip(ci["low"], ci["high"], (low - high, high - low))
    # Undefined without spread: scipy gives nan when every pair is equal, but p = 0 for a constant
    # shift, a certainty that 2 seeds moving by the same rounded amount do not give.
    undefined = len(keys) < 2 or _no_spread(a - b)
    if undefined:
        p = math.nan
    elif ratio == 0:
        p = float(stats.ttest_rel(a, b).pvalue)
    else:  # the corrected statistic, mean / (s * sqrt(1/n + ratio)), on n - 1 degrees of freedom
        d, n = a - b, len(keys)
        t = float(d.mean()) / (float(d.std(ddof=1)) * math.sqrt(1 / n + ratio))
        p = float(2 * stats.t.sf(abs(t), n - 1))
    return {"diff": ci["mean"], "low": ci["low"], "high": ci["high"], "p": p, "n": len(keys)}


def kfold_test_to_train(folds: int) -> float:
    """``test_to_train`` for scores of ``folds``-fold cross-validation: each fold validates on 1/k of the
    pool and trains on the rest, so ``1 / (k - 1)``; 0 for one fold (a hold-out split, nothing shared).

    Example:
        >>> kfold_test_to_train(5), kfold_test_to_train(1)
        (0.25, 0.0)
    """
    return 1 / (folds - 1) if folds > 1 else 0.0


def _check_confidence(confidence: Any, owner: str) -> float:
    # 95 for 95 % reached scipy, which named its own 'alpha'; 0 gave a zero-width interval.
    return check_scalar(confidence, "confidence", owner=owner, interval=Interval(0, 1, closed="neither"))


def _check_ratio(test_to_train: Any, owner: str) -> float:
    return check_scalar(test_to_train, "test_to_train", owner=owner, interval=Interval(0, None))


def _clip(low: float, high: float, bounds: tuple[float, float]) -> tuple[float, float]:
    """``[low, high]`` within ``bounds``; an undefined (nan) interval stays undefined."""
    if math.isnan(low) or math.isnan(high):
        return low, high
    return max(low, bounds[0]), min(high, bounds[1])


def _finite(v: Any) -> bool:
    return v is not None and math.isfinite(v)


def _no_spread(x: np.ndarray) -> bool:
    """All values equal up to rounding (a spread of 1e-12 relative): no interval or test is defined."""
    return float(x.max() - x.min()) <= 1e-12 * max(1.0, float(np.abs(x).max()))
