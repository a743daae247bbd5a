"""Early stopping whose stop decisions equal Keras 3's ``keras.callbacks.EarlyStopping``.

The decision is the pure method :meth:`EarlyStopping.update`, a line-by-line mirror of
Keras 3's ``on_epoch_end`` (keras/src/callbacks/early_stopping.py):

* ``_is_improvement(current, reference) = monitor_op(current - min_delta, reference)``
  with ``min_delta`` negated in ``min`` mode, and "no reference yet" counting as an
  improvement (``best`` starts at ``None``).
* Epochs ``< start_from_epoch`` are ignored entirely.
* ``wait += 1``; on improvement ``best`` is updated and ``wait`` resets to 0 only if
  the value also beats ``baseline`` (when given); otherwise stop once
  ``wait >= patience and epoch > 0``.

Documented differences from Keras:

* A NaN or infinite monitored value stops training at once with a reason (Keras
  would store NaN as its first ``best`` and carry on).
* A monitored name that is never logged is an error listing the logged names
  (Keras only warns and never stops).
* ``mode="auto"`` is decided from the name (Keras asks the metric object):
  a name ending in ``loss`` is minimized (``val_iou_loss`` too); otherwise names containing ``acc``,
  ``auc``, ``precision``, ``recall``, ``f1``, ``r2`` or ``iou`` are maximized; ``loss``, ``mse``,
  ``mae``, ``error``, ``crossentropy``, ``hinge`` minimized;
  anything else must be given an explicit ``mode``, as in Keras.
* ``restore_best_weights=True`` restores at the end of training whether or not it
  stopped early, as current Keras 3 does; Keras 3.0-3.5 restored only on a stop:
  ``restore_without_stop=False`` gives that older behaviour.
"""

from __future__ import annotations

import difflib
import math
from typing import Any

import torch

from reglab._validation import (
    Interval,
    InvalidParameterError,
    check_bool,
    check_int,
    check_monitor,
    check_option,
    check_scalar,
    fail,
)
from reglab.callbacks.base import Callback

__all__ = ["EarlyStopping", "infer_mode"]

_MAX_HINTS = ("acc", "auc", "precision", "recall", "f1", "r2", "iou")
_MIN_HINTS = ("loss", "mse", "mae", "error", "crossentropy", "hinge")
#: The columns a reglab History logs, for a hint when a misspelt monitor reaches :func:`infer_mode`.
HISTORY_COLUMNS = tuple(
    f"{split}_{metric}" for split in ("train", "val") for metric in ("loss", "accuracy", "mse", "mae")
) + ("penalty", "lr", "weight_norm", "zero_fraction", "time")


def infer_mode(monitor: str, owner: str = "EarlyStopping") -> str:
    """Return ``"min"`` or ``"max"`` for a metric name, as Keras' ``mode="auto"``.

    Example:
        >>> infer_mode("val_accuracy"), infer_mode("val_loss"), infer_mode("val_iou_loss")
        ('max', 'min', 'min')
    """
    if not isinstance(monitor, str):
        raise fail(owner, "monitor", "a metric name (a History column), e.g. 'val_loss'", monitor)
    name = monitor.lower()
    if name.endswith("loss"):  # a loss is minimized whatever it is named after (val_jaccard_loss)
        return "min"
    if any(h in name for h in _MAX_HINTS):
        return "max"
    if any(h in name for h in _MIN_HINTS):
        return "min"
    error = fail(
        owner,
        "mode",
        f"'min' or 'max' for monitor {monitor!r} (its direction cannot be inferred from the name)",
        "auto",
    )
    # A misspelt column ('val_los') lands here before the fit could list the logged names: name the
    # nearest History column too, or the user is told to set a mode for a metric that does not exist.
    close = difflib.get_close_matches(monitor, [c for c in HISTORY_COLUMNS if c != monitor], n=1, cutoff=0.6)
    if close:
        raise InvalidParameterError(f"{error} Did you mean monitor={close[0]!r}?")
    raise error


