"""The training engine: ``Trainer`` (fit / evaluate / predict) and the ``fit`` shortcut."""

from __future__ import annotations

import inspect
import math
import os
import pickle
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reglab._validation import (
    Interval,
    InvalidParameterError,
    check_bool,
    check_device,
    check_int,
    check_monitor,
    check_option,
    check_progress,
    check_scalar,
    did_you_mean,
    fail,
)
from reglab.callbacks.base import Callback
from reglab.callbacks.early_stopping import EarlyStopping, infer_mode
from reglab.constraints import Constraint
from reglab.errors import UserError
from reglab.init import SCHEMES, check_resettable, reinitialize
from reglab.optim import proximal
from reglab.penalties import Attached, Penalty, Sum
from reglab.train.data_checks import check_tensors
from reglab.train.history import History
from reglab.train.loop import (
    Source,
    as_source,
    check_batch_norm_batches,
    decay_groups,
    epoch_batches,
    has_batch_norm,
    weight_stats,
)

__all__ = ["Trainer", "fit", "TRANSFORM_SEED_OFFSET", "LOSSES"]

#: The batch-transform generator of a run with seed ``s`` is seeded with ``s + TRANSFORM_SEED_OFFSET``.
TRANSFORM_SEED_OFFSET = 0x9E3779B9
OPTIMIZERS = ("adam", "adamw", "sgd")
_OWNER = "Trainer"

#: The loss names ``Trainer(loss=)`` takes, each mapped to the loss it names (Keras' names are aliases).
#: ``"cross_entropy"`` is ``F.cross_entropy`` (class indices or soft / one-hot targets), ``"bce"``
#: ``F.binary_cross_entropy_with_logits`` on one output column, the rest torch's regression losses at
#: their defaults (``huber``: delta 1, ``smooth_l1``: beta 1); all are means over the batch.
LOSSES: dict[str, str] = {
    "cross_entropy": "cross_entropy",
    "categorical_crossentropy": "cross_entropy",
    "sparse_categorical_crossentropy": "cross_entropy",
    "bce": "bce",
    "binary_crossentropy": "bce",
    "mse": "mse",
    "mean_squared_error": "mse",
    "mae": "mae",
    "l1": "mae",
    "mean_absolute_error": "mae",
    "huber": "huber",
    "smooth_l1": "smooth_l1",
}
_REGRESSION_LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "mse": F.mse_loss, "mae": F.l1_loss, "huber": F.huber_loss, "smooth_l1": F.smooth_l1_loss,
}


def _probability_rows(y: torch.Tensor) -> bool:
    """Whether float targets ``(N, C)``, C >= 2, are rows of class probabilities (one-hot or soft):
    each in [0, 1] and summing to 1 (to float32 rounding). Several regression outputs rarely are.

    Example:
        >>> _probability_rows(torch.tensor([[0.0, 1.0], [0.3, 0.7]])), _probability_rows(torch.ones(2, 2))
        (True, False)
    """
    if y.ndim != 2 or y.shape[1] < 2 or y.shape[0] == 0:
        return False
    y = y.detach().double()
    return bool(((y >= 0) & (y <= 1)).all()) and bool(((y.sum(1) - 1).abs() <= 1e-5).all())


def _loss_task(name: str) -> str:
    return "regression" if name in _REGRESSION_LOSSES else "classification"


def _check_loss(loss: Any) -> str | None:
    """The canonical name of a named ``loss`` (``None`` for ``"auto"`` or a callable); else the error."""
    if callable(loss) or (isinstance(loss, str) and loss == "auto"):
        return None
    if isinstance(loss, str) and loss in LOSSES:
        return LOSSES[loss]
    listed = ", ".join(repr(n) for n in ("auto", *LOSSES))
    hint = did_you_mean(loss.lower(), LOSSES) if isinstance(loss, str) else ""
    error = fail(_OWNER, "loss", f"one of {listed} or a callable loss(output, target)", loss)
    raise InvalidParameterError(f"{error}{hint}")


#: Appended to a divergence's ``stop_reason`` when the kept weights are themselves not finite: an
#: earlier step (whose loss was finite) overflowed them, so they are not usable weights.
NON_FINITE_WEIGHTS = "; the weights are no longer finite (an earlier step overflowed them)"


def _listed(value: Any, single: bool, name: str, allowed: str) -> list[Any]:
    if single:
        return [value]
    if isinstance(value, (str, bytes)):
        raise fail(_OWNER, name, allowed, value)
    try:
        return list(value)
    except TypeError:
        raise fail(_OWNER, name, allowed, value) from None


#: The least ``eps`` an Adam-like optimizer takes for float16 weights. Below it a step divides by about
#: zero: float16 squares of gradients under 2.4e-4 underflow to 0 (smallest float16 6e-8), so the second
#: moment is 0 and the update m / (0 + eps) is huge; Adam's default 1e-8 is itself 0 in float16. A fused
#: step adds eps in float32 but keeps the moments in float16: 50 steps of Adam(fused=True) at lr 1e-3 grew
#: a small MLP's weight norm from 5.1 (float32) to 84.
HALF_MIN_EPS = 1e-4


def _eps_too_small(eps: Any) -> bool:
    return isinstance(eps, (int, float)) and float(eps) < HALF_MIN_EPS


def _half_eps_error(kind: str, eps: float, got: str) -> InvalidParameterError:
    """Float16 weights with an eps under :data:`HALF_MIN_EPS`: steps divide by about zero."""
    return InvalidParameterError(
        "The 'optimizer' parameter of Trainer must be 'sgd' or a factory with eps >= 1e-4 "
        "(e.g. lambda p: torch.optim.Adam(p, lr=1e-3, eps=1e-4)) for float16 weights, or the weights must "
        f"be bfloat16 or float32 (dtype=torch.bfloat16): with {kind}'s eps={eps:g} the float16 second moment "
        f"underflows to 0 and its steps divide by about zero (NaN or exploding weights). Got {got} instead."
    )


_TRANSFORM = "a batch transform t(x, y, *, generator) -> (x, y)"


