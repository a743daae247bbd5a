"""Backends store the same numbers: in-process and a 2-process pool (Ray: test_backends_ray.py)."""

from __future__ import annotations

import time

import pytest

from reglab._validation import InvalidParameterError
from reglab.study import Study
from reglab.study.backends import make_backend
from reglab.study.export import export, open_storage


def exported(path) -> str:
    store = open_storage(path)
    try:
        return export(store, "csv")
    finally:
        store.close()


def test_unknown_backend_is_one_line():
    expected = r"'backend' parameter of Study.run must be one of 'local', 'ray'\. Got 'rey' instead\. Did you"
    with pytest.raises(InvalidParameterError, match=expected):
        make_backend("rey")


def test_process_pool_equals_in_process(tiny, tmp_path):
    Study(tiny).run(out=tmp_path / "one", progress=False)
    Study(tiny).run(out=tmp_path / "two", workers=2, progress=False)
    assert exported(tmp_path / "one") == exported(tmp_path / "two")


class _Spec:
    """The two things run_claimed reads of a TrialSpec."""

    def __init__(self, seed: int):
        self.seed, self.epochs = seed, 2

    def key(self) -> tuple:
        return ("cv", "l2", "{}", self.seed, 0)


def test_trials_another_process_finished_are_counted_once_as_they_are_seen(tmp_path):
    from reglab.study.backends import run_claimed
    from reglab.study.progress import SilentProgress
    from reglab.study.storage import StudyStorage, default_url

    url = default_url(tmp_path)
    other, here = StudyStorage(url), StudyStorage(url)
    groups = [[_Spec(0), _Spec(1)], [_Spec(2), _Spec(3)], [_Spec(4), _Spec(5)]]
    # Another process finished all of group 2 and the first trial of group 3.
    ids = other.claim([(s.key(), 2) for s in groups[1]])
    for trial_id in ids.values():
        other.finish(trial_id, "done", {"val_accuracy": 0.5}, [], duration=0.1)
    first = other.claim([(groups[2][0].key(), 2)])
    other.finish(first[groups[2][0].key()], "done", {"val_accuracy": 0.5}, [], duration=0.1)

    ran: list[int] = []
    progress = SilentProgress()
    progress.add(0, 6)

    class Backend:
        def run(self, config, claimed, record):
            for group in claimed:
                for spec in group:
                    here.finish(mine[spec.key()], "done", {"val_accuracy": 0.6}, [], duration=0.1)
                    ran.append(spec.seed)
                    progress.advance(None)

    mine: dict = {}
    told: list[int] = []

    def elsewhere(n: int) -> None:
        told.append(n)
        progress.elsewhere(n)

    try:
        run_claimed(Backend(), None, groups, here, mine, lambda outcomes: None, elsewhere=elsewhere)
    finally:
        other.close()
        here.close()
    assert sorted(ran) == [0, 1, 5]  # group 3 resumes without its finished trial
    assert sorted(told) == [1, 2]  # each trial finished elsewhere told once, over both rounds
    assert (progress.finished, progress.total) == (6, 6)


def test_plain_progress_prints_trials_finished_elsewhere():
    import io

    from reglab.study.progress import PlainProgress

    stream = io.StringIO()
    progress = PlainProgress(stream)
    progress.add(1, 4)
    progress.elsewhere(2)
    line = stream.getvalue().strip()
    assert line.startswith("[3/5 ") and line.endswith("] 2 trial(s) finished by another process"), line


