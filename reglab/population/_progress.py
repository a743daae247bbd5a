"""The one-line epoch summary a population's progress display shows (``Population.fit(progress=...)``)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from reglab.train.history import History

__all__ = ["epoch_summary"]


def epoch_summary(histories: Sequence[History], status: Sequence[str], epoch: int) -> str:
    """How many members train on, and the best and median member of ``epoch``.

    The best member is the one of highest ``val_accuracy`` when the members are validated, else of
    lowest ``train_loss``; members that diverged this epoch are not ranked.

    Example:
        >>> hs = [History(), History()]
        >>> hs[0].append({"epoch": 0, "train_loss": 0.5, "val_accuracy": 0.8})
        >>> hs[1].append({"epoch": 0, "train_loss": 0.25, "val_accuracy": 0.9})
        >>> epoch_summary(hs, ["active", "stopped"], 0)
        'active 1/2, stopped 1  best val_accuracy 0.9 (member 1)  median train_loss 0.375'
    """
    counts = [f"active {status.count('active')}/{len(status)}"]
    counts += [f"{name} {status.count(name)}" for name in ("stopped", "diverged") if status.count(name)]
    rows = {
        k: h.rows[-1]
        for k, h in enumerate(histories)
        if len(h) and h.rows[-1].get("epoch") == epoch and status[k] != "diverged"
    }
    losses, validated = _finite(rows, "train_loss"), _finite(rows, "val_accuracy")
    parts = [", ".join(counts)]
    if validated:
        best = max(validated, key=validated.__getitem__)
        parts.append(f"best val_accuracy {validated[best]:.4g} (member {best})")
    elif losses:
        best = min(losses, key=losses.__getitem__)
        parts.append(f"best train_loss {losses[best]:.4g} (member {best})")
    if losses:
        parts.append(f"median train_loss {statistics.median(losses.values()):.4g}")
    return "  ".join(parts)


def _finite(rows: dict[int, dict], column: str) -> dict[int, float]:
    return {k: r[column] for k, r in rows.items() if math.isfinite(r.get(column, math.nan))}