def _augment(augment: Any) -> Any:
    """``augment`` as one callable: a list or tuple is a ``Compose`` of its transforms, in order."""
    if augment is None or callable(augment):
        return augment
    if not isinstance(augment, (list, tuple)):
        raise fail(_OWNER, "augment", f"None, {_TRANSFORM} or a list of them (applied in order)", augment)
    for i, transform in enumerate(augment):
        if not callable(transform):
            raise fail(_OWNER, f"augment[{i}]", _TRANSFORM, transform)
    if not augment:
        return None
    from reglab.augment.base import Compose  # here: reglab.augment loads kornia

    return Compose(augment)


class Trainer:
    """Train a PyTorch model with reglab's regularizers, callbacks, history and restarts.

    Args:
        model: any ``nn.Module``; the caller owns its initialization.
        loss: ``"auto"`` (cross-entropy for integer labels or soft targets, float rows of
            class probabilities such as one-hot; binary cross-entropy with logits for one output
            column and integer targets; MSE for other float targets),
            a name from :data:`LOSSES` (``"cross_entropy"``, ``"bce"``, ``"mse"``, ``"mae"``,
            ``"huber"``, ``"smooth_l1"`` and Keras' names for them), which also sets the task
            (a regression loss: regression, integer targets too), or a callable
            ``loss(output, target) -> scalar`` (mean over the batch). A name gives what
            ``"auto"`` gives where both mean the same loss.
        optimizer: ``"adam"``, ``"adamw"``, ``"sgd"``, or a factory ``lambda params: opt``.
        lr, momentum, weight_decay: for a named optimizer (``momentum`` for ``"sgd"`` only; a
            factory sets its own, and a nonzero ``momentum`` / ``weight_decay`` / ``decoupled``
            beside one is refused). Decay goes only to the regularized weights
            (``reglab.optim.param_groups``): biases and norms get none.
        decoupled: with ``"adam"``, decoupled (AdamW-style) decay; ``"adamw"`` always is.
        penalty: a reglab :class:`~reglab.penalties.Penalty` (with the penalties attached
            by ``reglab.attach``), applied through the gradient: after the data loss's
            ``backward()``, ``penalty.add_grad_(model)`` adds its exact gradient, with no
            autograd graph for it. Any other callable ``penalty(model) -> Tensor`` is added
            to the loss. With ``proximal=True`` it is applied by ``reglab.optim.proximal``
            after each step instead (exact zeros); attached penalties still go through the
            gradient.
        constraints: callables ``c(model)`` applied after each optimizer step.
        clip: ``clip(parameters) -> norm`` called between ``backward`` and ``step``.
        augment: batch transform ``t(x, y, *, generator) -> (x, y)`` for training batches, or a
            list / tuple of them, applied in order (a :class:`reglab.augment.Compose`).
        scheduler: factory ``lambda optimizer: scheduler``; stepped each epoch (or each
            batch with ``scheduler_interval="batch"``); ``ReduceLROnPlateau`` gets
            ``scheduler_monitor``'s value.
        callbacks: :class:`reglab.callbacks.Callback` objects (checkpoints run last).
        epochs, batch_size, seed: see "Determinism" below.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"auto"`` or a ``torch.device``.
        dtype: e.g. ``torch.float64``. Float16 weights with ``"adam"`` / ``"adamw"`` (or any
            optimizer whose ``eps`` is under 1e-4, fused or not) are refused: their steps divide
            by about zero; use ``torch.bfloat16``, or a factory with ``eps >= 1e-4``.
        restarts: train this many initializations and keep the best by ``monitor`` on
            the validation data; restart ``r > 0`` re-initializes every sub-module's
            ``reset_parameters()`` under ``torch.manual_seed(seed + r)`` and uses run seed
            ``seed + r``; each run is logged in ``History.restarts``.
        init: a :func:`reglab.initialize` scheme for restarts ``r > 0``, applied after
            ``reset_parameters()`` with ``generator=torch.Generator().manual_seed(seed + r)``
            (initialize the model the same way with ``seed`` for restart 0); ``None``: the
            layers' own ``reset_parameters()`` only.
        monitor, mode: the History column (and direction) that picks the best epoch and
            the best restart; default: an ``EarlyStopping`` callback's monitor and direction,
            else ``"val_loss"`` (``"train_loss"`` without validation).
        progress: ``"auto"`` (rich live bar on a terminal, one line per epoch otherwise),
            ``"rich"``, ``"plain"`` or ``"off"``; ``True`` / ``False`` are ``"auto"`` / ``"off"``.
        task: ``"auto"`` (the named loss's task, else integer targets: classification),
            ``"classification"``, ``"regression"``.

    Determinism (the population engine reproduces this to 1e-9 in float64):
        A run with seed ``s`` (restart ``r`` uses ``s + r``) creates, at fit start,
        ``g = torch.Generator().manual_seed(s)`` (CPU) for the data order. Epoch ``e``
        (0-based) draws ``perm = torch.randperm(n, generator=g)``, the ``e``-th draw from
        ``g``; its batches are ``perm[k*B:(k+1)*B]`` for ``k = 0, 1, ...``, the last
        partial batch kept (``ceil(n / B)`` steps per epoch). Evaluation draws nothing from
        ``g``. Inside ``torch.random.fork_rng`` (the caller's RNG is untouched),
        ``torch.manual_seed(s)`` seeds the global RNG, which dropout and other layers
        draw from; batch transforms get a separate
        ``torch.Generator(device).manual_seed(s + TRANSFORM_SEED_OFFSET)``. One step:
        batch to device/dtype -> ``augment`` -> ``model.train()`` forward -> data loss
        -> ``zero_grad`` -> ``backward`` -> ``penalty.add_grad_`` -> ``clip`` -> ``step``
        (+ prox) -> constraints ->
        per-batch scheduler -> ``on_batch_end``. The gradients equal those of
        ``(loss + penalty).backward()``. A DataLoader keeps its own order (its sampler draws
        from the seeded global RNG unless given a generator).

    A non-finite training loss stops the run before the bad step; the reason is in
    ``History.stop_reason``.

    Example:
        >>> import torch
        >>> from reglab.models import MLP
        >>> _ = torch.manual_seed(0)
        >>> x = torch.randn(64, 4); y = (x[:, 0] > 0).long()
        >>> trainer = Trainer(MLP(4, 2, hidden=(8,)), lr=0.05, epochs=5, batch_size=16, progress="off")
        >>> history = trainer.fit((x, y), val=(x, y))
        >>> len(history), sorted(trainer.evaluate((x, y)))
        (5, ['accuracy', 'loss'])
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        loss: str | Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = "auto",
        optimizer: str | Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer] = "adam",
        lr: float = 1e-3,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        decoupled: bool = False,
        penalty: Callable[[nn.Module], torch.Tensor] | None = None,
        proximal: bool = False,
        constraints: Sequence[Callable[[nn.Module], None]] = (),
        clip: Callable[[Iterable[nn.Parameter]], float] | None = None,
        augment: Callable[..., tuple[torch.Tensor, torch.Tensor]] | None = None,
        scheduler: Callable[[Any], Any] | None = None,
        scheduler_interval: str = "epoch",
        scheduler_monitor: str = "val_loss",
        callbacks: Sequence[Callback] = (),
        epochs: int = 10,
        batch_size: int = 32,
        seed: int = 0,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | None = None,
        restarts: int = 1,
        init: str | None = None,
        monitor: str | None = None,
        mode: str = "auto",
        progress: str | bool = "auto",
        task: str = "auto",
    ):
        if not isinstance(model, nn.Module):
            raise fail(_OWNER, "model", "a torch.nn.Module", type(model).__name__)
        self._loss_name = _check_loss(loss)
        if isinstance(optimizer, str):
            check_option(optimizer, "optimizer", owner=_OWNER, options=OPTIMIZERS)
        elif not callable(optimizer):
            raise fail(
                _OWNER, "optimizer", f"one of {OPTIMIZERS} or a factory params -> optimizer", optimizer
            )
        self.model, self.loss, self.optimizer = model, loss, optimizer
        self.lr = check_scalar(lr, "lr", owner=_OWNER, interval=Interval(0, None, closed="neither"))
        self.momentum = check_scalar(
            momentum, "momentum", owner=_OWNER, interval=Interval(0, 1, closed="left")
        )
        self.weight_decay = check_scalar(
            weight_decay, "weight_decay", owner=_OWNER, interval=Interval(0, None)
        )
        self.decoupled = check_bool(decoupled, "decoupled", owner=_OWNER)
        # Settings the chosen optimizer would not use are refused, not dropped without a word.
        if self.momentum and optimizer in ("adam", "adamw"):
            allowed = "0 with optimizer='adam' or 'adamw' (their betas play its role), or optimizer='sgd'"
            raise fail(_OWNER, "momentum", allowed, self.momentum)
        if callable(optimizer):
            for field, value in (("momentum", self.momentum), ("weight_decay", self.weight_decay),
                                 ("decoupled", self.decoupled)):
                if value:
                    allowed = "its default with an optimizer factory (set it in the factory's optimizer)"
                    raise fail(_OWNER, field, allowed, value)
        if self.decoupled and optimizer == "sgd":
            raise fail(_OWNER, "decoupled", "False with optimizer='sgd' (use 'adam' or 'adamw')", True)
        if penalty is not None and not callable(penalty):
            raise fail(_OWNER, "penalty", "None or a callable penalty(model) -> Tensor", penalty)
        self.penalty = penalty
        self._attached_sum = Sum((penalty, Attached())) if isinstance(penalty, Penalty) else None
        self.proximal = check_bool(proximal, "proximal", owner=_OWNER)
        if self.proximal and penalty is None:
            raise fail(_OWNER, "proximal", "False when no penalty is given", True)
        # One callback or constraint passed bare, as Keras users often do, is a list of one.
        self.constraints = _listed(
            constraints, callable(constraints), "constraints", "a list of callables c(model)"
        )
        for c in self.constraints:
            if not callable(c):
                raise fail(_OWNER, "constraints", "a list of callables c(model)", c)
        augment = _augment(augment)
        # Keras passes clipnorm=1.0 and a built scheduler object: name the callable reglab takes instead.
        wanted = {
            "clip": "None or a callable clip(parameters) -> norm, e.g. reglab.ClipGradNorm(1.0) (Keras "
                    "global_clipnorm), ClipGradValue(0.5) (clipvalue) or ClipGradNormPerTensor(1.0) "
                    "(clipnorm)",
            "scheduler": "None or a factory optimizer -> scheduler (the Trainer builds its optimizer), e.g. "
                         "lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=10)",
        }
        for name, value in (("clip", clip), ("scheduler", scheduler)):
            if value is not None and not callable(value):
                raise fail(_OWNER, name, wanted[name], value)
        self.clip, self.augment, self.scheduler = clip, augment, scheduler
        self.scheduler_interval = check_option(
            scheduler_interval, "scheduler_interval", owner=_OWNER, options=("epoch", "batch")
        )
        if not isinstance(scheduler_monitor, str) or not scheduler_monitor:
            raise fail(_OWNER, "scheduler_monitor", "a metric name (a History column), e.g. 'val_loss'",
                       scheduler_monitor)
        self.scheduler_monitor = scheduler_monitor
        self.callbacks = _listed(
            callbacks, isinstance(callbacks, Callback), "callbacks", "a list of reglab.callbacks.Callback"
        )
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise fail(_OWNER, "callbacks", "a list of reglab.callbacks.Callback", type(cb).__name__)
        self.epochs = check_int(epochs, "epochs", owner=_OWNER, interval=Interval(0, None))
        self.batch_size = check_int(batch_size, "batch_size", owner=_OWNER, interval=Interval(1, None))
        self.seed = check_int(seed, "seed", owner=_OWNER, interval=Interval(0, 2**62))
        self.device = check_device(device, _OWNER)
        if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise fail(_OWNER, "dtype", "None or a floating torch.dtype", dtype)
        self.dtype = dtype
        # Refused now when the weights' dtype is known; _build_optimizer checks again at fit (the model's
        # dtype may change in between) and checks a factory's optimizer.
        weights = dtype or next((p.dtype for p in model.parameters() if p.is_floating_point()), None)
        if optimizer in ("adam", "adamw") and weights == torch.float16:
            raise _half_eps_error("Adam" if optimizer == "adam" else "AdamW", 1e-8, repr(optimizer))
        self.restarts = check_int(restarts, "restarts", owner=_OWNER, interval=Interval(1, None))
        if init is not None:
            check_option(init, "init", owner=_OWNER, options=list(SCHEMES))
        self.init = init
        self.monitor = monitor
        self.mode = check_option(mode, "mode", owner=_OWNER, options=("auto", "min", "max"))
        self.progress = check_progress(progress, _OWNER)
        self.task = check_option(task, "task", owner=_OWNER, options=("auto", "classification", "regression"))
        if self._loss_name is not None and self.task not in ("auto", _loss_task(self._loss_name)):
            allowed = f"'auto' or {_loss_task(self._loss_name)!r} with loss={loss!r}"
            raise fail(_OWNER, "task", allowed, self.task)
        self.should_stop = False
        self.stop_reason: str | None = None
        self.history_: History | None = None
        self.optimizer_: Any = None
        self.scheduler_: Any = None
        self.task_: str | None = None
        self.epoch = 0
        #: The restart being trained (0-based; 0 without restarts), for callbacks that span restarts.
        self.restart = 0

    # -- data and loss ---------------------------------------------------------------------------
    def _resolve_task(self, source: Source, hint: str | None = None) -> str:
        if self.task != "auto":
            return self.task
        if self._loss_name is not None:
            return _loss_task(self._loss_name)
        if hint in ("classification", "regression"):
            return hint
        y = source.first_targets()
        if not torch.is_floating_point(y) or _probability_rows(y):
            return "classification"  # integer labels, or one-hot / soft targets (rows of probabilities)
        return "regression"

    def _to_device(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dtype = self.dtype or next(self.model.parameters()).dtype
        x = x.to(self.device, dtype=dtype if torch.is_floating_point(x) else None)
        y = y.to(self.device, dtype=dtype if torch.is_floating_point(y) else None)
        return x, y

    def _data_loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if callable(self.loss):
            return self.loss(out, y)
        name = self._loss_name
        if self.task_ == "regression":  # "auto" with float targets, or a regression loss's name
            function = _REGRESSION_LOSSES[name or "mse"]
            return function(out.reshape(y.shape) if out.numel() == y.numel() else out, y)
        binary = out.ndim == 2 and out.shape[1] == 1 and y.ndim == 1
        if name == "bce" and not binary:
            raise UserError(
                f"Trainer.fit: loss={self.loss!r} takes one output column (a binary logit, outputs of shape "
                f"(N, 1)) and labels of shape (N,); got outputs {tuple(out.shape)} and labels "
                f"{tuple(y.shape)}. Use loss='cross_entropy' for more classes, or a callable loss."
            )
        if name == "cross_entropy" and out.ndim == 2 and out.shape[1] == 1:
            raise UserError(
                f"Trainer.fit: loss={self.loss!r} needs one output per class; the model gives one output "
                "column (a binary logit): use loss='bce' (or 'auto'), or give the model 2 outputs."
            )
        if binary:
            return F.binary_cross_entropy_with_logits(out[:, 0], y.to(out.dtype))
        if y.ndim == 1 and y.is_floating_point():  # integral float labels, checked by check_tensors
            y = y.long()
        if y.ndim == 2 and out.ndim == 2 and y.shape[1] != out.shape[1]:  # soft targets (mixup, smoothing)
            raise UserError(
                f"Trainer.fit: the batch's soft targets have {y.shape[1]} columns (e.g. an augmentation's "
                f"num_classes) but the model gives {out.shape[1]} outputs; make the two equal."
            )
        try:
            return F.cross_entropy(out, y)
        except IndexError as exc:  # a label past the model's outputs (reglab models are checked up front)
            if "out of bounds" not in str(exc) or y.is_floating_point():
                raise
            raise UserError(
                f"Trainer.fit: a batch has labels up to {int(y.max())} but the model gives {out.shape[1]} "
                f"outputs (classes 0..{out.shape[1] - 1}); size its output layer to the number of classes."
            ) from None

    def _batch_metrics(self, out: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """Sums (not means) over the batch, to be divided by the example count."""
        if self.task_ == "regression":
            err = out.reshape(y.shape) - y if out.numel() == y.numel() else out - y
            per = err.reshape(err.shape[0], -1)
            return {"mse": float(per.square().mean(1).sum()), "mae": float(per.abs().mean(1).sum())}
        labels = y.argmax(1) if y.ndim == 2 else y  # soft targets (mixup, smoothing): their argmax
        pred = (out[:, 0] > 0).long() if out.ndim == 2 and out.shape[1] == 1 else out.argmax(1)
        return {"accuracy": float((pred == labels).sum())}

    def _metric_names(self, has_val: bool) -> list[str]:
        per = ["loss", "accuracy"] if self.task_ == "classification" else ["loss", "mse", "mae"]
        names = ["epoch"] + [f"train_{m}" for m in per]
        names += [f"val_{m}" for m in per] if has_val else []
        return names + ["penalty", "lr", "weight_norm", "zero_fraction", "time"]

    # -- evaluation ------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, data: Any) -> dict[str, float]:
        """Loss and metrics over ``data`` in eval mode (dropout off, BatchNorm running stats).

        Returns ``{"loss", "accuracy"}`` for classification, ``{"loss", "mse", "mae"}`` for
        regression; means over examples.
        """
        source = as_source(data, owner=_OWNER, name="data")
        if self.task_ is None:
            self.task_ = self._resolve_task(source)
        was_training = self.model.training
        self.model.eval()
        totals: dict[str, float] = {}
        n = 0
        try:
            for xb, yb in epoch_batches(source, self.batch_size, None):
                xb, yb = self._to_device(xb, yb)
                out = self.model(xb)
                stats = {"loss": float(self._data_loss(out, yb)) * len(xb), **self._batch_metrics(out, yb)}
                for k, v in stats.items():
                    totals[k] = totals.get(k, 0.0) + v
                n += len(xb)
        finally:
            self.model.train(was_training)
        return {k: v / n for k, v in totals.items()}

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Model outputs (logits for classification) for ``x`` in eval mode, batched.

        Inputs are cast as in ``fit``: floating ones to the model's dtype, integer ones (token ids
        for an Embedding) kept as they are; zero rows give zero outputs.
        """
        x = torch.as_tensor(x)
        was_training = self.model.training
        self.model.eval()
        try:
            dtype = self.dtype or next(self.model.parameters()).dtype
            dtype = dtype if torch.is_floating_point(x) else None
            # range(0, 0) would give no batch: the empty input runs as one (zero-row) batch.
            starts = range(0, x.shape[0], self.batch_size) if x.shape[0] else [0]
            outs = [self.model(x[i : i + self.batch_size].to(self.device, dtype=dtype)) for i in starts]
        finally:
            self.model.train(was_training)
        return torch.cat(outs)

    def iter_batches(self, data: Any) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        """Batches of ``data`` in stored order, on the trainer's device (used by ``update_bn``)."""
        source = as_source(data, owner=_OWNER, name="data")
        for xb, yb in epoch_batches(source, self.batch_size, None):
            yield self._to_device(xb, yb)

    # -- optimizer -------------------------------------------------------------------------------
    def _build_optimizer(self) -> Any:
        if callable(self.optimizer):
            opt = self.optimizer(self.model.parameters())
            if not isinstance(opt, torch.optim.Optimizer):
                raise UserError(
                    f"Trainer: the optimizer factory returned {type(opt).__name__}, not a "
                    "torch.optim.Optimizer; e.g. optimizer=lambda params: torch.optim.SGD(params, lr=0.1)."
                )
        else:
            groups = decay_groups(self.model, self.weight_decay)
            if self.optimizer == "adam":
                opt = torch.optim.Adam(groups, lr=self.lr, decoupled_weight_decay=self.decoupled)
            elif self.optimizer == "adamw":
                opt = torch.optim.AdamW(groups, lr=self.lr)
            else:
                opt = torch.optim.SGD(groups, lr=self.lr, momentum=self.momentum)
        for group in opt.param_groups:
            eps = group.get("eps")
            half = any(p.dtype == torch.float16 for p in group["params"])
            if half and _eps_too_small(eps):
                kind = type(opt).__name__
                got = repr(self.optimizer) if isinstance(self.optimizer, str) else f"a factory of {kind}"
                raise _half_eps_error(kind, eps, got)
        if self.proximal:
            opt = proximal(opt, self.penalty, model=self.model)
        return opt

    def _penalties(self) -> tuple[Penalty | None, Callable[[nn.Module], torch.Tensor] | None]:
        """``(gradient-path penalty, loss-path callable)`` for this step; either may be None."""
        loss_path = None
        grad_path: Penalty | None = None
        if self.penalty is not None and not self.proximal:
            if isinstance(self.penalty, Penalty):
                grad_path = self.penalty
            else:
                loss_path = self.penalty
        if Attached().pairs(self.model):  # Keras-style per-layer penalties (cached lookup)
            grad_path = self._attached_sum if grad_path is not None else Attached()
        return grad_path, loss_path

    def _penalty_value(self) -> float:
        """The whole penalty (the run's, attached ones, a proximal one) at the current weights.

        Logged once per epoch, like ``weight_norm`` and ``zero_fraction``: one evaluation per epoch
        instead of one per step.
        """
        total = 0.0
        with torch.no_grad():
            if self.penalty is not None:
                total += float(self.penalty(self.model))
            if Attached().pairs(self.model):
                total += float(Attached()(self.model))
        return total

    # -- checkpoint state ------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs; loadable with ``torch.load(weights_only=True)``."""
        rng: dict[str, Any] = {
            "data": self._data_gen.get_state(),
            "transform": self._transform_gen.get_state(),
            "torch": torch.get_rng_state(),
        }
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "format": 1,
            "epoch": self.epoch,
            "seed": self._run_seed,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer_.state_dict(),
            "scheduler": None if self.scheduler_ is None else self.scheduler_.state_dict(),
            "rng": rng,
            "history": self.history_.to_dict(),  # type: ignore[union-attr]
            "callbacks": [{"class": type(cb).__name__, "state": cb.state_dict()} for cb in self.callbacks],
            "settings": self._settings(),
            # A run stopped at this epoch (early stopping, another callback) ends here when resumed.
            "stopped": self.should_stop,
            "stop_reason": self.stop_reason,
        }

    def _settings(self) -> dict[str, Any]:
        """The settings a resumed run must share with the run that wrote its checkpoint (plain values:
        ``epochs`` may grow, and the random states come from the checkpoint, so ``seed`` may differ)."""
        penalty: Any = self.penalty
        if isinstance(penalty, Penalty):
            penalty = repr(penalty)  # L2(0.001): its class and strength
        elif penalty is not None:
            penalty = getattr(penalty, "__qualname__", type(penalty).__name__)  # a repr holds an address
        loss: Any = self._loss_name or self.loss  # an alias resumes its loss ("mean_squared_error": "mse")
        if callable(loss):
            loss = getattr(loss, "__qualname__", type(loss).__name__)
        return {
            "optimizer": self.optimizer if isinstance(self.optimizer, str) else "a factory",
            "lr": self.lr, "momentum": self.momentum, "weight_decay": self.weight_decay,
            "decoupled": self.decoupled, "batch_size": self.batch_size, "proximal": self.proximal,
            "penalty": penalty, "loss": loss,
            "dtype": None if self.dtype is None else str(self.dtype),
        }

    def _load_state(self, path: str | os.PathLike) -> int:
        if not os.path.isfile(path):
            raise UserError(
                f"resume_from: no checkpoint file at {os.fspath(path)!r}; pass a file ModelCheckpoint wrote."
            )
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as exc:
            # torch's own message is many lines and suggests weights_only=False, i.e. running the
            # file's code: never the right advice for a file reglab did not write.
            kind = "holds objects other than tensors and plain data" if isinstance(
                exc, pickle.UnpicklingError) else "is truncated or not a torch file"
            raise UserError(
                f"resume_from: refused {os.fspath(path)!r}: it {kind}; reglab loads checkpoints with "
                "weights_only=True and never runs code from a file. Pass a file ModelCheckpoint wrote."
            ) from None
        if not (isinstance(state, dict) and isinstance(state.get("callbacks"), list)):
            raise UserError(
                f"resume_from: {os.fspath(path)!r} is not a reglab checkpoint (no trainer state); "
                "pass a file ModelCheckpoint wrote."
            )
        done = int(state["epoch"]) + 1
        if done > self.epochs:  # finishing would return a longer run than asked for, silently
            raise UserError(
                f"resume_from: {os.fspath(path)!r} holds {done} epochs, past epochs={self.epochs}; pass "
                f"epochs>={done} to continue it, or start a new run."
            )
        settings = state.get("settings")  # absent from checkpoints written before it was stored
        if isinstance(settings, dict):
            ours_now = self._settings()
            # Another optimizer class is named by the check of its state below.
            changed = [k for k in ours_now
                       if k != "optimizer" and k in settings and settings[k] != ours_now[k]]
            if changed:
                was = ", ".join(f"{k}={settings[k]!r}" for k in changed)
                now = ", ".join(f"{k}={ours_now[k]!r}" for k in changed)
                raise UserError(
                    f"resume_from: {os.fspath(path)!r} was written with {was}; this trainer has {now}. A "
                    "resumed run continues that run exactly: resume with its settings, or start a new run."
                )
        saved = [c["class"] for c in state["callbacks"]]
        ours = [type(cb).__name__ for cb in self.callbacks]
        if saved != ours:
            raise UserError(
                f"resume_from: the checkpoint's callbacks {saved} differ from this trainer's {ours}."
            )
        where = os.fspath(path)
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError as exc:  # torch lists every missing / unexpected / mis-shaped tensor
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            raise UserError(
                f"resume_from: {where!r} holds another model's weights ({' '.join(lines[:2])[:300]}); "
                "resume with the model the checkpoint was written for."
            ) from None
        saved_groups = state["optimizer"]["param_groups"]
        # Each optimizer class has its own settings per group (Adam's betas, SGD's momentum); a
        # scheduler adds initial_lr.
        saved_keys = sorted(set(saved_groups[0]) - {"initial_lr"}) if saved_groups else []
        our_keys = sorted(set(self.optimizer_.state_dict()["param_groups"][0]) - {"initial_lr"})
        if saved_keys != our_keys or len(saved_groups) != len(self.optimizer_.param_groups):
            raise UserError(
                f"resume_from: {where!r} was written by another optimizer (its settings: "
                f"{', '.join(k for k in saved_keys if k != 'params')}); resume with the same optimizer."
            )
        self.optimizer_.load_state_dict(state["optimizer"])
        if (self.scheduler_ is None) != (state["scheduler"] is None):
            has = "has" if state["scheduler"] is not None else "has no"
            raise UserError(
                f"resume_from: {where!r} {has} a learning-rate scheduler state and this trainer "
                f"{'has none' if self.scheduler_ is None else 'has one'}; resume with the same scheduler."
            )
        if self.scheduler_ is not None:
            self.scheduler_.load_state_dict(state["scheduler"])
        self._data_gen.set_state(state["rng"]["data"].cpu())
        self._transform_gen.set_state(state["rng"]["transform"].cpu())
        torch.set_rng_state(state["rng"]["torch"].cpu())
        if "cuda" in state["rng"] and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng"]["cuda"].cpu(), self.device)
        self.history_ = History.from_dict(state["history"])
        for cb, c in zip(self.callbacks, state["callbacks"]):
            cb.load_state_dict(c["state"])
        # Absent from checkpoints written before it was stored: those resume as a run that did not stop.
        self.should_stop = bool(state.get("stopped", False))
        self.stop_reason = state.get("stop_reason")
        return int(state["epoch"]) + 1

    # -- fitting ---------------------------------------------------------------------------------
    def fit(
        self,
        train: Any,
        val: Any = None,
        *,
        test: Any = None,
        resume_from: str | os.PathLike | None = None,
    ) -> History:
        """Train; return the :class:`History` (also kept as ``self.history_``).

        Args:
            train: ``(x, y)``, a ``TensorSplit``, a ``DataSplits`` (its ``.val`` is used
                when ``val`` is None), a map-style Dataset or a DataLoader.
            val: validation data (same forms) or None.
            test: evaluated once at the end into ``History.test``.
            resume_from: a checkpoint written by :class:`reglab.callbacks.ModelCheckpoint`;
                training continues at the epoch after it, up to ``epochs`` (a checkpoint with
                more epochs than ``epochs`` is refused); the checkpoint of a run that had stopped
                (early stopping) trains no further and ends as that run ended.
        """
        hint = getattr(train, "task", None)
        if hasattr(train, "train") and hasattr(train, "val"):
            val = train.val if val is None else val
            train = train.train
        train_src = as_source(train, owner=_OWNER, name="train")
        val_src = None if val is None else as_source(val, owner=_OWNER, name="val")
        test_src = None if test is None else as_source(test, owner=_OWNER, name="test")
        if resume_from is not None and self.restarts > 1:
            raise fail(_OWNER, "restarts", "1 when resume_from is given", self.restarts)
        if self.restarts > 1:
            check_resettable(self.model)  # refused before the first restart trains, not after it
        self.train_source_ = train_src
        self.model.to(self.device, dtype=self.dtype)
        self.task_ = self._resolve_task(train_src, hint)
        # A callable reads its labels its own way; "auto" and a named loss read them as task_ says.
        task = "custom loss" if callable(self.loss) else self.task_
        loss = "auto" if self._loss_name is None else self.loss
        for name, src in (("train", train_src), ("val", val_src), ("test", test_src)):
            if src is not None and src.x is not None and src.y is not None:  # streamed data: unchecked
                check_tensors(self.model, src.x, src.y, owner="Trainer.fit", name=name, task=task, loss=loss)
        train_n = len(train_src) if train_src.loader is None else None
        self._skip_single = check_batch_norm_batches(
            has_batch_norm(self.model), train_n, self.batch_size, "Trainer.fit"
        )
        self.metric_names = self._metric_names(val_src is not None)
        stopper = next((cb for cb in self.callbacks if isinstance(cb, EarlyStopping)), None)
        if self.monitor is None and stopper is not None:
            # The best epoch (and restart) is the one early stopping judges by, whose weights
            # restore_best_weights brings back: not the best val_loss beside a val_accuracy rule.
            monitor, direction = stopper.monitor, stopper.direction if self.mode == "auto" else self.mode
            check_monitor(monitor, "EarlyStopping", self.metric_names)  # the user named it there
        else:
            monitor = self.monitor or ("val_loss" if val_src is not None else "train_loss")
            direction = infer_mode(monitor, owner=_OWNER) if self.mode == "auto" else self.mode
            check_monitor(monitor, _OWNER, self.metric_names)
        self._direction = direction

        if self.restarts > 1 and not monitor.startswith(("train_", "val_")):
            raise fail(_OWNER, "monitor", "a train_* or val_* metric when restarts > 1", monitor)
        runs: list[dict[str, Any]] = []
        best_i, best_state, best_history = -1, None, None
        for r in range(self.restarts):
            self.restart = r
            if r > 0:
                reinitialize(self.model, self.seed + r, self.init)
            history = self._fit_once(self.seed + r, train_src, val_src, resume_from, monitor)
            if self.restarts == 1:
                break
            metric = monitor.split("_", 1)[1]
            score = self.evaluate(val_src if monitor.startswith("val_") else train_src)[metric]
            runs.append(
                {
                    "restart": r,
                    "seed": self.seed + r,
                    "score": score,
                    "epochs": len(history),
                    "best_epoch": history.best_epoch,
                    "stop_reason": history.stop_reason,
                }
            )
            if best_i < 0 or _better(score, runs[best_i]["score"], direction):
                best_i, best_history = r, history
                best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        if best_state is not None:
            self.model.load_state_dict(best_state)
            history = best_history
            history.restarts = [dict(run, chosen=run["restart"] == best_i) for run in runs]
        if test_src is not None:
            history.test = self.evaluate(test_src)
        self.history_ = history
        return history

    def _fit_once(
        self, seed: int, train: Source, val: Source | None, resume_from: Any, monitor: str
    ) -> History:
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            self._run_seed = seed
            self._data_gen = torch.Generator().manual_seed(seed)
            self._transform_gen = torch.Generator(self.device).manual_seed(seed + TRANSFORM_SEED_OFFSET)
            self.optimizer_ = self._build_optimizer()
            self.scheduler_ = None if self.scheduler is None else self.scheduler(self.optimizer_)
            if isinstance(self.scheduler_, torch.optim.lr_scheduler.ReduceLROnPlateau) and (
                self.scheduler_interval == "batch"
            ):
                raise fail(_OWNER, "scheduler_interval", "'epoch' for ReduceLROnPlateau (it steps on an "
                           "epoch's metric)", "batch")
            if isinstance(self.scheduler_, torch.optim.lr_scheduler.ReduceLROnPlateau):
                self._check_scheduler_monitor()  # before the first epoch trains, not at its end
            for constraint in self.constraints:
                if isinstance(constraint, Constraint):
                    constraint.check(self.model)  # a selector picking nothing: before the first step moves it
            self.history_ = History(monitor=monitor)
            self.should_stop, self.stop_reason = False, None
            callbacks = self._ordered_callbacks()
            for cb in callbacks:
                cb.on_fit_start(self)
            start = 0 if resume_from is None else self._load_state(resume_from)
            # The checkpoint of a run that had stopped ends that run: it trains no further epochs.
            end = start if resume_from is not None and self.should_stop else self.epochs
            try:
                for epoch in range(start, end):
                    self.epoch = epoch
                    if not self._run_epoch(epoch, train, val, callbacks):
                        break
                    if self.should_stop:
                        break
            finally:
                for cb in callbacks:
                    cb.on_fit_end(self)
        history = self.history_
        history.stop_reason = self.stop_reason
        if any(isinstance(r.get(monitor), float) and math.isfinite(r[monitor]) for r in history.rows):
            history.best_epoch = history.best(monitor, self._direction)["epoch"]
        stopper = next((cb for cb in self.callbacks if isinstance(cb, EarlyStopping)), None)
        if stopper is not None and stopper.restored_epoch is not None and (
            (stopper.monitor, stopper.direction) == (monitor, self._direction)
        ):
            # The epoch whose weights the rule restored: with min_delta or start_from_epoch it is not
            # always the History's best value (0.99 after 1.0 is no improvement with min_delta=0.05).
            history.best_epoch = stopper.restored_epoch
        return history

    def _check_scheduler_monitor(self) -> None:
        """Refuse a ``scheduler_monitor`` this fit does not log (``time`` is logged after the step)."""
        names = [n for n in self.metric_names if n != "time"]
        monitor = self.scheduler_monitor
        if monitor.startswith("val_") and not any(n.startswith("val_") for n in names):
            listed = ", ".join(repr(n) for n in names)
            allowed = (f"one of {listed} (this fit has no validation data: pass val to fit to step "
                       f"ReduceLROnPlateau on {monitor!r})")
            raise fail(_OWNER, "scheduler_monitor", allowed, monitor)
        check_option(monitor, "scheduler_monitor", owner=_OWNER, options=names)

    def _ordered_callbacks(self) -> list[Callback]:
        from reglab.callbacks.checkpoint import ModelCheckpoint
        from reglab.callbacks.progress import ProgressBar

        extra: list[Callback] = []
        if self.progress != "off" and not any(isinstance(c, ProgressBar) for c in self.callbacks):
            extra.append(ProgressBar(mode=self.progress))
        # Checkpoints run after every other callback so they capture end-of-epoch state.
        rest = [c for c in self.callbacks if not isinstance(c, ModelCheckpoint)]
        return rest + extra + [c for c in self.callbacks if isinstance(c, ModelCheckpoint)]

    def _optimizer_step(self) -> None:
        try:
            self.optimizer_.step()
        except RuntimeError as error:
            # torch converts lr and weight_decay (Adam: lr / bias correction) to the parameters' dtype.
            if "cannot be converted to type" not in str(error):
                raise
            dtype = next(self.model.parameters()).dtype
            raise UserError(
                f"Trainer: lr={self.lr:g} or weight_decay={self.weight_decay:g} is too large for {dtype} "
                f"arithmetic (torch: {str(error).splitlines()[0]}); the largest {dtype} number is "
                f"{torch.finfo(dtype).max:.3g}."
            ) from None

    def _current_lr(self) -> float:
        return float(self.optimizer_.param_groups[0]["lr"])

    def _stop_non_finite(self, epoch: int, batch: int, loss: float, lr: float, t0: float) -> bool:
        """Record a non-finite training loss and stop (the step is not taken); returns False."""
        self.stop_reason = f"non-finite training loss ({loss}) at epoch {epoch}, batch {batch}"
        with torch.no_grad():
            if not all(bool(torch.isfinite(p).all()) for p in self.model.parameters()):
                self.stop_reason += NON_FINITE_WEIGHTS
        self.should_stop = True
        self.history_.append(
            {"epoch": epoch, "train_loss": loss, "lr": lr, "time": time.perf_counter() - t0}
        )
        return False

    def _run_epoch(self, epoch: int, train: Source, val: Source | None, callbacks: list[Callback]) -> bool:
        """One epoch; returns False if it was cut short by a non-finite loss."""
        t0 = time.perf_counter()
        for cb in callbacks:
            cb.on_epoch_start(self, epoch)
        lr = self._current_lr()
        self.model.train()
        totals: dict[str, float] = {}
        n = 0
        generator = self._data_gen if train.loader is None else None
        for b, (xb, yb) in enumerate(epoch_batches(train, self.batch_size, generator)):
            if self._skip_single and len(xb) == 1:
                continue  # BatchNorm cannot normalize one example (see loop.has_batch_norm)
            xb, yb = self._to_device(xb, yb)
            if self.augment is not None:
                xb, yb = self.augment(xb, yb, generator=self._transform_gen)
            out = self.model(xb)
            data_loss = self._data_loss(out, yb)
            grad_pen, loss_pen = self._penalties()
            extra = None if loss_pen is None else loss_pen(self.model)
            value = float(data_loss.detach())
            pen_value = 0.0 if extra is None else float(extra.detach())
            if not (math.isfinite(value) and math.isfinite(pen_value)):
                return self._stop_non_finite(epoch, b, value + pen_value, lr, t0)
            self.optimizer_.zero_grad(set_to_none=True)
            (data_loss if extra is None else data_loss + extra).backward()
            if grad_pen is not None:
                # Its gradient only: the History logs the value once per epoch (see _penalty_value),
                # so a step pays for the penalty about what torch's weight_decay costs.
                grad_pen.add_grad_(self.model)
            if self.clip is not None:
                self.clip(self.model.parameters())
            self._optimizer_step()
            for constraint in self.constraints:
                with torch.no_grad():
                    constraint(self.model)
            if self.scheduler_ is not None and self.scheduler_interval == "batch":
                self.scheduler_.step()
            with torch.no_grad():
                stats = {"loss": value * len(xb), **self._batch_metrics(out.detach(), yb)}
            for k, v in stats.items():
                totals[k] = totals.get(k, 0.0) + v
            n += len(xb)
            for cb in callbacks:
                cb.on_batch_end(self, b, {"loss": value, "size": len(xb)})
        if n == 0:  # a DataLoader of single-example batches into BatchNorm
            raise UserError(
                "Trainer.fit: the model has BatchNorm and every training batch held one example; "
                "use batches of at least 2 examples, or norm='layer'."
            )
        row: dict[str, Any] = {"epoch": epoch}
        row.update({f"train_{k}": v / n for k, v in totals.items()})
        if val is not None:
            row.update({f"val_{k}": v for k, v in self.evaluate(val).items()})
        norm, zeros = weight_stats(self.model)
        row.update(
            {"penalty": self._penalty_value(), "lr": lr, "weight_norm": norm, "zero_fraction": zeros}
        )
        if self.scheduler_ is not None and self.scheduler_interval == "epoch":
            if isinstance(self.scheduler_, torch.optim.lr_scheduler.ReduceLROnPlateau):
                self.scheduler_.step(row[self.scheduler_monitor])  # checked before the first epoch
            else:
                self.scheduler_.step()
        row["time"] = time.perf_counter() - t0
        self.history_.append(row)
        for cb in callbacks:
            cb.on_epoch_end(self, epoch, dict(row))
        return True


