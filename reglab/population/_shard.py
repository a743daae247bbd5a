"""One shard of a population: a stacked sub-model with its own optimizer state, run in its own thread.

On CPU the population splits its members into one shard per thread, each stepped with one
intra-op thread: measured on 2 cores (K=32, MLP 40-256-256-10), two shards took 16.3-16.6 ms a step
against 20.0-20.6 ms for one stack with 2 intra-op threads, whose serial parts (per-member mask
draws, Python, small ops) then leave a core idle. Each shard is an independent stacked model (its
own leaf tensors, gradient buffer, optimizer state and random streams) whose step runs in a Python
thread while torch ops release the GIL; an MLP's step runs as kernels compiled by TorchScript, which
release it for their whole body (see ``_torchscript``). Every random draw is per member (dropout
masks and input noise from member k's own generator, common random numbers from identically seeded
generators in every shard), so results do not depend on how members are split into shards.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

from reglab.population import _backprop
from reglab.population._config import MemberConfig, column
from reglab.population._dropout import Dropout
from reglab.population._loss import correct, cross_entropy
from reglab.population._optim import StackedAdam, StackedSGD, max_norm_, prox_
from reglab.population._stack import StackedNet

__all__ = ["Shard", "member_generator"]


def member_generator(seed: int, k: int, device: Any = "cpu") -> torch.Generator:
    """Member ``k``'s own random stream (dropout, noise), seeded from ``(seed, k)`` by NumPy's SeedSequence.

    Example:
        >>> a, b = member_generator(0, 3), member_generator(0, 3)
        >>> bool(torch.equal(torch.rand(2, generator=a), torch.rand(2, generator=b)))
        True
    """
    # SeedSequence mixes (seed, k) into well-separated streams; seed + k would overlap across seeds.
    state = int(np.random.SeedSequence([seed, k]).generate_state(1, np.uint64)[0])
    return torch.Generator(device=device).manual_seed(state & (2**63 - 1))


class Shard:
    """The members ``rows`` of a population as one stacked model with its optimizer and random streams.

    Args:
        rows: Member ids (indices into ``configs``) of this shard, in stack order.
        members: Their initialized modules.
        configs: All members' configurations (indexed by member id).
        options: The population's ``optimizer``, ``betas``, ``eps``, ``momentum``, ``nesterov``,
            ``seed``, ``dropout_masks``, ``dtype`` and ``device``.
    """

    def __init__(self, rows: list[int], members: list[nn.Module], configs: list[MemberConfig], options: dict):
        self.rows = list(rows)
        self.configs = configs
        self.options = options
        self.net = StackedNet(members, dtype=options["dtype"], device=options["device"])
        self.member_steps = 0
        self.sums: torch.Tensor | None = None  # (all members, 3) per epoch, set by the population
        # Per row, since the last flush_sums(): summed loss x examples and correct counts, and the
        # examples (the same for every row). Two in-place adds a step instead of building the rows.
        self._totals: torch.Tensor | None = None
        self._examples = 0

    # ----------------------------------------------------------------- setup
    @property
    def hyper(self) -> dict[str, torch.Tensor]:
        """Per-member hyperparameter columns ``(K, 1)``: lr, l1, l2, prox_l1, prox_l2, max_norm, ..."""
        return self._hyper

    @hyper.setter
    def hyper(self, columns: dict[str, torch.Tensor]) -> None:
        self._hyper = columns
        # Which optional passes any member needs, read once per change of the columns rather than
        # with a device sync and a few dispatches per check per step (Python held under the GIL).
        self.uses = {
            "l1": bool((columns["l1"] != 0).any()),
            "l2": bool((columns["l2"] != 0).any()),
            "prox": bool((columns["prox_l1"] != 0).any() or (columns["prox_l2"] != 0).any()),
            "max_norm": bool(torch.isfinite(columns["max_norm"]).any()),
            "noise": bool((columns["noise"] > 0).any()),
            "label_smoothing": bool((columns["label_smoothing"] != 0).any()),
        }

    def start(self) -> None:
        """Hyperparameter columns, optimizer and random streams for training."""
        o, net = self.options, self.net
        kw = dict(dtype=o["dtype"], device=o["device"])
        active = [self.configs[k] for k in self.rows]
        self.hyper = {
            key: column(active, key, **kw)
            for key in ("lr", "l1", "l2", "prox_l1", "prox_l2", "max_norm", "noise", "label_smoothing")
        }
        opt_hyper = {
            "lr": self.hyper["lr"],
            "weight_decay": column(active, "weight_decay", **kw),
            "decoupled_decay": column(active, "decoupled_decay", **kw),
        }
        if o["optimizer"] == "adam":
            self.opt = StackedAdam(opt_hyper, net.weight_size, betas=o["betas"], eps=o["eps"])
        else:
            self.opt = StackedSGD(opt_hyper, net.weight_size, momentum=o["momentum"], nesterov=o["nesterov"])
        self.gens = [member_generator(o["seed"], k, o["device"]) for k in self.rows]
        self.workspace = _backprop.Workspace()
        # Common random numbers: every shard draws the same u from an identically seeded generator.
        common = torch.Generator(device=o["device"]).manual_seed(o["seed"] + 1)
        self.drop = Dropout(
            column(active, "dropout", **kw),
            common=o["dropout_masks"] == "common",
            generators=self.gens,
            common_generator=common,
        )

    # ------------------------------------------------------------------ step
    def _forward(self, x, y, idx) -> tuple[torch.Tensor, torch.Tensor, _backprop.Tape | None]:
        """Per-member mean cross-entropy (with label smoothing) and correct counts of one batch, and
        the tape of the hand-written backward (``None`` when the net trains through autograd)."""
        xb, yb = x[idx], y[idx]  # (B, F) shared or (K, B, F) per member
        noise = self.hyper["noise"]
        if self.uses["noise"]:
            eps = torch.zeros((len(self.rows), *xb.shape[-2:]), dtype=xb.dtype, device=xb.device)
            for row in (noise[:, 0] > 0).nonzero().flatten().tolist():
                eps[row].normal_(generator=self.gens[row])
            xb = xb + noise.unsqueeze(-1) * eps
        smoothing = self.hyper["label_smoothing"] if self.uses["label_smoothing"] else None
        if _backprop.supports(self.net):
            return _backprop.forward(self.net, xb, yb, self.drop, smoothing, self.workspace)
        logits = self.net.forward(xb, train=True, drop=self.drop)
        return cross_entropy(logits, yb, smoothing), correct(logits, yb), None

    def step(self, x, y, idx, epoch: int, batch: int, start: float, on_diverge, store) -> None:
        """One optimizer step of every member on batch ``idx`` (``(B,)`` shared or ``(K, B)``).

        ``on_diverge(k, loss, lr, epoch, batch, seconds)`` records a member whose loss is not finite; as the
        Trainer, it stops before the bad step with its last finite weights (saved by
        ``store(shard, row)``), and leaves the stack.
        """
        loss, right, tape = self._forward(x, y, idx)
        finite = torch.isfinite(loss.detach())
        leaving = None
        if not bool(finite.all()):
            leaving = (~finite).nonzero().flatten()
            lrs = self.hyper["lr"][:, 0].tolist()
            for row in leaving.tolist():
                seconds = time.perf_counter() - start
                on_diverge(self.rows[row], loss[row].item(), lrs[row], epoch, batch, seconds)
            with torch.no_grad():
                for row in leaving.tolist():
                    store(self, row)
            if len(leaving) == len(self.rows):
                self._compact(leaving)
                return
            # The others take this step from this same forward, as they would without the leaving
            # members: their dropout masks, input noise and BatchNorm statistics are drawn or updated
            # once. Every op below works row by row, so the leaving rows' non-finite numbers stay in
            # their rows until they are dropped after the step.
        net, h = self.net, self.hyper
        if tape is not None:
            _backprop.backward(net, tape)  # overwrites every gradient: nothing to zero
        else:
            net.grad.zero_()
            with warnings.catch_warnings():
                # Parameters are strided views into the flat buffer, so torch warns (once) that their
                # grads, views into the flat grad buffer, are not "dense": intended, accumulated in place.
                warnings.filterwarnings("ignore", message="grad and param do not obey")
                loss.sum().backward()  # members are independent: each row's gradient is its own loss's
        with torch.no_grad():
            w, g = net.weights(), net.grad[:, : net.weight_size]
            uses = self.uses
            if uses["l1"]:
                g.addcmul_(torch.sign(w), h["l1"])
            if uses["l2"]:
                g.addcmul_(w, 2 * h["l2"])
            self.opt.step(net.theta, net.grad)
            if uses["prox"]:
                prox_(net.weights(), h["lr"], h["prox_l1"], h["prox_l2"])
            if uses["max_norm"]:
                for weight in net.weight_views():
                    max_norm_(weight, h["max_norm"])
            if leaving is not None:
                self._compact(leaving)
                loss, right = loss[finite], right[finite]
            if self._totals is None:
                self._totals = torch.zeros(2, len(self.rows), dtype=torch.float64, device=loss.device)
            self._totals[0].add_(loss, alpha=idx.shape[-1])
            self._totals[1].add_(right)
            self._examples += idx.shape[-1]
        self.member_steps += len(self.rows)

    def flush_sums(self) -> None:
        """Add each row's summed loss x examples, correct count and examples since the last flush
        to its member's row of ``sums``."""
        if not self._examples or not self.rows:  # no rows: every member left (diverged) since the flush
            self._examples = 0
            return
        assert self._totals is not None and self.sums is not None
        totals = self._totals
        examples = torch.full_like(totals[0], self._examples)
        rows = torch.tensor(self.rows, dtype=torch.long, device=totals.device)
        self.sums.index_add_(0, rows, torch.stack([totals[0], totals[1], examples], 1))
        totals.zero_()
        self._examples = 0

    def drop_rows(self, rows: torch.Tensor, store) -> None:
        """Save the leaving rows (``store(shard, row)``), then compact the stack, optimizer state,
        hyperparameters and random streams to the other rows."""
        self.flush_sums()
        with torch.no_grad():
            for row in sorted(set(rows.tolist())):
                store(self, row)
        self._compact(rows)

    def _compact(self, rows: torch.Tensor) -> None:
        """Remove ``rows`` from the stack, optimizer state, hyperparameters, random streams and the
        sums since the last flush (the other rows' sums go on unflushed: flushing twice in an epoch
        would change their rounding)."""
        drop = set(rows.tolist())
        keep_list = [i for i in range(len(self.rows)) if i not in drop]
        keep = torch.tensor(keep_list, dtype=torch.long, device=self.net.theta.device)
        if self._totals is not None:
            self._totals = self._totals.index_select(1, keep)
        self.net.select(keep)
        self.opt.select(keep)
        self.hyper = {n: t.index_select(0, keep) for n, t in self.hyper.items()}
        self.gens = [self.gens[i] for i in keep_list]
        self.drop.set_rates(self.drop.p.index_select(0, keep), self.gens)
        self.rows = [self.rows[i] for i in keep_list]

