"""Where trial groups run: in this process, in a local process pool, or as Ray tasks.

A backend is a context manager with ``run(config, groups, record)``: it runs every group
(a list of :class:`~reglab.study.execute.TrialSpec`: one population, or one Trainer trial)
through :func:`reglab.study.execute.run_group` and calls ``record(outcomes)`` in THIS
process for each finished group, so that only the driver writes to storage. Execution is
deterministic per trial (fixed seeds and thread count), so every backend stores the
same numbers.

Example:
    >>> with make_backend("local") as b:
    ...     type(b).__name__
    'LocalBackend'
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
from collections.abc import Callable
from typing import Any

from reglab._validation import Interval, check_int, check_option
from reglab.errors import UserError
from reglab.study.execute import TrialOutcome, TrialSpec, run_group
from reglab.study.schema import StudyConfig

__all__ = ["LocalBackend", "RayBackend", "make_backend", "BACKENDS"]

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
            self.pool = cf.ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=exc[0] is None, cancel_futures=True)

    def run(self, config: StudyConfig, groups: list[list[TrialSpec]], record: Record) -> None:
        if self.pool is None:
            for group in groups:
                record(run_group(config, group))
            return
        futures = [self.pool.submit(run_group, config, g) for g in groups]
        for fut in cf.as_completed(futures):
            record(fut.result())


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
                kw["address"] = self.address
            elif self.workers:
                kw["num_cpus"] = self.workers
            try:
                self.ray.init(**kw)
            except ConnectionError as exc:
                raise UserError(f"cannot reach the Ray cluster at {self.address!r}: {exc}") from None
            self.started = True
        self.remote = self.ray.remote(num_cpus=1)(run_group)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.started:
            self.ray.shutdown()

    def run(self, config: StudyConfig, groups: list[list[TrialSpec]], record: Record) -> None:
        pending = [self.remote.remote(config, g) for g in groups]
        while pending:
            ready, pending = self.ray.wait(pending, num_returns=1)
            record(self.ray.get(ready[0]))


def make_backend(name: str, *, workers: int = 1, address: str | None = None) -> LocalBackend | RayBackend:
    """A backend by name: ``"local"`` or ``"ray"``."""
    check_option(name, "backend", owner="Study.run", options=BACKENDS)
    if name == "local":
        if address:
            raise UserError("--address is for the ray backend; add --backend ray or drop --address.")
        return LocalBackend(workers)
    return RayBackend(address, workers if workers > 1 else None)


