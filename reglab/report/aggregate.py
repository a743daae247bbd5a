"""The report's data interface (:class:`StudyData`) and its statistics (ranking with CIs, paired tests).

A report is built only from a :class:`StudyData`: plain pandas tables, so any source (the
study storage, a test, a notebook) can produce one.

Tables and their columns (``[...]`` = optional):

* ``trials``: ``trial_id, recipe, seed, [fold], [norm], [penalty], [strength]``
* ``epochs``: ``trial_id, epoch, train_loss, val_loss, [train_accuracy, val_accuracy]``
* ``results``: ``trial_id, <metric>, [best_epoch], [weight_norm], [zero_fraction]``

Example:
    >>> import pandas as pd
    >>> trials = pd.DataFrame({"trial_id": [0, 1, 2, 3], "recipe": ["none", "none", "l2", "l2"],
    ...                        "seed": [0, 1, 0, 1]})
    >>> results = pd.DataFrame({"trial_id": [0, 1, 2, 3], "test_accuracy": [0.60, 0.62, 0.65, 0.66]})
    >>> epochs = pd.DataFrame({"trial_id": [0], "epoch": [0], "train_loss": [1.0], "val_loss": [1.1]})
    >>> data = StudyData("demo", trials, epochs, results, baseline="none")
    >>> ranking(data)[["recipe", "n", "mean"]].round(3).values.tolist()
    [['l2', 2, 0.655], ['none', 2, 0.61]]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from reglab._validation import Interval, check_scalar
from reglab.errors import UserError
from reglab.study.stats import kfold_test_to_train, mean_ci, paired_comparison
from reglab.study.summary import rank_recipes

__all__ = ["StudyData", "ranking", "recipe_order", "mean_curves", "shared_mean_curves"]

_REQUIRED = {
    "trials": ("trial_id", "recipe", "seed"),
    "epochs": ("trial_id", "epoch", "train_loss", "val_loss"),
    "results": ("trial_id",),
}


@dataclass
class StudyData:
    """Everything a report shows, as tables (see the module docstring for the columns).

    Args:
        name: the study's name.
        trials, epochs, results: the tables.
        metric: the result column that ranks recipes.
        higher_is_better: whether a larger ``metric`` is better.
        baseline: the recipe every other recipe is compared with (paired by seed and fold).
        weights: recipe -> final weight values of one trial (for the histograms).
        histograms: recipe -> a binned histogram of one trial's weights, ``{"edges", "counts",
            "zeros", "total"}`` (what a study stores); drawn when ``weights`` is empty.
        selection: what each recipe regularized: ``recipe, regularizer, tensors, parameters, names``.
        paths: regularization-path points ``penalty, strength, <metrics...>``; when ``None``
            they come from ``trials.penalty`` / ``trials.strength`` joined with ``results``.
        config: the study configuration; versions: package versions; both shown verbatim.
        unfinished: recipes of the study with no trial in these tables (no finished final trial), each
            with the reason, e.g. ``{"big_lr": "no candidate finished (diverged)"}``: the ranking lists
            them last, without a rank, so a recipe never disappears from the report without a word.
    """

    name: str
    trials: pd.DataFrame
    epochs: pd.DataFrame
    results: pd.DataFrame
    metric: str = "test_accuracy"
    higher_is_better: bool = True
    baseline: str | None = None
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    histograms: dict[str, dict[str, Any]] = field(default_factory=dict)
    selection: pd.DataFrame | None = None
    paths: pd.DataFrame | None = None
    config: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    unfinished: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for table, cols in _REQUIRED.items():
            frame = getattr(self, table)
            if not isinstance(frame, pd.DataFrame):
                raise UserError(f"StudyData.{table} must be a pandas DataFrame, got {type(frame).__name__}.")
            missing = [c for c in cols if c not in frame.columns]
            if missing:
                raise UserError(
                    f"StudyData.{table} lacks column(s) {', '.join(missing)} "
                    f"(has: {', '.join(map(str, frame.columns))})."
                )
        if self.metric not in self.results.columns:
            raise UserError(
                f"the ranking metric {self.metric!r} is not a results column "
                f"(has: {', '.join(map(str, self.results.columns))}); pick one of those."
            )
        recipes = self.recipes
        both = sorted(set(recipes) & set(self.unfinished))
        if both:
            raise UserError(f"StudyData.unfinished lists recipe(s) that have trials: {', '.join(both)}; "
                            "unfinished is for recipes without any.")
        if self.baseline is not None and self.baseline not in [*recipes, *self.unfinished]:
            raise UserError(
                f"baseline recipe {self.baseline!r} is not in the study (recipes: {', '.join(recipes)})."
            )

    @property
    def recipes(self) -> list[str]:
        """Recipe names in order of first appearance."""
        return list(dict.fromkeys(self.trials["recipe"].astype(str)))

    def joined(self) -> pd.DataFrame:
        """``results`` joined with ``trials`` on ``trial_id``."""
        return self.trials.merge(self.results, on="trial_id", how="inner")


def _values(data: StudyData) -> tuple[list[str], dict[str, dict[Any, float]]]:
    """The pairing keys and each recipe's metric by key (``(seed,)`` or ``(seed, fold)``)."""
    joined = data.joined()
    keys = ["seed"] + (["fold"] if "fold" in joined.columns else [])
    recipe = joined["recipe"].astype(str)
    values = {}
    for name in data.recipes:
        sub = joined[recipe == name]
        pairs = zip(sub[keys].itertuples(index=False), sub[data.metric])
        values[name] = {tuple(k): float(v) for k, v in pairs}
    return keys, values


