"""Epoch-boundary checkpoints of ``Population.fit``: everything needed to continue bit for bit.

A checkpoint holds, after a finished epoch: every shard's stacked parameters and buffers
(BatchNorm running statistics), its hyperparameter columns, its optimizer state (Adam's ``m``,
``v`` / SGD's momentum buffer, the step count and per-row hyperparameters) and its random
streams (each member's generator and the common-random-numbers generator), which members are
live in which shard (compaction), the population's off-stack weights, member statuses,
histories, early-stopping states and best weights, the data-order generators and the next
epoch. It is written atomically (``reglab.callbacks.save_atomic``: a temporary file in the same
folder, fsync, ``os.replace``) with tensors and plain containers only, and read with
``torch.load(weights_only=True)``, so a file holding anything else is refused, never run.

A fingerprint of the fit (member configs, architecture, optimizer settings, seeds, batch size,
early-stopping rule and digests of the training and validation data) is stored with it; a
checkpoint written by another fit is refused with one line naming the first field that differs.

Example:
    >>> import tempfile, torch
    >>> from reglab.models import MLP
    >>> from reglab.population import Population
    >>> x, y = torch.randn(32, 4), torch.randint(0, 2, (32,))
    >>> path = tempfile.mkdtemp() + "/pop.pt"
    >>> pop = Population(MLP(4, 2, hidden=(8,)), [{"seed": 0}, {"seed": 1}])
    >>> _ = pop.fit((x, y), epochs=2, batch_size=8, checkpoint=path, progress="off")
    >>> read_checkpoint(path, None)["epoch"]
    2
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
from pathlib import Path
from typing import Any

import torch

from reglab.errors import UserError

__all__ = ["CheckpointError", "fingerprint", "read_checkpoint", "write_checkpoint", "shard_state",
           "restore_shard", "tensor_digest"]

FORMAT = 1
KIND = "reglab.population"
_ES_FIELDS = ("monitor", "direction", "patience", "min_delta", "baseline", "start_from_epoch",
              "restore_best_weights", "restore_without_stop")


class CheckpointError(UserError):
    """A population checkpoint that cannot be used: unreadable, untrusted, or written by another fit."""


def tensor_digest(*tensors: torch.Tensor) -> str:
    """SHA-256 (hex) of tensors in order: each one's dtype, shape and bytes (any dtype, NumPy's or not).

    A checkpoint's data fingerprint here, and a study's data fingerprint (``reglab.study.execute``).

    Example:
        >>> tensor_digest(torch.zeros(2)) == tensor_digest(torch.zeros(2, dtype=torch.float64))
        False
    """
    h = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def fingerprint(pop: Any, train: tuple[torch.Tensor, torch.Tensor], val: Any, batch_size: int,
                early_stopping: Any) -> dict[str, Any]:
    """What must be equal for a checkpoint to continue this fit (the epoch count may grow)."""
    from reglab.population._stack import arch_kwargs

    cls, kwargs = arch_kwargs(pop.arch)
    es = None if early_stopping is None else {f: getattr(early_stopping, f) for f in _ES_FIELDS}
    return {
        "members": [dataclasses.asdict(c) for c in pop.configs],
        "arch": f"{cls.__name__}{sorted(kwargs.items())}",
        "optimizer": [pop.optimizer, list(pop.betas), pop.eps, pop.momentum, pop.nesterov],
        "seed": pop.seed,
        "data_order": pop.data_order,
        "dropout_masks": pop.dropout_masks,
        "dtype": str(pop.dtype),
        "batch_size": batch_size,
        "train": tensor_digest(*train),
        "val": None if val is None else tensor_digest(*val),
        "early_stopping": es,
    }


def write_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` (from ``Population``) atomically: the previous file survives a crash mid-write."""
    from reglab.callbacks import save_atomic

    return save_atomic({"format": FORMAT, "kind": KIND, **state}, path)


