"""Resuming what a study interrupts: restarts (restart by restart) and population groups (epoch by epoch).

References: ``Trainer(restarts=n)`` itself for the restart procedure, and the same trial or group run
without interruption for every resume; equality is exact (every metric and history value, ``time`` aside).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from reglab.population._checkpoint import read_checkpoint
from reglab.population._shard import Shard
from reglab.study import Study
from reglab.study.execute import (
    TrialSpec,
    _make_trainer,
    build_model,
    fold_data,
    group_checkpoint,
    load_splits,
    population_key,
    run_group,
    run_trial,
)
from reglab.study.export import export, open_storage
from reglab.study.schema import parse_config
from reglab.study.storage import StudyStorage
from reglab.train.trainer import Trainer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cfg(tiny):
    tiny["training"].update(dtype="float64", batch_size=64)
    return parse_config(tiny)


def spec(params, phase="cv", seed=0, fold=0, epochs=4, checkpoint=None):
    return TrialSpec(phase, "r", params, seed=seed, fold=fold, epochs=epochs, checkpoint=checkpoint)


def untimed(rows):
    return [{k: v for k, v in r.items() if k != "time"} for r in rows]


def assert_same(got, want):
    assert [o.status for o in got] == [o.status for o in want]
    for a, b in zip(got, want, strict=True):
        assert a.metrics == b.metrics, a.spec.params
        assert untimed(a.history) == untimed(b.history), a.spec.params


@pytest.mark.parametrize("init", ["default", "orthogonal"])
def test_restarts_equal_the_trainers_own_restart_procedure(cfg, init):
    """float64 model, early stopping and dropout: the same chosen restart, weights and test metrics;
    with an ``init`` scheme, every restart draws it with its own seed, as Trainer(init=...) does."""
    from reglab.init import initialize

    p = {"restarts": 3, "dropout": 0.2, "l2": 1e-3, "early_stopping": {"patience": 2}, "init": init}
    s = spec(p, phase="final", fold=-1, epochs=5)
    got = run_trial(cfg, s)
    with torch.random.fork_rng():
        torch.manual_seed(s.seed)
        model = build_model(cfg, p, load_splits(cfg))
        if init != "default":
            initialize(model, init, generator=torch.Generator().manual_seed(s.seed))
    trainer, _ = _make_trainer(cfg, s, model, seed=s.seed, restarts=3, ckpt_dir=None, epochs=5)
    train, val, test = fold_data(cfg, s)
    history = trainer.fit(train, val, test=test)
    assert got.status == "done"
    assert got.metrics["restart"] == next(r["restart"] for r in history.restarts if r["chosen"])
    assert untimed(got.history) == untimed(history.rows)
    assert got.metrics["test_accuracy"] == history.test["accuracy"]
    assert got.metrics["test_loss"] == history.test["loss"]
    assert got.metrics["val_loss"] == trainer.evaluate(val)["loss"]


def test_interrupted_restart_resumes_and_finished_restarts_are_kept(cfg, tmp_path, monkeypatch):
    p = {"restarts": 3, "dropout": 0.3, "mixup": 0.4, "l1": 1e-3}
    want = run_trial(cfg, spec(p))
    ckpt = tmp_path / "trial"
    real_epoch, epochs_run = Trainer._run_epoch, []

    def counted(self, *args):
        epochs_run.append(1)
        if crash_at and len(epochs_run) == crash_at:
            raise KeyboardInterrupt  # what Ctrl-C does inside a trial; kill -9 leaves the same files
        return real_epoch(self, *args)

    monkeypatch.setattr(Trainer, "_run_epoch", counted)
    crash_at = 4 + 2  # restart 0 runs epochs 1-4; restart 1 dies in its second epoch
    with pytest.raises(KeyboardInterrupt):
        run_trial(cfg, spec(p, checkpoint=str(ckpt)))
    assert (ckpt / "restart0" / "done.pt").is_file() and not (ckpt / "restart1" / "done.pt").exists()
    assert torch.load(ckpt / "restart1" / "last.pt", weights_only=True)["epoch"] == 0
    epochs_run.clear()
    crash_at = None
    got = run_trial(cfg, spec(p, checkpoint=str(ckpt)))
    assert len(epochs_run) == 3 + 4  # restart 1's last three epochs and restart 2; restart 0 not again
    assert_same([got], [want])
    epochs_run.clear()
    assert_same([run_trial(cfg, spec(p, checkpoint=str(ckpt)))], [want])  # all finished: nothing retrains
    assert epochs_run == []


GROUP = [{}, {"l2": 1e-3}, {"dropout": 0.3}, {"l1": 1e-2, "proximal": True, "dropout": 0.1}]


def group_specs(tmp_path=None, epochs=6):
    folder = (lambda i: None) if tmp_path is None else (lambda i: str(tmp_path / f"t{i}"))
    return [spec(p, seed=i % 2, epochs=epochs, checkpoint=folder(i)) for i, p in enumerate(GROUP)]


def test_interrupted_population_group_resumes_from_its_epoch_checkpoint(cfg, tmp_path, monkeypatch):
    specs = group_specs(tmp_path)
    assert len({population_key(cfg, s) for s in specs}) == 1
    want = run_group(cfg, group_specs())
    real_step = Shard.step

    def crashing_step(self, x, y, idx, epoch, *args):
        if epoch == 3:
            raise KeyboardInterrupt
        return real_step(self, x, y, idx, epoch, *args)

    monkeypatch.setattr(Shard, "step", crashing_step)
    with pytest.raises(KeyboardInterrupt):
        run_group(cfg, specs)
    monkeypatch.setattr(Shard, "step", real_step)
    path = group_checkpoint(specs) / "population.pt"
    assert path.parent.parent == tmp_path and read_checkpoint(path, None)["epoch"] == 3
    loaded = []
    real_read = read_checkpoint

    def spy(*args):
        state = real_read(*args)
        loaded.append(state["epoch"])
        return state

    monkeypatch.setattr("reglab.population._checkpoint.read_checkpoint", spy)
    assert_same(run_group(cfg, specs), want)
    assert loaded == [3]


def test_an_unreadable_group_checkpoint_is_dropped_and_the_group_retrains(cfg, tmp_path):
    specs = group_specs(tmp_path, epochs=3)
    path = group_checkpoint(specs) / "population.pt"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    assert_same(run_group(cfg, specs), run_group(cfg, group_specs(epochs=3)))
    assert read_checkpoint(path, None)["epoch"] == 3  # rewritten by the retrained group


# -- kill -9 of a whole study ---------------------------------------------------------------------

KILL_CONFIG = {
    "name": "resume",
    "dataset": {"name": "breast_cancer"},
    "model": {"family": "mlp", "hidden": [8]},
    "training": {"epochs": 12, "batch_size": 32, "lr": 0.01},
    "seeds": [0],
    "validation": {"kind": "holdout"},
    "recipes": {"none": {}, "l2": {"l2": {"grid": [1e-3, 1e-1]}}, "dropout": {"dropout": 0.2},
                "restarts": {"restarts": 2, "dropout": 0.1}},
}

# The study in a child process; each step sleeps a little so that a kill lands inside training, and
# every resume from a checkpoint is logged (restart last.pt files, population checkpoints).
CHILD = """
import json, sys, time
from reglab.population import _checkpoint
from reglab.population._shard import Shard
from reglab.study import Study
from reglab.train.trainer import Trainer

