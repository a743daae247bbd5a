"""A reader that stops early (`reglab show S --paths | head -1`) ends the command quietly with exit 0.

Run through real processes and pipes: the error only exists where stdout is a pipe whose reader is gone.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

from reglab.study.storage import StudyStorage, default_url

ROOT = Path(__file__).resolve().parents[2]
# The console script's own lines (pyproject's `reglab = "reglab.cli:main"`).
CODE = "import sys; from reglab.cli import main; sys.exit(main(sys.argv[1:]))"


def _study(out: Path, recipes: int, points: int, epochs: int) -> Path:
    """A study (no training): `show --paths` prints recipes * points lines, export recipes * epochs rows."""
    out.mkdir(parents=True)
    store = StudyStorage(default_url(out))
    names = [f"recipe_{i:03d}" for i in range(recipes)]
    store.save_config("pipe", json.dumps({"name": "pipe", "dataset": {"name": "digits"}, "seeds": [0],
                                          "validation": {"kind": "holdout"},
                                          "recipes": {r: {} for r in names}}))
    ci = {"mean": 0.5, "low": 0.4, "high": 0.6, "n": 2}
    for r in names:
        tid = store.start(("final", r, "{}", 0, -1), epochs_budget=epochs)
        rows = [{"epoch": e, "train_loss": 1.0 / (e + 1), "val_loss": 1.1} for e in range(epochs)]
        store.finish(tid, "done", {"test_accuracy": 0.75, "best_epoch": 0}, rows, duration=0.1)
    path = [{"params": {"l2": 10.0 ** -k}, "val_accuracy": ci, "weight_norm": ci, "zero_fraction": ci,
             "diverged": 0} for k in range(points)]
    store.save_results({"study": "pipe", "metric": "val_accuracy", "test_metric": "test_accuracy",
                        "baseline": names[0], "seeds": [0],
                        "recipes": {r: {"status": "ok", "best_params": {}, "searched": ["l2"],
                                        "test": {"mean": 0.75, "low": math.nan, "high": math.nan, "n": 1},
                                        "path": path} for r in names}})
    store.close()
    return out


def _start(argv: list[str], stdout: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", CODE, *argv], cwd=ROOT, env=env, stdout=stdout,
                            stderr=subprocess.PIPE)


def _quiet_exit_0(proc: subprocess.Popen) -> None:
    _, err = proc.communicate(timeout=300)
    assert (proc.returncode, err.decode()) == (0, "")


def test_commands_whose_reader_stops_early_exit_0_quietly(tmp_path):
    # show --paths: about 1 MB, far past a pipe's 64 KiB, so it is still writing when the reader leaves.
    study = _study(tmp_path / "studies" / "s", recipes=60, points=150, epochs=400)
    head = _start(["show", str(study), "--paths"], subprocess.PIPE)
    # export and ls write to a pipe that no one reads any more (as `| true`): their first write breaks.
    readers_gone = []
    for argv in (["export", str(study), "--epochs"], ["ls", str(tmp_path / "studies")]):
        read, write = os.pipe()
        os.close(read)
        readers_gone.append(_start(argv, write))
        os.close(write)
    first = head.stdout.readline()  # `| head -1`
    head.stdout.close()
    assert first.startswith(b"study pipe: dataset digits, model None, 60 recipes")
    for proc in (head, *readers_gone):
        _quiet_exit_0(proc)