_FIT_KEYS = ("test", "resume_from")
#: Keras / Lightning / skorch spellings of fit's keywords, and what reglab calls them.
_FIT_ALIASES = {
    "learning_rate": "lr", "validation_data": "val", "valid": "val", "x_val": "val", "epoch": "epochs",
    "max_epochs": "epochs", "n_epochs": "epochs", "callback": "callbacks", "constraint": "constraints",
    "regularizer": "penalty", "kernel_regularizer": "penalty", "clipnorm": "clip", "global_clipnorm": "clip",
    "clipvalue": "clip", "verbose": "progress", "lr_scheduler": "scheduler", "random_state": "seed",
    "accelerator": "device",
}


def _check_fit_keywords(kwargs: dict[str, Any]) -> None:
    """An unknown keyword of :func:`fit` is one line with reglab's spelling (not Python's TypeError)."""
    known = [k for k in inspect.signature(Trainer.__init__).parameters if k not in ("self", "model")]
    known += list(_FIT_KEYS)
    for key in kwargs:
        if key in known:
            continue
        meant = _FIT_ALIASES.get(key)
        hint = f" reglab calls it {meant!r}." if meant else did_you_mean(key, known)
        error = fail("fit", "keyword", f"a Trainer argument or one of {', '.join(_FIT_KEYS)}", key)
        raise InvalidParameterError(f"{error}{hint}")


