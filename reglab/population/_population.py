"""``Population``: K regularization configurations of one model trained at once as one stacked model."""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from reglab._validation import Interval, check_int, check_option, fail
from reglab.callbacks.early_stopping import EarlyStopping
from reglab.errors import UserError
from reglab.models import CNN1D, MLP
from reglab.population._config import MemberConfig, column, parse_configs
from reglab.population._optim import StackedAdam, StackedSGD, max_norm_, prox_
from reglab.population._stack import StackedNet, arch_kwargs
from reglab.train.history import History

__all__ = ["Population", "train_population"]

_OWNER = "Population"
_STATUSES = ("active", "stopped", "diverged")


class _Dropout:
    """Dropout masks for all active members at once, scaled by ``1 / (1 - p_k)``.

    ``common=True`` (common random numbers) draws one uniform tensor per layer and step, shared by
    all members; member k keeps the units with ``u >= p_k``. Each member's mask is still exactly
    Bernoulli(1 - p_k), but members see *correlated* masks (a unit dropped at rate 0.1 is also
    dropped at 0.2), so differences between members carry less dropout noise and the random-number
    cost falls K-fold. ``common=False`` draws an independent mask per member, as K separate runs do.
    """

    def __init__(self, p: torch.Tensor, *, common: bool, generator: torch.Generator):
        self.common, self.generator = common, generator
        self.set_rates(p)

    def set_rates(self, p: torch.Tensor) -> None:
        self.p = p.reshape(-1, 1, 1)
        self.scale = 1.0 / (1.0 - self.p)
        self.active = bool((self.p > 0).any())

    def __call__(self, shape: torch.Size) -> torch.Tensor | None:
        if not self.active:
            return None
        draw = shape[1:] if self.common else shape
        u = torch.rand(draw, generator=self.generator, dtype=self.p.dtype, device=self.p.device)
        return torch.ge(u, self.p).to(self.p.dtype).mul_(self.scale)


def _split(data: Any, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    if data is None:
        raise fail(_OWNER, name, "a TensorSplit or an (x, y) pair of tensors", data)
    x, y = (data.x, data.y) if hasattr(data, "x") and hasattr(data, "y") else (None, None)
    if x is None and isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = data
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor) or len(x) != len(y) or len(x) == 0:
        raise fail(_OWNER, name, "a TensorSplit or an (x, y) pair of tensors of equal, non-zero length", data)
    if y.is_floating_point():
        raise UserError(
            f"Population.fit: {name} has float targets; the population engine trains classifiers "
            "only (int64 class labels). Train regression models with reglab.Trainer."
        )
    return x, y