def _fold_ratio(data: StudyData) -> float:
    """``1 / (k - 1)`` for scores of k >= 2 cross-validation folds (fold ids >= 0), else 0: a study's
    final trials carry fold -1, one per seed, and train on the same data."""
    folds = {int(f) for f in data.joined()["fold"].dropna() if int(f) >= 0}
    return kfold_test_to_train(len(folds))


def recipe_order(data: StudyData) -> list[str]:
    """``data.recipes`` in the ranking's order (:func:`ranking`): best mean first, equal means by name,
    recipes without a mean last (by name). The report's tables and charts all use it.

    Example:
        >>> import pandas as pd
        >>> t = pd.DataFrame({"trial_id": [0, 1, 2], "recipe": ["none", "l2", "l1"], "seed": [0, 0, 0]})
        >>> r = pd.DataFrame({"trial_id": [0, 1, 2], "test_mse": [0.5, 0.4, 0.6]})
        >>> e = pd.DataFrame({"trial_id": [0], "epoch": [0], "train_loss": [1.0], "val_loss": [1.0]})
        >>> recipe_order(StudyData("s", t, e, r, metric="test_mse", higher_is_better=False))
        ['l2', 'none', 'l1']
    """
    _, values = _values(data)
    means = {name: mean_ci(list(v.values()))["mean"] for name, v in values.items()}
    return rank_recipes(means, lower_is_better=not data.higher_is_better)


def ranking(data: StudyData, *, confidence: float = 0.95) -> pd.DataFrame:
    """Rank recipes by the mean metric, with a Student-t CI and a paired comparison to the baseline.

    The order is :func:`reglab.study.summary.rank_recipes` (best mean first, equal means by name,
    recipes without a mean last, by name), as in ``reglab study`` and ``reglab show``; the recipes of
    ``data.unfinished`` are among those last ones, with ``n`` 0 and no mean.

    The statistics are the study's own (:mod:`reglab.study.stats`): the difference to the
    baseline pairs trials by ``seed`` (and ``fold`` when present) and reports the mean paired
    difference, its t CI and the paired t-test p-value (``scipy.stats.ttest_rel``). Intervals are
    clipped to the metric's range (:func:`reglab.study.schema.metric_range`): an accuracy's to
    [0, 1] and a difference of accuracies to [-1, 1], a loss's to >= 0. Scores of k >= 2
    cross-validation folds (``fold`` 0..k-1) share training data: their intervals and tests take
    Nadeau and Bengio's correction with ``test_to_train = 1 / (k - 1)`` (:func:`~reglab.study.stats.mean_ci`).

    Returns:
        Columns ``recipe, n, mean, ci_low, ci_high, diff, diff_low, diff_high, p_value, pairs``.
    """
    confidence = check_scalar(confidence, "confidence", owner="ranking", interval=Interval(0, 1, "neither"))
    keys, values = _values(data)
    ratio = _fold_ratio(data) if "fold" in keys else 0.0
    values |= {name: {} for name in data.unfinished}
    base = values.get(data.baseline) if data.baseline is not None else None
    rows = []
    for recipe, by_key in values.items():
        ci = mean_ci(list(by_key.values()), confidence, metric=data.metric, test_to_train=ratio)
        row = {"recipe": recipe, "n": ci["n"], "mean": ci["mean"], "ci_low": ci["low"], "ci_high": ci["high"],
               "diff": np.nan, "diff_low": np.nan, "diff_high": np.nan, "p_value": np.nan, "pairs": 0}
        if base is not None and recipe != data.baseline:
            d = paired_comparison(by_key, base, confidence, metric=data.metric, test_to_train=ratio)
            row.update(diff=d["diff"], diff_low=d["low"], diff_high=d["high"], p_value=d["p"], pairs=d["n"])
        rows.append(row)
    order = rank_recipes({r["recipe"]: r["mean"] for r in rows}, lower_is_better=not data.higher_is_better)
    by_name = {r["recipe"]: r for r in rows}
    columns = ["recipe", "n", "mean", "ci_low", "ci_high", "diff", "diff_low", "diff_high", "p_value",
               "pairs"]
    return pd.DataFrame([by_name[name] for name in order], columns=columns)


