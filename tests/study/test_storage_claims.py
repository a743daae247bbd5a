"""Claims: several processes on one study run each trial once; a dead owner's trials are taken over.

Two ``StudyStorage`` objects on one database are two owners (as two processes are); the
process-level tests are in ``tests/reliability/test_concurrency.py``. Also: strict JSON for
histories and the summary that restores NaN and infinities exactly. Like ``test_storage.py``,
every case also runs on PostgreSQL when REGLAB_TEST_POSTGRES holds a URL.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import threading
import time

import pytest
from sqlalchemy import create_engine, func, insert, select

from reglab.study.storage import StudyStorage, claims, default_url, dumps_exact, loads_exact, metadata, trials

URLS = ["sqlite"] + (["postgres"] if os.environ.get("REGLAB_TEST_POSTGRES") else [])


@pytest.fixture(params=URLS)
def url(request, tmp_path):
    if request.param == "sqlite":
        yield default_url(tmp_path)
        return
    url = os.environ["REGLAB_TEST_POSTGRES"]  # a server shared between tests: start from empty tables
    engine = create_engine(url)
    metadata.drop_all(engine)
    engine.dispose()
    yield url


@pytest.fixture
def opened():
    stores: list[StudyStorage] = []

    def open_(url: str, **kw) -> StudyStorage:
        stores.append(StudyStorage(url, **kw))
        return stores[-1]

    yield open_
    for s in stores:
        s.close()


def _key(seed: int, phase: str = "cv") -> tuple:
    return (phase, "l2", '{"l2":0.1}', seed, 0)


def _group(*seeds: int) -> list:
    return [(_key(s), 2) for s in seeds]


def _strict(text: str):
    def refuse(token: str):
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def _attempts(store: StudyStorage) -> dict[int, int]:
    return {t["seed"]: t["attempts"] for t in store.trials()}


def test_a_live_claim_is_never_claimed_twice_and_its_heartbeat_keeps_it(url, opened):
    a = opened(url, heartbeat_interval=0.05)
    b = opened(url, grace_period=0.5)
    got = a.claim(_group(0, 1))
    assert sorted(got) == [_key(0), _key(1)] and len(set(got.values())) == 2
    assert b.claim(_group(0, 1)) is None and b.claim(_group(1)) is None
    time.sleep(1.2)  # more than b's grace period: only a's heartbeats keep the claim alive
    assert b.claim(_group(0)) is None
    a.release()  # a stops (Ctrl-C): its unfinished trials are free at once
    assert b.claim(_group(0, 1)) == got
    assert _attempts(b) == {0: 2, 1: 2}


def test_a_claim_is_all_or_nothing_and_skips_finished_trials(url, opened):
    a, b = opened(url), opened(url)
    ids = a.claim(_group(0, 1))
    a.finish(ids[_key(0)], "done", {"val_accuracy": 0.5}, [], duration=0.1)
    assert b.claim(_group(1, 2)) is None  # seed 1 is a's: seed 2 is not claimed either
    assert [t["seed"] for t in b.trials()] == [0, 1]
    assert b.claim(_group(0)) == {}  # finished: nothing to run
    a.finish(ids[_key(1)], "done", {"val_accuracy": 0.6}, [], duration=0.1)
    got = b.claim(_group(0, 1, 2))
    assert list(got) == [_key(2)] and _attempts(b) == {0: 1, 1: 1, 2: 1}


def test_a_silent_owner_is_taken_over_after_the_grace_period_and_cannot_store_any_more(url, opened):
    a = opened(url, heartbeat_interval=0.05)
    b = opened(url, grace_period=0.4)
    tid = a.claim(_group(0))[_key(0)]
    a._beat.stopped.set()  # a hangs (no more heartbeats) but is not dead
    a._beat.join()
    assert b.claim(_group(0)) is None
    time.sleep(0.6)
    assert b.claim(_group(0)) == {_key(0): tid}
    with pytest.warns(RuntimeWarning, match=rf"trials \[{tid}\] were taken over by another process"):
        a.finish(tid, "done", {"val_accuracy": 0.1}, [{"epoch": 0, "train_loss": 9.0}], duration=1.0)
    assert b.trials()[0]["status"] == "running" and b.epochs(tid) == []  # a's late result was dropped
    b.finish(tid, "done", {"val_accuracy": 0.9}, [{"epoch": 0, "train_loss": 0.5}], duration=1.0)
    row = b.trials()[0]
    assert (row["status"], row["metrics"], row["attempts"]) == ("done", {"val_accuracy": 0.9}, 2)
    assert b.epochs(tid) == [{"epoch": 0, "train_loss": 0.5}]
    c = opened(url)  # a tool that never claimed the trial rewrites the stored row as given
    histogram = {"edges": [0.0, 1.0], "counts": [3], "zeros": 0, "total": 3}
    c.finish(tid, "done", {"val_accuracy": 0.9}, [], duration=1.0, histogram=histogram)
    assert c.histograms()[tid]["counts"] == [3] and c.epochs(tid) == []


def test_the_claim_of_a_dead_process_on_this_host_is_taken_over_at_once(url, opened):
    a = opened(url)
    tid = a.claim(_group(0))[_key(0)]
    dead = f"{socket.gethostname()}:{_pid_of_exited()}:0123456789ab"  # killed without releasing
    elsewhere = "another-host:1:0123456789ab"  # a pid this host cannot check: only the heartbeat counts
    with a.engine.begin() as conn:
        conn.execute(claims.update().values(owner=dead))
        conn.execute(insert(trials).values(phase="cv", recipe="l2", params='{"l2":0.1}', seed=1, fold=0,
                                           epochs_budget=2, status="running", attempts=1))
        other = conn.execute(select(trials.c.id).where(trials.c.seed == 1)).scalar_one()
        conn.execute(insert(claims).values(trial_id=other, owner=elsewhere, heartbeat=time.time()))
    b = opened(url, grace_period=3600.0)
    assert b.claim(_group(0)) == {_key(0): tid}
    assert b.claim(_group(1)) is None


def _pid_of_exited() -> int:
    """The pid of a process that ran on this host and is gone (reaped)."""
    proc = subprocess.Popen(["sleep", "0"])
    proc.wait()
    return proc.pid


def test_racing_claims_from_many_owners_claim_each_group_once(url, opened):
    """Eight owners (own connections, like processes) race for the same 12 groups of 2 trials."""
    stores = [opened(url) for _ in range(8)]
    won: list[list[int]] = [[] for _ in stores]
    errors: list[BaseException] = []
    start = threading.Barrier(len(stores))

    def race(k: int) -> None:
        start.wait()
        try:
            for g in range(12):
                if stores[k].claim(_group(2 * g, 2 * g + 1)):
                    won[k].append(g)
        except BaseException as exc:  # e.g. "database is locked" or a unique-key clash: a lost race
            errors.append(exc)

    threads = [threading.Thread(target=race, args=(k,)) for k in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []  # every owner got an answer: claimed, held by another, or finished
    assert sorted(g for w in won for g in w) == list(range(12))  # every group exactly once
    with stores[0].engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(trials)).scalar() == 24
        assert conn.execute(select(func.count()).select_from(claims)).scalar() == 24
    assert set(_attempts(stores[0]).values()) == {1}
    assert stores[0].integrity_check() == "ok"


def test_non_finite_history_and_summary_are_strict_json_and_read_back_exactly(url, opened):
    s = opened(url)
    tid = s.claim(_group(0))[_key(0)]
    history = [{"epoch": 0, "train_loss": 0.25, "lr": 0.1},
               {"epoch": 1, "train_loss": math.nan, "lr": math.inf, "val_loss": -math.inf}]
    s.finish(tid, "diverged", {"reason": "non-finite training loss (nan) at epoch 1, batch 0"}, history,
             duration=0.5)
    summary = {"study": "NaN", "recipes": {"l2": {"test": {"mean": 0.5, "low": math.nan, "n": 1}},
                                           "a/b~c": {"path": [{"p": -math.inf}, {"p": 1.0}]}}}
    s.save_results(summary)
    with s.engine.connect() as conn:
        raw_epochs = [r[0] for r in conn.exec_driver_sql("SELECT metrics FROM epochs ORDER BY epoch")]
        raw_summary = conn.exec_driver_sql("SELECT value FROM results").scalar()
    parsed = [_strict(r) for r in raw_epochs]  # every stored text is RFC 8259 JSON
    assert parsed[1]["train_loss"] is None and parsed[1]["$nonfinite"] == {
        "/train_loss": "nan", "/lr": "inf", "/val_loss": "-inf"}
    assert _strict(raw_summary)["study"] == "NaN"  # a string stays a string
    back = s.epochs(tid)
    assert back[0] == history[0] and math.isnan(back[1]["train_loss"])
    assert (back[1]["lr"], back[1]["val_loss"], back[1]["epoch"]) == (math.inf, -math.inf, 1)
    loaded = s.load_results()
    assert math.isnan(loaded["recipes"]["l2"]["test"].pop("low"))
    assert loaded["recipes"]["a/b~c"]["path"][0]["p"] == -math.inf
    summary["recipes"]["l2"]["test"].pop("low")
    assert loaded == summary
    assert s.all_epochs()[tid][1]["lr"] == math.inf


def test_nan_tokens_of_older_databases_still_read():
    assert math.isnan(loads_exact('{"loss": NaN}')["loss"])
    assert loads_exact(dumps_exact({"a": [1, {"b": math.inf}]})) == {"a": [1, {"b": math.inf}]}
