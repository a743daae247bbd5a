"""verify: recommendations become study recipes; a tiny real study judges them with paired CIs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from reglab.errors import UserError
from reglab.report.diagnose import Recommendation, diagnose
from reglab.report.verify import _judge, to_recipe, verify


@pytest.mark.parametrize(
    ("change", "base", "task", "expected"),
    [
        # Image augmentation needs the images' size (image_shape below): without it, nothing to run.
        ({"dropout": 0.3, "augment": "image"}, {}, "image", None),
        ({"weight_decay": 0.01}, {"dropout": 0.1}, None, {"dropout": 0.1, "weight_decay": 0.01}),
        ({"l1": 1e-4}, {}, None, {"l1": 1e-4, "proximal": True}),
        ({"early_stopping": True, "augment": True}, {}, "signal", {"early_stopping": True,
                                                                    "augment": "signal_default"}),
        ({"early_stopping": True, "augment": True}, {}, None, None),  # no task: no augmentation to pick
        ({"regularization_factor": 0.5}, {"l2": 1e-3, "dropout": 0.4, "norm": "batch"}, None,
         {"l2": 5e-4, "dropout": 0.2, "norm": "batch"}),
        ({"regularization_factor": 0.5}, {"norm": "batch"}, None, None),
        ({"lr_factor": 0.5}, {}, None, {"lr": 0.005}),
        ({"epochs_factor": 2}, {}, None, None),
        ({}, {}, None, None),
    ],
)
def test_recommendations_map_onto_recipe_keys(change, base, task, expected):
    # Halving is exact in binary floating point, so plain equality holds.
    assert to_recipe(Recommendation("a", "b", change), base, task=task, lr=0.01) == expected


@pytest.mark.parametrize(
    ("image_shape", "augment"),
    [
        # Flat digits: 64 features read as one 8 x 8 channel, padded by 1 (an eighth of 8).
        ((64,), {"name": "crop", "size": [8, 8], "padding": 1, "shape": [1, 8, 8]}),
        ((3, 32, 32), {"name": "crop", "size": [32, 32], "padding": 4}),  # the classic CIFAR pad-4 crop
        ((1, 28, 20), {"name": "crop", "size": [28, 20], "padding": 4}),
        ((40,), None),  # not a square: no image shape to crop
        ((2, 20), None),
    ],
)
def test_image_augmentation_is_a_pad_and_crop_of_the_images_own_size(image_shape, augment):
    """``augment: crop`` alone (what verify wrote) fails in every study: RandomCrop needs its size."""
    rec = Recommendation("a", "b", {"dropout": 0.3, "augment": "image"})
    expected = None if augment is None else {"dropout": 0.3, "augment": augment}
    assert to_recipe(rec, {}, task="image", lr=0.01, image_shape=image_shape) == expected


@pytest.mark.parametrize(
    ("low", "high", "n", "higher", "outcome"),
    [
        (0.01, 0.05, 3, True, "helped"),
        (-0.05, -0.01, 3, True, "hurt"),
        (-0.01, 0.05, 3, True, "no clear difference"),
        (-0.05, -0.01, 3, False, "helped"),  # a loss that fell
        (0.01, 0.05, 3, False, "hurt"),
        (0.01, 0.05, 1, True, "no clear difference"),
        (math.nan, math.nan, 3, True, "no clear difference"),
    ],
)
def test_judgement_needs_the_interval_to_exclude_zero(low, high, n, higher, outcome):
    assert _judge(low, high, n, higher_is_better=higher) == outcome


def _overfit() -> pd.DataFrame:
    e = np.arange(40)
    return pd.DataFrame({"epoch": e, "train_loss": 2.3 * np.exp(-e / 6) + 0.02,
                         "val_loss": 0.6 + 0.001 * (e - 10) ** 2 + 1.5 * np.exp(-e / 4)})


def _tiny_config(tmp_path, baseline: str):
    """A one-epoch digits study config whose baseline recipe ``none`` is ``baseline`` (YAML)."""
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        "name: tiny\ndataset: {name: digits}\nmodel: {family: mlp, hidden: [8]}\n"
        "training: {epochs: 1, batch_size: 128, optimizer: adam, lr: 0.01}\nseeds: [0, 1]\n"
        f"validation: {{kind: holdout}}\nbaseline: none\nrecipes:\n  none: {baseline}\n"
    )
    return cfg


def test_tiny_verification_study_runs_and_judges(tmp_path):
    cfg = _tiny_config(tmp_path, "{dropout: 0.2}")
    d = diagnose(_overfit(), task="text")
    results = verify(d, cfg, out=tmp_path / "v")
    assert [r.action for r in results] == [r.action for r in d.recommendations]
    wd = results[0]
    assert wd.recipe == {"dropout": 0.2, "weight_decay": 0.01} and wd.pairs == 2
    assert wd.outcome in ("helped", "hurt", "no clear difference")
    # Two seeds that moved by the same amount (quantized test accuracies) have no interval, and no verdict.
    if math.isnan(wd.low):
        assert math.isnan(wd.high) and wd.outcome == "no clear difference"
    else:
        assert wd.low <= wd.diff <= wd.high
    assert (tmp_path / "v" / "study.db").is_file()


@pytest.mark.parametrize(("metric", "diff", "outcome"), [
    ("test_mse", -0.3, "helped"), ("test_mse", 0.3, "hurt"), ("test_mae", -0.3, "helped"),
    ("test_loss", 0.3, "hurt"), ("test_accuracy", 0.3, "helped"),
])
def test_the_judgement_reads_the_metrics_direction_mse_included(tmp_path, monkeypatch, metric, diff, outcome):
    """Only names ending in 'loss' were lower-is-better: a regression study's lower MSE read as 'hurt'."""
    from reglab.study import Study

    def run(self, **_):
        compared = {"diff": diff, "low": diff - 0.1, "high": diff + 0.1, "n": 3}
        return {"metric": metric, "recipes": {name: {"vs_baseline": {"test": compared}}
                                              for name in self.config.recipes}}

    monkeypatch.setattr(Study, "run", run)
    results = verify(diagnose(_overfit(), task="text"), _tiny_config(tmp_path, "{}"), out=tmp_path / "v")
    assert {r.outcome for r in results if r.recipe is not None} == {outcome}


