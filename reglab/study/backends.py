"""Where trial groups run: in this process, in a local process pool, or as Ray tasks.

A backend is a context manager with ``run(config, groups, record)``: it runs every group
(a list of :class:`~reglab.study.execute.TrialSpec`: one population, or one Trainer trial)
through :func:`reglab.study.execute.run_group` and calls ``record(outcomes)`` in THIS
process for each finished group, so that only the driver writes to storage. ``groups`` may
be a lazy iterable: a backend takes the next group only when a worker is free, which is
when :func:`run_claimed` claims it in storage, so several processes running one study
share its groups. Execution is deterministic per trial (fixed seeds and thread count), so
every backend stores the same numbers.

Example:
    >>> with make_backend("local") as b:
    ...     type(b).__name__
    'LocalBackend'
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from reglab._validation import Interval, check_int, check_option
from reglab.errors import UserError
from reglab.study.execute import TrialOutcome, TrialSpec, run_group
from reglab.study.schema import StudyConfig
from reglab.study.storage import StudyStorage

__all__ = ["LocalBackend", "RayBackend", "make_backend", "run_claimed", "BACKENDS"]

BACKENDS = ("local", "ray")
Record = Callable[[list[TrialOutcome]], None]


class LocalBackend:
    """Run groups in this process (``workers=1``) or in a pool of ``workers`` spawned processes."""

    def __init__(self, workers: int = 1):
        self.workers = check_int(workers, "workers", owner="LocalBackend", interval=Interval(1, None))
        self.pool: cf.ProcessPoolExecutor | None = None

    def __enter__(self) -> LocalBackend:
        if self.workers > 1:
            # spawn, not fork: a forked torch process can deadlock on its inherited thread pools.
            # A driver started with Ctrl-C ignored (a script's background job, a CI runner) keeps
            # its workers deaf to it too: they would die on it and break the pool under the driver.
            sigint_ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            self.pool = cf.ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_start, initargs=(os.getpid(), sigint_ignored),
            )
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.pool is None:
            return
        if exc[0] is not None:
            # Interrupted or failed: only the driver writes results, so the groups the workers still
            # run are work to redo on resume, not results. They are ended now; shutting down waited
            # for them (a Ctrl-C took 10 s or more, and a second one hung in the exit handler).
            _terminate_workers(self.pool)
        self.pool.shutdown(wait=exc[0] is None, cancel_futures=True)

    def run(self, config: StudyConfig, groups: Iterable[list[TrialSpec]], record: Record) -> None:
        if self.pool is None:
            for group in groups:
                record(run_group(config, group))
            return
        todo, running = iter(groups), set()
        refused: UserError | None = None
        while True:  # one group per free worker: the next is taken (claimed) only when one frees
            free = 0 if refused is not None else self.workers - len(running)
            for group in _take(todo, free):
                with _children_block_sigint():  # a worker may be started by this submit
                    running.add(self.pool.submit(run_group, config, group))
            if not running:
                break
            finished, running = cf.wait(running, return_when=cf.FIRST_COMPLETED)
            for fut in finished:
                try:
                    outcomes = fut.result()
                except cf.BrokenExecutor:  # BrokenProcessPool: a worker died
                    raise UserError(
                        "a worker process of the study died (killed, or out of memory); finished trials are "
                        "kept: run the same command again to resume."
                    ) from None
                except UserError as exc:
                    # The study stops (e.g. its data changed), but the groups other workers are
                    # running finish and are stored first: no finished trial is lost.
                    refused = refused or exc
                    continue
                record(outcomes)
        if refused is not None:
            raise refused


@contextlib.contextmanager
def _children_block_sigint() -> Iterator[None]:
    """Start processes with SIGINT blocked, and hold this process's own Ctrl-C until they started.

    A spawned worker then cannot be interrupted while it imports (a KeyboardInterrupt traceback per
    worker): the signal mask passes to a child at fork and exec, and :func:`_worker_start` sets its
    handler, then unblocks it, so a Ctrl-C that came meanwhile ends it quietly. This process's
    Ctrl-C is deferred, not lost (ignoring it lost a Ctrl-C that came during a submit, and the study
    trained on), and not raised mid-spawn (a child half started read a closed pipe: EOFError
    traceback). Only the main thread sets signal handlers; elsewhere only the mask is set.
    """
    if not hasattr(signal, "pthread_sigmask"):  # not POSIX: nothing to block
        yield
        return
    # A handler installed outside Python reads as None and could not be put back: left as it is.
    main = threading.current_thread() is threading.main_thread()
    defer = main and signal.getsignal(signal.SIGINT) is not None
    deferred: list[int] = []
    handler = signal.signal(signal.SIGINT, lambda *_: deferred.append(1)) if defer else None
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        if defer:
            signal.signal(signal.SIGINT, handler)
    if deferred and handler is signal.default_int_handler:
        raise KeyboardInterrupt
    if deferred and callable(handler):
        handler(signal.SIGINT, None)


def _terminate_workers(pool: cf.ProcessPoolExecutor) -> None:
    """End a process pool's workers now, mid-task (``terminate_workers`` from Python 3.14 on)."""
    if hasattr(pool, "terminate_workers"):
        pool.terminate_workers()
        return
    # Before 3.14 no public call stops a running task; the executor keeps its processes here.
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        with contextlib.suppress(Exception):
            process.terminate()
    for process in processes:
        with contextlib.suppress(Exception):
            process.join(5)


