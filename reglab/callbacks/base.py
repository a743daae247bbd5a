"""The callback protocol: no-op hooks, a stop flag on the trainer, resumable state.

A callback never raises to stop training: it sets ``trainer.should_stop = True``
and, ideally, ``trainer.stop_reason``. Every hook is optional.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Callback"]


class Callback:
    """Base class for training callbacks; every hook is a no-op.

    Hooks are called by :class:`reglab.Trainer` in this order: ``on_fit_start``,
    then per epoch ``on_epoch_start``, ``on_batch_end`` after each optimizer step
    (and constraints), ``on_epoch_end`` after validation; ``on_fit_end`` once at the end
    (also after a stop). ``state_dict`` / ``load_state_dict`` carry whatever a
    resumed run needs; values must be tensors or plain Python containers and numbers so
    that checkpoints load with ``torch.load(weights_only=True)``.

    Example:
        >>> class CountBatches(Callback):
        ...     def on_fit_start(self, trainer):
        ...         self.n = 0
        ...     def on_batch_end(self, trainer, batch, logs):
        ...         self.n += 1
        ...     def state_dict(self):
        ...         return {"n": self.n}
        ...     def load_state_dict(self, state):
        ...         self.n = state["n"]
        >>> cb = CountBatches()
        >>> cb.on_fit_start(None); cb.on_batch_end(None, 0, {}); cb.state_dict()
        {'n': 1}
    """

    def on_fit_start(self, trainer: Any) -> None:
        """Called once before the first epoch (reset per-run state here)."""

    def on_epoch_start(self, trainer: Any, epoch: int) -> None:
        """Called before the first batch of ``epoch`` (0-based)."""

    def on_batch_end(self, trainer: Any, batch: int, logs: dict[str, float]) -> None:
        """Called after each optimizer step; ``logs`` holds ``loss`` and ``size`` of the batch."""

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, float]) -> None:
        """Called after validation; ``logs`` is the epoch's History row."""

    def on_fit_end(self, trainer: Any) -> None:
        """Called once when training ends, stopped or not."""

    def state_dict(self) -> dict[str, Any]:
        """Return the state a resumed run needs (tensors and plain Python values only)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
