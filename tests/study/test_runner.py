"""Whole studies on a tiny config: selection on validation only, summary statistics, resume, divergence."""

from __future__ import annotations

import json
import math

import pytest

import reglab.study.backends as backends
from reglab.errors import UserError
from reglab.study import Study
from reglab.study.execute import TrialOutcome
from reglab.study.export import export, open_storage
from reglab.study.stats import mean_ci, paired_comparison


def test_study_selects_on_validation_and_summarizes(tiny, tmp_path):
    res = Study(tiny).run(out=tmp_path, progress=False)
    store = open_storage(tmp_path)
    trials = store.trials()
    assert {t["status"] for t in trials} == {"done"}
    cv = [t for t in trials if t["phase"] == "cv"]
    assert len(cv) == 3 * 2 * 2  # 3 candidates x 2 seeds x 2 folds
    # Selection: the l2 candidate with the best mean validation accuracy over seeds x folds.
    means = {}
    for t in cv:
        if t["recipe"] == "l2":
            means.setdefault(t["params"]["l2"], []).append(t["metrics"]["val_accuracy"])
    best = max(means, key=lambda k: (sum(means[k]) / 4, -k))
    assert res["recipes"]["l2"]["best_params"] == {"l2": best}
    # Finals: one per recipe and seed, the only trials with test metrics.
    finals = {(t["recipe"], t["seed"]): t["metrics"]["test_accuracy"]
              for t in trials if t["phase"] == "final"}
    assert len(finals) == 4 and all("test_accuracy" not in t["metrics"] for t in cv)
    test = res["recipes"]["l2"]["test"]
    assert test == pytest.approx(mean_ci([finals[("l2", 0)], finals[("l2", 1)]], metric="test_accuracy"),
                                 nan_ok=True)
    cmp = res["recipes"]["l2"]["vs_baseline"]["test"]
    ref = paired_comparison({s: finals[("l2", s)] for s in (0, 1)}, {s: finals[("none", s)] for s in (0, 1)},
                            metric="test_accuracy")
    assert cmp == pytest.approx(ref, nan_ok=True)
    assert res["recipes"]["l2"]["vs_baseline"]["validation"]["n"] == 4
    path = res["recipes"]["l2"]["path"]
    assert [p["params"]["l2"] for p in path] == [1e-3, 1e-1]
    assert path[1]["weight_norm"]["mean"] < path[0]["weight_norm"]["mean"]  # stronger L2, smaller weights
    assert json.dumps(store.load_results(), sort_keys=True) == json.dumps(res, sort_keys=True)
    assert not (tmp_path / "checkpoints").exists()  # cleaned once the study is complete
    store.close()