def test_a_refused_group_in_a_pool_stops_the_study_after_the_running_groups_are_stored(monkeypatch):
    """A UserError from one worker (e.g. the data changed) is raised once the groups other workers run
    have finished and been recorded; no further group is taken."""
    import concurrent.futures as cf
    import threading

    import reglab.study.backends as backends
    from reglab.errors import UserError
    from reglab.study.backends import LocalBackend

    slow_started = threading.Event()

    def run_group(config, group):
        if group == ["refused"]:
            slow_started.wait(5)
            raise UserError("the data changed")
        if group == ["slow"]:
            slow_started.set()
            threading.Event().wait(0.3)
        return group

    monkeypatch.setattr(backends, "run_group", run_group)
    backend = LocalBackend(workers=2)
    backend.pool = cf.ThreadPoolExecutor(2)  # the pool's logic, without spawning processes
    recorded, taken = [], []

    def groups():
        for g in (["slow"], ["refused"], ["later"]):
            taken.append(g)
            yield g

    try:
        with pytest.raises(UserError, match="the data changed"):
            backend.run(None, groups(), recorded.append)
    finally:
        backend.pool.shutdown()
    assert recorded == [["slow"]] and taken == [["slow"], ["refused"]]


def test_a_refused_ray_task_stops_the_study_after_the_running_tasks_are_stored_with_the_causes_line():
    """Ray raises a RayTaskError that is also the task's UserError (its text holds the remote traceback):
    the tasks still in flight are recorded, no further group is submitted, and the cause itself is raised."""
    from reglab.errors import UserError
    from reglab.study.backends import RayBackend

    cause = UserError("the dataset file changed while the study ran")

    class RayTaskError(UserError):  # what ray.exceptions.RayTaskError.as_instanceof_cause() builds
        def __init__(self):
            super().__init__("ray::run_group() (pid=1)\nTraceback (most recent call last):\n  ...")
            self.cause = cause

    class FakeRay:
        submitted: list = []

        def remote(self, config, group):
            self.submitted.append(group)
            return group

        def wait(self, pending, num_returns, timeout=None):
            return pending[:1], pending[1:]  # in submission order

        def get(self, ref):
            if ref == ["refused"]:
                raise RayTaskError()
            return ref

    backend = RayBackend.__new__(RayBackend)
    backend.ray, backend.slots = FakeRay(), 2
    backend.remote = backend.ray
    recorded = []
    groups = iter([["refused"], ["running"], ["later"]])
    with pytest.raises(UserError) as info:
        backend.run(None, groups, recorded.append)
    assert info.value is cause
    assert recorded == [["running"]] and FakeRay.submitted == [["refused"], ["running"]]


class _StalledRay:
    """A Ray whose tasks never finish (their cluster is gone): ``wait`` without a timeout blocks forever."""

    def __init__(self, exceptions=None):
        self.exceptions = exceptions

    def remote(self, config, group):
        return group

    def wait(self, pending, num_returns, timeout=None):
        if timeout is None:
            raise AssertionError("ray.wait without a timeout: the driver would wait for a dead cluster")
        return [], pending

    def get(self, ref):
        raise AssertionError("nothing is ready")


def _closed_port() -> int:
    import socket

    with socket.socket() as s:  # a port nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_ray_head_that_went_away_is_one_line_saying_how_to_resume(monkeypatch):
    """`ray stop --force` (or a crashed head) mid-study: the driver waited 60 s, then Ray ended it with exit 1
    and its own log line. Now the waiting driver checks the head's port and stops in one line."""
    import reglab.study.backends as backends
    from reglab.errors import UserError
    from reglab.study.backends import RayBackend

    monkeypatch.setattr(backends, "RAY_POLL_S", 0.01)
    backend = RayBackend.__new__(RayBackend)
    backend.ray, backend.slots, backend.address = _StalledRay(), 2, "127.0.0.1:6379"
    backend.remote, backend.gcs = backend.ray, f"127.0.0.1:{_closed_port()}"
    t0 = time.monotonic()
    with pytest.raises(UserError, match=r"^the Ray cluster at '127.0.0.1:6379' stopped answering \(.*\): "
                       r"it was stopped or its head node died; finished trials are kept: start it again and "
                       r"run the same command to resume\.$"):
        backend.run(None, iter([["a"], ["b"]]), lambda outcomes: None)
    assert time.monotonic() - t0 < 5


