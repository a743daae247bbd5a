"""One trial through reglab.Trainer: recipe mapping, protocol splits, divergence, exact resume."""

from __future__ import annotations

import pytest
import torch

from reglab.errors import UserError
from reglab.study.execute import (
    TrialSpec,
    build_model,
    check_params,
    fold_data,
    load_splits,
    make_penalty,
    run_trial,
)
from reglab.study.schema import parse_config


@pytest.fixture
def cfg(tiny):
    tiny["training"]["dtype"] = "float64"
    return parse_config(tiny)


def spec(params, phase="cv", seed=0, fold=0, epochs=2, checkpoint=None):
    return TrialSpec(phase, "r", params, seed=seed, fold=fold, epochs=epochs, checkpoint=checkpoint)


def test_penalty_is_the_keras_formula(cfg):
    model = build_model(cfg, {}, load_splits(cfg))
    w = [p for n, p in model.named_parameters() if n.endswith("weight")]
    pen = make_penalty({"elastic_net": 0.1, "l1_ratio": 0.25, "l2": 0.01})
    expected = sum(0.025 * x.detach().abs().sum() + (0.075 + 0.01) * x.detach().square().sum() for x in w)
    assert float(pen(model).detach()) == pytest.approx(float(expected), rel=1e-6)
    assert make_penalty({"dropout": 0.1}) is None


def test_model_slots_follow_the_recipe(cfg):
    splits = load_splits(cfg)
    model = build_model(cfg, {"width": 7, "norm": "layer", "dropout": 0.3}, splits)
    assert model.hidden_sizes == (7,) and model.norm == "layer" and model.dropout == 0.3
    assert model.in_features == 30 and model.out_features == 2


def test_protocol_splits(cfg):
    splits = load_splits(cfg)
    folds = [fold_data(cfg, spec({}, fold=f)) for f in range(2)]
    assert all(test is None for _, _, test in folds)  # selection never sees the test split
    assert sum(len(v) for _, v, _ in folds) == len(splits.train) + len(splits.val)
    train, val, test = fold_data(cfg, spec({}, phase="final", fold=-1))
    assert (train, val, test) == (splits.train, splits.val, splits.test)


def test_final_trial_reports_test_metrics_and_cv_does_not(cfg):
    final = run_trial(cfg, spec({}, phase="final", fold=-1))
    cv = run_trial(cfg, spec({}))
    assert final.status == cv.status == "done"
    assert 0.0 <= final.metrics["test_accuracy"] <= 1.0 and "test_accuracy" not in cv.metrics
    assert len(final.history) == 2 and final.history[0]["epoch"] == 0


def test_absurd_learning_rate_is_recorded_as_diverged(cfg):
    out = run_trial(cfg, spec({"lr": 1e8}))
    assert out.status == "diverged"
    assert "above" in out.metrics["reason"] or "non-finite" in out.metrics["reason"]
    assert out.error is None


def test_proximal_l1_gives_exact_zeros(cfg):
    dense = run_trial(cfg, spec({"l1": 1e-3}))
    sparse = run_trial(cfg, spec({"l1": 10.0, "proximal": True}, epochs=4))
    assert dense.metrics["zero_fraction"] == 0.0
    assert sparse.metrics["zero_fraction"] > 0.3


def test_same_seed_same_numbers_and_seeds_differ(cfg):
    p = {"dropout": 0.2, "mixup": 0.4}
    a, b, c = run_trial(cfg, spec(p)), run_trial(cfg, spec(p)), run_trial(cfg, spec(p, seed=1))
    assert a.metrics == b.metrics and a.metrics != c.metrics


def test_interrupted_trial_resumes_from_its_checkpoint_exactly(cfg, tmp_path):
    """Stop after 2 of 5 epochs (a crash leaves last.pt at epoch 2), rerun: same as uninterrupted."""
    p = {"dropout": 0.3, "mixup": 0.4, "label_smoothing": 0.1, "l1": 1e-3, "proximal": True,
         "max_norm": 1.5, "gaussian_noise": 0.1, "early_stopping": {"patience": 10}}
    full = run_trial(cfg, spec(p, epochs=5))
    ckpt = tmp_path / "trial"
    run_trial(cfg, spec(p, epochs=2, checkpoint=str(ckpt)))
    assert torch.load(ckpt / "last.pt", weights_only=True)["epoch"] == 1
    resumed = run_trial(cfg, spec(p, epochs=5, checkpoint=str(ckpt)))
    assert resumed.metrics == full.metrics
    strip = [{k: v for k, v in r.items() if k != "time"} for r in resumed.history]
    assert strip == [{k: v for k, v in r.items() if k != "time"} for r in full.history]