def _worker_start(parent: int, sigint_ignored: bool = False) -> None:
    """Set up a pool worker: it leaves quietly on Ctrl-C and when the driver is gone.

    A Ctrl-C in a terminal reaches the whole process group: the driver says how to resume and
    keeps what finished, so a worker just ends (no KeyboardInterrupt traceback per worker). A
    driver killed with ``kill -9`` cannot stop its pool; each worker checks every second that its
    parent is still the driver and ends otherwise, so no orphan trains on forever. Nothing is lost
    either way: only the driver writes results, and an unfinished trial reruns on resume. A driver
    that ignores Ctrl-C (started in the background by a script) has workers that ignore it too.
    """
    # Set, not inherited: the driver's handler during the start was reset to the default at exec.
    signal.signal(signal.SIGINT, signal.SIG_IGN if sigint_ignored else (lambda *_: os._exit(130)))
    if hasattr(signal, "pthread_sigmask"):  # blocked while it started (_children_block_sigint)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="reglab-parent-watch", daemon=True).start()


def _refuse_unreachable(ray: Any, address: str, timeout: float = 5.0) -> None:
    """Refuse in one line a Ray address where nothing accepts a connection: ``ray.init`` tries 20 times for
    about 40 s each (some 14 minutes) before it raises a ``RuntimeError``. ``auto``, ``local`` and Ray
    Client addresses (``ray://``) are left to Ray, as is an address this cannot parse."""
    if address in ("auto", "local") or "://" in address:
        return
    addresses = [address]
    with contextlib.suppress(Exception):  # Ray connects to this form (a loopback host becomes the node's IP)
        addresses.append(ray._private.services.canonicalize_bootstrap_address(address))
    error: OSError | None = None
    for a in addresses:
        host, _, port = str(a).rpartition(":")
        if not host or not port.isdigit():
            return
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
            return
        except OSError as exc:
            error = error or exc
    raise UserError(f"cannot reach the Ray cluster at {address!r}: nothing answers there ({error}); "
                    "start one with `ray start --head --port PORT` or check --address")


class RayBackend:
    """Run each group as one Ray task on a cluster (``address``) or a local Ray instance.

    Every node needs reglab installed and, for resumable trials, the study directory's
    checkpoint path writable (a shared file system across machines).
    """

    def __init__(self, address: str | None = None, workers: int | None = None):
        try:
            import ray
        except ImportError:
            raise UserError("the ray backend needs Ray: pip install 'reglab[ray]'") from None
        self.ray, self.address, self.workers = ray, address, workers
        self.started = False

    def __enter__(self) -> RayBackend:
        if not self.ray.is_initialized():
            kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if self.address:
                _refuse_unreachable(self.ray, self.address)
                kw["address"] = self.address
            elif self.workers:
                kw["num_cpus"] = self.workers
            try:
                self.ray.init(**kw)
            except ConnectionError as exc:
                raise UserError(f"cannot reach the Ray cluster at {self.address!r}: {exc}") from None
            self.started = True
        self.remote = self.ray.remote(num_cpus=1)(run_group)
        self.slots = self.workers or max(1, int(self.ray.cluster_resources().get("CPU", 1)))
        self.gcs: str | None = None  # the head node's address, watched while tasks run
        with contextlib.suppress(Exception):
            self.gcs = self.ray.get_runtime_context().gcs_address
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.started:
            self.ray.shutdown()

    def run(self, config: StudyConfig, groups: Iterable[list[TrialSpec]], record: Record) -> None:
        todo, pending = iter(groups), []
        refused: UserError | None = None
        while True:  # as many tasks in flight as the cluster has CPUs: the rest wait unclaimed
            if refused is None:
                pending += [self.remote.remote(config, g) for g in _take(todo, self.slots - len(pending))]
            if not pending:
                break
            ready, pending = self._wait(pending)
            try:
                outcomes = self.ray.get(ready[0])
            except _ray_lost(self.ray) as exc:
                # Ray retried the task and gave up (its worker or node kept dying, out of memory):
                # a traceback of Ray's internals; as a dead pool worker, finished trials are kept.
                why = (str(exc).strip().splitlines() or ["no reason given"])[0]
                raise UserError(f"a Ray worker of the study died ({type(exc).__name__}: {why}); finished "
                                "trials are kept: run the same command again to resume.") from None
            except UserError as exc:
                # As the local pool: the study stops (its data changed, say), but the tasks still
                # running finish and are stored first. Ray raises a RayTaskError that is also a
                # UserError and whose text holds the remote traceback: the user sees the cause's line.
                refused = refused or getattr(exc, "cause", None) or exc
                continue
            record(outcomes)
        if refused is not None:
            raise refused


    def _wait(self, pending: list[Any]) -> tuple[list[Any], list[Any]]:
        """``ray.wait`` for one task, checking every ``RAY_POLL_S`` that the cluster's head still answers.

        A head node that went away (``ray stop``, a crash) left the driver waiting 60 s, after which Ray
        ended the process itself: exit 1, Ray's log line and nothing about the trials.
        """
        while True:
            ready, rest = self.ray.wait(pending, num_returns=1, timeout=RAY_POLL_S)
            if ready:
                return ready, rest
            _check_head(self.gcs, self.address)


