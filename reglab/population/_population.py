"""``Population``: K regularization configurations of one model trained at once as one stacked model."""

from __future__ import annotations

import contextlib
import copy
import math
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import nn

from reglab._validation import (
    Interval,
    check_bool,
    check_device,
    check_int,
    check_option,
    check_progress,
    check_scalar,
    fail,
)
from reglab.callbacks.early_stopping import EarlyStopping
from reglab.callbacks.progress import ProgressBar
from reglab.data.files import MAX_CLASSES
from reglab.errors import UserError
from reglab.models import CNN1D, MLP
from reglab.penalties import Attached
from reglab.population import _checkpoint
from reglab.population._config import MemberConfig, parse_configs
from reglab.population._loss import correct, cross_entropy
from reglab.population._progress import epoch_summary
from reglab.population._shard import Shard
from reglab.population._stack import StackedNet, arch_kwargs
from reglab.train.data_checks import check_tensors
from reglab.train.history import History
from reglab.train.loop import as_tensor, check_batch_norm_batches, has_batch_norm
from reglab.train.trainer import NON_FINITE_WEIGHTS

__all__ = ["Population", "train_population"]

_OWNER = "Population"
# "active" while fit trains a member (and in checkpoints, which are written mid-fit); fit's end turns
# the members still active into "finished", so a status read after fit says how each member ended.
_STATUSES = ("active", "finished", "stopped", "diverged")
# Per-member strengths held as (K, 1) columns of the population's dtype.
_STRENGTHS = ("lr", "l1", "l2", "weight_decay", "decoupled_decay", "prox_l1", "prox_l2", "noise")


def _split(data: Any, name: str, owner: str) -> tuple[torch.Tensor, torch.Tensor]:
    allowed = "a TensorSplit or an (x, y) pair of tensors or arrays"
    if data is None:
        raise fail(owner, name, allowed, data)
    x, y = (data.x, data.y) if hasattr(data, "x") and hasattr(data, "y") else (None, None)
    if x is None and isinstance(data, torch.utils.data.TensorDataset) and len(data.tensors) == 2:
        x, y = data.tensors
    if x is None and isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = data
    if isinstance(data, (torch.utils.data.Dataset, torch.utils.data.DataLoader)) and x is None:
        # Every member indexes the same tensors by its own batch order: nothing to stream from.
        allowed += " (the population engine indexes its data as tensors: pass (x, y) rather than a Dataset)"
        raise fail(owner, name, allowed, type(data).__name__)
    if isinstance(x, (list, tuple, np.ndarray)) or isinstance(y, (list, tuple, np.ndarray)):
        # Lists and NumPy arrays convert as the Trainer converts them (torch.as_tensor).
        x, y = (v if v is None else as_tensor(v, owner=owner, name=name) for v in (x, y))
    if (
        not isinstance(x, torch.Tensor)
        or not isinstance(y, torch.Tensor)
        or x.dim() == 0  # no length: len() would raise a bare TypeError
        or y.dim() == 0
        or len(x) != len(y)
        or len(x) == 0
    ):
        raise fail(owner, name, f"{allowed} of equal, non-zero length", data)
    if y.is_floating_point():
        distinct = len(y.unique()) if y.dim() == 1 and bool((y == y.round()).all()) else 0
        if 0 < distinct <= MAX_CLASSES:
            advice = "these are whole numbers: pass y.long() for class indices"
        elif distinct:
            # reglab.data's own rule: more than MAX_CLASSES whole numbers are a regression target.
            advice = (f"these are {distinct} distinct whole numbers, a regression target (more than "
                      f"{MAX_CLASSES}): train regression models with reglab.Trainer")
        elif y.dim() == 2:
            advice = "for one-hot or soft targets pass y.argmax(1); train soft targets with reglab.Trainer"
        else:
            advice = "train regression models with reglab.Trainer"
        raise UserError(
            f"{owner}: {name} has float targets ({str(y.dtype).removeprefix('torch.')} y of shape "
            f"{tuple(y.shape)}); the population engine trains classifiers on integer class labels only: "
            f"{advice}."
        )
    return x, y


def _check_template(arch: MLP | CNN1D) -> None:
    """Refuse a template the members would not reproduce: they are built as ``MLP(...)`` / ``CNN1D(...)``
    from its settings, so a subclass's code, a changed layer or an attached penalty would be left out."""
    cls, kwargs = arch_kwargs(arch)
    allowed = (
        f"a reglab.models.MLP or CNN1D as its constructor builds it (members are built as "
        f"{cls.__name__}(...) from its settings: a subclass's code or a changed layer would be left out)"
    )
    if type(arch) is not cls:
        raise fail(_OWNER, "arch", allowed, f"{type(arch).__name__}, a subclass of {cls.__name__}")
    with torch.random.fork_rng(devices=[]):  # leave the caller's global RNG untouched
        plain = cls(**kwargs)
    want = dict(plain.named_modules())
    for name, module in arch.named_modules():
        has = f"has {type(want[name]).__name__}" if name in want else "has no such layer"
        if name not in want or type(module) is not type(want[name]):
            raise fail(_OWNER, "arch", allowed, f"{cls.__name__} with {name}: {type(module).__name__} where "
                                                f"{cls.__name__}(...) {has}")
    shapes = {n: tuple(t.shape) for n, t in plain.state_dict().items()}
    for name, tensor in arch.state_dict().items():
        if shapes.get(name) != tuple(tensor.shape):
            raise fail(_OWNER, "arch", allowed, f"{cls.__name__} with {name} of shape {tuple(tensor.shape)} "
                                                f"where {cls.__name__}(...) has {shapes.get(name)}")
    if len(shapes) != len(arch.state_dict()):  # a layer deleted
        missing = next(n for n in shapes if n not in arch.state_dict())
        raise fail(_OWNER, "arch", allowed, f"{cls.__name__} without {missing}")
    pairs = Attached().pairs(arch)
    if pairs:
        # The Trainer applies a penalty attached to a layer; a member's penalty is its config's.
        layer, penalty = pairs[0]
        where = next(n for n, m in arch.named_modules() if m is layer)
        allowed = "a template without attached penalties (each member's is its config's 'l1' / 'l2')"
        raise fail(_OWNER, "arch", allowed, f"{cls.__name__} with {penalty!r} attached to {where}")