def test_finished_early_stopped_run_does_not_train_further_on_resume(cfg, tmp_path):
    p = {"early_stopping": {"patience": 1, "monitor": "val_loss"}, "lr": 0.3}
    first = run_trial(cfg, spec(p, epochs=30, checkpoint=str(tmp_path / "t")))
    assert first.metrics["epochs_run"] < 30
    again = run_trial(cfg, spec(p, epochs=30, checkpoint=str(tmp_path / "t")))
    assert again.metrics == first.metrics


def test_restarts_keep_the_best_initialization(cfg):
    out = run_trial(cfg, spec({"restarts": 3}))
    assert out.status == "done" and out.metrics["restart"] in (0, 1, 2)


def test_bad_recipe_values_fail_before_training(cfg):
    with pytest.raises(UserError, match=r"recipe 'r': .*'name'.*Did you mean 'signal_shift'\?"):
        check_params(cfg, "r", {"augment": {"name": "signal_shif"}})
    sgd = parse_config({**cfg.model_dump(mode="json"), "training": {"optimizer": "sgd"}})
    with pytest.raises(UserError, match=r"recipe 'r': The 'decoupled' parameter of Trainer"):
        check_params(sgd, "r", {"decoupled_decay": 0.1})


def test_population_group_matches_separate_trainer_runs(cfg):
    """float64, dropout off: a population member equals the same trial trained alone by the Trainer."""
    from reglab.study.execute import population_key, run_group

    recipes = [{}, {"l2": 1e-3}, {"l1": 1e-2, "proximal": True}, {"max_norm": 0.5, "label_smoothing": 0.1},
               {"decoupled_decay": 0.1}, {"weight_decay": 1e-2}, {"elastic_net": 1e-2, "lr": 0.05}]
    specs = [spec(p, seed=s, epochs=3) for p, s in zip(recipes, [0, 1, 0, 1, 0, 1, 0])]
    assert len({population_key(cfg, s) for s in specs}) == 1
    grouped = run_group(cfg, specs)
    alone_cfg = cfg.model_copy(update={"population": False})
    for s, g in zip(specs, grouped):
        alone = run_trial(alone_cfg, s)
        assert g.status == alone.status == "done"
        for k in ("val_loss", "val_accuracy", "train_loss", "weight_norm", "zero_fraction"):
            assert g.metrics[k] == pytest.approx(alone.metrics[k], rel=1e-7, abs=1e-9), (s.params, k)


def test_trials_the_population_cannot_express_run_alone(cfg):
    from reglab.study.execute import population_key

    assert population_key(cfg, spec({"mixup": 0.2})) is None
    assert population_key(cfg, spec({"restarts": 2})) is None
    assert population_key(cfg, spec({"dropout": 0.1})) == population_key(cfg, spec({"l2": 1.0}))
    assert population_key(cfg, spec({"norm": "layer"})) != population_key(cfg, spec({}))
    assert population_key(cfg, spec({}, fold=1)) != population_key(cfg, spec({}))


def test_model_that_cannot_take_the_inputs_is_a_user_error(tiny):
    tiny["model"] = {"family": "cnn2d"}  # breast_cancer has 30 features: not an image
    expected = r"recipe 'r': model.family cnn2d takes one-channel square images .* shape \(30,\)"
    with pytest.raises(UserError, match=expected):
        check_params(parse_config(tiny), "r", {})


# -- weight histograms, regression, versions ---------------------------------------------------


def test_weight_histogram_is_numpy_histogram_of_the_selected_weights():
    """Reference: numpy.histogram of exactly the Selector-chosen weights (not biases) on the stored edges."""
    import numpy as np

    from reglab.models import MLP
    from reglab.selectors import Selector
    from reglab.study.execute import HISTOGRAM_BINS, weight_histogram

    torch.manual_seed(0)
    model = MLP(6, 3, hidden=[5])
    selected = Selector().select(model)
    with torch.no_grad():
        selected[0][1][:2] = 0.0  # some exact zeros
    w = torch.cat([p.detach().reshape(-1) for _, p in selected]).double().numpy()
    assert w.size == 6 * 5 + 5 * 3  # weights only: 30 + 15, the 8 biases are left out
    h = weight_histogram(model)
    edges = np.asarray(h["edges"])
    assert len(h["counts"]) == HISTOGRAM_BINS and edges[-1] == -edges[0] == np.abs(w).max()
    np.testing.assert_array_equal(h["counts"], np.histogram(w, bins=edges)[0])
    assert (h["zeros"], h["total"], sum(h["counts"])) == (int(np.sum(w == 0)), w.size, w.size)


