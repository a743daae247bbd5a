"""A study database another process keeps locked: one line naming the file and what to do, no traceback.

The lock is held by a real second process (sqlite3 with an open transaction), and the busy timeout is
shortened from 30 s so that each wait takes a fraction of a second.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest
import yaml

import reglab.cli as cli
import reglab.study.storage as storage
from reglab.study.storage import StudyStorage, default_url

CONFIG = {"name": "locked", "dataset": {"name": "breast_cancer"}, "model": {"hidden": [4]},
          "training": {"epochs": 1, "batch_size": 128}, "seeds": [0], "validation": {"kind": "holdout"},
          "recipes": {"none": {}}}
# Holds the database's lock until its standard input closes. EXCLUSIVE locking mode also keeps readers
# out, as a program that switched it on would; a plain BEGIN IMMEDIATE only keeps other writers out (WAL).
HOLD = ("import sqlite3, sys; con = sqlite3.connect(sys.argv[1], isolation_level=None); "
        "con.execute('PRAGMA locking_mode=EXCLUSIVE') if sys.argv[2] == 'exclusive' else None; "
        "con.execute('BEGIN IMMEDIATE'); con.execute('SELECT count(*) FROM trials').fetchall(); "
        "print('locked', flush=True); sys.stdin.read()")


@pytest.fixture(autouse=True)
def _short_waits(monkeypatch):
    monkeypatch.setattr(cli, "COMMANDS", ("study", "show"))
    monkeypatch.setattr(storage, "BUSY_TIMEOUT_S", 0.6)
    monkeypatch.setattr(storage, "BUSY_NOTICE_S", 0.2)


def _study_db(out):
    out.mkdir()
    store = StudyStorage(default_url(out))
    store.save_config("locked", json.dumps({"name": "locked", "dataset": {"name": "breast_cancer"}}))
    store.close()
    return out / "study.db"


def _hold(db, mode="write"):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(db), mode], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)
    assert proc.stdout.readline() == b"locked\n"
    return proc


def _release(proc):
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0


def _error_line(err, command, db):
    """The last stderr line: the one-line error (the notice that the writer waits may come before it)."""
    assert "Traceback" not in err and err.endswith("\n")
    line = err.splitlines()[-1]
    assert line == (f"reglab {command}: error: the study database {str(db)!r} is locked by another "
                    "process, which held it for more than 0.6 s (a program with it open in a transaction, "
                    "e.g. sqlite3 or a database browser, or a stuck process); close that program or wait "
                    "for it, then rerun")
    return err.splitlines()[:-1]


def test_study_on_a_database_another_process_holds_is_one_line(tmp_path, capsys):
    """It waited 30 s, then said 'the study database cannot be read: database is locked', naming no file."""
    db = _study_db(tmp_path / "s")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(CONFIG))
    holder = _hold(db)
    try:
        start = time.monotonic()
        assert cli.main(["study", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "s"), "--quiet"]) == 2
        assert time.monotonic() - start < 5
    finally:
        _release(holder)
    before = _error_line(capsys.readouterr().err, "study", db)
    assert before == [f"reglab: waiting for the study database {str(db)!r}: another process holds its write "
                      "lock (giving up after 0.6 s)"]


def test_show_reads_beside_a_writer_and_says_when_it_is_locked_out(tmp_path, capsys):
    db = _study_db(tmp_path / "s")
    holder = _hold(db)  # a write transaction: WAL lets readers through
    try:
        assert cli.main(["show", str(tmp_path / "s")]) == 0
    finally:
        _release(holder)
    assert "no results yet" in capsys.readouterr().out
    holder = _hold(db, "exclusive")
    try:
        assert cli.main(["show", str(tmp_path / "s")]) == 2
    finally:
        _release(holder)
    assert _error_line(capsys.readouterr().err, "show", db) == []


def test_a_writer_waits_out_a_short_lock_and_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(storage, "BUSY_TIMEOUT_S", 20.0)
    db = _study_db(tmp_path / "s")
    store = StudyStorage(default_url(tmp_path / "s"))
    holder = _hold(db)
    try:
        # The holder lets go after 1 s, past the notice: the writer then gets the lock and stores its trial.
        start = time.monotonic()
        releaser = threading.Timer(1.0, holder.stdin.close)
        releaser.start()
        tid = store.start(("cv", "none", "{}", 0, 0), epochs_budget=1)
        assert 1.0 <= time.monotonic() - start < 10
        store.finish(tid, "done", {"val_accuracy": 0.5}, [], duration=0.1)
        assert [t["status"] for t in store.trials()] == ["done"]
    finally:
        releaser.join()
        assert holder.wait(timeout=30) == 0
        store.close()
    assert capsys.readouterr().err == (f"reglab: waiting for the study database {str(db)!r}: another process "
                                       "holds its write lock (giving up after 20 s)\n")
