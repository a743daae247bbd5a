"""Study storage on SQLite: WAL, schema version, unique trials, one transaction per trial, integrity.

The same suite runs against PostgreSQL when REGLAB_TEST_POSTGRES holds a URL (e.g.
``postgresql+psycopg://postgres@127.0.0.1:54329/postgres``; needs ``reglab[postgres]``);
without it the PostgreSQL cases are not collected.
"""

from __future__ import annotations

import os
import sqlite3

import pytest
from sqlalchemy import create_engine
from sqlalchemy.exc import IntegrityError

from reglab.errors import UserError
from reglab.study.storage import SCHEMA_VERSION, StudyStorage, default_url, metadata, params_key, trials

URLS = ["sqlite"] + (["postgres"] if os.environ.get("REGLAB_TEST_POSTGRES") else [])


@pytest.fixture(params=URLS)
def store(request, tmp_path):
    if request.param == "sqlite":
        url = default_url(tmp_path)
    else:  # a server shared between tests: start each from empty tables
        url = os.environ["REGLAB_TEST_POSTGRES"]
        engine = create_engine(url)
        metadata.drop_all(engine)
        engine.dispose()
    s = StudyStorage(url)
    yield s
    s.close()


def test_sqlite_file_is_wal_with_schema_version(tmp_path):
    StudyStorage(default_url(tmp_path)).close()
    con = sqlite3.connect(tmp_path / "study.db")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    con.close()


def test_wrong_schema_version_is_a_user_error(tmp_path):
    StudyStorage(default_url(tmp_path)).close()
    con = sqlite3.connect(tmp_path / "study.db")
    con.execute("UPDATE schema_version SET version = 99")
    con.commit()
    con.close()
    with pytest.raises(UserError, match=rf"schema version 99; this reglab reads version {SCHEMA_VERSION}"):
        StudyStorage(default_url(tmp_path))


def test_config_must_match_on_resume(store):
    store.save_config("s", '{"a": 1}')
    store.save_config("s", '{"a": 1}')
    assert store.load_config() == '{"a": 1}'
    with pytest.raises(UserError, match=r"holds a different study config"):
        store.save_config("s", '{"a": 2}')


def test_trial_lifecycle_and_epochs(store):
    key = ("cv", "l2", params_key({"l2": 0.001}), 0, 1)
    tid = store.start(key, epochs_budget=3)
    assert store.trials()[0]["status"] == "running" and store.finished() == {}
    assert store.start(key, epochs_budget=3) == tid  # a rerun counts an attempt, not a new row
    assert store.trials()[0]["attempts"] == 2
    history = [{"epoch": 0, "val_loss": 0.5}, {"epoch": 1, "val_loss": 0.4}]
    store.finish(tid, "done", {"val_accuracy": 0.75}, history, duration=1.5)
    row = store.finished()[key]
    assert row["status"] == "done" and row["metrics"] == {"val_accuracy": 0.75} and row["duration"] == 1.5
    assert store.epochs(tid) == history
    assert store.start(key, epochs_budget=3) == tid and store.trials()[0]["status"] == "done"


def test_unique_key_rejects_duplicates(store):
    key = ("final", "none", "{}", 2, -1)
    store.start(key, epochs_budget=1)
    with pytest.raises(IntegrityError), store.engine.begin() as conn:
        conn.execute(trials.insert().values(phase="final", recipe="none", params="{}", seed=2, fold=-1,
                                            epochs_budget=1, status="running", attempts=1))


def test_finish_is_one_transaction(store, monkeypatch):
    """A failure half-way through writing a trial leaves neither its epochs nor its status."""
    tid = store.start(("cv", "none", "{}", 0, 0), epochs_budget=2)
    with pytest.raises(TypeError):  # json.dumps of the metrics fails after the epochs were inserted
        store.finish(tid, "done", {"bad": object()}, [{"epoch": 0}], duration=0.1)
    assert store.epochs(tid) == [] and store.trials()[0]["status"] == "running"


def test_results_roundtrip_and_integrity(store):
    store.save_results({"recipes": {"none": {"test": 0.9}}})
    store.save_results({"recipes": {"none": {"test": 0.8}}})
    assert store.load_results() == {"recipes": {"none": {"test": 0.8}}}
    assert store.integrity_check() == "ok"


def test_params_key_is_canonical():
    assert params_key({"b": 1, "a": 0.1}) == params_key({"a": 0.1, "b": 1}) == '{"a":0.1,"b":1}'


def test_bad_url_is_a_user_error():
    with pytest.raises(UserError, match=r"cannot open storage 'nosuchdb://x'"):
        StudyStorage("nosuchdb://x")