def test_final_trials_carry_the_trained_models_histogram(tiny):
    """The trained model of a final trial (Trainer path) is rebuilt by training it again (same seed, same
    numbers) and its histogram compared with the stored one; cv trials store none."""
    import numpy as np

    from reglab.selectors import Selector
    from reglab.study import execute

    tiny["training"]["dtype"] = "float64"
    tiny["population"] = False
    cfg = parse_config(tiny)
    params = {"l1": 10.0, "proximal": True}
    out = run_trial(cfg, spec(params, phase="final", fold=-1, epochs=3))
    assert run_trial(cfg, spec(params, epochs=3)).histogram is None
    captured = {}
    original = execute.weight_histogram

    def spy(model, bins=execute.HISTOGRAM_BINS):
        captured["w"] = torch.cat([p.detach().reshape(-1) for _, p in Selector().select(model)])
        return original(model, bins)

    execute.weight_histogram = spy
    try:
        again = run_trial(cfg, spec(params, phase="final", fold=-1, epochs=3))
    finally:
        execute.weight_histogram = original
    w = captured["w"].double().numpy()
    np.testing.assert_array_equal(out.histogram["counts"], np.histogram(w, bins=out.histogram["edges"])[0])
    assert out.histogram == again.histogram
    assert out.histogram["zeros"] == int(np.sum(w == 0)) > 0  # proximal L1: exact zeros
    assert out.histogram["zeros"] / out.histogram["total"] == pytest.approx(out.metrics["zero_fraction"])


def _regression(tiny):
    tiny.update(dataset={"name": "diabetes"}, search={"metric": "val_mse"})
    tiny["training"].update(dtype="float64", lr=0.05, epochs=3)
    tiny["recipes"] = {"none": {}, "l2": {"l2": {"grid": [1e-3, 10.0]}}}
    return tiny


def test_regression_trial_reports_mse_and_runs_through_the_trainer(tiny):
    """Reference: val_loss of an MSE model is its val_mse; targets are standardized on train."""
    import numpy as np

    from reglab.study.execute import population_key

    cfg = parse_config(_regression(tiny))
    splits = load_splits(cfg)
    assert splits.task == "regression" and splits.y_scaler is not None
    assert abs(float(splits.train.y.mean())) < 1e-6
    assert float(splits.train.y.std()) == pytest.approx(1, rel=0.01)
    assert build_model(cfg, {}, splits)(splits.train.x[:4].float()).shape == (4, 1)
    s = spec({}, phase="final", fold=-1, epochs=3)
    assert population_key(cfg, s) is None  # the population engine is classification-only
    out = run_trial(cfg, s)
    assert out.status == "done", out.error
    m = out.metrics
    assert {"val_mse", "test_mse", "test_mae", "train_mse"} <= set(m) and "val_accuracy" not in m
    assert m["val_loss"] == pytest.approx(m["val_mse"], rel=1e-12)
    assert 0.2 < m["test_mse"] < 2.0 and np.isfinite(m["test_mae"])


def test_regression_metric_and_task_mismatches_are_one_line(tiny):
    cfg = parse_config(_regression(tiny))
    with pytest.raises(UserError, match="early_stopping.monitor must be one of val_mse, val_loss"):
        check_params(cfg, "es", {"early_stopping": {"monitor": "val_accuracy", "patience": 2}})
    with pytest.raises(UserError, match="label_smoothing needs class labels"):
        check_params(cfg, "ls", {"label_smoothing": 0.1})
    tiny2 = _regression(tiny)
    tiny2["search"]["metric"] = "val_accuracy"
    with pytest.raises(UserError, match="search.metric must be one of val_mse, val_loss for the regression"):
        check_params(parse_config(tiny2), "none", {})


