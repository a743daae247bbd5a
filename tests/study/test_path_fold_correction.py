"""A k-fold study's regularization path gives each candidate the validation interval the results give."""

from __future__ import annotations

import pytest

from reglab.study import Study
from reglab.study.export import open_storage
from reglab.study.stats import mean_ci


def test_each_path_points_validation_interval_takes_the_fold_correction(tiny, tmp_path):
    tiny["validation"]["folds"] = 3
    res = Study(tiny).run(out=tmp_path, progress=False)  # 2 seeds x 3 folds: test_to_train = 1/2
    store = open_storage(tmp_path)
    cv = [t for t in store.trials() if t["phase"] == "cv" and t["recipe"] == "l2"]
    store.close()
    entry = res["recipes"]["l2"]
    assert len(entry["path"]) == 2
    for point in entry["path"]:
        scores = [t["metrics"]["val_accuracy"] for t in cv
                  if t["params"]["l2"] == point["params"]["l2"] and t["status"] == "done"]
        assert len(scores) == 6
        ref = mean_ci(scores, metric="val_accuracy", test_to_train=1 / 2)
        assert point["val_accuracy"] == pytest.approx(ref, nan_ok=True)
        plain = mean_ci(scores, metric="val_accuracy")
        assert point["val_accuracy"]["low"] < plain["low"]  # wider than the plain t (sqrt(1 + 3) times)
        if point["params"] == {"l2": entry["best_params"]["l2"]}:  # as `show` prints the chosen one
            assert point["val_accuracy"] == pytest.approx(entry["validation"], nan_ok=True)