@pytest.mark.parametrize("metric", ["val_accuracy", "val_loss"])
def test_two_seed_intervals_in_the_summary_are_clipped_to_the_metrics_range(tiny, tmp_path, monkeypatch,
                                                                            metric):
    """With 2 seeds a t-interval of an accuracy passed 1 (and below 0), a difference of accuracies +-1."""
    score = {("none", 0): 0.2, ("none", 1): 0.5, ("l2", 0): 1.0, ("l2", 1): 0.9}  # accuracies or losses

    def scored(config, specs):  # every metric a trial reports, without training
        out = []
        for s in specs:
            v = score[(s.recipe, s.seed)]
            m = {"val_accuracy": v, "val_loss": v, "weight_norm": 1.0, "zero_fraction": 0.0}
            if s.phase == "final":
                m |= {"test_accuracy": v, "test_loss": v}
            out.append(TrialOutcome(s, "done", m, [{"epoch": 0, "train_loss": 1.0, "val_loss": v}]))
        return out

    monkeypatch.setattr(backends, "run_group", scored)
    tiny |= {"validation": {"kind": "holdout"}, "recipes": {"none": {}, "l2": {"l2": 1e-3}},
             "search": {"metric": metric}}
    res = Study(tiny).run(out=tmp_path, progress=False)
    t = math.tan(0.475 * math.pi)  # t_{0.975, 1 df}: Cauchy's quantile, 12.706
    l2, none = res["recipes"]["l2"]["test"], res["recipes"]["none"]["test"]
    diff = res["recipes"]["l2"]["vs_baseline"]["test"]
    # l2: 0.95 -+ t * 0.05 = [0.315, 1.585]; none: 0.35 -+ t * 0.15 = [-1.56, 2.26]; l2 - none: 0.8 and 0.4,
    # 0.6 -+ t * 0.2 = [-1.94, 3.14].
    assert (l2["mean"], l2["low"]) == pytest.approx((0.95, 0.95 - t * 0.05))
    assert (none["mean"], none["low"], diff["diff"]) == pytest.approx((0.35, 0.0, 0.6))
    if metric == "val_accuracy":  # in [0, 1], differences in [-1, 1]
        assert (l2["high"], none["high"], diff["low"], diff["high"]) == (1.0, 1.0, -1.0, 1.0)
    else:  # a loss is >= 0 and unbounded above; differences of losses are unbounded
        assert (l2["high"], none["high"]) == pytest.approx((0.95 + t * 0.05, 0.35 + t * 0.15))
        assert (diff["low"], diff["high"]) == pytest.approx((0.6 - t * 0.2, 0.6 + t * 0.2))
    assert res["recipes"]["l2"]["validation"] == l2  # hold-out: the same two values
    assert res["recipes"]["l2"]["vs_baseline"]["validation"] == diff