class Population:
    """K members of one architecture, each with its own hyperparameters, trained as one stacked model.

    Every weight of every member lives in one ``(K, P)`` tensor; layers run as batched matmuls
    (``torch.baddbmm``, convolutions over unfolded windows), and the optimizer updates all members with a few
    in-place passes. A member matches training it alone (same initialization, same batch order,
    dropout off) to rounding. Members that early-stop or diverge are frozen and physically dropped
    from the stacked tensors, so they stop costing compute.

    Args:
        arch: A template ``reglab.models.MLP`` or ``CNN1D`` (its layout is copied, its weights are not
            used). Built with ``dropout=0``: each member's rate is its config's, so a template with
            dropout is refused rather than silently trained without it.
            Members are built from its settings, so a subclass, a changed layer or an attached
            penalty is refused likewise.
        configs: One dict (keys of :class:`MemberConfig`), dataclass (its fields are the keys) or
            ``MemberConfig`` per member; for a pandas DataFrame pass ``df.to_dict("records")``. Member k
            is initialized as ``torch.manual_seed(configs[k]["seed"]); type(arch)(...)``. A key the
            Trainer or Keras spells differently (``learning_rate``, ``penalty``) or a setting every
            member shares (``momentum``, ``batch_size``) is refused saying where it goes.
        optimizer: ``"adam"`` (decoupled decay as AdamW) or ``"sgd"``.
        betas, eps: Adam's; shared by all members. With ``dtype=torch.float16``, ``eps`` must be at least
            1e-4: Adam's second moment underflows to 0 in float16 and ``m / eps`` would blow the
            weights up (the Trainer refuses float16 Adam likewise); bfloat16 takes any ``eps``.
        momentum, nesterov: SGD's; shared by all members.
        seed: Seeds the shared batch order (as ``reglab.Trainer(seed=seed)``) and the dropout / noise draws.
        data_order: ``"shared"`` (all members see the same batches, from ``seed``) or ``"per_member"``
            (member k's order comes from its own config ``seed``, as ``Trainer(seed=configs[k].seed)``).
        dropout_masks: ``"independent"`` (member k's masks from its own generator, seeded from
            ``(seed, k)``, as separate runs) or ``"common"`` (common random numbers: one draw per layer
            and step, shared by all members, each keeping its own rate; see
            ``reglab.population._dropout.Dropout``). ``"common"`` covers dropout masks only: input
            noise (``noise``) is drawn per member from member k's own generator either way, and the
            batch order is ``data_order``'s. Results do not depend on ``threads``.
        dtype, device: Of the stacked tensors and of :meth:`member`'s modules; ``dtype=None`` is the
            template's (as the Trainer's ``dtype=None`` keeps the model's); ``device`` is ``"cpu"``,
            ``"cuda"`` (``"cuda:N"``), ``"auto"`` (CUDA when available) or a ``torch.device``. A
            strength past the dtype's range (lr 1e40 in float32) makes that member diverge, its stop
            reason naming the value, while the others train on.
        threads: Members are split into this many shards (stacked sub-models), each trained in its
            own thread with one intra-op thread (faster on CPU than one stack with several intra-op
            threads; see ``reglab.population._shard``). ``None``: ``torch.get_num_threads()`` at
            :meth:`fit` on CPU, 1 on a GPU (one stack: every operation covers all members in one
            kernel launch). Results do not depend on it bit for bit when every member's activation
            block (batch x width x dtype bytes, last partial batch included) is a multiple of 64
            bytes, or with ``MKL_CBWR=AUTO,STRICT`` in the environment; otherwise MKL's
            alignment-dependent matmuls differ in the last bits.

    Attributes:
        histories_: One ``reglab.History`` per member after :meth:`fit`.
        member_steps_: Member-steps computed so far (K_active summed over optimizer steps).
        epoch_member_steps_: Member-steps computed in each epoch: falls as members stop.

    Example:
        >>> import torch
        >>> from reglab.models import MLP
        >>> x, y = torch.randn(64, 8), torch.randint(0, 3, (64,))
        >>> configs = [{"lr": 1e-2, "seed": s, "l2": 1e-3 * s} for s in range(4)]
        >>> pop = Population(MLP(8, 3, hidden=(16,)), configs)
        >>> histories = pop.fit((x, y), (x, y), epochs=2, batch_size=16, progress="off")
        >>> len(histories), pop.status, type(pop.member(0)).__name__
        (4, ['finished', 'finished', 'finished', 'finished'], 'MLP')
    """

    def __init__(
        self,
        arch: nn.Module,
        configs: Sequence[dict[str, Any] | MemberConfig],
        *,
        optimizer: str = "adam",
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        momentum: float = 0.0,
        nesterov: bool = False,
        seed: int = 0,
        data_order: str = "shared",
        dropout_masks: str = "independent",
        dtype: torch.dtype | None = None,
        device: str | torch.device = "cpu",
        threads: int | None = None,
    ):
        if not isinstance(arch, (MLP, CNN1D)):
            raise fail(_OWNER, "arch", "a reglab.models.MLP or reglab.models.CNN1D instance", arch)
        if arch.out_features < 2:
            allowed = "a model with at least 2 outputs (softmax classes; binary labels take out_features=2)"
            raise fail(_OWNER, "arch", allowed, f"{type(arch).__name__} with {arch.out_features} output")
        if arch.dropout:
            # Each member's rate is its config's: a template's own rate would be silently dropped.
            allowed = "a template with dropout=0 (each member's rate is its config's 'dropout')"
            raise fail(_OWNER, "arch", allowed, f"{type(arch).__name__} with dropout={arch.dropout:g}")
        _check_template(arch)
        self.arch = arch
        self.configs = parse_configs(configs)
        self.optimizer = check_option(optimizer, "optimizer", owner=_OWNER, options=("adam", "sgd"))
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise fail(_OWNER, "betas", "a pair (beta1, beta2) of floats in [0, 1)", betas)
        unit = Interval(0, 1, closed="left")
        self.betas = tuple(
            check_scalar(b, f"betas[{i}]", owner=_OWNER, interval=unit) for i, b in enumerate(betas)
        )
        self.eps = check_scalar(eps, "eps", owner=_OWNER, interval=Interval(0, None))
        self.momentum = check_scalar(momentum, "momentum", owner=_OWNER, interval=unit)
        self.nesterov = check_bool(nesterov, "nesterov", owner=_OWNER)
        if self.nesterov and (self.optimizer != "sgd" or self.momentum == 0):
            allowed = "False unless optimizer='sgd' with momentum > 0 (as torch.optim.SGD)"
            raise fail(_OWNER, "nesterov", allowed, True)
        decoupled = [k for k, c in enumerate(self.configs) if c.decoupled_decay]
        if self.optimizer == "sgd" and decoupled:  # as the Trainer: torch's SGD has no decoupled decay
            k = decoupled[0]
            raise fail(
                _OWNER, f"configs[{k}].decoupled_decay",
                "0 with optimizer='sgd' (use weight_decay, torch's coupled decay, or optimizer='adam')",
                self.configs[k].decoupled_decay,
            )
        # Seeds go to torch.manual_seed and NumPy's SeedSequence, which take 64-bit seeds.
        self.seed = check_int(seed, "seed", owner=_OWNER, interval=Interval(0, 2**63 - 1))
        self.data_order = check_option(
            data_order, "data_order", owner=_OWNER, options=("shared", "per_member")
        )
        self.dropout_masks = check_option(
            dropout_masks, "dropout_masks", owner=_OWNER, options=("independent", "common")
        )
        if dtype is None:  # as the Trainer's dtype=None: the template's own
            dtype = next((p.dtype for p in arch.parameters() if p.is_floating_point()), torch.float32)
        if dtype not in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
            raise fail(_OWNER, "dtype", "None (the template's dtype) or a floating torch.dtype", dtype)
        if dtype == torch.float16 and self.optimizer == "adam" and self.eps < 1e-4:
            # Adam's second moment, stored in float16, underflows to 0 for gradients below ~2e-4, and
            # m / (0 + eps) then steps a weight by up to lr / eps: weights blow up within an epoch.
            allowed = ">= 1e-4 with dtype=torch.float16 and optimizer='adam' (or use torch.bfloat16)"
            raise fail(_OWNER, "eps", allowed, self.eps)
        self.threads = (
            None
            if threads is None
            else check_int(threads, "threads", owner=_OWNER, interval=Interval(1, None))
        )
        self.dtype, self.device = dtype, check_device(device, _OWNER)
        cls, kwargs = arch_kwargs(arch)
        members = []
        for cfg in self.configs:
            with torch.random.fork_rng(devices=[]):  # leave the caller's global RNG untouched
                torch.manual_seed(cfg.seed)
                members.append(cls(**kwargs, dropout=cfg.dropout))
        net = StackedNet(members, dtype=dtype, device=self.device)
        self._build = net.build
        # Where a member's weights live while it is off the stack (before fit, stopped, diverged, finished).
        self._theta = net.theta.detach().clone()
        self._buffers = {n: b.clone() for n, b in net.buffers.items()}
        self._members = members  # the initialized modules, split into shards by fit()
        self._batch_norm = has_batch_norm(members[0])
        self._shards: list[Shard] = []
        self._status = ["active"] * len(self.configs)
        self.histories_: list[History] = [History() for _ in self.configs]
        self.member_steps_ = 0
        self.epoch_member_steps_: list[int] = []

    # ------------------------------------------------------------------ public
    @property
    def status(self) -> list[str]:
        """How each member stands: ``"active"`` (before and during :meth:`fit`), ``"finished"`` (trained
        every epoch; set when fit returns, also when it resumed a checkpoint), ``"stopped"`` (early
        stopping ended it) or ``"diverged"`` (non-finite training loss)."""
        return list(self._status)

    def __len__(self) -> int:
        return len(self.configs)

    def member(self, k: int) -> nn.Module:
        """Member ``k`` as an ordinary ``MLP`` / ``CNN1D`` (weights and BatchNorm statistics), in eval mode.

        After :meth:`fit` this is the final model: the best epoch's weights when early stopping
        restored them, and for a diverged member its last finite weights (its best epoch's when early
        stopping restores best weights, as the Trainer's EarlyStopping does at the end of a fit).
        """
        k = check_int(k, "k", owner="Population.member", interval=Interval(0, len(self) - 1))
        theta, buffers = self._theta[k], {n: b[k] for n, b in self._buffers.items()}
        for shard in self._shards:  # still on a stack (during fit)
            if k in shard.rows:
                row = shard.rows.index(k)
                theta = shard.net.theta.detach()[row]
                buffers = {n: b[row] for n, b in shard.net.buffers.items()}
        return self._build(theta, buffers, self.configs[k].dropout).eval()

    @torch.no_grad()
    def evaluate(self, data: Any, *, batch_size: int = 1024) -> list[dict[str, float]]:
        """Per-member ``{"loss", "accuracy"}`` on ``data`` (a TensorSplit or ``(x, y)`` tensors, arrays or
        lists), eval mode.

        Uses the members' current weights: their initial weights before :meth:`fit`, their final
        weights after it.
        """
        batch_size = check_int(batch_size, "batch_size", owner="Population.evaluate",
                               interval=Interval(1, None))
        x, y = self._data(data, "data")
        net = StackedNet([self.member(k) for k in range(len(self))], dtype=self.dtype, device=self.device)
        loss, acc = _evaluate(net, x, y, batch_size)
        return [{"loss": float(a), "accuracy": float(b)} for a, b in zip(loss, acc)]

    def fit(
        self,
        train: Any,
        val: Any = None,
        *,
        epochs: int,
        batch_size: int = 32,
        early_stopping: EarlyStopping | None = None,
        checkpoint: str | os.PathLike | None = None,
        progress: str | bool = "auto",
    ) -> list[History]:
        """Train every member; return one ``reglab.History`` per member (the Trainer's columns and
        dtypes; ``lr`` as configured).

        A fit runs once. Interrupted (Ctrl-C), it raises ``KeyboardInterrupt`` and keeps the finished
        epochs' histories (members still ``"active"``) and, in :meth:`member`, the weights where the
        interruption found them, mid-epoch; a new ``Population`` given the same ``checkpoint``
        continues from the last finished epoch.

        Args:
            train: A ``TensorSplit`` (``.x``, ``.y``), ``(x, y)`` tensors, NumPy arrays or lists
                (converted by ``torch.as_tensor``, as the Trainer), or a
                ``TensorDataset`` of the two; floating-point features, integer class labels (float
                targets are refused: the engine trains classifiers). A ``DataSplits`` gives its
                ``train`` split, and its ``val`` unless ``val`` is given (as the Trainer).
            val: Validation data, needed for early stopping on a ``val_*`` metric.
            epochs: Number of epochs.
            batch_size: Batch size; the last partial batch is kept, as in the Trainer (skipped if it
                holds one example and the model has BatchNorm).
            early_stopping: A ``reglab.callbacks.EarlyStopping``; each member gets its own copy
                (its own best value, patience counter and best weights). A stopped member is
                frozen and dropped from the stack.
            checkpoint: A file path. After every epoch the whole training state is written there
                atomically (``reglab.population._checkpoint``); when the file exists at the start,
                the fit resumes from it and ends with exactly the numbers of an uninterrupted fit
                (same weights, histories and statuses; ``time`` columns aside). A resumed fit keeps
                the thread split it was saved with, so ``threads`` is ignored then. The file stays
                after the fit (a rerun then only finishes it); delete it to train from the start.
                A checkpoint past ``epochs`` is refused (it holds a longer fit than asked for).
                A file written by another fit, or holding anything but tensors and plain data,
                is refused with a ``UserError``.
            progress: ``"auto"`` (a rich live bar on a terminal, one line per epoch otherwise), ``"rich"``,
                ``"plain"`` or ``"off"`` (``True`` / ``False``: ``"auto"`` / ``"off"``), as the Trainer's;
                each epoch shows how many members train on and the best and median member.
        """
        epochs = check_int(epochs, "epochs", owner="Population.fit", interval=Interval(1, None))
        batch_size = check_int(batch_size, "batch_size", owner="Population.fit", interval=Interval(1, None))
        if early_stopping is not None and not isinstance(early_stopping, EarlyStopping):
            raise fail(
                "Population.fit", "early_stopping", "a reglab.callbacks.EarlyStopping or None", early_stopping
            )
        if checkpoint is not None and (
            not isinstance(checkpoint, (str, os.PathLike))
            or not os.fspath(checkpoint)
            or os.path.isdir(checkpoint)
        ):
            raise fail("Population.fit", "checkpoint", "None or a file path (not a folder)", checkpoint)
        if checkpoint is not None:
            # Made (as each epoch's write would) or refused now, not after the first epoch's training.
            folder = os.path.dirname(os.path.abspath(checkpoint))
            with contextlib.suppress(OSError):  # checked just below
                os.makedirs(folder, exist_ok=True)
            if not os.path.isdir(folder) or not os.access(folder, os.W_OK | os.X_OK):
                allowed = "None or a file path in a folder this process can create and write to"
                raise fail("Population.fit", "checkpoint", allowed, os.fspath(checkpoint))
        progress = check_progress(progress, "Population.fit")
        if self._members is None:
            raise UserError(
                "Population.fit: this population was already fitted (a fit runs once, also when it was "
                "interrupted); build a new Population (configs are kept in .configs) to train again, or "
                "pass the same checkpoint= to a new one to continue an interrupted fit."
            )
        if hasattr(train, "train") and hasattr(train, "val"):  # a DataSplits, as the Trainer takes it
            val = train.val if val is None else val
            train = train.train
        x, y = self._data(train, "train")
        val_xy = None if val is None else self._data(val, "val")
        stoppers = self._stoppers(early_stopping, val_xy is not None)
        saved, fp = None, None
        if checkpoint is not None:
            fp = _checkpoint.fingerprint(self, (x, y), val_xy, batch_size, early_stopping)
            if os.path.isfile(checkpoint):
                saved = _checkpoint.read_checkpoint(checkpoint, fp)  # refused before anything changes
                if int(saved["epoch"]) > epochs:
                    # Finishing it would return more epochs than asked for; cutting it would not be the
                    # fit that was asked for either (its weights are those after the later epochs).
                    raise _checkpoint.CheckpointError(
                        f"Population.fit: checkpoint {os.fspath(checkpoint)!r} is at epoch {saved['epoch']}, "
                        f"past epochs={epochs}; pass epochs>={saved['epoch']} to continue it, or delete it "
                        "to train from the start."
                    )
        threads = len(saved["shards"]) if saved else self.threads or default_threads(self.device)
        self._start(threads)
        best_theta = self._theta.clone() if stoppers else None
        best_buffers = {n: b.clone() for n, b in self._buffers.items()} if stoppers else None
        n = len(x)
        skip_single = check_batch_norm_batches(self._batch_norm, n, batch_size, "Population.fit")
        order_gens = self._order_generators()
        first = 0
        if saved is not None:
            where = os.fspath(checkpoint)  # type: ignore[arg-type]
            first = self._restore(saved, where, order_gens, stoppers, best_theta, best_buffers)
        intra = torch.get_num_threads()
        pool = None
        if len(self._shards) > 1:
            # torch sets a new thread's intra-op (OpenMP, MKL) thread count lazily, at the first op that
            # asks for it: without this, a pool thread ran the first ops of its first step on two threads.
            pool = ThreadPoolExecutor(len(self._shards) - 1, initializer=torch.set_num_threads, initargs=(1,))
        bar = None if progress == "off" else ProgressBar(progress)
        if bar is not None:
            bar.on_fit_start(SimpleNamespace(epochs=epochs))
        try:
            if pool is not None:
                # One thread per shard, one intra-op thread each (a process-wide setting, restored
                # below), so shards do not fight over the cores.
                torch.set_num_threads(1)
            for epoch in range(first, epochs):
                if not self._active():
                    break
                start = time.perf_counter()
                before = self._member_steps()
                for shard in self._shards:  # per member: summed loss, correct, examples
                    shard.sums = torch.zeros(len(self), 3, dtype=torch.float64, device=self.device)
                perm = self._permutations(order_gens, n)

                def run_epoch(shard: Shard, epoch=epoch, start=start, perm=perm) -> None:
                    # Shards share nothing within an epoch, so each runs its steps without waiting
                    # for the others: one meeting point per epoch instead of one per step.
                    for batch, s in enumerate(range(0, n, batch_size)):
                        if skip_single and n - s == 1:
                            continue  # as the Trainer: BatchNorm cannot normalize one example
                        idx = perm[..., s : s + batch_size]
                        if idx.ndim == 2:  # per-member orders: this shard's rows
                            idx = idx[shard.rows]
                        shard.step(x, y, idx, epoch, batch, start, self._diverged, self._store_current)
                        if not shard.rows:
                            return
                    # Measured here, in the shard's own thread, so that a shard that finishes its
                    # steps first does this while the others still train.
                    self._measure(shard, val_xy)

                _parallel(pool, run_epoch, self._live())
                for shard in self._shards:
                    shard.flush_sums()
                self.member_steps_ = self._member_steps()
                self.epoch_member_steps_.append(self.member_steps_ - before)
                sums = sum(shard.sums for shard in self._shards)
                seconds = time.perf_counter() - start
                self._end_epoch(epoch, sums, stoppers, best_theta, best_buffers, seconds)
                if bar is not None:
                    bar.show(epoch, epoch_summary(self.histories_, self._status, epoch), seconds)
                if checkpoint is not None:
                    state = self._capture(epoch + 1, order_gens, stoppers, best_theta, best_buffers)
                    _checkpoint.write_checkpoint(checkpoint, {"fingerprint": fp, **state})
            self._finish(stoppers, best_theta, best_buffers, validated=val_xy is not None)
        finally:
            if bar is not None:
                bar.on_fit_end(SimpleNamespace())
            if pool is not None:
                pool.shutdown()
                torch.set_num_threads(intra)
        return self.histories_

    # ---------------------------------------------------------------- internals
    def _data(self, data: Any, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)`` checked against the architecture, on the population's device: x ``(N, features)``
        in its dtype, y ``(N,)`` class indices."""
        owner = "Population.fit" if name != "data" else "Population.evaluate"
        x, y = _split(data, name, owner)
        y = y if y.dtype == torch.int64 else y.long()  # bool, uint8, int32 labels: int64 class indices
        # Checked as given (a NaN there is the caller's; integer features are refused, as by the
        # Trainer), then converted: finite values past the population's dtype turn infinite, which is
        # said as an overflow, not as a NaN in the data.
        given = x.to(self.device)
        check_tensors(self.arch, given, y, owner=owner, name=name, task="classification")
        x = given.to(self.dtype)
        if not bool(torch.isfinite(x).all()):
            largest = float(given.abs().max())
            raise UserError(
                f"{owner}: {name} x holds values up to {largest:.3g} in magnitude, past the range of "
                f"{self.dtype} (the population's dtype); scale the inputs, or pass dtype=torch.float64."
            )
        x = x.flatten(1)
        return x, y.to(self.device)

    def _stoppers(self, rule: EarlyStopping | None, has_val: bool) -> list[EarlyStopping] | None:
        if rule is None:
            return None
        if rule.monitor.startswith("val_") and not has_val:
            raise fail(
                "Population.fit",
                "val",
                f"validation data when early stopping monitors {rule.monitor!r}",
                None,
            )
        check_option(
            rule.monitor,
            "monitor",
            owner="EarlyStopping",
            options=("val_loss", "val_accuracy", "train_loss", "train_accuracy"),
        )
        stoppers = [copy.deepcopy(rule) for _ in self.configs]
        for s in stoppers:
            s.reset()
        return stoppers

    def _start(self, threads: int) -> None:
        """Split the members into ``min(threads, K)`` contiguous shards and set up their training state."""
        options = dict(
            optimizer=self.optimizer,
            betas=self.betas,
            eps=self.eps,
            momentum=self.momentum,
            nesterov=self.nesterov,
            seed=self.seed,
            dropout_masks=self.dropout_masks,
            dtype=self.dtype,
            device=self.device,
        )
        parts = np.array_split(np.arange(len(self)), min(threads, len(self)))
        members, self._members = self._members, None
        self._shards = [
            Shard([int(k) for k in rows], [members[k] for k in rows], self.configs, options) for rows in parts
        ]
        for shard in self._shards:
            shard.start()

    def _capture(self, next_epoch, order_gens, stoppers, best_theta, best_buffers) -> dict[str, Any]:
        """The fit's state at an epoch boundary (see ``_checkpoint``): plain containers and tensors."""
        return {
            "epoch": next_epoch,
            "theta": self._theta.cpu(),
            "buffers": {n: b.cpu() for n, b in self._buffers.items()},
            "status": list(self._status),
            "histories": [h.to_dict() for h in self.histories_],
            "member_steps": self.member_steps_,
            "epoch_member_steps": list(self.epoch_member_steps_),
            "order_generators": [g.get_state() for g in order_gens],
            "stoppers": None if stoppers is None else [s.state_dict() for s in stoppers],
            "best_theta": None if best_theta is None else best_theta.cpu(),
            "best_buffers": None if best_buffers is None else {n: b.cpu() for n, b in best_buffers.items()},
            "shards": [_checkpoint.shard_state(shard) for shard in self._shards],
        }

    def _restore(self, state, where, order_gens, stoppers, best_theta, best_buffers) -> int:
        """Load a checkpoint into freshly started shards and fit state; return the next epoch."""
        for shard, saved in zip(self._shards, state["shards"], strict=True):
            _checkpoint.restore_shard(shard, saved, where)
        with torch.no_grad():
            self._theta.copy_(state["theta"])
            for name, b in self._buffers.items():
                b.copy_(state["buffers"][name])
            if best_theta is not None:
                best_theta.copy_(state["best_theta"])
                for name, b in best_buffers.items():
                    b.copy_(state["best_buffers"][name])
        self._status = list(state["status"])
        self.histories_ = [History.from_dict(h) for h in state["histories"]]
        self.member_steps_ = int(state["member_steps"])
        self.epoch_member_steps_ = list(state["epoch_member_steps"])
        for g, s in zip(order_gens, state["order_generators"], strict=True):
            g.set_state(s)
        for es, s in zip(stoppers or [], state["stoppers"] or [], strict=True):
            es.load_state_dict(s)
        return int(state["epoch"])

    def _live(self) -> list[Shard]:
        return [shard for shard in self._shards if shard.rows]

    def _active(self) -> bool:
        return any(shard.rows for shard in self._shards)

    def _member_steps(self) -> int:
        return sum(shard.member_steps for shard in self._shards)

    def _order_generators(self) -> list[torch.Generator]:
        seeds = [self.seed] if self.data_order == "shared" else [c.seed for c in self.configs]
        return [torch.Generator().manual_seed(s) for s in seeds]

    def _permutations(self, gens: list[torch.Generator], n: int) -> torch.Tensor:
        """``(n,)`` shared order, or ``(K, n)``: member k's order in row k (every member's generator
        advances each epoch, so member k's order never depends on the others)."""
        if self.data_order == "shared":
            return torch.randperm(n, generator=gens[0]).to(self.device)
        return torch.stack([torch.randperm(n, generator=g) for g in gens]).to(self.device)

    def _diverged(self, k: int, value: float, _lr: float, epoch: int, batch: int, seconds: float) -> None:
        # Called from a shard's thread: touches member k's entries only. Said as the Trainer says it,
        # with lr as configured (the Trainer's), not the shard's column (``_lr``), rounded to the dtype.
        self._status[k] = "diverged"
        reason = f"non-finite training loss ({value}) at epoch {epoch}, batch {batch}"
        # A strength past the dtype's range is an inf column: the member diverges (as the sweep's other
        # members go on) where the Trainer refuses the value at its first step. Say which one.
        biggest, cfg = torch.finfo(self.dtype).max, self.configs[k]
        past = [f"{key}={getattr(cfg, key):g}" for key in _STRENGTHS if getattr(cfg, key) > biggest]
        if past:
            reason += f" ({', '.join(past)} past the range of {self.dtype}, {biggest:.3g})"
        self.histories_[k].stop_reason = reason
        record = {"epoch": epoch, "train_loss": value, "lr": self._logged_lr(k), "time": seconds}
        self.histories_[k].append(record)

    def _logged_lr(self, k: int) -> float:
        """Member k's lr as its History logs it: as configured, as the Trainer logs its param group's (not
        rounded to the dtype: 1e-3, not float32's 0.0010000000474974513), but inf past the dtype's range,
        where the member trained with an infinite lr."""
        lr = self.configs[k].lr
        return lr if lr <= torch.finfo(self.dtype).max else math.inf

    def _store_current(self, shard: Shard, row: int) -> None:
        k = shard.rows[row]
        self._theta[k] = shard.net.theta[row]
        for name, b in shard.net.buffers.items():
            self._buffers[name][k] = b[row]
        if self._status[k] == "diverged" and not bool(torch.isfinite(self._theta[k]).all()):
            self.histories_[k].stop_reason += NON_FINITE_WEIGHTS  # said as the Trainer says it

    def _leave(self, shard: Shard, rows: list[int], restore: list[bool], best_theta, best_buffers) -> None:
        """Members ``shard.rows[rows]`` leave the stack, with their best weights where ``restore``."""
        flags = dict(zip(rows, restore))

        def store(shard: Shard, row: int) -> None:
            self._store_current(shard, row)
            if flags[row]:
                k = shard.rows[row]
                self._theta[k] = best_theta[k]
                for name in self._buffers:
                    self._buffers[name][k] = best_buffers[name][k]

        shard.drop_rows(torch.tensor(rows, dtype=torch.long), store)

    @staticmethod
    @torch.no_grad()
    def _measure(shard: Shard, val_xy) -> None:
        """A shard's end-of-epoch weight statistics and validation metrics: ``shard.stats``, ``shard.val``."""
        # In the weights' dtype, as the Trainer's weight_norm: a float64 norm of float32 weights
        # converts every weight first, and a comparison writes a bool tensor that sums slowly; the
        # two cost 5-10 times these passes (16 x 78k weights, one thread).
        w, h = shard.net.weights(), shard.hyper
        norm = torch.linalg.vector_norm(w, 2, dim=1).double()
        # |sign(w)| sums to the count of nonzero weights, exactly while it fits the mantissa and
        # every weight is finite (a NaN's sign is NaN).
        if w.shape[1] * torch.finfo(w.dtype).eps < 1 and bool(torch.isfinite(norm).all()):
            nonzero = torch.sign(w).abs_().sum(1).double()
        else:
            nonzero = (w != 0).sum(1).double()
        zeros = (w.shape[1] - nonzero) / w.shape[1]
        # The penalty at the end-of-epoch weights (as the Trainer logs it), proximal ones included.
        l1, l2 = (h["l1"] + h["prox_l1"])[:, 0].double(), (h["l2"] + h["prox_l2"])[:, 0].double()
        penalty = l2 * norm.square()
        if bool((l1 != 0).any()):
            penalty += l1 * torch.linalg.vector_norm(w, 1, dim=1, dtype=torch.float64)
        shard.stats = torch.stack([norm, zeros, penalty], 1).tolist()
        shard.val = _evaluate(shard.net, *val_xy, 1024) if val_xy is not None else None

    def _end_epoch(self, epoch, sums, stoppers, best_theta, best_buffers, seconds) -> None:
        for shard in self._live():
            leaving, restore = [], []
            for row, k in enumerate(shard.rows):
                loss, right, count = sums[k].tolist()
                record = {"epoch": epoch, "train_loss": loss / count, "train_accuracy": right / count}
                if shard.val is not None:
                    record.update(val_loss=float(shard.val[0][row]), val_accuracy=float(shard.val[1][row]))
                record.update(
                    penalty=shard.stats[row][2],
                    lr=self._logged_lr(k),
                    weight_norm=shard.stats[row][0],
                    zero_fraction=shard.stats[row][1],
                    time=seconds,
                )
                self.histories_[k].append(record)
                if stoppers is None:
                    continue
                es = stoppers[k]
                stop = es.update(record[es.monitor], epoch)
                if es.best_epoch == epoch and not stop:  # improved (or first monitored epoch): keep these
                    with torch.no_grad():
                        best_theta[k] = shard.net.theta[row]
                        for name, b in shard.net.buffers.items():
                            best_buffers[name][k] = b[row]
                if stop:
                    self._status[k] = "stopped"
                    self.histories_[k].stop_reason = es.reason
                    leaving.append(row)
                    restore.append(es.restore_best_weights and es.best is not None)
            if leaving:
                self._leave(shard, leaving, restore, best_theta, best_buffers)

    def _finish(self, stoppers, best_theta, best_buffers, validated: bool) -> None:
        # Members not stopped or diverged trained every epoch. Set here, after the last checkpoint was
        # written: a checkpoint keeps them "active", so a resumed fit with more epochs trains them on.
        self._status = ["finished" if s == "active" else s for s in self._status]
        for shard in self._live():
            restore = [False] * len(shard.rows)
            if stoppers is not None:
                restore = [
                    stoppers[k].restore_best_weights
                    and stoppers[k].restore_without_stop
                    and stoppers[k].best is not None
                    for k in shard.rows
                ]
            self._leave(shard, list(range(len(shard.rows))), restore, best_theta, best_buffers)
        for k, h in enumerate(self.histories_):
            es = None if stoppers is None else stoppers[k]
            # As the Trainer: EarlyStopping's on_fit_end restores a diverged run's best epoch too.
            if (es is not None and self._status[k] == "diverged" and es.restore_best_weights
                    and es.restore_without_stop and es.best is not None):
                self._theta[k] = best_theta[k]
                for name in self._buffers:
                    self._buffers[name][k] = best_buffers[name][k]
            # As the Trainer: the monitored metric's best epoch over the whole History.
            h.monitor = es.monitor if es is not None else ("val_loss" if validated else "train_loss")
            mode = es.direction if es is not None else "auto"
            if any(isinstance(r.get(h.monitor), float) and math.isfinite(r[h.monitor]) for r in h.rows):
                h.best_epoch = h.best(h.monitor, mode)["epoch"]
            else:
                h.best_epoch = None
            restored = (es is not None and es.restore_best_weights and es.best is not None
                        and (self._status[k] == "stopped" or es.restore_without_stop))
            if restored:
                # As the Trainer: the epoch whose weights were restored, which with min_delta or
                # start_from_epoch is not always the History's best value.
                h.best_epoch = es.best_epoch


