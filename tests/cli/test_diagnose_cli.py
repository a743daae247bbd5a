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
