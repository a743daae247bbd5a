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


def _foreign(path):
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE people (name TEXT)")
    con.commit()
    con.close()
    return path.read_bytes()


def test_a_reader_creates_and_changes_nothing(tmp_path):
    missing = tmp_path / "missing.db"
    with pytest.raises(UserError, match=r"no study database at '.*missing\.db': no such file"):
        StudyStorage(f"sqlite:///{missing}", readonly=True)
    assert not missing.exists()
    empty = tmp_path / "empty.db"
    empty.touch()
    with pytest.raises(UserError, match=r"'.*empty\.db' is not a reglab study \(an empty file\)"):
        StudyStorage(f"sqlite:///{empty}", readonly=True)
    assert empty.stat().st_size == 0
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"hello, world")
    with pytest.raises(UserError, match=r"'.*garbage\.db' is not a reglab study \(not an SQLite database\)"):
        StudyStorage(f"sqlite:///{garbage}", readonly=True)
    other = tmp_path / "other.db"
    before = _foreign(other)
    with pytest.raises(UserError, match=r"'.*other\.db' is not a reglab study \(its tables: people\)"):
        StudyStorage(f"sqlite:///{other}", readonly=True)
    assert other.read_bytes() == before
    with pytest.raises(UserError, match=r"is a directory, not a study database"):
        StudyStorage(f"sqlite:///{tmp_path}", readonly=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db", "garbage.db", "other.db"]


def test_a_reader_reads_a_study_and_cannot_write(tmp_path):
    from sqlalchemy.exc import OperationalError

    s = StudyStorage(default_url(tmp_path))
    s.save_config("s", '{"a": 1}')
    s.close()
    r = StudyStorage(default_url(tmp_path), readonly=True)
    assert r.load_config() == '{"a": 1}' and r.trials() == []
    with pytest.raises(OperationalError, match="readonly"):  # PRAGMA query_only
        r.save_results({"x": 1})
    r.close()


def test_a_reader_opens_a_version_1_database_without_upgrading_it(tmp_path):
    StudyStorage(default_url(tmp_path)).close()
    con = sqlite3.connect(tmp_path / "study.db")
    con.execute("DROP TABLE histograms")
    con.execute("UPDATE schema_version SET version = 1")
    con.commit()
    con.close()
    r = StudyStorage(default_url(tmp_path), readonly=True)
    assert r.histograms() == {} and r.trials() == []
    r.close()
    con = sqlite3.connect(tmp_path / "study.db")
    assert con.execute("SELECT version FROM schema_version").fetchone() == (1,)
    assert "histograms" not in {n for (n,) in con.execute("SELECT name FROM sqlite_master")}
    con.close()


def test_a_writer_refuses_tables_of_its_names_and_writes_beside_others(tmp_path):
    clash = tmp_path / "clash.db"
    con = sqlite3.connect(clash)
    con.execute("CREATE TABLE study (name TEXT)")
    con.commit()
    con.close()
    before = clash.read_bytes()
    with pytest.raises(UserError, match=r"clash\.db' is not a reglab study but has tables of reglab's names "
                       r"\(study\)"):
        StudyStorage(f"sqlite:///{clash}")
    assert clash.read_bytes() == before  # not switched to WAL, no tables added
    other = tmp_path / "other.db"
    _foreign(other)
    StudyStorage(f"sqlite:///{other}").close()
    con = sqlite3.connect(other)
    names = {n for (n,) in con.execute("SELECT name FROM sqlite_master")}
    assert {"people", "trials", "schema_version"} <= names
    con.close()
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"hello, world")
    with pytest.raises(UserError, match=r"'.*garbage\.db' is not an SQLite database, so not a reglab study"):
        StudyStorage(f"sqlite:///{garbage}")
    assert garbage.read_bytes() == b"hello, world"
    empty = tmp_path / "empty.db"
    empty.touch()
    StudyStorage(f"sqlite:///{empty}").close()  # an empty file becomes a study
    assert StudyStorage(f"sqlite:///{empty}", readonly=True).trials() == []


def test_a_database_that_cannot_be_opened_is_one_line_with_the_password_masked():
    with pytest.raises(UserError) as err:
        StudyStorage("sqlite:////proc/nonexistent/x.db")
    assert str(err.value) == ("cannot open storage 'sqlite:////proc/nonexistent/x.db': "
                              "unable to open database file")
    pytest.importorskip("psycopg")
    with pytest.raises(UserError) as err:
        StudyStorage("postgresql+psycopg://me:s3cret@127.0.0.1:1/db?connect_timeout=5")
    msg = str(err.value)
    assert msg.startswith("cannot open storage 'postgresql+psycopg://me:***@127.0.0.1:1/db?connect_timeout=5'")
    assert "s3cret" not in msg and "\n" not in msg and "Connection refused" in msg


def test_release_after_a_ctrl_c_during_the_heartbeats_start_is_quiet():
    """A Ctrl-C that lands while Thread.start() waits for the heartbeat thread left a thread that join()
    refuses ('cannot join thread before it is started'): the study's Ctrl-C became a traceback, exit 1."""
    from reglab.study.storage import StudyStorage, _Heartbeat

    store = StudyStorage("sqlite://")
    store._beat = _Heartbeat(store)  # created, never started: what the interrupted start() leaves
    store._claimed = set()
    store.close()
    assert store._beat is None
