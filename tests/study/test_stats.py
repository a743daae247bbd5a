"""t-intervals and paired comparisons against hand computations and scipy's own tests."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from reglab.study.stats import mean_ci, paired_comparison


def test_mean_ci_matches_the_t_formula():
    x = [0.61, 0.64, 0.66, 0.70]
    s = mean_ci(x)
    sd = np.std(x, ddof=1)
    half = stats.t.ppf(0.975, df=3) * sd / math.sqrt(4)  # 3.182... * sd / 2
    assert s["mean"] == pytest.approx(np.mean(x), abs=1e-15)
    assert (s["low"], s["high"]) == pytest.approx((np.mean(x) - half, np.mean(x) + half), abs=1e-12)
    assert s["n"] == 4 and s["std"] == pytest.approx(sd)


def test_mean_ci_hand_case():
    # mean 2, sd 1, n 3: half-width t(0.975, 2) / sqrt(3) = 4.302652729911275 / 1.7320508 = 2.4841377...
    s = mean_ci([1.0, 2.0, 3.0])
    assert s["high"] - 2.0 == pytest.approx(2.484137, abs=1e-6)


def test_mean_ci_degenerate_cases():
    assert mean_ci([0.5])["mean"] == 0.5 and math.isnan(mean_ci([0.5])["low"])
    assert mean_ci([])["n"] == 0
    # No spread (here 0.7 * 3 / 3 leaves a rounding-level one): no interval, as scipy for a zero spread.
    assert math.isnan(mean_ci([0.7, 0.7, 0.7])["low"]) and mean_ci([0.7, 0.7, 0.7])["std"] < 1e-15
    with np.errstate(invalid="ignore"):
        assert all(math.isnan(v) for v in stats.t.interval(0.95, 2, loc=0.7, scale=0.0))
    assert mean_ci([0.5, None, float("nan"), 0.7])["n"] == 2


def test_paired_comparison_matches_ttest_rel():
    rng = np.random.default_rng(0)
    keys = [(s, f) for s in range(3) for f in range(3)]
    base = {k: float(v) for k, v in zip(keys, rng.random(9))}
    treat = {k: v + 0.05 + 0.02 * rng.standard_normal() for k, v in base.items()}
    r = paired_comparison(treat, base)
    keys = sorted(base)
    ref = stats.ttest_rel([treat[k] for k in keys], [base[k] for k in keys])
    assert r["p"] == pytest.approx(ref.pvalue, rel=1e-12)
    assert r["n"] == 9
    assert r["diff"] == pytest.approx(np.mean([treat[k] - base[k] for k in keys]))
    ci = ref.confidence_interval(0.95)
    assert (r["low"], r["high"]) == pytest.approx((ci.low, ci.high), rel=1e-10)


def test_paired_comparison_uses_only_shared_keys():
    r = paired_comparison({0: 0.8, 1: 0.9, 2: None}, {0: 0.7, 1: 0.7, 3: 0.1})
    assert r["n"] == 2 and r["diff"] == pytest.approx(0.15)
    same = paired_comparison({0: 0.8, 1: 0.9}, {0: 0.8, 1: 0.9})
    assert same["diff"] == 0.0 and math.isnan(same["p"])  # as scipy.stats.ttest_rel
    assert math.isnan(stats.ttest_rel([0.8, 0.9], [0.8, 0.9]).pvalue)
    # Every seed moved by the same amount: no interval and no p (scipy's t = inf, p = 0 is no evidence).
    shift = paired_comparison({0: 0.81, 1: 0.91, 2: 0.71}, {0: 0.8, 1: 0.9, 2: 0.7})
    assert shift["diff"] == pytest.approx(0.01) and math.isnan(shift["low"]) and math.isnan(shift["p"])


def test_the_verdict_claims_nothing_when_every_pair_moved_by_the_same_amount():
    from reglab.study.summary import verdict_line

    ok = {"status": "ok", "best_params": {}}
    shift = paired_comparison({0: 0.81, 1: 0.91}, {0: 0.8, 1: 0.9})
    summary = {"test_metric": "test_accuracy", "baseline": "none", "recipes": {
        "none": {**ok, "test": mean_ci([0.8, 0.9])},
        "l2": {**ok, "test": mean_ci([0.81, 0.91]), "vs_baseline": {"test": shift}}}}
    line = verdict_line(summary)
    assert "p = -" in line and "not distinguishable from none (every pair differs by the same amount" in line
    assert "CI excludes 0" not in line


def test_the_verdict_says_identical_when_every_pair_differs_by_zero():
    """A recipe identical to the baseline on every seed: "add seeds" was wrong; more seeds cannot help."""
    from reglab.study.summary import verdict_line

    ok = {"status": "ok", "best_params": {}}
    same = paired_comparison({0: 0.8, 1: 0.9}, {0: 0.8, 1: 0.9})
    summary = {"test_metric": "test_accuracy", "baseline": "none", "recipes": {
        "none": {**ok, "test": mean_ci([0.8, 0.9])},
        "l2": {**ok, "test": mean_ci([0.8, 0.9]), "vs_baseline": {"test": same}}}}
    line = verdict_line(summary)
    assert line.endswith("; identical to none on every seed (no interval; more seeds cannot separate them)")
    assert "add seeds" not in line and "differs by the same amount" not in line and "nan" not in line


def test_the_verdict_with_only_the_baseline_or_one_seed_reads_right():
    """'best recipe: none ((none)) ... (no finished baseline 'none' ...)' when the baseline was the only
    recipe; '1 pairs' and 'CI includes 0' with one seed, where there is no interval."""
    from reglab.study.summary import verdict_line

    ok = {"status": "ok", "best_params": {}}
    only = {"test_metric": "test_accuracy", "baseline": "none",
            "recipes": {"none": {**ok, "test": mean_ci([0.7])}}}
    line = verdict_line(only)
    assert line.startswith("best recipe: none, test_accuracy 0.700") and "((none))" not in line
    assert line.endswith("(the baseline; no other recipe finished to compare with it)")
    one = paired_comparison({0: 0.75}, {0: 0.7})
    summary = {"test_metric": "test_accuracy", "baseline": "none", "recipes": {
        "none": {**ok, "test": mean_ci([0.7])},
        "l2": {"status": "ok", "best_params": {"l2": 0.01}, "test": mean_ci([0.75]),
               "vs_baseline": {"test": one}}}}
    line = verdict_line(summary)
    assert "(paired by seed, 1 pair);" in line and "CI includes 0" not in line
    assert line.endswith("not distinguishable from none (one seed: no interval; add seeds)")


# With 2 seeds the t-quantile has 1 degree of freedom, a Cauchy's: t_{0.975, 1} = tan(0.475 pi) = 12.7062...
T1 = math.tan(0.475 * math.pi)


def test_two_seed_intervals_are_clipped_to_the_metrics_range():
    # Accuracies 0.9 and 1.0: mean 0.95, sem 0.05, t-interval 0.95 -+ 0.635 = [0.315, 1.585]; 1 is the top.
    acc = mean_ci([0.9, 1.0], metric="test_accuracy")
    assert acc["mean"] == pytest.approx(0.95) and acc["std"] == pytest.approx(math.sqrt(0.005))
    assert (acc["low"], acc["high"]) == (pytest.approx(0.95 - T1 * 0.05), 1.0)
    assert mean_ci([0.9, 1.0])["high"] == pytest.approx(0.95 + T1 * 0.05)  # no metric: unclipped
    # Losses 0.1 and 0.5: mean 0.3, sem 0.2, [-2.24, 2.84]; a loss is never negative.
    loss = mean_ci([0.1, 0.5], metric="val_loss")
    assert (loss["low"], loss["high"]) == (0.0, pytest.approx(0.3 + T1 * 0.2))
    assert mean_ci([0.1, 0.5], metric="test_mse")["low"] == 0.0
    assert mean_ci([0.0, 0.3], metric="zero_fraction")["low"] == 0.0
    assert mean_ci([0.1, 0.5], metric="weight_norm")["low"] == 0.0
    # An unbounded metric keeps its t-interval: -1 -+ t * 2.
    r2 = mean_ci([-3.0, 1.0], metric="val_r2")
    assert (r2["low"], r2["high"]) == pytest.approx((-1.0 - T1 * 2.0, -1.0 + T1 * 2.0))
    # No spread: still no interval (nan), not a clipped one.
    assert math.isnan(mean_ci([1.0, 1.0], metric="test_accuracy")["low"])


def test_two_seed_paired_differences_of_accuracies_are_clipped_to_plus_minus_1():
    # Differences 1.0 - 0.2 = 0.8 and 0.9 - 0.5 = 0.4: mean 0.6, sem 0.2, [-1.94, 3.14].
    treat, base = {0: 1.0, 1: 0.9}, {0: 0.2, 1: 0.5}
    d = paired_comparison(treat, base, metric="test_accuracy")
    plain = paired_comparison(treat, base)
    assert (d["diff"], d["low"], d["high"], d["n"]) == (pytest.approx(0.6), -1.0, 1.0, 2)
    assert (plain["low"], plain["high"]) == pytest.approx((0.6 - T1 * 0.2, 0.6 + T1 * 0.2))
    assert d["p"] == plain["p"] == pytest.approx(stats.ttest_rel([1.0, 0.9], [0.2, 0.5]).pvalue)
    # A difference of two losses can be anything: unclipped.
    loss = paired_comparison(treat, base, metric="val_loss")
    assert (loss["low"], loss["high"]) == pytest.approx((plain["low"], plain["high"]))


@pytest.mark.parametrize(("metric", "none", "es", "lower"), [
    ("test_accuracy", [0.97, 0.96, 0.965], [0.962, 0.963, 0.964], False),
    ("test_mse", [0.40, 0.42, 0.41], [0.43, 0.44, 0.42], True),
])
def test_the_verdict_says_when_the_baseline_has_the_best_mean(metric, none, es, lower):
    """'best recipe: es ...' was printed under a results table that listed none first (none's mean higher)."""
    from reglab.study.summary import rank_recipes, verdict_line

    ok = {"status": "ok"}
    cmp = paired_comparison(dict(enumerate(es)), dict(enumerate(none)))
    summary = {"test_metric": metric, "baseline": "none", "lower_is_better": lower, "recipes": {
        "none": {**ok, "best_params": {}, "test": mean_ci(none)},
        "es": {**ok, "best_params": {"dropout": 0.1}, "test": mean_ci(es), "vs_baseline": {"test": cmp}}}}
    assert rank_recipes({"none": np.mean(none), "es": np.mean(es)}, lower_is_better=lower)[0] == "none"
    line = verdict_line(summary)
    head = ("best recipe: none (the baseline: no other recipe has a better mean); "
            "next best: es (dropout=0.1), ")
    assert line.startswith(head + metric)
    d = np.subtract(es, none)
    assert f"difference {d.mean():+.3f} [" in line and f"p = {stats.ttest_rel(es, none).pvalue:.2g}" in line
    # A recipe ahead of the baseline keeps the plain wording.
    ahead = np.mean(none) + (-1e-3 if lower else 1e-3)
    summary["recipes"]["es"]["test"] = mean_ci(es) | {"mean": ahead}
    assert verdict_line(summary).startswith("best recipe: es (dropout=0.1), ")


def test_on_equal_test_means_the_verdict_names_the_recipe_the_results_table_lists_first():
    """A running study's summary lists recipes in config order: the verdict named l2 (first written) while
    the table above it, ordered by name on equal means, listed l1 first."""
    from reglab.study.summary import recipe_order, verdict_line

    cmp = paired_comparison({0: 0.93, 1: 0.93}, {0: 0.92, 1: 0.93})
    tied = {"status": "ok", "test": mean_ci([0.93, 0.93]), "vs_baseline": {"test": cmp}}
    summary = {"test_metric": "test_accuracy", "baseline": "none", "recipes": {
        "none": {"status": "ok", "best_params": {}, "test": mean_ci([0.92, 0.93])},
        "l2": {**tied, "best_params": {"l2": 0.001}}, "l1": {**tied, "best_params": {"l1": 0.01}}}}
    assert recipe_order(summary)[0] == "l1"
    assert verdict_line(summary).startswith("best recipe: l1 (l1=0.01), test_accuracy 0.930")


@pytest.mark.parametrize("confidence", [95, 0.0, 1.0, -0.5, float("nan"), "0.95", True])
def test_a_confidence_outside_0_1_is_refused_in_one_line_naming_it(confidence):
    # 95 (for 95 %) reached scipy's "alpha must be between 0 and 1 inclusive"; 0 gave a zero-width interval.
    from reglab._validation import InvalidParameterError

    for call in (lambda: mean_ci([0.7, 0.8, 0.9], confidence),
                 lambda: paired_comparison({0: 0.8, 1: 0.9}, {0: 0.7, 1: 0.85}, confidence)):
        with pytest.raises(InvalidParameterError, match=r"'confidence' parameter .* range \(0, 1\)"):
            call()


def test_other_confidences_match_scipy():
    x = [0.61, 0.64, 0.66, 0.70, 0.58]
    for confidence in (0.5, 0.9, 0.99):
        ref = stats.t.interval(confidence, 4, loc=np.mean(x), scale=stats.sem(x))
        s = mean_ci(x, confidence)
        assert (s["low"], s["high"]) == pytest.approx(ref, rel=1e-12)


# Nadeau and Bengio's corrected resampled t-test, computed by hand from its formula (scikit-learn's
# "Statistical comparison of models using grid search" example writes it the same way): for k-fold
# scores the variance of the mean is (1/n + n_test/n_train) s^2, t on n - 1 degrees of freedom.
_FOLD_DIFFS = [0.021, 0.004, 0.013, -0.006, 0.017, 0.009, 0.011, 0.002, 0.015, -0.001]  # 2 seeds x 5 folds


def test_the_fold_correction_widens_the_interval_as_nadeau_and_bengio_write_it():
    x = np.array(_FOLD_DIFFS)
    n, ratio = len(x), 1 / 4  # 5 folds: each trains on 4/5 and validates on 1/5
    se = x.std(ddof=1) * np.sqrt(1 / n + ratio)
    q = stats.t.ppf(0.975, n - 1)
    got = mean_ci(list(x), test_to_train=ratio)
    assert got["low"] == pytest.approx(x.mean() - q * se, rel=1e-12)
    assert got["high"] == pytest.approx(x.mean() + q * se, rel=1e-12)
    plain = mean_ci(list(x))
    widening = (got["high"] - got["low"]) / (plain["high"] - plain["low"])
    assert widening == pytest.approx(np.sqrt(1 + n * ratio))


def test_the_corrected_paired_test_matches_the_formula_and_is_the_plain_one_without_folds():
    base = {(s, f): 0.80 + 0.01 * f + 0.003 * s for s in range(2) for f in range(5)}
    treat = {key: base[key] + d for key, d in zip(sorted(base), _FOLD_DIFFS)}
    d = np.array([treat[k] - base[k] for k in sorted(base)])
    t = d.mean() / (d.std(ddof=1) * np.sqrt(1 / 10 + 1 / 4))
    got = paired_comparison(treat, base, test_to_train=1 / 4)
    assert got["p"] == pytest.approx(2 * stats.t.sf(abs(t), 9), rel=1e-10)
    plain = paired_comparison(treat, base)
    reference = stats.ttest_rel(list(treat.values()), list(base.values())).pvalue
    assert plain["p"] == pytest.approx(reference, rel=1e-12)
    assert got["p"] > 10 * plain["p"]  # 0.128 against 0.012 here: folds are not independent evidence
    assert paired_comparison(treat, base, test_to_train=0.0) == plain


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), "0.25", None])
def test_a_bad_test_to_train_ratio_is_one_line_naming_it(bad):
    with pytest.raises(ValueError, match="test_to_train"):
        mean_ci([0.1, 0.2, 0.3], test_to_train=bad)
    with pytest.raises(ValueError, match="test_to_train"):
        paired_comparison({0: 0.1, 1: 0.2}, {0: 0.0, 1: 0.3}, test_to_train=bad)
