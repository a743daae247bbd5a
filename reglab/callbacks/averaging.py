"""Weight averaging over ``torch.optim.swa_utils``: EMA (every step) and SWA (every epoch).

Both keep an ``AveragedModel`` beside the trained one and copy the average into the
model when training ends (``on_fit_end``), so ``evaluate`` / ``predict`` afterwards use
the averaged weights. Averaging replaces the final weights: combined with
``EarlyStopping(restore_best_weights=True)``, whichever callback is listed last wins.

References:
    Izmailov et al., "Averaging Weights Leads to Wider Optima and Better Generalization", 2018.
    Polyak & Juditsky, "Acceleration of stochastic approximation by averaging", 1992.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch.optim.swa_utils import SWALR, AveragedModel, update_bn

from reglab._validation import Interval, check_bool, check_int, check_option, check_scalar
from reglab.callbacks.base import Callback

__all__ = ["EMA", "SWA"]


def _copy_average_into(trainer: Any, averaged: AveragedModel, with_buffers: bool) -> None:
    src = averaged.module.state_dict()
    if not with_buffers:  # stale buffers of the copy: keep the model's, update_bn fixes BatchNorm
        names = {n for n, _ in averaged.module.named_parameters()}
        src = {k: v for k, v in src.items() if k in names}
    trainer.model.load_state_dict(src, strict=with_buffers)


def _ema_update(decay: float) -> Any:
    """``get_ema_multi_avg_fn(decay)``, except that integer buffers are copied, as timm's ModelEmaV3 does:
    torch's averages them in integers, which truncates (BatchNorm's ``num_batches_tracked`` stayed at 1
    for decay 0.99 after 15 steps)."""

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], n_averaged: Any) -> None:
        if torch.is_floating_point(averaged[0]) or torch.is_complex(averaged[0]):
            torch._foreach_lerp_(averaged, current, 1.0 - decay)
        else:
            torch._foreach_copy_(averaged, current)

    return update


@torch.no_grad()
def _swa_update(averaged: list[torch.Tensor], current: list[torch.Tensor], n_averaged: Any) -> None:
    """The running mean ``avg += (w - avg) / (n + 1)``. torch's ``get_swa_multi_avg_fn`` computes
    ``1 / (n + 1)`` as a float32 tensor, so a float64 average was off the exact mean by ~1e-9."""
    torch._foreach_lerp_(averaged, current, 1.0 / (int(n_averaged) + 1))


def _update_bn(trainer: Any) -> None:
    source = getattr(trainer, "train_source_", None)
    if source is not None:
        update_bn(trainer.iter_batches(source), trainer.model, device=trainer.device)


class EMA(Callback):
    """Exponential moving average of the weights, updated after every optimizer step.

    ``avg = decay * avg + (1 - decay) * w`` (``get_ema_multi_avg_fn``; the first step copies
    the weights, where timm's ModelEmaV2/V3 start from the weights at creation; no warmup); float
    buffers (BatchNorm running statistics) are averaged too (``use_buffers=True``), integer ones
    (``num_batches_tracked``) copied, as timm's ModelEmaV3 does. At the end of training
    the average is copied into the model; ``update_bn=True`` then recomputes BatchNorm
    statistics with one pass over the training data.

    Example:
        >>> import torch
        >>> from reglab.train import Trainer
        >>> from reglab.models import MLP
        >>> x, y = torch.randn(40, 3), torch.randint(0, 2, (40,))
        >>> ema = EMA(0.9)
        >>> _ = Trainer(MLP(3, 2, hidden=()), epochs=2, callbacks=[ema], progress="off").fit((x, y))
        >>> int(ema.averaged_.n_averaged)
        4
    """

    def __init__(self, decay: float = 0.999, update_bn: bool = False):
        self.decay = check_scalar(decay, "decay", owner="EMA", interval=Interval(0, 1, closed="left"))
        self.update_bn = check_bool(update_bn, "update_bn", owner="EMA")
        self.averaged_: AveragedModel | None = None

    def on_fit_start(self, trainer: Any) -> None:
        self.averaged_ = AveragedModel(
            trainer.model, multi_avg_fn=_ema_update(self.decay), use_buffers=True
        )

    def on_batch_end(self, trainer: Any, batch: int, logs: dict[str, float]) -> None:
        self.averaged_.update_parameters(trainer.model)  # type: ignore[union-attr]

    def on_fit_end(self, trainer: Any) -> None:
        if self.averaged_ is not None and int(self.averaged_.n_averaged) > 0:
            _copy_average_into(trainer, self.averaged_, with_buffers=True)
            if self.update_bn:
                _update_bn(trainer)

    def state_dict(self) -> dict[str, Any]:
        return {"averaged": None if self.averaged_ is None else self.averaged_.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.averaged_.load_state_dict(state["averaged"])  # type: ignore[union-attr]


class SWA(Callback):
    """Stochastic weight averaging: equal-weight mean of the weights at each epoch end from ``start_epoch``.

    The mean is exact in float64 (to rounding, 1e-16), as ``AveragedModel``'s default on CPU.

    With ``lr`` given, ``torch.optim.swa_utils.SWALR`` anneals the learning rate to
    ``lr`` over ``anneal_epochs`` from ``start_epoch`` (do not also pass a trainer
    scheduler then). At the end the average is copied into the model and BatchNorm
    statistics are recomputed with ``update_bn`` over the training data (as the SWA
    paper prescribes; a no-op without BatchNorm).

    Example:
        >>> import torch
        >>> from reglab.train import Trainer
        >>> from reglab.models import MLP
        >>> x, y = torch.randn(40, 3), torch.randint(0, 2, (40,))
        >>> swa = SWA(start_epoch=1, lr=0.01)
        >>> _ = Trainer(MLP(3, 2, hidden=()), epochs=3, callbacks=[swa], progress="off").fit((x, y))
        >>> int(swa.averaged_.n_averaged)
        2
    """

    def __init__(
        self,
        start_epoch: int = 0,
        lr: float | None = None,
        anneal_epochs: int = 1,
        anneal_strategy: str = "cos",
        update_bn: bool = True,
    ):
        owner = "SWA"
        self.start_epoch = check_int(start_epoch, "start_epoch", owner=owner, interval=Interval(0, None))
        self.lr = (
            None
            if lr is None
            else check_scalar(lr, "lr", owner=owner, interval=Interval(0, None, closed="neither"))
        )
        self.anneal_epochs = check_int(
            anneal_epochs, "anneal_epochs", owner=owner, interval=Interval(1, None)
        )
        self.anneal_strategy = check_option(
            anneal_strategy, "anneal_strategy", owner=owner, options=("cos", "linear")
        )
        self.update_bn = check_bool(update_bn, "update_bn", owner=owner)
        self.averaged_: AveragedModel | None = None
        self.scheduler_: SWALR | None = None
        self._pending_scheduler_state: dict[str, Any] | None = None

    def on_fit_start(self, trainer: Any) -> None:
        epochs = getattr(trainer, "epochs", None)
        if isinstance(epochs, int) and self.start_epoch >= epochs:  # a silent no-op otherwise
            warnings.warn(
                f"SWA(start_epoch={self.start_epoch}) with epochs={epochs}: no epoch reaches start_epoch, so "
                "nothing is averaged and the model keeps its last epoch's weights.",
                UserWarning, stacklevel=2,
            )
        self.averaged_ = AveragedModel(trainer.model, multi_avg_fn=_swa_update)
        self.scheduler_, self._pending_scheduler_state = None, None

    def on_epoch_start(self, trainer: Any, epoch: int) -> None:
        # Built lazily: SWALR's constructor touches the optimizer's lr, which must not change before
        # start_epoch.
        if self.lr is not None and self.scheduler_ is None and epoch >= self.start_epoch:
            self.scheduler_ = SWALR(
                trainer.optimizer_,
                swa_lr=self.lr,
                anneal_epochs=self.anneal_epochs,
                anneal_strategy=self.anneal_strategy,
            )
            if self._pending_scheduler_state is not None:
                self.scheduler_.load_state_dict(self._pending_scheduler_state)
                self._pending_scheduler_state = None

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, float]) -> None:
        if epoch >= self.start_epoch:
            self.averaged_.update_parameters(trainer.model)  # type: ignore[union-attr]
            if self.scheduler_ is not None:
                self.scheduler_.step()

    def on_fit_end(self, trainer: Any) -> None:
        if self.averaged_ is not None and int(self.averaged_.n_averaged) > 0:
            _copy_average_into(trainer, self.averaged_, with_buffers=False)
            if self.update_bn:
                with torch.no_grad():
                    _update_bn(trainer)

    def state_dict(self) -> dict[str, Any]:
        return {
            "averaged": None if self.averaged_ is None else self.averaged_.state_dict(),
            "scheduler": None if self.scheduler_ is None else self.scheduler_.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.averaged_.load_state_dict(state["averaged"])  # type: ignore[union-attr]
        self._pending_scheduler_state = state["scheduler"]