def test_regression_study_selects_the_lowest_mse_and_records_versions(tiny, tmp_path):
    """Selection respects the direction: the chosen l2 has the lowest mean validation MSE (hand check
    over the stored trials); the summary records this process's versions."""
    from importlib import metadata

    from reglab.study import Study
    from reglab.study.storage import StudyStorage, default_url

    tiny = _regression(tiny)
    tiny["validation"] = {"kind": "holdout"}
    res = Study(tiny).run(out=tmp_path, progress=False)
    store = StudyStorage(default_url(tmp_path))
    cv = [t for t in store.trials(phase="cv") if t["recipe"] == "l2"]
    means = {}
    for t in cv:
        means.setdefault(t["params"]["l2"], []).append(t["metrics"]["val_mse"])
    best = min(means, key=lambda k: sum(means[k]) / len(means[k]))
    assert res["recipes"]["l2"]["best_params"]["l2"] == best
    assert res["test_metric"] == "test_mse" and res["lower_is_better"] is True
    finals = store.trials(phase="final")
    assert set(store.histograms()) == {t["id"] for t in finals}
    v = store.load_results()["versions"]
    assert v["torch"] == torch.__version__ and v["numpy"] == metadata.version("numpy")
    assert v["scikit-learn"] == metadata.version("scikit-learn")
    assert {"python", "platform", "reglab"} <= set(v)
    store.close()


def test_a_saved_holdout_model_is_reused_by_its_final_trial(tiny, tmp_path):
    """finished.pt loads with weights_only=True: the final trial only evaluates the test split."""
    from reglab.study.execute import _from_finished, run_group

    tiny["validation"] = {"kind": "holdout"}
    config = parse_config(tiny)
    ckpt = tmp_path / "ckpt"
    (cv,) = run_group(config, [TrialSpec("cv", "none", {}, 0, 0, 2, str(ckpt))])
    assert (ckpt / "finished.pt").is_file()
    reused = _from_finished(config, TrialSpec("final", "none", {}, 0, -1, 2, str(ckpt)))
    assert reused is not None and reused.status == "done"
    assert reused.metrics["val_accuracy"] == cv.metrics["val_accuracy"]
    assert 0.0 <= reused.metrics["test_accuracy"] <= 1.0


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):  # what an attacker's pickle would run on load
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("content", ["payload", "junk", "foreign"])
def test_a_bad_trial_checkpoint_is_dropped_and_the_trial_trains_from_the_start(tmp_path, content):
    """A foreign or poisoned last.pt failed its trial for good ('Weights only load failed ... set
    weights_only=False'); like a group's checkpoint it is now refused safely, removed, and retrained."""
    import torch

    from reglab.study.execute import _resume_state

    marker, path = tmp_path / "ran", tmp_path / "last.pt"
    if content == "payload":
        torch.save({"epoch": 3, "callbacks": [], "x": _Payload(str(marker))}, path)
    elif content == "junk":
        path.write_bytes(b"not a checkpoint")
    else:
        torch.save({"weights": torch.zeros(2)}, path)  # a torch file, not the Trainer's
    assert _resume_state(tmp_path) == (None, None)
    assert not path.exists() and not marker.exists()


def _csv_config(tmp_path, rows=120):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(rows, 3)), columns=["a", "b", "c"])
    frame["y"] = (frame["a"] > 0).astype(int)
    frame.to_csv(tmp_path / "d.csv", index=False)
    config = parse_config({"name": "d", "dataset": {"path": str(tmp_path / "d.csv"), "target": "y"},
                           "model": {"hidden": [4]}, "training": {"epochs": 1, "batch_size": 32},
                           "seeds": [0], "validation": {"kind": "holdout"}, "recipes": {"none": {}}})
    return config, frame


def test_the_data_fingerprint_is_the_population_checkpoints_digest_computed_once_per_file_stamp(tmp_path):
    from reglab.population._checkpoint import tensor_digest
    from reglab.study.execute import _fingerprint_cached, data_fingerprint

    config, _ = _csv_config(tmp_path)
    s = load_splits(config)
    tensors = (s.train.x, s.train.y, s.val.x, s.val.y, s.test.x, s.test.y)
    assert data_fingerprint(config) == tensor_digest(*tensors)
    misses = _fingerprint_cached.cache_info().misses
    assert data_fingerprint(config) == data_fingerprint(config)
    assert _fingerprint_cached.cache_info().misses == misses  # hashed once, not per trial


