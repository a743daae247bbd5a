"""`reglab diagnose` through the real CLI frame: output, --json, exit code 2 with one line on bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import reglab.cli as cli

E = np.arange(40.0)


@pytest.fixture(autouse=True)
def _only_diagnose(monkeypatch):
    # Other subcommands are built by other engineers: test this one through the frame alone.
    monkeypatch.setattr(cli, "COMMANDS", ("diagnose",))


@pytest.fixture
def overfit_csv(tmp_path):
    p = tmp_path / "history.csv"
    train = 2.3 * np.exp(-E / 6) + 0.02
    val = 0.6 + 0.001 * (E - 10) ** 2 + 1.5 * np.exp(-E / 4)
    lines = ["epoch,train_loss,val_loss"] + [f"{int(e)},{t},{v}" for e, t, v in zip(E, train, val)]
    p.write_text("\n".join(lines) + "\n")
    return p


def test_text_output_names_verdict_evidence_and_seeded_advice(overfit_csv, capsys):
    assert cli.main(["diagnose", str(overfit_csv), "--task", "image"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Diagnosis: over-fitting (rule: val-rising)")
    assert "lowest validation loss" in out and "generalization gap" in out
    assert "dropout 0.3 and image augmentation" in out


def test_json_output(overfit_csv, capsys):
    assert cli.main(["diagnose", str(overfit_csv), "--task", "text", "--samples", "1000", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"] == "overfit"
    changes = [r["change"] for r in data["recommendations"]]
    assert {"weight_decay": 0.01} in changes and {"early_stopping": True, "augment": "text"} in changes


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["diagnose", "nope.csv"], "history file not found: nope.csv; pass a CSV or JSON file"),
        (["diagnose", "{path}", "--samples", "-3"], "The 'samples' parameter of diagnose must be an int"),
        (["diagnose", "{path}", "--verify"], "--verify needs --config CONFIG"),
        (["diagnose", "{path}", "--config", "digits"], "--config only applies with --verify"),
        (["diagnose", "{path}", "--config", "d", "--verify-out", "v"], "--config and --verify-out only"),
    ],
)
def test_user_errors_exit_2_with_one_line(overfit_csv, capsys, argv, message):
    argv = [a.format(path=overfit_csv) for a in argv]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("reglab diagnose: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_malformed_file_from_a_subprocess_has_no_traceback(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("epoch,loss\n0,1.0\n")
    code = "import sys, reglab.cli as c; c.COMMANDS = ('diagnose',); sys.exit(c.main(sys.argv[1:]))"
    proc = subprocess.run([sys.executable, "-c", code, "diagnose", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "lacks the column(s) val_loss" in proc.stderr and "Traceback" not in proc.stderr


def test_verify_runs_a_tiny_study(overfit_csv, tmp_path, capsys):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        "name: tiny\ndataset: {name: digits}\nmodel: {family: mlp, hidden: [8]}\n"
        "training: {epochs: 1, batch_size: 128}\nseeds: [0, 1]\nvalidation: {kind: holdout}\n"
        "recipes:\n  none: {}\n"
    )
    argv = ["diagnose", str(overfit_csv), "--task", "text", "--json", "--verify", "--config", str(cfg)]
    assert cli.main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    first = data["verification"][0]
    assert first["recipe"] == {"weight_decay": 0.01} and first["pairs"] == 2
    assert first["outcome"] in ("helped", "hurt", "no clear difference")
    assert (overfit_csv.parent / "verify" / "study.db").is_file()


def test_a_malformed_nonfinite_block_is_one_line_naming_the_file(tmp_path, capsys):
    bad = tmp_path / "badptr.json"
    bad.write_text('{"rows": [{"epoch": 0, "train_loss": 1.0, "val_loss": 1.0}], '
                   '"$nonfinite": {"/rows/3/train_loss": "nan"}}')
    assert cli.main(["diagnose", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"reglab diagnose: error: history file {bad}: "
                          "$nonfinite entry '/rows/3/train_loss' points at nothing: '/rows' has 1 item(s)")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_verify_prints_an_interval_only_when_there_is_one(overfit_csv, tmp_path, capsys, monkeypatch):
    """Pairs that all differ by the same amount have no interval (low = high = NaN): it said [+nan, +nan]."""
    import importlib
    import math

    from reglab.report.verify import VerifiedRecommendation as V

    verify_module = importlib.import_module("reglab.report.verify")  # reglab.report.verify is also a function

    checked = [V("add dropout", {"dropout": 0.3}, "no clear difference", 0.0123, math.nan, math.nan, 3),
               V("add weight decay", {"weight_decay": 0.01}, "no clear difference", 0.0, math.nan, math.nan,
                 3),
               V("augment", {"augment": "text"}, "helped", 0.02, 0.01, 0.03, 3),
               V("stop early", None, "not verified (no matching recipe key)")]
    monkeypatch.setattr(verify_module, "verify", lambda *args, **kwargs: checked)
    argv = ["diagnose", str(overfit_csv), "--verify", "--config", str(tmp_path / "cfg.yaml")]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "nan" not in out.split("Verification")[1]
    assert ("  - add dropout: no clear difference: +0.0123, 3 pairs (no interval: every pair differs by the "
            "same amount)\n") in out
    assert ("  - add weight decay: no clear difference: identical to the run's recipe on every seed, 3 pairs "
            "(no interval; more seeds cannot separate them)\n") in out
    assert "  - augment: helped: +0.02 [+0.01, +0.03], 3 pairs\n" in out
    assert "  - stop early: not verified (no matching recipe key)\n" in out


def test_a_keras_log_with_a_constant_gap_is_still_improving_not_over_fitting(tmp_path, capsys):
    """Finding 2 in CSVLogger form: val_loss = loss + 0.1 gave "over-fitting (rule: gap-growing)" and
    "(growing, +0.0%)", from a gap trend of +1.85e-16."""
    e = np.arange(20)
    path = tmp_path / "keras.csv"
    path.write_text("epoch,accuracy,loss,val_accuracy,val_loss\n" + "".join(
        f"{i},{0.5 + i / 50},{1 / (i + 1)},{0.5 + i / 60},{1 / (i + 1) + 0.1}\n" for i in e))
    assert cli.main(["diagnose", str(path), "--task", "image"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Diagnosis: under-fitting (rule: still-improving)"), out
    assert "(not growing, +0.0%; growing from +1%)" in out and "(growing" not in out


def test_a_converged_run_at_a_loss_floor_is_under_fitting_at_a_high_loss(tmp_path, capsys):
    """A regression at its noise floor (training loss flat at 69 % of its first value, validation just above
    it) read "under-fitting (rule: little-progress)", advised as if it were still falling."""
    path = tmp_path / "floor.csv"
    path.write_text("epoch,train_loss,val_loss\n" + "".join(
        f"{i},{2.25 + np.exp(-i / 2)},{2.3 + np.exp(-i / 2)}\n" for i in range(40)))
    assert cli.main(["diagnose", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Diagnosis: under-fitting, converged at a high loss (rule: high-plateau)"), out
    assert "train longer" not in out and "1. reduce regularization (halve penalties and dropout)" in out
    assert cli.main(["diagnose", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["verdict"], data["label"]) == ("underfit", "under-fitting, converged at a high loss")
    assert [r["change"] for r in data["recommendations"]] == [{"regularization_factor": 0.5},
                                                               {"capacity_factor": 2}, {}]
    assert data["thresholds"]["recent_share"] == 0.1 and 0 <= data["evidence"]["train_recent_share"] < 0.1


def _two_trial_study(out):
    """A stored study (no training) with two final trials: one over-fits (val loss rises from epoch 3),
    the other is still improving; their per-epoch mean is neither run."""
    from reglab.study.storage import StudyStorage, default_url

    out.mkdir(parents=True)
    store = StudyStorage(default_url(out))
    store.save_config("mini", json.dumps({"name": "mini", "dataset": {"name": "digits"}, "seeds": [0, 1],
                                          "recipes": {"none": {}, "l2": {}}}))
    e = np.arange(10.0)
    curves = {"none": (2.0 * np.exp(-e / 2) + 0.05, 0.6 + 0.05 * (e - 3) ** 2),
              "l2": (2.0 - 0.15 * e, 2.1 - 0.15 * e)}
    for recipe, (train, val) in curves.items():
        tid = store.start(("final", recipe, "{}", 0, -1), epochs_budget=10)
        rows = [{"epoch": int(i), "train_loss": float(t), "val_loss": float(v)}
                for i, t, v in zip(e, train, val)]
        store.finish(tid, "done", {"test_accuracy": 0.75, "best_epoch": 3}, rows, duration=0.1)
    store.close()
    return out


def test_a_study_export_is_refused_and_one_trial_of_it_is_diagnosed(tmp_path, monkeypatch, capsys):
    """`reglab export --epochs` of a study was read as one run: the rows were averaged per epoch over every
    trial (and a trials export without --epochs read one trial per epoch) and given a verdict."""
    import pandas as pd

    monkeypatch.setattr(cli, "COMMANDS", ("diagnose", "export"))
    study = _two_trial_study(tmp_path / "s")
    epochs, trials = tmp_path / "epochs.csv", tmp_path / "trials.json"
    assert cli.main(["export", str(study), "--epochs", "--out", str(epochs)]) == 0
    assert cli.main(["export", str(study), "--format", "json", "--out", str(trials)]) == 0
    capsys.readouterr()
    assert cli.main(["diagnose", str(epochs)]) == 2
    err = capsys.readouterr().err
    assert "epochs.csv holds 2 runs (rows differ in phase, recipe, params, seed, fold" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert cli.main(["diagnose", str(trials)]) == 2
    assert "holds one row per trial (a `reglab export` without --epochs)" in capsys.readouterr().err
    # One trial's rows, as the error says: that run's own verdict (val loss lowest at epoch 3, then rising).
    table = pd.read_csv(epochs)
    one = tmp_path / "none.csv"
    table[table["recipe"] == "none"].to_csv(one, index=False)
    assert cli.main(["diagnose", str(one), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["verdict"], data["evidence"]["best_epoch"], data["evidence"]["epochs"]) == ("overfit", 3, 10)
    # The same table handed to diagnose() in Python is refused too, not sorted into a zig-zag curve.
    from reglab.errors import UserError
    from reglab.report import diagnose

    with pytest.raises(UserError, match="the history holds 2 runs"):
        diagnose(table)
    with pytest.raises(UserError, match="the history repeats epoch 0: diagnose judges one run"):
        diagnose(table.drop(columns=["phase", "recipe", "params", "seed", "fold"]))