def read_checkpoint(path: str | os.PathLike, expected: dict[str, Any] | None) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; check it against ``expected`` (a :func:`fingerprint`).

    Raises :class:`CheckpointError` (one line) for a file that is truncated, holds objects other
    than tensors and plain data, is not a population checkpoint, or was written by another fit.
    """
    where = os.fspath(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as exc:
        kind = ("holds objects other than tensors and plain data" if isinstance(exc, pickle.UnpicklingError)
                else "is truncated or not a torch file")
        raise CheckpointError(
            f"Population.fit: refused checkpoint {where!r}: it {kind}; reglab loads checkpoints with "
            "weights_only=True and never runs code from a file. Delete it to train from the start."
        ) from None
    if not (isinstance(state, dict) and state.get("kind") == KIND and state.get("format") == FORMAT):
        raise CheckpointError(
            f"Population.fit: {where!r} is not a population checkpoint (format {FORMAT}); "
            "delete it or pass another checkpoint path."
        )
    if expected is not None:
        saved = state.get("fingerprint", {})
        for key, value in expected.items():
            if saved.get(key) != value:
                raise CheckpointError(
                    f"Population.fit: checkpoint {where!r} was written by a different fit "
                    f"({_difference(key, saved.get(key), value)}); delete it or pass another checkpoint path."
                )
    return state


def _difference(key: str, saved: Any, ours: Any) -> str:
    """What differs between a checkpoint's fingerprint entry ``saved`` and this fit's ``ours``: the first
    member's config field for ``members``, the values for plain settings, the name for data digests.

    Example:
        >>> _difference("members", [{"lr": 0.1}, {"lr": 0.2}], [{"lr": 0.1}, {"lr": 0.3}])
        'configs[1].lr is 0.3, the checkpoint has 0.2'
        >>> _difference("train", "ab12", "cd34")
        "'train' differs"
    """
    if key == "members" and isinstance(saved, list):
        if len(saved) != len(ours):
            return f"{len(ours)} config{'s' * (len(ours) != 1)}, the checkpoint has {len(saved)}"
        for k, (a, b) in enumerate(zip(saved, ours)):
            if isinstance(a, dict) and a != b:
                field = next(f for f in b if a.get(f) != b[f])
                return f"configs[{k}].{field} is {b[field]!r}, the checkpoint has {a.get(field)!r}"
    if key in ("seed", "batch_size", "data_order", "dropout_masks", "dtype") and saved is not None:
        return f"{key}={ours!r}, the checkpoint has {key}={saved!r}"
    return f"{key!r} differs"


def _cpu(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.detach().cpu()


def shard_state(shard: Any) -> dict[str, Any]:
    """One shard's training state: live rows, stacked tensors, optimizer, random streams."""
    opt, common = shard.opt, shard.drop.common_generator
    return {
        "rows": list(shard.rows),
        "member_steps": int(shard.member_steps),
        "theta": _cpu(shard.net.theta),
        "buffers": {n: _cpu(b) for n, b in shard.net.buffers.items()},
        "hyper": {n: _cpu(t) for n, t in shard.hyper.items()},
        "optimizer": {
            "steps": int(opt.steps),
            "hyper": {n: _cpu(t) for n, t in opt.hyper.items()},
            "state": {n: _cpu(getattr(opt, n)) for n in opt.state_names},
        },
        "generators": [g.get_state() for g in shard.gens],
        "common_generator": None if common is None else common.get_state(),
        "dropout": _cpu(shard.drop.p.reshape(-1, 1)),
    }


def restore_shard(shard: Any, state: dict[str, Any], where: str) -> None:
    """Bring a freshly started shard (its initial rows) to ``state``: compact it to the saved rows
    (the order is kept), then load tensors, optimizer state and generator states into it."""
    rows = list(state["rows"])
    if not set(rows) <= set(shard.rows):
        raise CheckpointError(
            f"Population.fit: checkpoint {where!r} splits the members differently from this population; "
            "delete it or pass another checkpoint path."
        )
    leaving = [i for i, k in enumerate(shard.rows) if k not in rows]
    if leaving:
        shard.drop_rows(torch.tensor(leaving, dtype=torch.long), lambda _shard, _row: None)
    device = shard.net.theta.device

    def dev(t: torch.Tensor | None) -> torch.Tensor | None:
        # A fresh, aligned copy on the shard's device: MKL's results depend on memory alignment.
        return None if t is None else t.to(device).clone()

    with torch.no_grad():
        shard.net.theta.copy_(state["theta"])
        for name, b in shard.net.buffers.items():
            b.copy_(state["buffers"][name])
    shard.hyper = {n: dev(t) for n, t in state["hyper"].items()}
    opt, saved = shard.opt, state["optimizer"]
    opt.steps = saved["steps"]
    opt.hyper = {n: dev(t) for n, t in saved["hyper"].items()}
    for name, value in saved["state"].items():
        setattr(opt, name, dev(value))
    for g, s in zip(shard.gens, state["generators"], strict=True):
        g.set_state(s)
    if state["common_generator"] is not None and shard.drop.common_generator is not None:
        shard.drop.common_generator.set_state(state["common_generator"])
    shard.drop.set_rates(dev(state["dropout"]), shard.gens)
    shard.member_steps = state["member_steps"]