def test_a_float64_study_loads_its_data_in_float64_not_rounded_to_float32(tmp_path):
    """training.dtype float64 trained on inputs the loader had rounded to float32 (then cast back)."""
    from reglab.data import load
    from reglab.study.execute import _data_key, _folds_cached, _splits_cached, data_fingerprint

    config32, _ = _csv_config(tmp_path)
    config64 = parse_config({**config32.model_dump(mode="json"),
                             "training": {**config32.training.model_dump(mode="json"), "dtype": "float64"}})
    s32, s64 = load_splits(config32), load_splits(config64)
    exact = load(str(tmp_path / "d.csv"), target="y", seed=0, dtype=torch.float64)
    assert s32.train.x.dtype == torch.float32 and s64.train.x.dtype == torch.float64
    for mine, reference in ((s64.train, exact.train), (s64.val, exact.val), (s64.test, exact.test)):
        assert torch.equal(mine.x, reference.x) and torch.equal(mine.y, reference.y)
    assert not torch.equal(s64.train.x, s32.train.x.double())  # float32 rounding, now gone
    assert data_fingerprint(config64) != data_fingerprint(config32)
    folds = _folds_cached(*_data_key(config64), 2, 0)
    assert folds[0][0].x.dtype == torch.float64
    assert _splits_cached.cache_info().currsize >= 2  # one cache entry per dtype


def test_a_trial_refuses_data_edited_after_the_study_started(tmp_path):
    """The split cache reads an edited file again; trials used to train on it without a word while the
    study's stored fingerprint was the old data's."""
    from reglab.study.execute import _verified_data, data_fingerprint, run_group

    config, frame = _csv_config(tmp_path)
    start = data_fingerprint(config)
    specs = [TrialSpec("cv", "none", {}, seed=0, fold=0, epochs=1, data=start),
             TrialSpec("cv", "none", {"mixup": 0.2}, seed=0, fold=0, epochs=1, data=start)]
    assert [o.status for o in run_group(config, specs[:1])] == ["done"]  # a population group
    frame.loc[:9, "a"] = 5.0
    frame.to_csv(tmp_path / "d.csv", index=False)  # edited while the study runs
    message = (r"^the dataset file '.*d\.csv' changed while the study ran \(its contents hash to "
               rf"[0-9a-f]{{12}}, not {start[:12]} as when the study started\), so no further trial runs on "
               r"it; finished trials are kept\. Restore the data and rerun to resume")
    for group in (specs[:1], specs[1:]):  # a population group, a Trainer trial
        with pytest.raises(UserError, match=message):
            run_group(config, group)
        with pytest.raises(UserError, match=message):
            run_trial(config, group[0])
    assert run_trial(config, TrialSpec("cv", "none", {}, 0, 0, 1)).status == "done"  # unchecked: no data
    # A group that checked the data keeps it to its end, even if the file changes meanwhile.
    now = data_fingerprint(config)
    with _verified_data(config, now):
        before = load_splits(config)
        frame.loc[:9, "a"] = -5.0
        frame.to_csv(tmp_path / "d.csv", index=False)
        assert load_splits(config) is before and fold_data(config, spec({}, "final"))[0] is before.train
    assert load_splits(config) is not before and data_fingerprint(config) not in (start, now)


def test_a_cnn2d_on_inputs_that_are_no_square_image_is_one_line(tiny):
    """It read "The 'size' parameter of CNN2D must be an int in the range [4, inf). Got 3": a size nobody
    set."""
    from reglab.errors import UserError
    from reglab.study import Study

    config = {**tiny, "dataset": {"name": "wine"}, "model": {"family": "cnn2d"}}
    message = r"cnn2d takes one-channel square images .* 'wine' has inputs of shape \(13,\)\. Use family mlp"
    with pytest.raises(UserError, match=message):
        Study(config).run(out=None, progress=False)


@pytest.mark.parametrize("stratified", [True, False])
def test_cv_folds_are_sklearns_for_the_split_seed_and_validation_stratified(stratified):
    # validation.stratified: false was accepted and ignored (the folds stayed stratified).
    import numpy as np
    from sklearn.model_selection import KFold, StratifiedKFold

    cfg = parse_config({"name": "f", "dataset": {"name": "wine", "split_seed": 7}, "recipes": {"none": {}},
                        "validation": {"kind": "kfold", "folds": 4, "stratified": stratified}})
    splits = load_splits(cfg)
    y = np.concatenate([splits._raw["train"][1], splits._raw["val"][1]])
    folder = (StratifiedKFold if stratified else KFold)(n_splits=4, shuffle=True, random_state=7)
    for f, (_, val_idx) in enumerate(folder.split(np.zeros(len(y)), y)):
        train, val, _ = fold_data(cfg, spec({}, fold=f))
        assert val.y.tolist() == y[val_idx].tolist() and len(train) == len(y) - len(val_idx)
