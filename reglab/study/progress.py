"""Live study progress: a rich progress bar on a terminal, plain lines otherwise.

The runner announces the study's whole trial count first (:meth:`SilentProgress.plan`), so the
total shown stays put from the first trial on instead of growing as each phase is planned.

Example:
    >>> p = make_progress(False)   # silent
    >>> p.plan(3); p.add(0, 2); p.total
    3
    >>> p.close()
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
        self.planned = self.added = 0

    def plan(self, total: int) -> None:
        """The study's trial count, every phase included: the total shown from the start."""
        self.planned = total
        self.total = max(self.planned, self.added)

    def add(self, already_done: int, todo: int) -> None:
        """Register a batch of trials: ``already_done`` were stored before, ``todo`` will run.

        They are part of the plan; only trials beyond it (none when the plan is right) raise the total.
        """
        self.added += already_done + todo
        self.total = max(self.planned, self.added)
        self.finished += already_done
        self.resumed += already_done

    def skip(self, count: int, reason: str) -> None:
        """``count`` planned trials will not run (``reason``): they count as finished."""
        self.added += count
        self.total = max(self.planned, self.added)
        self.finished += count

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
    line = f"{s.phase} {s.recipe}{params} {outcome.status}{shown} seed={s.seed}{fold} ({_timing(outcome)})"
    # Why it failed or diverged: the line said only "failed", the error was only in the database.
    why = getattr(outcome, "error", None) if outcome.status != "done" else None
    if why:
        first = str(why).strip().splitlines()[0] if str(why).strip() else ""
        line += ": " + "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in first)
    return line


def _timing(outcome: Any) -> str:
    """The trial's wall time; a population member's as its group's time over its members.

    Example:
        >>> from types import SimpleNamespace as NS
        >>> _timing(NS(duration=0.19, group=16)), _timing(NS(duration=2.5))
        ('190ms = 3.0s / 16 trained together', '2.5s')
        >>> _timing(NS(duration=0.004, group=1, evaluated_only=True))
        '4ms, evaluated only; model trained earlier'
    """
    group, seconds = getattr(outcome, "group", 1), outcome.duration
    if group > 1:
        return f"{_seconds(seconds)} = {_seconds(seconds * group)} / {group} trained together"
    if getattr(outcome, "evaluated_only", False):
        return f"{_seconds(seconds)}, evaluated only; model trained earlier"
    return _seconds(seconds)


def _seconds(seconds: float) -> str:
    """A duration that stays readable below a second (``0.0s`` hid every short trial).

    Example:
        >>> _seconds(0.0004), _seconds(0.0123), _seconds(1.25), _seconds(75.3)
        ('<1ms', '12ms', '1.2s', '75s')
    """
    if seconds < 0.001:
        return "<1ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"


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

    def skip(self, count: int, reason: str) -> None:
        super().skip(count, reason)
        self._print(f"{count} trial(s) not run: {reason}")

    def _print(self, text: str) -> None:
        elapsed = time.perf_counter() - self.t0
        print(f"[{self.finished}/{self.total} {elapsed:.0f}s] {text}", file=self.stream, flush=True)


class RichProgress(SilentProgress):
    """A rich progress bar with the last finished trial."""

    def __init__(self) -> None:
        super().__init__()
        from reglab._rich import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn("study"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            TextColumn("{task.description}"), transient=False)
        self.task = self.bar.add_task("", total=0)
        self.bar.start()

    def plan(self, total: int) -> None:
        super().plan(total)
        self.bar.update(self.task, total=self.total)

    def add(self, already_done: int, todo: int) -> None:
        super().add(already_done, todo)
        self.bar.update(self.task, total=self.total, completed=self.finished)

    def skip(self, count: int, reason: str) -> None:
        super().skip(count, reason)
        note = f"{count} not run: {reason}"
        self.bar.update(self.task, total=self.total, completed=self.finished, description=note)

    def advance(self, outcome: Any) -> None:
        super().advance(outcome)
        line = _describe(outcome)
        if outcome.status != "done":  # kept above the bar: the next trial's line replaces the description
            self.bar.console.print(line, markup=False, highlight=False)
        self.bar.update(self.task, completed=self.finished, description=line)

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