class EarlyStopping(Callback):
    """Stop training when a monitored metric has stopped improving (Keras 3 semantics).

    Args:
        monitor: History column to watch, e.g. ``"val_loss"`` or ``"val_accuracy"``.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (from the name; see the module notes).
        patience: epochs without improvement before stopping (Keras counts epochs,
            Lightning counts validation checks: here they are the same).
        min_delta: smallest change that counts as an improvement (absolute value taken).
        baseline: if given, ``wait`` resets only when the value also beats it.
        start_from_epoch: epochs (0-based) before this one are ignored.
        restore_best_weights: load the weights of the best epoch when training ends.
        restore_without_stop: also restore when training ran to the end without a stop
            (current Keras 3); ``False`` restores only after a stop (Keras 3.0-3.5).

    Example:
        >>> es = EarlyStopping(monitor="val_loss", patience=2)
        >>> [es.update(v) for v in [3.0, 2.0, 2.5, 2.4]]
        [False, False, False, True]
        >>> es.stopped_epoch, es.best, es.best_epoch
        (3, 2.0, 1)
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        mode: str = "auto",
        patience: int = 0,
        min_delta: float = 0.0,
        baseline: float | None = None,
        start_from_epoch: int = 0,
        restore_best_weights: bool = False,
        restore_without_stop: bool = True,
    ):
        owner = "EarlyStopping"
        if not isinstance(monitor, str) or not monitor:
            raise fail(owner, "monitor", "a non-empty metric name", monitor)
        self.monitor = monitor
        self.mode = check_option(mode, "mode", owner=owner, options=("auto", "min", "max"))
        self.patience = check_int(patience, "patience", owner=owner, interval=Interval(0, None))
        self.min_delta = abs(check_scalar(min_delta, "min_delta", owner=owner))
        self.baseline = None if baseline is None else check_scalar(baseline, "baseline", owner=owner)
        self.start_from_epoch = check_int(
            start_from_epoch, "start_from_epoch", owner=owner, interval=Interval(0, None)
        )
        self.restore_best_weights = check_bool(restore_best_weights, "restore_best_weights", owner=owner)
        self.restore_without_stop = check_bool(restore_without_stop, "restore_without_stop", owner=owner)
        self.direction = infer_mode(monitor) if mode == "auto" else mode
        self.reset()

    def reset(self) -> None:
        """Forget the run so far (Keras' ``on_train_begin``)."""
        self.wait = 0
        self.best: float | None = None
        self.best_epoch = 0
        self.stopped_epoch = 0
        self.stopped = False
        self.reason: str | None = None
        self.best_weights: dict[str, torch.Tensor] | None = None
        #: The epoch whose weights ``on_fit_end`` loaded into the model (None: nothing restored).
        self.restored_epoch: int | None = None
        self._weights_epoch: int | None = None
        self._next_epoch = 0
        self._improved = False

    def _is_improvement(self, value: float, reference: float | None) -> bool:
        if reference is None:
            return True
        if self.direction == "min":
            return value + self.min_delta < reference  # Keras: less(value - (-min_delta), ref)
        return value - self.min_delta > reference

    def update(self, value: float, epoch: int | None = None) -> bool:
        """Feed one epoch's value; return True when training should stop after this epoch.

        Args:
            value: the monitored value at the end of ``epoch``.
            epoch: 0-based epoch index; by default one more than the previous call.
        """
        if epoch is not None:
            epoch = check_int(epoch, "epoch", owner="EarlyStopping.update", interval=Interval(0, None))
        value = _as_number(value)
        epoch = self._next_epoch if epoch is None else epoch
        self._next_epoch = epoch + 1
        self._improved = False
        if not math.isfinite(value):
            self.stopped, self.stopped_epoch = True, epoch
            self.reason = f"EarlyStopping: {self.monitor} is {value} at epoch {epoch}"
            return True
        if epoch < self.start_from_epoch:
            return False
        self.wait += 1
        if self._is_improvement(value, self.best):
            self.best, self.best_epoch, self._improved = value, epoch, True
            if self.baseline is None or self._is_improvement(value, self.baseline):
                self.wait = 0
            return False
        if self.wait >= self.patience and epoch > 0:
            self.stopped, self.stopped_epoch = True, epoch
            epochs = f"{self.wait} epoch{'s' * (self.wait != 1)}"
            self.reason = (
                f"EarlyStopping: {self.monitor} did not improve for {epochs} "
                f"(best {self.best:.6g} at epoch {self.best_epoch}"
                + ("" if self.baseline is None else f", baseline {self.baseline:.6g}")
                + ")"
            )
            return True
        return False

    # -- trainer hooks ---------------------------------------------------------------------------
    def on_fit_start(self, trainer: Any) -> None:
        self.reset()
        names = getattr(trainer, "metric_names", None)
        if names:
            check_monitor(self.monitor, "EarlyStopping", names)

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, float]) -> None:
        if self.monitor not in logs:
            check_option(self.monitor, "monitor", owner="EarlyStopping", options=list(logs))
        monitored = epoch >= self.start_from_epoch
        first = self.restore_best_weights and monitored and self.best_weights is None
        stop = self.update(logs[self.monitor], epoch)
        if self.restore_best_weights and (self._improved or first):
            # Keras keeps the first monitored epoch's weights even before any improvement.
            self.best_weights = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
            self._weights_epoch = epoch
        if stop:
            trainer.should_stop = True
            trainer.stop_reason = self.reason

    def on_fit_end(self, trainer: Any) -> None:
        if (
            self.restore_best_weights
            and self.best_weights is not None
            and (self.stopped or self.restore_without_stop)
        ):
            trainer.model.load_state_dict(self.best_weights)
            self.restored_epoch = self._weights_epoch

    def state_dict(self) -> dict[str, Any]:
        return {
            "wait": self.wait,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "stopped_epoch": self.stopped_epoch,
            "stopped": self.stopped,
            "reason": self.reason,
            "next_epoch": self._next_epoch,
            "best_weights": self.best_weights,
            "weights_epoch": self._weights_epoch,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.wait, self.best, self.best_epoch = state["wait"], state["best"], state["best_epoch"]
        self.stopped_epoch, self.stopped, self.reason = (
            state["stopped_epoch"],
            state["stopped"],
            state["reason"],
        )
        self._next_epoch, self.best_weights = state["next_epoch"], state["best_weights"]
        # Absent from checkpoints written before it was stored: the best epoch's, as they mostly were.
        fallback = None if self.best_weights is None else self.best_epoch
        self._weights_epoch = state.get("weights_epoch", fallback)


def _as_number(value: Any) -> float:
    """The monitored value as a float: a real number, a NumPy scalar or a one-element tensor."""
    if not isinstance(value, (str, bytes, bool)) and value is not None:
        try:
            return float(value)
        except (TypeError, ValueError, RuntimeError):  # RuntimeError: a tensor of several elements
            pass
    allowed = "a real number (float, int, NumPy scalar or one-element tensor)"
    raise fail("EarlyStopping.update", "value", allowed, value)