def fit(model: nn.Module, train: Any, val: Any = None, **kwargs: Any) -> History:
    """Train ``model`` and return its :class:`History`: ``Trainer(model, **kw).fit(train, val)``.

    ``test=`` and ``resume_from=`` go to :meth:`Trainer.fit`; every other keyword to
    :class:`Trainer`. An unknown keyword (Keras's ``learning_rate``, ``validation_data``) is refused
    in one line naming reglab's spelling (``lr``, ``val``).

    Example:
        >>> import torch
        >>> from reglab.models import MLP
        >>> _ = torch.manual_seed(0)
        >>> x = torch.randn(50, 3); y = x @ torch.tensor([1.0, -2.0, 0.5])
        >>> h = fit(MLP(3, 1, hidden=()), (x, y), loss="mae", epochs=3, lr=0.1, progress="off")
        >>> h.columns[:4]
        ['epoch', 'train_loss', 'train_mse', 'train_mae']
    """
    _check_fit_keywords(kwargs)
    fit_kw = {k: kwargs.pop(k) for k in _FIT_KEYS if k in kwargs}
    return Trainer(model, **kwargs).fit(train, val, **fit_kw)


def _better(score: float, reference: float, direction: str) -> bool:
    if not math.isfinite(score):
        return False
    if not math.isfinite(reference):
        return True
    return score < reference if direction == "min" else score > reference
