"""Progress output: a ``rich`` live bar on a terminal, one plain line per epoch otherwise."""

from __future__ import annotations

import math
import sys
from typing import IO, TYPE_CHECKING, Any

from reglab._validation import check_option, fail
from reglab.callbacks.base import Callback

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

__all__ = ["ProgressBar", "format_metrics"]

_SHOWN = ("train_loss", "train_accuracy", "train_mse", "val_loss", "val_accuracy", "val_mse")


def format_metrics(logs: dict[str, Any]) -> str:
    """``"train_loss 0.1234  val_loss 0.2345"`` for the main metrics present in ``logs``.

    Example:
        >>> format_metrics({"train_loss": 0.5, "lr": 0.1, "val_accuracy": 0.875})
        'train_loss 0.5  val_accuracy 0.875'
    """
    return "  ".join(
        f"{k} {v:.4g}" for k in _SHOWN if isinstance(v := logs.get(k), (int, float)) and not math.isnan(v)
    )


class ProgressBar(Callback):
    """Show training progress; ``Trainer(progress=...)`` adds one automatically.

    Args:
        mode: ``"auto"`` (rich when ``file`` is a terminal, else plain), ``"rich"`` or ``"plain"``.
        file: where to write (default ``sys.stdout``).

    With ``Trainer(restarts=N)``, ``N > 1``, each line starts with the restart it belongs to
    (``"restart 2/3  epoch 1/5  ..."``).

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> bar = ProgressBar("plain", file=out)
        >>> class T: epochs = 3
        >>> bar.on_fit_start(T()); bar.on_epoch_end(T(), 0, {"train_loss": 0.5, "time": 0.01})
        >>> out.getvalue()
        'epoch 1/3  train_loss 0.5  (0.01 s)\\n'
    """

    def __init__(self, mode: str = "auto", file: IO[str] | None = None):
        self.mode = check_option(mode, "mode", owner="ProgressBar", options=("auto", "rich", "plain"))
        if file is not None and not callable(getattr(file, "write", None)):
            raise fail("ProgressBar", "file", "None (standard output) or an open text file", file)
        self.file = file
        self._progress: Progress | None = None
        self._task: Any = None
        self._epochs = 0
        self._label = ""

    def _use_rich(self, console: Console) -> bool:
        return self.mode == "rich" or (self.mode == "auto" and console.is_terminal)

    def on_fit_start(self, trainer: Any) -> None:
        self._epochs = int(trainer.epochs)
        # With Trainer(restarts=N > 1) each restart prints its own epochs 1..E: say which restart they are.
        restarts = getattr(trainer, "restarts", 1)
        self._label = f"restart {getattr(trainer, 'restart', 0) + 1}/{restarts}  " if restarts > 1 else ""
        file = self.file if self.file is not None else sys.stdout
        # rich is imported here, not at `import reglab` (reglab._rich keeps Python's `random` stream).
        from reglab._rich import (
            BarColumn,
            Console,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        console = Console(file=file, force_terminal=True if self.mode == "rich" else None)
        if self._use_rich(console):
            self._progress = Progress(
                TextColumn(f"{self._label}epoch"),
                BarColumn(bar_width=20),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[metrics]}"),
                console=console,
            )
            self._task = self._progress.add_task("fit", total=self._epochs, metrics="")
            self._progress.start()
        else:
            self._progress = None

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, float]) -> None:
        self.show(epoch, format_metrics(logs), logs.get("time", 0.0))

    def show(self, epoch: int, metrics: str, seconds: float) -> None:
        """Show that epoch ``epoch`` (0-based) ended after ``seconds``, with the text ``metrics``."""
        if self._progress is not None:
            # Cut the metrics, not the bar, on a narrow terminal (about 45 columns for the rest).
            metrics = metrics[: max(self._progress.console.width - 45, 10)]
            self._progress.update(self._task, completed=epoch + 1, metrics=metrics, refresh=True)
            return
        file = self.file if self.file is not None else sys.stdout
        line = f"{self._label}epoch {epoch + 1}/{self._epochs}  {metrics}  ({seconds:.2g} s)"
        print(line, file=file, flush=True)

    def on_fit_end(self, trainer: Any) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        reason = getattr(trainer, "stop_reason", None)
        if reason:
            file = self.file if self.file is not None else sys.stdout
            print(f"{self._label}stopped: {reason}", file=file, flush=True)
