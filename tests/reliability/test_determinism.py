"""Same config and seeds, same bytes: ``reglab export`` (trials and epochs, CSV and JSON) of two runs,
and of a run SIGKILLed mid-trial and resumed, equals a clean run byte for byte (local vs Ray:
``tests/study/test_backends_ray.py``; two processes at once: ``test_concurrency.py``).

The study mixes population groups (L2 grid), Trainer trials with checkpoints (an init scheme) and
a diverging recipe whose histories hold NaN and infinity, which must reach the exports as strict
JSON and read back exactly from the database.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from reglab.study import Study
from reglab.study.export import open_storage

from ._support import TINY, python, run_cli

CONFIG: dict[str, Any] = {
    **TINY, "name": "same_bytes", "training": {"epochs": 3, "batch_size": 128, "lr": 0.01},
    "validation": {"kind": "kfold", "folds": 2},
    "recipes": {"none": {}, "l2": {"l2": {"grid": [1e-3, 1e-1]}}, "xavier": {"init": "xavier_uniform"},
                "absurd_lr": {"lr": 1e300}},
}
VARIANTS = {"trials.csv": [], "trials.json": ["--format", "json"], "epochs.csv": ["--epochs"],
            "epochs.json": ["--epochs", "--format", "json"]}

# The study in a child that is SIGKILLed right after the 5th checkpoint write: in the middle of the
# second Trainer trial, which then resumes from its last.pt.
KILL_MID_TRIAL = """
import json, os, signal, sys
import torch
real, calls = torch.save, [0]

def dying_save(*a, **k):
    real(*a, **k)
    calls[0] += 1
    if calls[0] == 5:
        os.kill(os.getpid(), signal.SIGKILL)

torch.save = dying_save
from reglab.study import Study
Study(json.loads(sys.argv[1])).run(out=sys.argv[2], progress=False)
"""


def _strict(text: str) -> Any:
    def refuse(token: str):
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def exports(study: Path, capsys: pytest.CaptureFixture, into: Path) -> dict[str, bytes]:
    """The four ``reglab export`` files of a study, as bytes."""
    into.mkdir()
    out = {}
    for name, flags in VARIANTS.items():
        code, _, err = run_cli(["export", str(study), *flags, "--out", str(into / name)], capsys)
        assert code == 0, err
        out[name] = (into / name).read_bytes()
    return out


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clean") / "study"
    Study(CONFIG).run(out=out, progress=False)
    return out


def test_two_runs_of_the_same_config_export_the_same_bytes(clean, tmp_path, capsys):
    again = tmp_path / "again"
    Study(CONFIG).run(out=again, progress=False)
    first, second = exports(clean, capsys, tmp_path / "a"), exports(again, capsys, tmp_path / "b")
    assert first == second
    rows = _strict(first["trials.json"].decode())
    epochs = _strict(first["epochs.json"].decode())
    assert len(rows) == 26  # cv: 5 candidates x 2 seeds x 2 folds; final: 3 recipes x 2 seeds (not
    assert {r["status"] for r in rows} == {"done", "diverged"}  # ... absurd_lr: it diverged in cv)
    assert not any("time" in r or "duration" in r for r in rows + epochs)  # no wall-clock column
    assert len(epochs) == sum(r.get("epochs_run", r.get("diverged_epoch", 0) + 1) for r in rows)


def test_a_run_killed_mid_trial_and_resumed_exports_the_same_bytes(clean, tmp_path, capsys):
    out = tmp_path / "killed"
    proc = python(KILL_MID_TRIAL, json.dumps(CONFIG), str(out), timeout=300)
    assert proc.returncode == -9, proc.stderr.decode()
    assert any((out / "checkpoints").glob("*/last.pt"))  # a Trainer trial was cut off mid-way
    Study(CONFIG).run(out=out, progress=False)  # resume
    assert exports(out, capsys, tmp_path / "k") == exports(clean, capsys, tmp_path / "c")
    store = open_storage(out)
    try:
        assert sorted(t["attempts"] for t in store.trials()).count(2) == 1  # only the cut-off trial reran
    finally:
        store.close()


def test_a_diverged_history_round_trips_exactly_and_exports_as_strict_json(clean, tmp_path, capsys):
    store = open_storage(clean)
    try:
        diverged = [t for t in store.trials() if t["status"] == "diverged"]
        histories = [store.epochs(t["id"]) for t in diverged]
        with store.engine.connect() as conn:
            raw = [r[0] for r in conn.exec_driver_sql("SELECT metrics FROM epochs")]
            raw_summary = conn.exec_driver_sql("SELECT value FROM results").scalar()
        summary = store.load_results()
    finally:
        store.close()
    assert len(diverged) == 4 and all(t["recipe"] == "absurd_lr" for t in diverged)
    last = histories[0][-1]  # the epoch that blew up: NaN loss, an infinite learning rate
    assert math.isnan(last["train_loss"]) and last["lr"] == math.inf
    for text in [*raw, raw_summary]:
        _strict(text)  # the database holds RFC 8259 JSON only
    assert any(_strict(text).get("$nonfinite") for text in raw)
    assert math.isnan(summary["recipes"]["absurd_lr"]["path"][0]["val_accuracy"]["mean"])
    code, text, err = run_cli(["export", str(clean), "--epochs", "--format", "json"], capsys)
    assert code == 0, err
    rows = [r for r in _strict(text) if r["recipe"] == "absurd_lr"]
    assert len(rows) == 4 and all(r["train_loss"] is None and r["lr"] is None for r in rows)
