"""k-fold validation scores are compared with Nadeau and Bengio's corrected t (folds share training data)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from reglab.report.aggregate import StudyData, ranking
from reglab.study import Study
from reglab.study.export import open_storage
from reglab.study.stats import mean_ci, paired_comparison


def test_a_kfold_studys_validation_intervals_and_tests_take_the_fold_correction(tiny, tmp_path):
    res = Study(tiny).run(out=tmp_path, progress=False)  # 2 seeds x 2 folds: each fold trains on half
    store = open_storage(tmp_path)
    cv = [t for t in store.trials() if t["phase"] == "cv"]
    store.close()

    def scores(recipe):
        params = res["recipes"][recipe]["best_params"]
        return {(t["seed"], t["fold"]): t["metrics"]["val_accuracy"]
                for t in cv if t["recipe"] == recipe and t["params"] == params}

    l2, none = scores("l2"), scores("none")
    assert len(l2) == len(none) == 4
    got = res["recipes"]["l2"]["validation"]
    assert got == pytest.approx(mean_ci(list(l2.values()), metric="val_accuracy", test_to_train=1.0),
                                nan_ok=True)
    cmp = res["recipes"]["l2"]["vs_baseline"]["validation"]
    assert cmp == pytest.approx(paired_comparison(l2, none, metric="val_accuracy", test_to_train=1.0),
                                nan_ok=True)
    plain = mean_ci(list(l2.values()))
    if not math.isnan(plain["low"]):  # 2 folds: the corrected half-width is sqrt(1 + 4) times the plain one
        half = (min(got["high"], 1.0) - got["mean"], plain["high"] - plain["mean"])
        assert half[0] >= half[1]
    # The test-set comparison (one final run per seed, no folds) is the plain paired t-test.
    assert "test" in res["recipes"]["l2"]["vs_baseline"]


def test_the_reports_ranking_corrects_fold_scores_and_leaves_seed_scores_plain():
    rows = [(r, s, f) for r in ("none", "l2") for s in (0, 1) for f in (0, 1, 2)]
    trials = pd.DataFrame([{"trial_id": i, "recipe": r, "seed": s, "fold": f}
                           for i, (r, s, f) in enumerate(rows)])
    acc = [0.80, 0.82, 0.79, 0.81, 0.83, 0.80, 0.84, 0.85, 0.83, 0.86, 0.84, 0.85]
    results = pd.DataFrame({"trial_id": range(len(rows)), "val_accuracy": acc})
    epochs = pd.DataFrame({"trial_id": [0], "epoch": [0], "train_loss": [1.0], "val_loss": [1.0]})
    data = StudyData("s", trials, epochs, results, metric="val_accuracy", higher_is_better=True,
                     baseline="none")
    table = ranking(data).set_index("recipe")
    by = {r: {(s, f): a for (rr, s, f), a in zip(rows, acc) if rr == r} for r in ("none", "l2")}
    ref = paired_comparison(by["l2"], by["none"], metric="val_accuracy", test_to_train=1 / 2)  # 3 folds
    assert table.loc["l2", "p_value"] == pytest.approx(ref["p"], rel=1e-12)
    assert table.loc["l2", "diff_low"] == pytest.approx(ref["low"], rel=1e-12)
    assert table.loc["l2", "p_value"] > paired_comparison(by["l2"], by["none"])["p"]
    # Final trials carry fold -1 (one per seed): no correction.
    finals = trials.assign(fold=-1, seed=range(len(rows)))
    data = StudyData("s", finals, epochs, results, metric="val_accuracy", higher_is_better=True)
    table = ranking(data).set_index("recipe")
    plain = mean_ci(list(by["l2"].values()), metric="val_accuracy")
    assert table.loc["l2", "ci_low"] == pytest.approx(plain["low"], rel=1e-12)
