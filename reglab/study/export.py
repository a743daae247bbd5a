"""Export a study's finished trials as rows: one per trial, sorted deterministically.

Each row holds the phase, recipe, parameters (canonical JSON), seed, fold, status and the
trial's final metrics; timings are left out so that two runs of the same study (local or
Ray, interrupted or not) export identical files.

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
import re
from pathlib import Path
from typing import Any

from reglab._validation import check_option
from reglab.errors import UserError
from reglab.study.storage import StudyStorage, default_url

__all__ = ["trial_rows", "export", "open_storage", "FORMATS"]

FORMATS = ("csv", "json")
_BASE = ("phase", "recipe", "params", "seed", "fold", "status")


def _phase_order(phase: str) -> tuple[int, str]:
    rung = re.fullmatch(r"rung(\d+)", phase)
    if rung:
        return (0, f"{int(rung.group(1)):06d}")
    return ({"cv": 1, "final": 2}.get(phase, 3), phase)


def open_storage(study: str | Path) -> StudyStorage:
    """A study's storage from a study directory, its ``study.db`` file, or a database URL."""
    text = str(study)
    if "://" in text:
        return StudyStorage(text)
    path = Path(text)
    if path.is_dir() and (path / "study.db").is_file():
        return StudyStorage(default_url(path))
    if path.is_file():
        return StudyStorage(f"sqlite:///{path}")
    raise UserError(
        f"no study at {text!r}: give a study directory (with study.db), a .db file or a database URL."
    )


def trial_rows(storage: StudyStorage) -> list[dict[str, Any]]:
    """Finished trials as flat dicts (metrics as columns), sorted by phase, recipe, params, seed, fold."""
    rows = []
    for t in storage.trials(finished_only=True):
        row = {"phase": t["phase"], "recipe": t["recipe"], "params": t["params_json"], "seed": t["seed"],
               "fold": t["fold"], "status": t["status"]}
        row.update(sorted((t["metrics"] or {}).items()))
        rows.append(row)
    rows.sort(key=lambda r: (_phase_order(r["phase"]), r["recipe"], r["params"], r["seed"], r["fold"]))
    return rows


def export(storage: StudyStorage, fmt: str = "csv") -> str:
    """The rows of :func:`trial_rows` as CSV (header of every column seen) or a JSON list."""
    check_option(fmt, "format", owner="export", options=FORMATS)
    rows = trial_rows(storage)
    if fmt == "json":
        return json.dumps(rows, indent=1, sort_keys=False) + "\n"
    metrics = sorted({k for r in rows for k in r if k not in _BASE})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=[*_BASE, *metrics], lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()
