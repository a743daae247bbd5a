"""Crashes inside the two writes that matter: a checkpoint file and a trial's database transaction.

A ``kill -9`` in the middle of either must leave the previous state readable and complete:
the old ``last.pt`` (never a truncated one) and a database where the half-written group of
trials rolled back; resuming then finishes with exactly the numbers of an uninterrupted run.
"""

from __future__ import annotations

import sqlite3

import pytest
import torch

from reglab.errors import UserError
from reglab.study import Study
from reglab.study.export import export, open_storage

from ._support import python

# Data, model and trainer shared by the killed child and the reference run in this process.
SETUP = """
import torch
from reglab.callbacks import ModelCheckpoint
from reglab.models import MLP
from reglab.train import Trainer

def make(ckpt_dir, epochs=5):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(40, 3, generator=g, dtype=torch.float64)
    y = (x[:, 0] > 0).long()
    model = MLP(3, 2, hidden=(5,)).double()
    cbs = [ModelCheckpoint(ckpt_dir, save_best=False)] if ckpt_dir else []
    return Trainer(model, epochs=epochs, batch_size=8, seed=3, progress="off", callbacks=cbs), (x, y)
"""

KILL_IN_THIRD_SAVE = SETUP + """
import os, signal, sys
real_fsync = os.fsync
calls = [0]

def dying_fsync(fd):
    calls[0] += 1
    if calls[0] == 3:  # the third epoch's checkpoint: half of its bytes reach the disk, then kill -9
        os.ftruncate(fd, os.fstat(fd).st_size // 2)
        os.kill(os.getpid(), signal.SIGKILL)
    return real_fsync(fd)

os.fsync = dying_fsync
trainer, data = make(sys.argv[1])
trainer.fit(data)
"""


def _setup() -> dict:
    scope: dict = {}
    exec(SETUP, scope)  # noqa: S102 - the same source the child runs, so both build the same run
    return scope


def test_kill_9_inside_a_checkpoint_write_keeps_the_previous_file_and_resumes_exactly(tmp_path):
    proc = python(KILL_IN_THIRD_SAVE, str(tmp_path))
    assert proc.returncode == -9, proc.stderr.decode()
    leftovers = [p for p in tmp_path.iterdir() if p.name != "last.pt"]
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".last.pt.")  # the half-written temp file
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert state["epoch"] == 1  # the second epoch's complete file, not the third's half
    # The half-written file is refused with one line, never half-loaded.
    make = _setup()["make"]
    trainer, data = make(tmp_path / "other")
    with pytest.raises(UserError, match=r"refused .*truncated or not a torch file"):
        trainer.fit(data, resume_from=leftovers[0])
    resumed, data = make(tmp_path / "resumed")
    resumed.fit(data, resume_from=tmp_path / "last.pt")
    straight, data = make(tmp_path / "straight")
    straight.fit(data)
    for a, b in zip(resumed.model.parameters(), straight.model.parameters(), strict=True):
        assert torch.equal(a, b)
    def untimed(rows):
        return [{k: v for k, v in r.items() if k != "time"} for r in rows]

    assert untimed(resumed.history_.rows) == untimed(straight.history_.rows)


# The whole tiny study in a child that dies inside the first group's transaction: after the third
# trial of a six-trial population group is written, before the commit.
KILL_IN_TRANSACTION = """
import os, signal, sys, json
from reglab.study import Study
from reglab.study.storage import StudyStorage

real = StudyStorage._finish
calls = [0]

def dying_finish(conn, *a, **k):
    real(conn, *a, **k)
    calls[0] += 1
    if calls[0] == 3:
        os.kill(os.getpid(), signal.SIGKILL)

StudyStorage._finish = staticmethod(dying_finish)
Study(json.loads(sys.argv[1])).run(out=sys.argv[2], progress=False)
"""


def test_kill_9_inside_a_trial_transaction_rolls_back_and_resume_loses_and_repeats_nothing(tmp_path, tiny):
    import json

    out = tmp_path / "killed"
    proc = python(KILL_IN_TRANSACTION, json.dumps(tiny), str(out))
    assert proc.returncode == -9, proc.stderr.decode()
    con = sqlite3.connect(out / "study.db")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    statuses = [s for (s,) in con.execute("SELECT status FROM trials")]
    # The group of six cv trials was marked running; none of its three written rows survived.
    assert statuses == ["running"] * 6
    assert con.execute("SELECT COUNT(*) FROM epochs").fetchone()[0] == 0
    con.close()
    Study(tiny).run(out=out, progress=False)  # resume
    Study(tiny).run(out=tmp_path / "clean", progress=False)
    killed, clean = open_storage(out), open_storage(tmp_path / "clean")
    try:
        assert export(killed, "csv") == export(clean, "csv")
        rows = killed.trials()
        assert len(rows) == len(clean.trials()) == 6 + 4  # 3 candidates x 2 seeds, 2 recipes x 2 seeds
        assert sorted(t["attempts"] for t in rows) == [1] * 4 + [2] * 6  # only the rolled-back group reran
        assert len({(t["phase"], t["recipe"], t["params_json"], t["seed"], t["fold"]) for t in rows}) == 10
    finally:
        killed.close()
        clean.close()