RAY_POLL_S = 2.0  # how often a waiting driver checks that the Ray head still answers
RAY_HEAD_TRIES = 3  # connection attempts, RAY_POLL_S apart, before the head counts as gone


def _check_head(gcs: str | None, address: str | None) -> None:
    """Raise a :class:`UserError` when nothing accepts a connection at the Ray head's address ``gcs``
    (``host:port``) in ``RAY_HEAD_TRIES`` attempts; do nothing when ``gcs`` is unknown."""
    host, _, port = (gcs or "").rpartition(":")
    if not host or not port.isdigit():
        return
    for attempt in range(RAY_HEAD_TRIES):
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=5.0).close()
            return
        except OSError as exc:
            error = exc
        if attempt + 1 < RAY_HEAD_TRIES:
            time.sleep(RAY_POLL_S)
    shown = address or gcs
    raise UserError(f"the Ray cluster at {shown!r} stopped answering ({error}): it was stopped or its head "
                    "node died; finished trials are kept: start it again and run the same command to resume.")


def _ray_lost(ray: Any) -> tuple[type[BaseException], ...]:
    """Ray's errors for a task whose worker, node or result is gone (not an error raised by the task)."""
    names = ("WorkerCrashedError", "NodeDiedError", "OutOfMemoryError", "ObjectLostError",
             "LocalRayletDiedError")
    exceptions = getattr(ray, "exceptions", None)
    return tuple(c for n in names if isinstance(c := getattr(exceptions, n, None), type))


def _take(groups: Iterator[list[TrialSpec]], n: int) -> list[list[TrialSpec]]:
    out = []
    for _ in range(n):
        group = next(groups, None)
        if group is None:
            break
        out.append(group)
    return out


def run_claimed(backend: LocalBackend | RayBackend, config: StudyConfig, groups: list[list[TrialSpec]],
                store: StudyStorage, ids: dict[Any, int], record: Record, *, poll: float = 0.5,
                elsewhere: Callable[[int], None] | None = None) -> None:
    """Run the groups this process can claim; return when every group is finished, by anyone.

    Each group is claimed in storage (one writer transaction) just before it runs and its
    trial ids are added to ``ids``. A group another live process holds is skipped and waited
    for (polling every ``poll`` seconds); if its owner dies, it is claimed here and run (resuming
    from its checkpoints). A group another process finished meanwhile is not run again.
    ``elsewhere(n)`` is told, as soon as this process sees them, of the trials that another
    process finished (each counted once), so that progress shows them too.
    """
    waiting = groups
    credited: dict[int, int] = {}  # per group (by identity): its trials already told to `elsewhere`
    while waiting:
        again: list[list[TrialSpec]] = []  # held by others, or run here: checked once more
        busy = False

        def claimed(todo: list[list[TrialSpec]] = waiting, again: list[list[TrialSpec]] = again
                    ) -> Iterator[list[TrialSpec]]:
            nonlocal busy
            for group in todo:
                got = store.claim([(s.key(), s.epochs) for s in group])
                if got is not None and elsewhere is not None:
                    # Finished trials of the group that this process neither claims now nor ran.
                    mine = sum(s.key() in ids for s in group)
                    others = len(group) - len(got) - mine
                    told = credited.get(id(group), 0)
                    if others > told:
                        elsewhere(others - told)
                        credited[id(group)] = others
                if got is None:
                    busy = True
                if got is None or got:
                    again.append(group)
                if got:
                    ids.update(got)
                    yield [s for s in group if s.key() in got]

        backend.run(config, claimed(), record)
        if busy:
            time.sleep(poll)
        waiting = again


def make_backend(name: str, *, workers: int = 1, address: str | None = None) -> LocalBackend | RayBackend:
    """A backend by name: ``"local"`` or ``"ray"``."""
    check_option(name, "backend", owner="Study.run", options=BACKENDS)
    if name == "local":
        if address:
            raise UserError("--address is for the ray backend; add --backend ray or drop --address.")
        return LocalBackend(workers)
    return RayBackend(address, workers if workers > 1 else None)