def default_threads(device: torch.device) -> int:
    """Shards a population trains in when ``threads=None``: one per intra-op thread on CPU, one on a GPU.

    Example:
        >>> default_threads(torch.device("cuda"))
        1
    """
    return torch.get_num_threads() if device.type == "cpu" else 1


def _parallel(pool: ThreadPoolExecutor | None, fn: Callable[[Shard], None], shards: list[Shard]) -> None:
    """``fn(shard)`` for every shard: the first in this thread, the others in the pool's threads."""
    if pool is None or len(shards) < 2:
        for shard in shards:
            fn(shard)
        return
    futures = [pool.submit(fn, shard) for shard in shards[1:]]
    try:
        fn(shards[0])
    finally:
        for future in futures:
            future.result()  # re-raises a shard's exception here


@torch.no_grad()
def _evaluate(net: StackedNet, x, y, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    total = torch.zeros(2, net.k, dtype=torch.float64, device=x.device)
    for s in range(0, len(x), batch_size):
        logits = net.forward(x[s : s + batch_size].flatten(1), train=False)
        yb = y[s : s + batch_size]
        total[0] += cross_entropy(logits, yb, None).double() * len(yb)
        total[1] += correct(logits, yb).double()
    return total[0] / len(x), total[1] / len(x)


def train_population(
    arch: nn.Module,
    configs: Sequence[dict[str, Any] | MemberConfig],
    train: Any,
    val: Any = None,
    *,
    epochs: int,
    batch_size: int = 32,
    early_stopping: EarlyStopping | None = None,
    progress: str | bool = "auto",
    **options: Any,
) -> tuple[list[nn.Module], list[History]]:
    """Train a population and return ``(members, histories)``: plain modules and one History each.

    ``options`` are :class:`Population`'s keyword arguments (optimizer, seed, dtype, ...); ``progress``
    is :meth:`Population.fit`'s.

    Example:
        >>> import torch
        >>> from reglab.models import MLP
        >>> x, y = torch.randn(32, 4), torch.randint(0, 2, (32,))
        >>> configs = [{"seed": 0}, {"seed": 1}]
        >>> models, hist = train_population(MLP(4, 2, hidden=(8,)), configs, (x, y), epochs=1, progress="off")
        >>> len(models), len(hist[0])
        (2, 1)
    """
    pop = Population(arch, configs, **options)
    histories = pop.fit(
        train, val, epochs=epochs, batch_size=batch_size, early_stopping=early_stopping, progress=progress
    )
    return [pop.member(k) for k in range(len(pop))], histories
