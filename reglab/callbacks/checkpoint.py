"""Checkpoints: atomic, ``weights_only``-loadable files that let a run resume bit for bit."""

from __future__ import annotations

import io
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from reglab._validation import check_bool, check_monitor, check_option, fail
from reglab.callbacks.base import Callback
from reglab.callbacks.early_stopping import infer_mode
from reglab.errors import UserError

__all__ = ["ModelCheckpoint", "save_atomic"]


def save_atomic(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file in the same folder, then ``os.replace``.

    A crash mid-write leaves the previous file intact, never a truncated one. A write the disk
    refuses (full, quota, read-only) raises ``OSError`` with its ``errno`` and ``filename`` set to ``path``.

    Example:
        >>> import tempfile, torch
        >>> p = save_atomic({"w": torch.ones(2)}, tempfile.mkdtemp() + "/x.pt")
        >>> torch.load(p, weights_only=True)["w"].tolist()
        [1.0, 1.0]
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Serialized in memory first: torch.save writing to the file turns a full disk into a RuntimeError
    # ("unexpected pos ..."), and a study must tell a full disk (stop, retry on resume) from a bad trial.
    data = io.BytesIO()
    torch.save(obj, data)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.getbuffer())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename is None:  # a failed write or fsync names no file
            exc.filename = str(path)
        raise
    return path


class ModelCheckpoint(Callback):
    """Write ``last.pt`` after every epoch and ``best.pt`` when ``monitor`` improves.

    Each file is :meth:`reglab.Trainer.state_dict`: model, optimizer and scheduler states,
    the data-order / transform / global RNG states as tensors, the epoch, the History as
    lists and every callback's state; it loads with ``torch.load(path, weights_only=True)``.
    ``Trainer(...).fit(..., resume_from=dir / "last.pt")`` continues the run exactly
    (same weights and History on CPU as an uninterrupted run). The trainer runs checkpoints
    after all other callbacks, so the saved callback states are end-of-epoch states.
    ``best.pt`` is a strict improvement (first best kept on ties); NaN never counts. With
    ``Trainer(restarts=N)`` it is the best epoch of all restarts (``last.pt`` the last restart's end).

    Args:
        dir: folder for the files (created).
        save_best, save_last: which files to write.
        monitor, mode: the History column deciding "best", and its direction.

    Example:
        >>> import tempfile, torch
        >>> from reglab.train import Trainer
        >>> from reglab.models import MLP
        >>> d = tempfile.mkdtemp()
        >>> x, y = torch.randn(20, 3), torch.randint(0, 2, (20,))
        >>> _ = Trainer(MLP(3, 2, hidden=()), epochs=2, progress="off",
        ...             callbacks=[ModelCheckpoint(d, monitor="train_loss")]).fit((x, y))
        >>> sorted(p.name for p in Path(d).iterdir())
        ['best.pt', 'last.pt']
    """

    def __init__(
        self,
        dir: str | os.PathLike,
        save_best: bool = True,
        save_last: bool = True,
        monitor: str = "val_loss",
        mode: str = "auto",
    ):
        owner = "ModelCheckpoint"
        if not isinstance(dir, (str, os.PathLike)) or not os.fspath(dir):
            raise fail(owner, "dir", "a folder path (not empty)", dir)
        self.dir = Path(dir)
        self.save_best = check_bool(save_best, "save_best", owner=owner)
        self.save_last = check_bool(save_last, "save_last", owner=owner)
        self.monitor = monitor
        self.mode = check_option(mode, "mode", owner=owner, options=("auto", "min", "max"))
        self.direction = infer_mode(monitor, owner=owner) if mode == "auto" else mode
        self.best: float | None = None
        self.best_epoch: int | None = None

    @property
    def last_path(self) -> Path:
        return self.dir / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.dir / "best.pt"

    def on_fit_start(self, trainer: Any) -> None:
        # Made (or refused) before the first epoch trains, not at its first write.
        if self.dir.exists() and not self.dir.is_dir():
            raise UserError(f"ModelCheckpoint: {str(self.dir)!r} is a file; give a folder for checkpoints")
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(
                f"ModelCheckpoint: the folder {str(self.dir)!r} cannot be created ({exc.strerror or exc})"
            ) from None
        for path in (self.last_path, self.best_path):
            if path.is_dir():
                raise UserError(f"ModelCheckpoint: {str(path)!r} is a folder; a checkpoint is written there")
        # Restarts of one fit share best.pt: a later restart's first epoch replaced the best of an earlier
        # one, so best.pt held the last restart even when another scored better and was chosen.
        if getattr(trainer, "restart", 0) == 0:
            self.best, self.best_epoch = None, None
        names = getattr(trainer, "metric_names", None)
        if self.save_best and names:
            check_monitor(self.monitor, "ModelCheckpoint", names)

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, float]) -> None:
        improved = False
        if self.save_best:
            if self.monitor not in logs:
                check_option(self.monitor, "monitor", owner="ModelCheckpoint", options=list(logs))
            value = float(logs[self.monitor])
            if math.isfinite(value) and (
                self.best is None or (value < self.best if self.direction == "min" else value > self.best)
            ):
                self.best, self.best_epoch, improved = value, epoch, True
        if not (improved or self.save_last):
            return
        state = trainer.state_dict()  # after updating self.best, so our own state is current
        if self.save_last:
            save_atomic(state, self.last_path)
        if improved:
            save_atomic(state, self.best_path)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]