def test_a_ray_head_that_answers_is_waited_for():
    import socket

    from reglab.study.backends import _check_head

    with socket.create_server(("127.0.0.1", 0)) as server:
        assert _check_head(f"127.0.0.1:{server.getsockname()[1]}", None) is None
    assert _check_head(None, None) is None  # the head's address unknown: nothing to check


def test_a_ray_worker_that_kept_dying_is_one_line_saying_how_to_resume():
    """Ray retries a task whose worker died, then raises WorkerCrashedError: a traceback of Ray internals."""
    ray = pytest.importorskip("ray")
    from reglab.errors import UserError
    from reglab.study.backends import RayBackend

    class CrashingRay(_StalledRay):
        def wait(self, pending, num_returns, timeout=None):
            return pending[:1], pending[1:]

        def get(self, ref):
            raise ray.exceptions.WorkerCrashedError()

    backend = RayBackend.__new__(RayBackend)
    backend.ray, backend.slots, backend.address = CrashingRay(ray.exceptions), 2, None
    backend.remote, backend.gcs = backend.ray, None
    with pytest.raises(UserError, match=r"^a Ray worker of the study died \(WorkerCrashedError: The worker "
                       r"died unexpectedly .*\); finished trials are kept: run the same command again to "
                       r"resume\.$"):
        backend.run(None, iter([["a"]]), lambda outcomes: None)


def test_a_dead_pool_worker_is_one_line_saying_how_to_resume(monkeypatch):
    """A worker killed mid-group (OOM killer, kill -9) broke the pool: BrokenProcessPool's traceback."""
    import concurrent.futures as cf
    from concurrent.futures.process import BrokenProcessPool

    import reglab.study.backends as backends
    from reglab.errors import UserError
    from reglab.study.backends import LocalBackend

    def run_group(config, group):
        raise BrokenProcessPool("A process in the process pool was terminated abruptly")

    monkeypatch.setattr(backends, "run_group", run_group)
    backend = LocalBackend(workers=2)
    backend.pool = cf.ThreadPoolExecutor(2)
    try:
        with pytest.raises(UserError, match="a worker process of the study died .* the same command again"):
            backend.run(None, iter([["a"]]), lambda outcomes: None)
    finally:
        backend.pool.shutdown()


class _RayInitCalled(Exception):
    pass


def _fake_ray_init(monkeypatch):
    ray = pytest.importorskip("ray")
    calls = []

    def init(**kw):
        calls.append(kw)
        raise _RayInitCalled

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    return calls


def test_a_ray_address_where_nothing_listens_is_refused_in_one_line_without_waiting_for_ray(monkeypatch):
    """`reglab study my.yaml --backend ray --address 127.0.0.1:6379` with no cluster there: ray.init tried
    20 times for about 40 s each (about 14 minutes), then raised a RuntimeError (a traceback)."""
    import socket

    from reglab.errors import UserError
    from reglab.study.backends import RayBackend

    calls = _fake_ray_init(monkeypatch)
    with socket.socket() as s:  # a port nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    with pytest.raises(UserError, match=rf"cannot reach the Ray cluster at '127.0.0.1:{port}'"):
        RayBackend(address=f"127.0.0.1:{port}").__enter__()
    assert calls == [] and time.monotonic() - t0 < 10


def test_a_ray_address_that_answers_goes_to_ray_init(monkeypatch):
    import socket

    from reglab.study.backends import RayBackend

    calls = _fake_ray_init(monkeypatch)
    with socket.create_server(("127.0.0.1", 0)) as server:
        address = f"127.0.0.1:{server.getsockname()[1]}"
        with pytest.raises(_RayInitCalled):
            RayBackend(address=address).__enter__()
    assert calls == [{"include_dashboard": False, "log_to_driver": False, "address": address}]