class Population:
    """K members of one architecture, each with its own hyperparameters, trained as one stacked model.

    Every weight of every member lives in one ``(K, P)`` tensor; layers run as batched matmuls
    (``torch.baddbmm``) or grouped convolutions, and the optimizer updates all members with a few
    in-place passes. A member matches training it alone (same initialization, same batch order,
    dropout off) to rounding. Members that early-stop or diverge are frozen and physically dropped
    from the stacked tensors, so they stop costing compute.

    Args:
        arch: A template ``reglab.models.MLP`` or ``CNN1D`` (its layout is copied; its weights and
            dropout rate are not used).
        configs: One dict (keys of :class:`MemberConfig`) or ``MemberConfig`` per member. Member k is
            initialized as ``torch.manual_seed(configs[k]["seed"]); type(arch)(...)``.
        optimizer: ``"adam"`` (decoupled decay as AdamW) or ``"sgd"``.
        betas, eps: Adam's; shared by all members.
        momentum, nesterov: SGD's; shared by all members.
        seed: Seeds the shared batch order (as ``reglab.Trainer(seed=seed)``) and the dropout / noise draws.
        data_order: ``"shared"`` (all members see the same batches, from ``seed``) or ``"per_member"``
            (member k's order comes from its own config ``seed``, as ``Trainer(seed=configs[k].seed)``).
        dropout_masks: ``"independent"`` (one mask per member, as separate runs) or ``"common"``
            (common random numbers; see the note in ``_Dropout``).
        dtype, device: Of the stacked tensors (``"cuda"`` works as ``"cpu"``).

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
        >>> histories = pop.fit((x, y), (x, y), epochs=2, batch_size=16)
        >>> len(histories), pop.status, type(pop.member(0)).__name__
        (4, ['active', 'active', 'active', 'active'], 'MLP')
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
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ):
        if not isinstance(arch, (MLP, CNN1D)):
            raise fail(_OWNER, "arch", "a reglab.models.MLP or reglab.models.CNN1D instance", arch)
        self.arch = arch
        self.configs = parse_configs(configs)
        self.optimizer = check_option(optimizer, "optimizer", owner=_OWNER, options=("adam", "sgd"))
        self.betas, self.eps, self.momentum, self.nesterov = (
            tuple(betas),
            float(eps),
            float(momentum),
            bool(nesterov),
        )
        self.seed = check_int(seed, "seed", owner=_OWNER, interval=Interval(0, None))
        self.data_order = check_option(
            data_order, "data_order", owner=_OWNER, options=("shared", "per_member")
        )
        self.dropout_masks = check_option(
            dropout_masks, "dropout_masks", owner=_OWNER, options=("independent", "common")
        )
        if dtype not in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
            raise fail(_OWNER, "dtype", "a floating torch.dtype", dtype)
        self.dtype, self.device = dtype, torch.device(device)
        cls, kwargs = arch_kwargs(arch)
        members = []
        for cfg in self.configs:
            with torch.random.fork_rng(devices=[]):  # leave the caller's global RNG untouched
                torch.manual_seed(cfg.seed)
                members.append(cls(**kwargs, dropout=cfg.dropout))
        self._net = StackedNet(members, dtype=dtype, device=self.device)
        # Where a member's weights live once it leaves the stack (stopped, diverged or finished).
        self._theta = self._net.theta.detach().clone()
        self._buffers = {n: b.clone() for n, b in self._net.buffers.items()}
        self._rows = list(range(len(self.configs)))  # member id of each stacked row
        self._status = ["active"] * len(self.configs)
        self.histories_: list[History] = [History() for _ in self.configs]
        self.member_steps_ = 0
        self.epoch_member_steps_: list[int] = []

    # ------------------------------------------------------------------ public
    @property
    def status(self) -> list[str]:
        """``"active"``, ``"stopped"`` (early stopping) or ``"diverged"`` (non-finite loss) per member."""
        return list(self._status)

    def __len__(self) -> int:
        return len(self.configs)

    def member(self, k: int) -> nn.Module:
        """Member ``k`` as an ordinary ``MLP`` / ``CNN1D`` (weights and BatchNorm statistics), in eval mode.

        After :meth:`fit` this is the final model: the best epoch's weights when early stopping
        restored them, the last finite weights of a diverged member.
        """
        k = check_int(k, "k", owner="Population.member", interval=Interval(0, len(self) - 1))
        if k in self._rows:  # still on the stack (before fit ends)
            row = self._rows.index(k)
            theta, buffers = self._net.theta.detach()[row], {n: b[row] for n, b in self._net.buffers.items()}
        else:
            theta, buffers = self._theta[k], {n: b[k] for n, b in self._buffers.items()}
        return self._net.build(theta, buffers, self.configs[k].dropout).eval()

    @torch.no_grad()
    def evaluate(self, data: Any, *, batch_size: int = 1024) -> list[dict[str, float]]:
        """Per-member ``{"loss", "accuracy"}`` on ``data`` (a TensorSplit or ``(x, y)``), eval mode.

        Uses the members' current weights (after :meth:`fit`, their final weights).
        """
        x, y = _split(data, "data")
        net = self._net
        if self._rows != list(range(len(self))):  # evaluate every member, not only the active rows
            net = StackedNet([self.member(k) for k in range(len(self))], dtype=self.dtype, device=self.device)
        loss, acc = self._evaluate(net, x.to(self.device, self.dtype), y.to(self.device), batch_size)
        return [{"loss": float(a), "accuracy": float(b)} for a, b in zip(loss, acc)]

    def fit(
        self,
        train: Any,
        val: Any = None,
        *,
        epochs: int,
        batch_size: int = 32,
        early_stopping: EarlyStopping | None = None,
    ) -> list[History]:
        """Train every member; return one ``reglab.History`` per member (the Trainer's columns).

        Args:
            train: A ``TensorSplit`` (``.x``, ``.y``) or ``(x, y)``; int64 class labels.
            val: Validation data, needed for early stopping on a ``val_*`` metric.
            epochs: Number of epochs.
            batch_size: Batch size; the last partial batch is kept, as in the Trainer.
            early_stopping: A ``reglab.callbacks.EarlyStopping``; each member gets its own copy
                (its own best value, patience counter and best weights). A stopped member is
                frozen and dropped from the stack.
        """
        epochs = check_int(epochs, "epochs", owner="Population.fit", interval=Interval(1, None))
        batch_size = check_int(batch_size, "batch_size", owner="Population.fit", interval=Interval(1, None))
        if early_stopping is not None and not isinstance(early_stopping, EarlyStopping):
            raise fail(
                "Population.fit", "early_stopping", "a reglab.callbacks.EarlyStopping or None", early_stopping
            )
        if not self._rows or self.member_steps_:
            raise UserError(
                "Population.fit: this population was already fitted; build a new Population "
                "(configs are kept in .configs) to train again."
            )
        x, y = _split(train, "train")
        x = x.to(self.device, self.dtype).flatten(1)
        y = y.to(self.device)
        val_xy = None
        if val is not None:
            vx, vy = _split(val, "val")
            val_xy = (vx.to(self.device, self.dtype).flatten(1), vy.to(self.device))
        stoppers = self._stoppers(early_stopping, val_xy is not None)
        self._start()
        best_theta = self._net.theta.detach().clone() if stoppers else None
        best_buffers = {n: b.clone() for n, b in self._net.buffers.items()} if stoppers else None
        n = len(x)
        order_gens = self._order_generators()
        for epoch in range(epochs):
            if not self._rows:
                break
            start = time.perf_counter()
            # Per member: summed loss, correct, examples, penalty, steps.
            sums = torch.zeros(len(self), 5, dtype=torch.float64, device=self.device)
            steps_before = self.member_steps_
            perm = self._permutations(order_gens, n)
            for s in range(0, n, batch_size):
                self._step(x, y, perm[..., s : s + batch_size], sums, epoch, start)
                if not self._rows:
                    break
            self.epoch_member_steps_.append(self.member_steps_ - steps_before)
            self._end_epoch(
                epoch, sums, val_xy, stoppers, best_theta, best_buffers, time.perf_counter() - start
            )
        self._finish(stoppers, best_theta, best_buffers)
        return self.histories_

    # ---------------------------------------------------------------- internals
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

    def _start(self) -> None:
        net, cfgs = self._net, self.configs
        kw = dict(dtype=self.dtype, device=self.device)
        active = [cfgs[k] for k in self._rows]
        self._hyper = {
            key: column(active, key, **kw)
            for key in ("lr", "l1", "l2", "prox_l1", "prox_l2", "max_norm", "noise", "label_smoothing")
        }
        opt_hyper = {
            "lr": self._hyper["lr"],
            "weight_decay": column(active, "weight_decay", **kw),
            "decoupled_decay": column(active, "decoupled_decay", **kw),
        }
        if self.optimizer == "adam":
            self._opt = StackedAdam(opt_hyper, net.weight_size, betas=self.betas, eps=self.eps)
        else:
            self._opt = StackedSGD(opt_hyper, net.weight_size, momentum=self.momentum, nesterov=self.nesterov)
        gen = torch.Generator(device=self.device)
        gen.manual_seed(self.seed + 1)  # the data order uses `seed` itself, as the Trainer
        self._gen = gen
        self._drop = _Dropout(
            column(active, "dropout", **kw), common=self.dropout_masks == "common", generator=gen
        )

    def _order_generators(self) -> list[torch.Generator]:
        seeds = [self.seed] if self.data_order == "shared" else [c.seed for c in self.configs]
        return [torch.Generator().manual_seed(s) for s in seeds]

    def _permutations(self, gens: list[torch.Generator], n: int) -> torch.Tensor:
        if self.data_order == "shared":
            return torch.randperm(n, generator=gens[0]).to(self.device)
        # Every member's generator advances each epoch, so member k's order never depends on the others.
        perms = torch.stack([torch.randperm(n, generator=g) for g in gens])
        return perms[self._rows].to(self.device)

    def _losses(
        self, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-member mean cross-entropy (with label smoothing) and correct counts of one batch."""
        xb, yb = x[idx], y[idx]  # (B, F) shared or (K, B, F) per member
        noise = self._hyper["noise"]
        if bool((noise > 0).any()):
            eps = torch.randn(
                (len(self._rows), *xb.shape[-2:]), generator=self._gen, dtype=xb.dtype, device=xb.device
            )
            xb = xb + noise.unsqueeze(-1) * eps
        logits = self._net.forward(xb, train=True, drop=self._drop)
        return _cross_entropy(logits, yb, self._hyper["label_smoothing"]), _correct(logits, yb)

    def _step(self, x, y, idx, sums, epoch, start) -> None:
        while True:
            loss, correct = self._losses(x, y, idx)
            bad = ~torch.isfinite(loss.detach())
            if not bool(bad.any()):
                break
            # As the Trainer: a member whose loss is NaN/inf stops before the bad step, keeping its
            # last (finite) weights; it leaves the stack and the batch is recomputed for the others.
            lrs = self._hyper["lr"][:, 0].tolist()
            for row in bad.nonzero().flatten().tolist():
                k, value = self._rows[row], loss[row].item()
                self._status[k] = "diverged"
                self.histories_[k].stop_reason = f"non-finite training loss ({value}) at epoch {epoch}"
                self.histories_[k].append(
                    {"epoch": epoch, "train_loss": value, "lr": lrs[row], "time": time.perf_counter() - start}
                )
            self._drop_rows(bad.nonzero().flatten())
            if not self._rows:
                return
            if idx.ndim == 2:
                idx = idx[~bad]
        net, h = self._net, self._hyper
        net.grad.zero_()
        with warnings.catch_warnings():
            # Parameters are strided views into the flat buffer, so torch warns (once) that their
            # grads, views into the flat grad buffer, are not "dense": intended, and accumulated in place.
            warnings.filterwarnings("ignore", message="grad and param do not obey")
            loss.sum().backward()  # members are independent: each row's gradient is its own loss's
        with torch.no_grad():
            w, g = net.weights(), net.grad[:, : net.weight_size]
            penalty = torch.zeros_like(loss)
            if bool((h["l1"] != 0).any()):
                penalty += h["l1"][:, 0] * w.abs().sum(1)
                g.addcmul_(torch.sign(w), h["l1"])
            if bool((h["l2"] != 0).any()):
                penalty += h["l2"][:, 0] * w.pow(2).sum(1)
                g.addcmul_(w, 2 * h["l2"])
            self._opt.step(net.theta, net.grad)
            if bool((h["prox_l1"] != 0).any() or (h["prox_l2"] != 0).any()):
                prox_(net.weights(), h["lr"], h["prox_l1"], h["prox_l2"])
            if bool(torch.isfinite(h["max_norm"]).any()):
                for weight in net.weight_views():
                    max_norm_(weight, h["max_norm"])
            rows = torch.tensor(self._rows, device=self.device)
            size = torch.full_like(loss, idx.shape[-1], dtype=torch.float64)
            batch = torch.stack(
                [loss.double() * size, correct.double(), size, penalty.double(), size / size], 1
            )
            sums.index_add_(0, rows, batch)
        self.member_steps_ += len(self._rows)

    def _drop_rows(self, rows: torch.Tensor, best_theta=None, best_buffers=None, restore=None) -> None:
        """Store the leaving members' weights; compact the stack, optimizer state and hyperparameters."""
        drop = set(rows.tolist())
        keep = torch.tensor(
            [i for i in range(len(self._rows)) if i not in drop], dtype=torch.long, device=self.device
        )
        with torch.no_grad():
            for row in sorted(drop):
                k = self._rows[row]
                use_best = restore is not None and restore[row]
                self._theta[k] = best_theta[k] if use_best else self._net.theta[row]
                for name, b in self._net.buffers.items():
                    self._buffers[name][k] = best_buffers[name][k] if use_best else b[row]
        self._net.select(keep)
        self._opt.select(keep)
        self._hyper = {n: t.index_select(0, keep) for n, t in self._hyper.items()}
        self._drop.set_rates(self._drop.p.index_select(0, keep))
        self._rows = [self._rows[i] for i in keep.tolist()]

    @staticmethod
    @torch.no_grad()
    def _evaluate(net: StackedNet, x, y, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        total = torch.zeros(2, net.k, dtype=torch.float64, device=x.device)
        zero = torch.zeros(net.k, 1, dtype=x.dtype, device=x.device)
        for s in range(0, len(x), batch_size):
            logits = net.forward(x[s : s + batch_size].flatten(1), train=False)
            yb = y[s : s + batch_size]
            total[0] += _cross_entropy(logits, yb, zero).double() * len(yb)
            total[1] += _correct(logits, yb).double()
        return total[0] / len(x), total[1] / len(x)

    def _end_epoch(self, epoch, sums, val_xy, stoppers, best_theta, best_buffers, seconds) -> None:
        net, rows = self._net, list(self._rows)
        with torch.no_grad():
            w = net.weights().double()
            stats = torch.stack([w.square().sum(1).sqrt(), (w == 0).double().mean(1)], 1).tolist()
            val = self._evaluate(net, *val_xy, 1024) if val_xy is not None else None
        lrs = self._hyper["lr"][:, 0].tolist()
        leaving, restore = [], []
        for row, k in enumerate(rows):
            loss, correct, count, penalty, steps = sums[k].tolist()
            record = {"epoch": epoch, "train_loss": loss / count, "train_accuracy": correct / count}
            if val is not None:
                record.update(val_loss=float(val[0][row]), val_accuracy=float(val[1][row]))
            record.update(
                penalty=penalty / max(steps, 1),
                lr=lrs[row],
                weight_norm=stats[row][0],
                zero_fraction=stats[row][1],
                time=seconds,
            )
            self.histories_[k].append(record)
            if stoppers is None:
                continue
            es = stoppers[k]
            stop = es.update(record[es.monitor], epoch)
            if es.best_epoch == epoch and not stop:  # improved (or first monitored epoch): keep these weights
                with torch.no_grad():
                    best_theta[k] = net.theta[row]
                    for name, b in net.buffers.items():
                        best_buffers[name][k] = b[row]
            if stop:
                self._status[k] = "stopped"
                self.histories_[k].stop_reason = es.reason
                leaving.append(row)
                restore.append(es.restore_best_weights and es.best is not None)
        if leaving:
            flags = [False] * len(rows)
            for row, r in zip(leaving, restore):
                flags[row] = r
            self._drop_rows(torch.tensor(leaving), best_theta, best_buffers, flags)

    def _finish(self, stoppers, best_theta, best_buffers) -> None:
        restore = [False] * len(self._rows)
        if stoppers is not None:
            restore = [
                stoppers[k].restore_best_weights
                and stoppers[k].restore_without_stop
                and stoppers[k].best is not None
                for k in self._rows
            ]
        if self._rows:
            self._drop_rows(torch.arange(len(self._rows)), best_theta, best_buffers, restore)
        for k, h in enumerate(self.histories_):
            if stoppers is not None:
                h.monitor, h.best_epoch = stoppers[k].monitor, stoppers[k].best_epoch


def _cross_entropy(logits: torch.Tensor, y: torch.Tensor, smoothing: torch.Tensor) -> torch.Tensor:
    """Per-member mean of ``F.cross_entropy(..., label_smoothing=eps_k)``; ``logits`` is ``(K, B, C)``."""
    logp = torch.log_softmax(logits, dim=-1)
    target = y.expand(logits.shape[:2]) if y.ndim == 1 else y
    nll = -logp.gather(-1, target.unsqueeze(-1)).squeeze(-1).mean(-1)
    if not bool((smoothing != 0).any()):
        return nll
    smooth = -logp.mean(-1).mean(-1)  # torch: eps * (-sum_c log p_c) / C
    return (1 - smoothing[:, 0]) * nll + smoothing[:, 0] * smooth


def _correct(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (logits.argmax(-1) == y).sum(-1)


def train_population(
    arch: nn.Module,
    configs: Sequence[dict[str, Any] | MemberConfig],
    train: Any,
    val: Any = None,
    *,
    epochs: int,
    batch_size: int = 32,
    early_stopping: EarlyStopping | None = None,
    **options: Any,
) -> tuple[list[nn.Module], list[History]]:
    """Train a population and return ``(members, histories)``: plain modules and one History each.

    ``options`` are :class:`Population`'s keyword arguments (optimizer, seed, dtype, ...).

    Example:
        >>> import torch
        >>> from reglab.models import MLP
        >>> x, y = torch.randn(32, 4), torch.randint(0, 2, (32,))
        >>> configs = [{"seed": 0}, {"seed": 1}]
        >>> models, hist = train_population(MLP(4, 2, hidden=(8,)), configs, (x, y), epochs=1)
        >>> len(models), len(hist[0])
        (2, 1)
    """
    pop = Population(arch, configs, **options)
    histories = pop.fit(train, val, epochs=epochs, batch_size=batch_size, early_stopping=early_stopping)
    return [pop.member(k) for k in range(len(pop))], histories
