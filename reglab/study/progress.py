"""Live study progress: a rich progress bar on a terminal, plain lines otherwise.

Example:
    >>> p = make_progress(False)   # silent
    >>> p.add(0, 3); p.close()
"""

from __future__ import annotations

import sys
import time
from typing import Any

from reglab.study.summary import format_params

__all__ = ["make_progress", "PlainProgress", "RichProgress", "SilentProgress"]


class SilentProgress:
    """Counts trials and prints nothing."""

    def __init__(self) -> None:
        self.total = self.finished = self.resumed = 0

    def add(self, already_done: int, todo: int) -> None:
        """Register a batch of trials: ``already_done`` were stored before, ``todo`` will run."""
        self.total += already_done + todo
        self.finished += already_done
        self.resumed += already_done

    def advance(self, outcome: Any) -> None:
        self.finished += 1

    def elsewhere(self, count: int) -> None:
        """``count`` more trials were finished by another process running this study."""
        self.finished += count

    def close(self) -> None:
        pass


def _describe(outcome: Any) -> str:
    s, metrics = outcome.spec, outcome.metrics
    shown = ""
    for key, label in (("accuracy", "acc"), ("mse", "mse")):  # a classifier's or a regression's score
        score = metrics.get(f"test_{key}", metrics.get(f"val_{key}"))
        if isinstance(score, float):
            shown = f" {label}={score:.4g}" if key == "mse" else f" {label}={score:.4f}"
            break
    # The candidate's parameters (as the results table shows them), so two grid points read apart.
    params = f" {format_params(s.params)}" if s.params else ""
    fold = "" if s.fold < 0 else f" fold={s.fold}"
    seconds = f"({outcome.duration:.1f}s)"
    return f"{s.phase} {s.recipe}{params} {outcome.status}{shown} seed={s.seed}{fold} {seconds}"


class PlainProgress(SilentProgress):
    """One line per finished trial on ``stream`` (for logs and pipes)."""

    def __init__(self, stream: Any = None) -> None:
        super().__init__()
        self.stream = stream or sys.stderr
        self.t0 = time.perf_counter()

    def advance(self, outcome: Any) -> None:
        super().advance(outcome)
        self._print(_describe(outcome))

    def elsewhere(self, count: int) -> None:
        super().elsewhere(count)
        self._print(f"{count} trial(s) finished by another process")

    def _print(self, text: str) -> None:
        elapsed = time.perf_counter() - self.t0
        print(f"[{self.finished}/{self.total} {elapsed:.0f}s] {text}", file=self.stream, flush=True)


class RichProgress(SilentProgress):
    """A rich progress bar with the last finished trial."""

    def __init__(self) -> None:
        super().__init__()
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn("study"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            TextColumn("{task.description}"), transient=False)
        self.task = self.bar.add_task("", total=0)
        self.bar.start()

    def add(self, already_done: int, todo: int) -> None:
        super().add(already_done, todo)
        self.bar.update(self.task, total=self.total, completed=self.finished)

    def advance(self, outcome: Any) -> None:
        super().advance(outcome)
        self.bar.update(self.task, completed=self.finished, description=_describe(outcome))

    def elsewhere(self, count: int) -> None:
        super().elsewhere(count)
        note = f"{count} finished by another process"
        self.bar.update(self.task, completed=self.finished, description=note)

    def close(self) -> None:
        self.bar.stop()


def make_progress(progress: bool | None) -> SilentProgress:
    """``None``: rich on a terminal, plain lines otherwise; ``True``: the same; ``False``: silent."""
    if progress is False:
        return SilentProgress()
    return RichProgress() if sys.stderr.isatty() else PlainProgress()