def mean_curves(data: StudyData, by: str = "recipe") -> pd.DataFrame:
    """Per-epoch mean of every numeric epoch column, grouped by a ``trials`` column.

    Example:
        >>> import pandas as pd
        >>> t = pd.DataFrame({"trial_id": [0, 1], "recipe": ["a", "a"], "seed": [0, 1]})
        >>> e = pd.DataFrame({"trial_id": [0, 1], "epoch": [0, 0], "train_loss": [1.0, 3.0],
        ...                   "val_loss": [2.0, 2.0]})
        >>> r = pd.DataFrame({"trial_id": [0, 1], "test_accuracy": [0.5, 0.5]})
        >>> mean_curves(StudyData("s", t, e, r))["train_loss"].tolist()
        [2.0]
    """
    if by not in data.trials.columns:
        raise UserError(f"trials have no column {by!r} to group curves by.")
    merged = data.epochs.merge(data.trials[["trial_id", by]], on="trial_id")
    numeric = [
        c
        for c in merged.columns
        if c not in ("trial_id", by, "epoch") and pd.api.types.is_numeric_dtype(merged[c])
    ]
    return merged.groupby([by, "epoch"], sort=False)[numeric].mean().reset_index()


def shared_mean_curves(data: StudyData, by: str = "recipe") -> pd.DataFrame:
    """:func:`mean_curves` over only the epochs that every trial of the group reached, with ``trials``.

    Early stopping ends trials at different epochs: past the first stop a plain mean is over the trials
    still running and steps where one drops out (a survivor bias). Here each group's mean ends at the
    last epoch all its trials logged; ``trials`` is how many trials each mean covers.

    Example:
        >>> import pandas as pd
        >>> t = pd.DataFrame({"trial_id": [0, 1], "recipe": ["a", "a"], "seed": [0, 1]})
        >>> e = pd.DataFrame({"trial_id": [0, 0, 1], "epoch": [0, 1, 0], "train_loss": [1.0, 0.5, 3.0],
        ...                   "val_loss": [2.0, 1.0, 2.0]})
        >>> r = pd.DataFrame({"trial_id": [0, 1], "test_accuracy": [0.5, 0.5]})
        >>> shared_mean_curves(StudyData("s", t, e, r))[["epoch", "train_loss", "trials"]].values.tolist()
        [[0.0, 2.0, 2.0]]
    """
    curves = mean_curves(data, by=by)
    merged = data.epochs.merge(data.trials[["trial_id", by]], on="trial_id")
    runs = merged.groupby(by, sort=False)["trial_id"].nunique()
    reached = merged.groupby([by, "epoch"], sort=False)["trial_id"].nunique()
    counts = reached.reindex(pd.MultiIndex.from_frame(curves[[by, "epoch"]])).to_numpy()
    keep = counts == runs.reindex(curves[by]).to_numpy()
    return curves[keep].assign(trials=counts[keep]).reset_index(drop=True)
