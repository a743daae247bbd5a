"""Export a study's finished trials as rows: one per trial (or per epoch), sorted deterministically.

Each row holds the phase, recipe, parameters (canonical JSON), seed, fold, status and the
trial's final metrics (:func:`trial_rows`), or one epoch's metrics (:func:`epoch_rows`).
``phase`` is ``rung<r>`` (a successive-halving rung), ``cv`` (selection) or ``final`` (the
chosen candidate refit). ``fold`` is a selection trial's validation fold: 0 .. k-1 with
``validation: kfold``, 0 with ``holdout`` (its one validation split). A ``final`` trial has
``fold`` -1, no fold: it trains on the training split (the validation split serves only early
stopping / the best epoch) and is the only trial scored on the test split, so only its rows
have ``test_*`` metrics.
Wall-clock timings (a trial's ``duration``, an epoch's ``time``) are left out, so two runs
of the same config and seeds (local or Ray, one process or several, interrupted and resumed
or not) export byte-identical files. Non-finite numbers are ``null`` in JSON (RFC 8259) and
empty in CSV; the database keeps them exactly (``StudyStorage.epochs``).

Example:
    >>> from reglab.study.storage import StudyStorage
    >>> s = StudyStorage("sqlite://")
    >>> tid = s.start(("cv", "l2", '{"l2":0.001}', 0, 1), epochs_budget=3)
    >>> s.finish(tid, "done", {"val_accuracy": 0.9}, [], duration=0.5)
    >>> trial_rows(s)[0]["val_accuracy"]
    0.9
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from pathlib import Path
from typing import Any

from reglab._validation import check_option
from reglab.errors import UserError
from reglab.study.storage import StudyStorage, default_url

__all__ = ["trial_rows", "epoch_rows", "export", "open_storage", "FORMATS", "TIMINGS"]

FORMATS = ("csv", "json")
TIMINGS = ("time", "duration")  # wall-clock columns: never exported (they differ from run to run)
_BASE = ("phase", "recipe", "params", "seed", "fold", "status")
_EPOCH_BASE = (*_BASE, "epoch")


def _phase_order(phase: str) -> tuple[int, str]:
    rung = re.fullmatch(r"rung(\d+)", phase)
    if rung:
        return (0, f"{int(rung.group(1)):06d}")
    return ({"cv": 1, "final": 2}.get(phase, 3), phase)


def open_storage(study: str | Path) -> StudyStorage:
    """A study's storage, opened read-only, from a study directory, its ``study.db`` file or a database URL.

    Nothing is created or changed: a missing file, or a database that is not a reglab study (an empty
    file, another program's database), raises ``UserError``.
    """
    text = str(study)
    if "://" in text:
        return StudyStorage(text, readonly=True)
    path = Path(text)
    if path.is_dir() and (path / "study.db").is_file():
        return StudyStorage(default_url(path), readonly=True)
    if path.is_file():
        return StudyStorage(f"sqlite:///{path}", readonly=True)
    if path.is_dir():  # perhaps the folder above the studies: `reglab ls` lists them
        raise UserError(f"no study at {text!r}: the folder holds no study.db; give a study directory, a .db "
                        f"file or a database URL (reglab ls {text} lists the studies under a folder)")
    raise UserError(
        f"no study at {text!r}: give a study directory (with study.db), a .db file or a database URL."
    )


def _sort_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return (_phase_order(row["phase"]), row["recipe"], row["params"], row["seed"], row["fold"])


def _base(t: dict[str, Any]) -> dict[str, Any]:
    return {"phase": t["phase"], "recipe": t["recipe"], "params": t["params_json"], "seed": t["seed"],
            "fold": t["fold"], "status": t["status"]}


def trial_rows(storage: StudyStorage) -> list[dict[str, Any]]:
    """Finished trials as flat dicts (metrics as columns), sorted by phase, recipe, params, seed, fold."""
    rows = []
    for t in storage.trials(finished_only=True):
        row = _base(t)
        row.update(sorted((t["metrics"] or {}).items()))
        rows.append(row)
    rows.sort(key=_sort_key)
    return rows


def epoch_rows(storage: StudyStorage) -> list[dict[str, Any]]:
    """Every epoch of every finished trial (its metrics as columns, timings left out), sorted like
    :func:`trial_rows`, then by epoch.

    Example:
        >>> s = StudyStorage("sqlite://")
        >>> tid = s.start(("cv", "none", "{}", 0, 0), epochs_budget=2)
        >>> history = [{"epoch": 0, "train_loss": 0.7, "time": 0.1}, {"epoch": 1, "train_loss": float("nan")}]
        >>> s.finish(tid, "diverged", {}, history, duration=0.2)
        >>> [(r["epoch"], r["train_loss"]) for r in epoch_rows(s)]
        [(0, 0.7), (1, nan)]
    """
    histories = storage.all_epochs()
    trials = sorted(storage.trials(finished_only=True), key=lambda t: _sort_key(_base(t)))
    rows = []
    for t in trials:
        for i, metrics in enumerate(histories.get(t["id"], [])):
            row = {**_base(t), "epoch": metrics.get("epoch", i)}
            row.update(sorted((k, v) for k, v in metrics.items() if k not in TIMINGS and k != "epoch"))
            rows.append(row)
    return rows


def export(storage: StudyStorage, fmt: str = "csv", *, epochs: bool = False) -> str:
    """The rows of :func:`trial_rows` (or :func:`epoch_rows`) as CSV (header of every column seen) or a
    JSON list."""
    check_option(fmt, "format", owner="export", options=FORMATS)
    rows = [_finite(r) for r in (epoch_rows(storage) if epochs else trial_rows(storage))]
    if fmt == "json":
        return json.dumps(rows, indent=1, sort_keys=False, allow_nan=False) + "\n"
    base = _EPOCH_BASE if epochs else _BASE
    metrics = sorted({k for r in rows for k in r if k not in base})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=[*base, *metrics], lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()


def _finite(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
