"""Two OS processes on one study: the work is shared, no trial is lost or run twice, a dead one is taken over.

Each child runs ``Study(config).run(out=SAME_DIR)`` (same storage) with ``run_group`` wrapped to
log the trials it trains and to pause a little, so that both are busy at once. The stored study
must equal a single-process run: the same rows in every table and byte-identical exports. With
REGLAB_TEST_POSTGRES set, both cases also run with the study's tables in PostgreSQL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select

from reglab.study import Study
from reglab.study.export import export, open_storage
from reglab.study.storage import StudyStorage, metadata

from ._support import ROOT, TINY

URLS = ["sqlite"] + (["postgres"] if os.environ.get("REGLAB_TEST_POSTGRES") else [])
HEARTBEAT, GRACE = 0.2, 2.0
# Hold-out, every trial its own Trainer group: 6 cv trials, then 4 final trials that resume the
# cv trial's checkpoint, whichever process wrote it.
CONFIG: dict[str, Any] = {**TINY, "name": "shared", "population": False}
TABLES = ("schema_version", "study", "trials", "epochs", "histograms", "results")

CHILD = """
import json, os, signal, sys, time
from pathlib import Path

import reglab.study.backends as backends
import reglab.study.storage as storage

config, out, url, log, go, mode = json.loads(sys.argv[1]), *sys.argv[2:]
storage.HEARTBEAT_S, storage.GRACE_S = float(os.environ["HB"]), float(os.environ["GRACE"])
if mode == "dies":  # as if on another machine: only the heartbeat can tell that it died
    storage._HOST = "another-host"
real, calls = backends.run_group, [0]

def logged(config, specs):
    calls[0] += 1
    with open(log, "a") as f:
        f.write(json.dumps({"time": time.time(), "keys": [list(s.key()) for s in specs]}) + "\\n")
    if mode == "dies" and calls[0] == 2:
        os.kill(os.getpid(), signal.SIGKILL)  # while holding this group's claim
    time.sleep(0.2)  # both processes stay busy at the same time
    return real(config, specs)

backends.run_group = logged
from reglab.study import Study

while not Path(go).exists():
    time.sleep(0.01)
Study(config).run(out=out, storage=url or None, progress=False)
"""


def _child(out: Path, url: str, log: Path, go: Path, mode: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "HB": str(HEARTBEAT),
           "GRACE": str(GRACE)}
    argv = [sys.executable, "-c", CHILD, json.dumps(CONFIG), str(out), url, str(log), str(go), mode]
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _finish(proc: subprocess.Popen) -> int:
    _, err = proc.communicate(timeout=300)
    assert proc.returncode in (0, -signal.SIGKILL), err.decode()
    return proc.returncode


def _log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _snapshot(store: StudyStorage) -> dict[str, Any]:
    """Rows per table, integrity, and the four exports (trials / epochs, CSV / JSON)."""
    with store.engine.connect() as conn:
        counts = {t: conn.execute(select(func.count()).select_from(metadata.tables[t])).scalar()
                  for t in (*TABLES, "claims")}
    exports = {(fmt, per_epoch): export(store, fmt, epochs=per_epoch)
               for fmt in ("csv", "json") for per_epoch in (False, True)}
    keys = sorted((t["phase"], t["recipe"], t["params_json"], t["seed"], t["fold"]) for t in store.trials())
    return {"counts": counts, "integrity": store.integrity_check(), "exports": exports, "keys": keys}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("single")
    Study(CONFIG).run(out=out, progress=False)
    store = open_storage(out)
    try:
        snap = _snapshot(store)
    finally:
        store.close()
    assert len(snap["keys"]) == 10 and snap["counts"]["claims"] == 0
    return snap


def _storage_url(kind: str) -> str:
    if kind == "sqlite":
        return ""  # the study directory's study.db
    url = os.environ["REGLAB_TEST_POSTGRES"]
    engine = create_engine(url)  # a server shared between tests: start from no tables
    metadata.drop_all(engine)
    engine.dispose()
    return url


def _stored(out: Path, url: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    store = open_storage(url or out)
    try:
        return _snapshot(store), store.trials()
    finally:
        store.close()


@pytest.mark.slow  # two fresh interpreters import torch: about 20 s on a quiet 2-core machine
@pytest.mark.parametrize("kind", URLS)
def test_two_processes_share_one_study_and_store_exactly_what_one_process_stores(kind, tmp_path, reference):
    out, go, url = tmp_path / "study", tmp_path / "go", _storage_url(kind)
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs = [_child(out, url, log, go, "share") for log in logs]
    go.touch()  # both start together, after their imports
    assert [_finish(p) for p in procs] == [0, 0]
    ran = [[tuple(k) for line in _log(log) for k in line["keys"]] for log in logs]
    assert ran[0] and ran[1]  # both processes trained trials ...
    assert sorted(ran[0] + ran[1]) == reference["keys"]  # ... every trial once, none by both
    snap, trials = _stored(out, url)
    assert {t["attempts"] for t in trials} == {1} and {t["status"] for t in trials} == {"done"}
    assert snap["integrity"] == "ok"
    assert snap["counts"] == reference["counts"]  # no row lost or duplicated in any table; no claim left
    assert snap["exports"] == reference["exports"]  # byte-identical to a single-process run


@pytest.mark.slow
@pytest.mark.parametrize("kind", URLS)
def test_a_killed_process_claim_is_taken_over_after_the_grace_period(kind, tmp_path, reference):
    out, go, url = tmp_path / "study", tmp_path / "go", _storage_url(kind)
    dying, other, later = tmp_path / "dying.log", tmp_path / "other.log", tmp_path / "later"
    go.touch()
    a = _child(out, url, dying, go, "dies")  # SIGKILLed while holding its second group's claim
    b = _child(out, url, other, later, "share")  # imports meanwhile; starts once a is dead
    assert _finish(a) == -signal.SIGKILL
    later.touch()
    assert _finish(b) == 0
    lost = [tuple(k) for k in _log(dying)[1]["keys"]]
    killed_at = _log(dying)[1]["time"]
    ran_b = [tuple(k) for line in _log(other) for k in line["keys"]]
    assert sorted([tuple(k) for k in _log(dying)[0]["keys"]] + ran_b) == reference["keys"]
    snap, trials = _stored(out, url)
    by_key = {(t["phase"], t["recipe"], t["params_json"], t["seed"], t["fold"]): t for t in trials}
    assert sorted(k for k, t in by_key.items() if t["attempts"] == 2) == sorted(lost)
    assert {t["attempts"] for k, t in by_key.items() if k not in lost} == {1}
    # The other process took the group only when the claim's heartbeat was GRACE seconds old.
    assert min(by_key[k]["started"] for k in lost) >= killed_at + GRACE - HEARTBEAT - 0.05
    assert snap["integrity"] == "ok" and snap["counts"] == reference["counts"]
    assert snap["exports"] == reference["exports"]