config, out, log = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
real_step, real_epoch, real_load = Shard.step, Trainer._run_epoch, Trainer._load_state
real_read = _checkpoint.read_checkpoint

def note(line):
    with open(log, "a") as f:
        f.write(line + "\\n")

def slow_step(*a):
    time.sleep(0.01)
    return real_step(*a)

def slow_epoch(*a):
    time.sleep(0.05)
    return real_epoch(*a)

def load(self, path):
    note(f"trainer {path}")
    return real_load(self, path)

def read(path, expected):
    state = real_read(path, expected)
    note(f"population {state['epoch']}")
    return state

Shard.step, Trainer._run_epoch, Trainer._load_state = slow_step, slow_epoch, load
_checkpoint.read_checkpoint = read
Study(config).run(out=out, progress=False)
"""


def _start(out: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(KILL_CONFIG), str(out), str(log)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _kill_when(proc: subprocess.Popen, ready) -> None:
    deadline = time.monotonic() + 180
    while proc.poll() is None and not ready() and time.monotonic() < deadline:
        time.sleep(0.005)
    assert proc.poll() is None, "the study ended before the moment to kill it: " + proc.stderr.read().decode()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
def test_kill_9_inside_a_restart_and_inside_a_population_group_then_resume(tmp_path, monkeypatch):
    out, log = tmp_path / "killed", tmp_path / "resumes.log"
    ckpts = out / "checkpoints"
    # 1: inside the restarts trial's second restart (its first restart finished).
    _kill_when(_start(out, log), lambda: any(ckpts.glob("*/restart1/last.pt")))
    (trial,) = [p.parent.parent for p in ckpts.glob("*/restart1/last.pt")]
    assert (trial / "restart0" / "done.pt").is_file()
    # 2: the rerun resumes that restart, then is killed inside the population group's training.
    _kill_when(_start(out, log), lambda: any(ckpts.glob("group-*/population.pt")))
    (group,) = list(ckpts.glob("group-*/population.pt"))
    assert 1 <= read_checkpoint(group, None)["epoch"] < KILL_CONFIG["training"]["epochs"]
    con = sqlite3.connect(out / "study.db")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    # 3: the last rerun finishes the group from its checkpoint.
    proc = _start(out, log)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()
    lines = log.read_text().splitlines()
    assert lines[0] == f"trainer {trial / 'restart1' / 'last.pt'}"
    assert any(line.startswith("population ") and int(line.split()[1]) >= 1 for line in lines)
    assert not ckpts.exists()

    # An uninterrupted run; when its results are saved, every group's checkpoint is already gone.
    real_save = StudyStorage.save_results
    left: list[list[Path]] = []

    def save_results(self, summary):
        left.append(list((tmp_path / "clean" / "checkpoints").glob("group-*")))
        return real_save(self, summary)

    monkeypatch.setattr(StudyStorage, "save_results", save_results)
    Study(KILL_CONFIG).run(out=tmp_path / "clean", progress=False)
    assert left == [[]]
    killed, clean = open_storage(out), open_storage(tmp_path / "clean")
    try:
        assert export(killed, "csv") == export(clean, "csv")
        assert killed.integrity_check() == "ok"
        assert len(killed.trials()) == len(clean.trials())
    finally:
        killed.close()
        clean.close()