def test_an_image_tasks_augmentation_trains_in_the_verification_study(tmp_path):
    """On digits with --task image the augmentation recipe was ``augment: crop``, which no study can build
    (RandomCrop needs its size), so every verification of an image run failed."""
    cfg = _tiny_config(tmp_path, "{}")
    d = diagnose(_overfit(), task="image")
    results = verify(d, cfg, out=tmp_path / "v")
    crops = [r for r in results if isinstance(r.recipe, dict) and "augment" in r.recipe]
    assert crops, [r.recipe for r in results]
    for r in crops:
        assert r.recipe["augment"] == {"name": "crop", "size": [8, 8], "padding": 1, "shape": [1, 8, 8]}
        assert r.pairs == 2 and r.outcome in ("helped", "hurt", "no clear difference")


def test_nothing_to_verify_is_a_user_error(tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("name: t\ndataset: {name: digits}\nrecipes:\n  none: {}\n")
    e = np.arange(20)
    stuck = pd.DataFrame({"epoch": e, "train_loss": 1.9 + 0.4 * np.exp(-e / 3),
                          "val_loss": 1.95 + 0.4 * np.exp(-e / 3)})
    d = diagnose(stuck)  # converged at a high loss: "reduce regularization" with none to reduce
    assert d.rule == "high-plateau"
    with pytest.raises(UserError, match="none of the recommendations maps onto a study recipe"):
        verify(d, cfg, out=tmp_path / "v")


def test_a_high_plateaus_advice_is_verified_by_halving_the_regularization():
    """Of a high plateau's three, halving the recipe's regularization is a study recipe; more capacity changes
    the model and the noise-floor verdict changes nothing, so neither maps onto a recipe key."""
    e = np.arange(30)
    floor = pd.DataFrame({"epoch": e, "train_loss": 2.25 + np.exp(-e / 2), "val_loss": 2.3 + np.exp(-e / 2)})
    d = diagnose(floor)
    assert d.rule == "high-plateau"
    recipes = [to_recipe(r, {"l2": 1e-3, "dropout": 0.2}, task=None, lr=0.01) for r in d.recommendations]
    assert recipes == [{"l2": 5e-4, "dropout": 0.1}, None, None]


def test_a_regression_runs_verification_with_the_regression_defaults(tmp_path, monkeypatch):
    """On diabetes, verify re-read its config with every default written out: search.metric and the
    baseline's early-stopping monitor became val_accuracy, and the study refused its own config."""
    cfg = tmp_path / "reg.yaml"
    cfg.write_text(
        "name: reg\ndataset: {name: diabetes}\nmodel: {family: mlp, hidden: []}\n"
        "training: {epochs: 3, batch_size: 64, optimizer: sgd, lr: 0.05}\nseeds: [0, 1]\n"
        "validation: {kind: holdout}\nbaseline: none\nrecipes:\n  none: {early_stopping: {patience: 1}}\n"
    )
    from reglab.study import Study

    seen = {}
    real_run = Study.run

    def run(self, **kwargs):
        seen["summary"] = summary = real_run(self, **kwargs)
        return summary

    monkeypatch.setattr(Study, "run", run)
    results = verify(diagnose(_overfit(), task="tabular"), cfg, out=tmp_path / "v")
    assert seen["summary"]["metric"] == "val_mse"
    tried = [r for r in results if r.recipe is not None]
    assert tried and all(r.pairs == 2 and r.outcome in ("helped", "hurt", "no clear difference")
                         for r in tried)