def test_rerun_resumes_without_repeating_finished_trials(tiny, tmp_path, monkeypatch):
    reference = tmp_path / "ref"
    tiny["recipes"]["mixup"] = {"mixup": 0.2}  # a Trainer trial next to the population groups
    Study(tiny).run(out=reference, progress=False)
    calls = {"n": 0, "trials": 0}
    real = backends.run_group

    def crash_on_third_group(config, specs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        calls["trials"] += len(specs)
        return real(config, specs)

    monkeypatch.setattr(backends, "run_group", crash_on_third_group)
    with pytest.raises(KeyboardInterrupt):
        Study(tiny).run(out=tmp_path / "s", progress=False)
    store = open_storage(tmp_path / "s")
    finished_first = {t["id"] for t in store.trials(finished_only=True)}
    assert 0 < len(finished_first) == calls["trials"] < len(store.trials())
    store.close()
    monkeypatch.setattr(backends, "run_group", real)
    Study(tiny).run(out=tmp_path / "s", progress=False)
    resumed, ref = open_storage(tmp_path / "s"), open_storage(reference)
    assert export(resumed, "csv") == export(ref, "csv")
    before_crash = [t for t in resumed.trials() if t["id"] in finished_first]
    assert all(t["attempts"] == 1 for t in before_crash)  # finished before the crash: never rerun
    assert resumed.integrity_check() == "ok"
    resumed.close()
    ref.close()


def test_a_diverging_recipe_is_recorded_and_the_study_completes(tiny, tmp_path):
    tiny["recipes"]["absurd_lr"] = {"lr": 1e8}
    res = Study(tiny).run(out=tmp_path, progress=False)
    assert res["recipes"]["absurd_lr"]["status"] == "diverged"
    assert res["recipes"]["absurd_lr"]["path"][0]["diverged"] == 4
    assert res["recipes"]["l2"]["status"] == "ok"
    store = open_storage(tmp_path)
    bad = [t for t in store.trials() if t["recipe"] == "absurd_lr"]
    assert len(bad) == 4 and {t["status"] for t in bad} == {"diverged"}
    store.close()


def test_holdout_final_reuses_the_validation_run(tiny, tmp_path):
    tiny["validation"] = {"kind": "holdout"}
    tiny["recipes"] = {"none": {}, "es": {"early_stopping": {"patience": 1}}}
    tiny["training"]["epochs"] = 4
    Study(tiny).run(out=tmp_path, progress=False)
    store = open_storage(tmp_path)
    by = {(t["phase"], t["recipe"], t["seed"]): t["metrics"] for t in store.trials()}
    for recipe in ("none", "es"):
        for seed in (0, 1):
            cv, final = by[("cv", recipe, seed)], by[("final", recipe, seed)]
            assert final["val_accuracy"] == cv["val_accuracy"] and final["epochs_run"] == cv["epochs_run"]
            assert "test_accuracy" in final
    store.close()


def test_tpe_and_successive_halving(tiny, tmp_path):
    tiny["search"] = {"method": "tpe", "trials": 3}
    tiny["recipes"] = {"none": {}, "l2": {"l2": {"loguniform": [1e-4, 1e-1]}}}
    res = Study(tiny).run(out=tmp_path / "tpe", progress=False)
    assert res["recipes"]["l2"]["candidates"] == 3
    tiny["search"] = {"method": "grid"}
    tiny["recipes"]["l2"] = {"l2": {"grid": [1e-4, 1e-3, 1e-2, 1e-1]}}
    tiny["budget"] = {"halving": True, "eta": 2, "rungs": 2}
    tiny["training"]["epochs"] = 2
    res = Study(tiny).run(out=tmp_path / "sh", progress=False)
    assert res["recipes"]["l2"]["candidates"] == 2
    store = open_storage(tmp_path / "sh")
    rung = [t for t in store.trials() if t["phase"] == "rung0"]
    assert len(rung) == 4 and {t["epochs_budget"] for t in rung} == {1}
    store.close()


def test_changed_config_in_the_same_directory_is_refused(tiny, tmp_path):
    tiny["recipes"] = {"none": {}}
    Study(tiny).run(out=tmp_path, progress=False)
    tiny["seeds"] = [0]
    with pytest.raises(UserError, match=r"holds a different study config \(seeds: \[0,1\] -> \[0\]\); "):
        Study(tiny).run(out=tmp_path, progress=False)


def test_a_changed_config_is_refused_naming_what_changed(tiny, tmp_path):
    """It said only "holds a different study config": the user had to diff the YAML against the study."""
    tiny["recipes"] = {"none": {}, "l2": {"l2": 1e-3}}
    Study(tiny).run(out=tmp_path, progress=False)
    tiny["recipes"] = {"none": {}, "l2": {"l2": 1e-2}, "l1": {"l1": 1e-3}}
    tiny["training"]["epochs"] = 3
    tiny["training"]["lr"] = 0.1
    with pytest.raises(UserError) as err:
        Study(tiny).run(out=tmp_path, progress=False)
    # Sorted by path, three at most (training.lr is the fourth).
    assert str(err.value) == (
        f"storage {'sqlite:///' + str(tmp_path / 'study.db')!r} holds a different study config (recipes.l1: "
        "added; recipes.l2.l2: 0.001 -> 0.01; training.epochs: 2 -> 3); resuming needs the same config. Use "
        "another --out directory (or --storage) for a changed config.")


def test_a_npz_file_studies_as_the_same_data_in_a_csv_file(tiny, tmp_path):
    """A .npz archive names its arrays (x_key / y_key) where a CSV names its label column."""
    import numpy as np
    import pandas as pd
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    np.savez(tmp_path / "bc.npz", inputs=data.data, labels=data.target)
    frame = pd.DataFrame(data.data, columns=[f"f{i}" for i in range(data.data.shape[1])])
    frame["label"] = data.target
    frame.to_csv(tmp_path / "bc.csv", index=False)
    tiny["training"]["epochs"] = 2
    results = []
    for name, dataset in (
        ("npz", {"path": str(tmp_path / "bc.npz"), "x_key": "inputs", "y_key": "labels"}),
        ("csv", {"path": str(tmp_path / "bc.csv"), "target": "label"}),
    ):
        Study({**tiny, "dataset": dataset}).run(out=tmp_path / name, progress=False)
        store = open_storage(tmp_path / name)
        results.append([(t["phase"], t["recipe"], t["seed"], t["metrics"]) for t in store.trials()])
        store.close()
    assert results[0] == results[1] and len(results[0]) > 0
    for dataset, message in (
        ({"path": "bc.npz", "target": "labels"}, "a .npz file has arrays, not columns: name them with"),
        ({"path": "bc.csv", "target": "label", "x_key": "x"}, "'x_key' and 'y_key' name the arrays of a"),
        # A .npy file was told it 'needs target', then that it is no built-in dataset.
        ({"path": "x.npy"}, r"a \.npy file holds one array; save the inputs and labels together"),
        ({"path": "x.npy", "target": "y.npy"}, r"a \.npy file holds one array"),
    ):
        with pytest.raises(UserError, match=message):
            Study({**tiny, "dataset": dataset})


def test_resuming_on_changed_data_is_refused_and_on_the_same_data_goes_on(tmp_path):
    """Trials finished on one version of a CSV and resumed on another mixed two datasets silently."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(120, 4)), columns=["a", "b", "c", "d"])
    frame["y"] = (frame["a"] + frame["b"] > 0).astype(int)
    csv = tmp_path / "data.csv"
    frame.to_csv(csv, index=False)
    config = {"name": "d", "dataset": {"path": str(csv), "target": "y"}, "model": {"hidden": [4]},
              "training": {"epochs": 1, "batch_size": 32}, "seeds": [0], "validation": {"kind": "holdout"},
              "recipes": {"none": {}}}
    out = tmp_path / "study"
    Study(config).run(out=out, progress=False)
    Study(config).run(out=out, progress=False)  # the same data: resumes (here: nothing left to do)
    frame.loc[0, "a"] += 1.0
    frame.to_csv(csv, index=False)
    before = (out / "study.db").read_bytes()
    message = r"was filled from other data: the dataset file .*data.csv' changed since the study started"
    with pytest.raises(UserError, match=message):
        Study(config).run(out=out, progress=False)
    assert (out / "study.db").read_bytes() == before


def test_batch_norm_without_two_training_examples_is_refused_before_any_trial(tiny, tmp_path):
    """batch_size 1 with a BatchNorm recipe (refused by the schema) or a training fold of one example: the
    study used to run other trials, then stop on Trainer.fit's / Population.fit's refusal."""
    import numpy as np
    import pandas as pd

    tiny.update(recipes={"none": {}, "bn": {"norm": "batch"}}, seeds=[0])
    tiny["training"]["batch_size"] = 1
    message = r"recipes\.bn\.norm: 'batch' \(BatchNorm\) needs .* training\.batch_size 1"
    with pytest.raises(UserError, match=message):
        Study(tiny).run(out=tmp_path / "b1", progress=False)
    assert not (tmp_path / "b1").exists()
    # Four rows of regression data: 2 train, 1 val, 1 test; 2-fold CV over 3 rows trains a fold on one.
    frame = pd.DataFrame({"a": np.arange(4.0), "b": np.arange(4.0) ** 2, "y": np.arange(4.0) * 1.5})
    frame.to_csv(tmp_path / "r.csv", index=False)
    tiny.update(dataset={"path": str(tmp_path / "r.csv"), "target": "y", "val_size": 0.25, "test_size": 0.25},
                search={"metric": "val_mse"}, validation={"kind": "kfold", "folds": 2})
    tiny["training"]["batch_size"] = 4
    message = (r"^recipes\.bn\.norm: 'batch' \(BatchNorm\) needs training batches of at least 2 examples; a "
               r"fold's training part \(validation\.folds 2\) of the dataset 'r\.csv' holds 1 example\. ")
    with pytest.raises(UserError, match=message):
        Study(tiny).run(out=tmp_path / "one", progress=False)
    assert not (tmp_path / "one").exists()
    tiny["validation"]["folds"] = 3  # every fold trains on 2 rows: it runs
    assert Study(tiny).run(out=tmp_path / "three", progress=False)["recipes"]["bn"]["status"] == "ok"


def test_data_edited_while_the_study_runs_stops_it_keeping_finished_trials(tmp_path, monkeypatch):
    """The split cache reads an edited file again: later trials trained on the new data without a word
    while the stored fingerprint was the old data's. Now the next group refuses it."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(120, 4)), columns=["a", "b", "c", "d"])
    frame["y"] = (frame["a"] + frame["b"] > 0).astype(int)
    csv = tmp_path / "data.csv"
    frame.to_csv(csv, index=False)
    original = csv.read_bytes()
    config = {"name": "d", "dataset": {"path": str(csv), "target": "y"}, "model": {"hidden": [4]},
              "training": {"epochs": 1, "batch_size": 32}, "seeds": [0], "validation": {"kind": "holdout"},
              "population": False, "recipes": {"none": {}, "l2": {"l2": {"grid": [1e-3, 1e-2]}}}}
    Study(config).run(out=tmp_path / "ref", progress=False)
    real, calls = backends.run_group, []

    def edit_after_the_first_group(config, specs):
        calls.append(len(specs))
        out = real(config, specs)
        if len(calls) == 1:
            edited = frame.copy()
            edited.loc[:9, "a"] = 5.0
            edited.to_csv(csv, index=False)
        return out

    monkeypatch.setattr(backends, "run_group", edit_after_the_first_group)
    with pytest.raises(UserError, match=r"data\.csv. changed while the study ran .* trials are kept"):
        Study(config).run(out=tmp_path / "s", progress=False)
    assert calls == [1, 1]
    store = open_storage(tmp_path / "s")
    assert [t["status"] for t in store.trials(finished_only=True)] == ["done"]  # the first trial's
    store.close()
    monkeypatch.setattr(backends, "run_group", real)
    with pytest.raises(UserError, match=r"was filled from other data"):  # a resume on the new data
        Study(config).run(out=tmp_path / "s", progress=False)
    csv.write_bytes(original)  # the data restored: the study resumes and ends as if never stopped
    Study(config).run(out=tmp_path / "s", progress=False)
    resumed, ref = open_storage(tmp_path / "s"), open_storage(tmp_path / "ref")
    assert export(resumed, "csv") == export(ref, "csv")
    resumed.close()
    ref.close()


def test_a_regression_study_defaults_to_val_mse_for_search_and_early_stopping(tmp_path):
    """search.metric and early stopping's monitor defaulted to val_accuracy, a classifier's metric, so a
    regression config without them was refused naming a value nobody wrote."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    x = rng.normal(size=(90, 4))
    pd.DataFrame({**{f"f{i}": x[:, i] for i in range(4)}, "y": x @ rng.normal(size=4)}).to_csv(
        tmp_path / "reg.csv", index=False)
    config = {"name": "reg", "dataset": {"path": str(tmp_path / "reg.csv"), "target": "y"}, "seeds": [0],
              "training": {"epochs": 3, "batch_size": 16}, "validation": {"kind": "holdout"},
              "recipes": {"none": {}, "es": {"early_stopping": 2}, "es_true": {"early_stopping": True},
                          "es_loss": {"early_stopping": {"monitor": "val_loss", "patience": 2}}}}
    Study(config).run(out=tmp_path / "out", progress=False)
    store = open_storage(tmp_path / "out")
    try:
        stored = json.loads(store.load_config())
    finally:
        store.close()
    assert stored["search"]["metric"] == "val_mse"
    recipes = stored["recipes"]
    monitors = {name: r["early_stopping"]["monitor"] for name, r in recipes.items() if name != "none"}
    assert monitors == {"es": "val_mse", "es_true": "val_mse", "es_loss": "val_loss"}  # a written one is kept
    Study(config).run(out=tmp_path / "out", progress=False)  # resumes: the same resolved config
    # Written explicitly, a classifier's metric is still refused for regression data.
    with pytest.raises(UserError, match="search.metric must be one of val_mse, val_loss"):
        Study({**config, "search": {"metric": "val_accuracy"}}).run(out=tmp_path / "o2", progress=False)
