"""ranking: t-intervals and paired differences against hand computation; StudyData validation."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from reglab._validation import InvalidParameterError
from reglab.errors import UserError
from reglab.report.aggregate import StudyData, mean_curves, ranking

# t_{0.975, df=2} = 4.302652729749464 (tables); df=3: 3.182446305284263
T2, T3 = 4.302652729749464, 3.182446305284263


def _data(**kw) -> StudyData:
    acc = {("none", 0): 0.60, ("none", 1): 0.62, ("none", 2): 0.64,
           ("l2", 0): 0.65, ("l2", 1): 0.66, ("l2", 2): 0.70, ("l2", 3): 0.99}
    trials = pd.DataFrame([{"trial_id": i, "recipe": r, "seed": s} for i, (r, s) in enumerate(acc)])
    results = pd.DataFrame({"trial_id": range(len(acc)), "test_accuracy": list(acc.values())})
    epochs = pd.DataFrame({"trial_id": [0, 1, 0, 1], "epoch": [0, 0, 1, 1],
                           "train_loss": [1.0, 3.0, 0.5, 0.7], "val_loss": [2.0, 2.0, 1.0, 1.2]})
    return StudyData("s", trials, epochs, results, **kw)


def test_mean_ci_and_paired_difference_by_hand():
    r = ranking(_data(baseline="none")).set_index("recipe")
    # none: mean 0.62, sd 0.02, half = t * sd / sqrt(3)
    assert r.loc["none", "mean"] == pytest.approx(0.62)
    assert r.loc["none", "ci_high"] - 0.62 == pytest.approx(T2 * 0.02 / math.sqrt(3))
    # l2 has 4 trials: its own CI uses all 4 (df 3) ...
    vals = [0.65, 0.66, 0.70, 0.99]
    m = sum(vals) / 4
    sd = math.sqrt(sum((v - m) ** 2 for v in vals) / 3)
    assert r.loc["l2", "n"] == 4 and r.loc["l2", "mean"] == pytest.approx(m)
    assert r.loc["l2", "ci_low"] == pytest.approx(m - T3 * sd / 2)
    # ... but the paired difference uses only seeds shared with the baseline: 0.05, 0.04, 0.06.
    assert r.loc["l2", "pairs"] == 3 and r.loc["l2", "diff"] == pytest.approx(0.05)
    assert r.loc["l2", "diff_high"] - 0.05 == pytest.approx(T2 * 0.01 / math.sqrt(3))
    # paired t = mean / (sd / sqrt(n)) = 0.05 / (0.01 / sqrt(3)); two-sided p with df 2
    from scipy import stats
    assert r.loc["l2", "p_value"] == pytest.approx(2 * stats.t.sf(0.05 / (0.01 / math.sqrt(3)), 2))
    assert list(r.index) == ["l2", "none"]  # higher is better


@pytest.mark.parametrize("metric", ["test_accuracy", "test_loss", "test_score"])
def test_two_seed_intervals_are_clipped_to_the_metrics_range(metric):
    """A report's ranking gave an accuracy a t-interval past 1 and a difference of accuracies one past +-1."""
    values = {("none", 0): 0.2, ("none", 1): 0.5, ("l2", 0): 1.0, ("l2", 1): 0.9}
    trials = pd.DataFrame([{"trial_id": i, "recipe": r, "seed": s} for i, (r, s) in enumerate(values)])
    results = pd.DataFrame({"trial_id": range(4), metric: list(values.values())})
    epochs = pd.DataFrame({"trial_id": [0], "epoch": [0], "train_loss": [1.0], "val_loss": [1.0]})
    r = ranking(StudyData("s", trials, epochs, results, metric=metric, baseline="none")).set_index("recipe")
    t = math.tan(0.475 * math.pi)  # t_{0.975, 1 df} = 12.706
    # l2: 0.95 -+ t * 0.05; none: 0.35 -+ t * 0.15; l2 - none (0.8, 0.4): 0.6 -+ t * 0.2.
    raw = {"l2": (0.95 - t * 0.05, 0.95 + t * 0.05), "none": (0.35 - t * 0.15, 0.35 + t * 0.15),
           "diff": (0.6 - t * 0.2, 0.6 + t * 0.2)}
    if metric == "test_accuracy":
        want = {"l2": (raw["l2"][0], 1.0), "none": (0.0, 1.0), "diff": (-1.0, 1.0)}
    elif metric == "test_loss":  # >= 0; a difference of losses is unbounded
        want = {"l2": raw["l2"], "none": (0.0, raw["none"][1]), "diff": raw["diff"]}
    else:  # a metric of unknown range: as computed
        want = raw
    assert tuple(r.loc["l2", ["ci_low", "ci_high"]]) == pytest.approx(want["l2"])
    assert tuple(r.loc["none", ["ci_low", "ci_high"]]) == pytest.approx(want["none"])
    assert tuple(r.loc["l2", ["diff", "diff_low", "diff_high"]]) == pytest.approx((0.6, *want["diff"]))
    assert tuple(r.loc[["l2", "none"], "mean"]) == pytest.approx((0.95, 0.35))


def test_lower_is_better_reverses_the_order():
    d = _data()
    d.higher_is_better = False
    assert ranking(d)["recipe"].tolist() == ["none", "l2"]


def test_mean_curves_average_over_trials():
    c = mean_curves(_data())
    assert c.loc[c["epoch"] == 0, "train_loss"].item() == 2.0
    assert c.loc[c["epoch"] == 1, "val_loss"].item() == pytest.approx(1.1)


def test_bad_study_data_is_one_line():
    d = _data()
    with pytest.raises(UserError, match=r"StudyData.trials lacks column\(s\) seed"):
        StudyData("s", d.trials.drop(columns="seed"), d.epochs, d.results)
    with pytest.raises(UserError, match=r"ranking metric 'acc' is not a results column"):
        StudyData("s", d.trials, d.epochs, d.results, metric="acc")
    with pytest.raises(UserError, match=r"baseline recipe 'base' is not in the study \(recipes: none, l2\)"):
        StudyData("s", d.trials, d.epochs, d.results, baseline="base")
    with pytest.raises(InvalidParameterError, match=r"'confidence' parameter of ranking must be a float"):
        ranking(d, confidence=1.5)


def test_equal_means_rank_by_name_and_recipes_without_a_mean_last():
    """The order of `reglab study` and `reglab show` (rank_recipes): ties went by first appearance."""
    names = ["zz", "none", "mm", "aa"]
    acc = {"zz": 0.7, "none": 0.6, "mm": float("nan"), "aa": 0.7}
    trials = pd.DataFrame([{"trial_id": i, "recipe": r, "seed": 0} for i, r in enumerate(names)])
    results = pd.DataFrame({"trial_id": range(4), "test_accuracy": [acc[r] for r in names]})
    epochs = pd.DataFrame({"trial_id": [0], "epoch": [0], "train_loss": [1.0], "val_loss": [1.0]})
    data = StudyData("s", trials, epochs, results)
    assert ranking(data)["recipe"].tolist() == ["aa", "zz", "none", "mm"]
    data.higher_is_better = False
    assert ranking(data)["recipe"].tolist() == ["none", "aa", "zz", "mm"]
