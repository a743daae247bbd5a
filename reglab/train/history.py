"""Per-epoch training record: one row per epoch, CSV / JSON round trips, best-epoch lookup."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from reglab._json import dumps_exact, loads_exact
from reglab._validation import check_option
from reglab.errors import UserError

__all__ = ["History", "COLUMNS", "RUN_COLUMNS", "HistoryFileError"]

#: Column order of the CSV; ``reglab diagnose`` reads these names (and Keras / Lightning CSVs).
COLUMNS = (
    "epoch",
    "train_loss",
    "val_loss",
    "train_accuracy",
    "val_accuracy",
    "train_mse",
    "val_mse",
    "train_mae",
    "val_mae",
    "penalty",
    "lr",
    "weight_norm",
    "zero_fraction",
    "time",
)


#: Run-level facts the CSV carries as trailing columns, the same value on every row (an empty cell for None).
RUN_COLUMNS = ("best_epoch", "monitor", "stop_reason")


class HistoryFileError(UserError, ValueError):
    """A file :meth:`History.from_json` cannot read as a History: one line naming the path and what was
    expected. A ``ValueError`` too, as the ``json.JSONDecodeError`` it replaces, so callers that catch
    ``ValueError`` still do; the CLI prints it as a :class:`~reglab.errors.UserError`."""


_JSON_KINDS = {dict: "an object", list: "an array", str: "a string", bool: "true/false", type(None): "null"}
_EXPECTED = (
    'expected the JSON object History.to_json writes, {"rows": [{"epoch": 0, ...}, ...], ...}; '
    "read a CSV with History.from_csv(path)"
)


def _json_kind(value: Any) -> str:
    return _JSON_KINDS.get(type(value), "a number")


def _plain(value: Any) -> Any:
    """Turn numpy / torch scalars into plain Python numbers (JSON and weights_only safe)."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    return value


class History:
    """What happened in a training run: one row (a dict) per epoch, plus run-level facts.

    Columns: ``epoch`` (0-based, as Keras' CSVLogger), ``train_loss`` (mean data loss over
    the epoch's training batches, penalty excluded, so it compares with ``val_loss``),
    ``val_loss``, ``train_accuracy`` / ``val_accuracy`` (classification) or ``train_mse``,
    ``train_mae``, ``val_mse``, ``val_mae`` (regression), ``penalty`` (the whole penalty,
    proximal or attached ones included, at the weights of the epoch end), ``lr`` (first
    parameter group, during the epoch), ``weight_norm`` (L2 norm of the regularized weights
    at the epoch end), ``zero_fraction`` (exact zeros among them),
    ``time`` (seconds). Run-level: ``stop_reason`` (``None`` if all epochs ran),
    ``best_epoch``, ``monitor``, ``restarts`` (one dict per initialization when
    ``restarts > 1``), ``test`` (test metrics, when test data was given).

    Example:
        >>> h = History([{"epoch": 0, "val_loss": 0.9}, {"epoch": 1, "val_loss": 0.7}])
        >>> h.best("val_loss")["epoch"], h["val_loss"]
        (1, [0.9, 0.7])
    """

    def __init__(
        self,
        rows: Iterable[dict[str, Any]] = (),
        *,
        stop_reason: str | None = None,
        best_epoch: int | None = None,
        monitor: str | None = None,
        restarts: Sequence[dict[str, Any]] = (),
        test: dict[str, float] | None = None,
    ):
        self.rows: list[dict[str, Any]] = [{k: _plain(v) for k, v in r.items()} for r in rows]
        self.stop_reason = stop_reason
        self.best_epoch = best_epoch
        self.monitor = monitor
        self.restarts = [dict(r) for r in restarts]
        self.test = dict(test) if test else None

    def append(self, row: dict[str, Any]) -> None:
        """Add one epoch's row."""
        self.rows.append({k: _plain(v) for k, v in row.items()})

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, column: str) -> list[Any]:
        check_option(column, "column", owner="History", options=self.columns)
        return [r.get(column, math.nan) for r in self.rows]

    def __repr__(self) -> str:
        return f"History({len(self)} epochs, stop_reason={self.stop_reason!r}, best_epoch={self.best_epoch})"

    @property
    def columns(self) -> list[str]:
        """Column names in CSV order (known columns first, then any extras)."""
        seen = {k for r in self.rows for k in r}
        return [c for c in COLUMNS if c in seen] + sorted(seen - set(COLUMNS))

    def best(self, monitor: str = "val_loss", mode: str = "auto") -> dict[str, Any]:
        """Return the row with the best ``monitor`` value (first one on ties; NaN never wins).

        ``mode="auto"`` follows :func:`reglab.callbacks.early_stopping.infer_mode`.
        """
        from reglab.callbacks.early_stopping import infer_mode

        check_option(monitor, "monitor", owner="History.best", options=self.columns)
        mode = check_option(mode, "mode", owner="History.best", options=("auto", "min", "max"))
        direction = infer_mode(monitor, owner="History.best") if mode == "auto" else mode
        sign = 1.0 if direction == "min" else -1.0
        finite = [
            r for r in self.rows if isinstance(r.get(monitor), (int, float)) and math.isfinite(r[monitor])
        ]
        if not finite:
            raise UserError(
                f"History.best: no finite {monitor!r} value in {len(self)} epochs; "
                "train longer or pick another monitor."
            )
        return min(finite, key=lambda r: sign * r[monitor])

    # -- serialization -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain lists and numbers (JSON and ``torch.load(weights_only=True)`` safe)."""
        return {
            "rows": [dict(r) for r in self.rows],
            "stop_reason": self.stop_reason,
            "best_epoch": self.best_epoch,
            "monitor": self.monitor,
            "restarts": [dict(r) for r in self.restarts],
            "test": self.test,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        """Inverse of :meth:`to_dict`."""
        return cls(
            data.get("rows", ()),
            stop_reason=data.get("stop_reason"),
            best_epoch=data.get("best_epoch"),
            monitor=data.get("monitor"),
            restarts=data.get("restarts", ()),
            test=data.get("test"),
        )

    def to_pandas(self):
        """One row per epoch as a ``pandas.DataFrame`` (columns in CSV order)."""
        import pandas as pd

        return pd.DataFrame(self.rows, columns=self.columns)

    def to_csv(self, path: str | os.PathLike) -> Path:
        """Write the per-epoch rows as a plain CSV (one header line, one line per epoch).

        When ``best_epoch``, ``monitor`` or ``stop_reason`` is set, the three follow as last columns
        (:data:`RUN_COLUMNS`), each holding the same value on every row (empty for None), so that
        :meth:`from_csv` reads them back and any CSV reader sees ordinary columns. ``restarts`` and
        ``test`` live in :meth:`to_json` only.
        """
        path = Path(path)
        frame = self.to_pandas()
        facts = {"best_epoch": self.best_epoch, "monitor": self.monitor, "stop_reason": self.stop_reason}
        if len(frame) and any(v is not None for v in facts.values()):
            for name, value in facts.items():
                frame[name] = [value] * len(frame)  # None writes an empty cell
        frame.to_csv(path, index=False)
        return path

    @classmethod
    def from_csv(cls, path: str | os.PathLike) -> History:
        """Read a CSV written by :meth:`to_csv` (or any per-epoch CSV with an ``epoch`` column)."""
        import pandas as pd

        frame = pd.read_csv(path)
        facts: dict[str, Any] = {}
        for name in RUN_COLUMNS:
            if name in frame.columns:
                values = frame.pop(name).dropna()
                facts[name] = _plain(values.iloc[0]) if len(values) else None
        if isinstance(facts.get("best_epoch"), float) and facts["best_epoch"].is_integer():
            facts["best_epoch"] = int(facts["best_epoch"])
        rows = [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]
        for r in rows:
            if "epoch" in r and isinstance(r["epoch"], float) and r["epoch"].is_integer():
                r["epoch"] = int(r["epoch"])
        return cls(rows, **facts)

    def to_json(self, path: str | os.PathLike) -> Path:
        """Write rows and run-level facts as strict JSON, which any parser reads: a NaN or infinite
        value is ``null``, and its place is listed under ``"$nonfinite"`` so that :meth:`from_json`
        restores it exactly (``reglab._json.dumps_exact``)."""
        path = Path(path)
        path.write_text(dumps_exact(self.to_dict(), indent=1, sort_keys=False))
        return path

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> History:
        """Read a file written by :meth:`to_json` (also older files with ``NaN`` tokens).

        Raises:
            FileNotFoundError: there is no file at ``path``.
            HistoryFileError: (a ``ValueError``) the file is not JSON (a CSV, say), or is JSON but not a
                History: not an object, no ``"rows"`` list of objects, or a malformed ``"$nonfinite"`` block.
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise HistoryFileError(
                f"History.from_json: {path} is not a JSON file (not UTF-8 text); {_EXPECTED}."
            ) from None
        try:
            data = loads_exact(text)
        except json.JSONDecodeError as exc:
            raise HistoryFileError(
                f"History.from_json: {path} is not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
                f"{_EXPECTED}."
            ) from None
        except ValueError as exc:  # a malformed "$nonfinite" block: loads_exact names the entry
            raise HistoryFileError(f"History.from_json: {path}: {exc}; {_EXPECTED}.") from None
        if not isinstance(data, dict):
            raise HistoryFileError(
                f"History.from_json: {path} holds {_json_kind(data)}, not a History; {_EXPECTED}."
            )
        rows = data.get("rows")
        if "rows" not in data:
            keys = ", ".join(repr(k) for k in list(data)[:6]) + (", ..." if len(data) > 6 else "")
            raise HistoryFileError(
                f"History.from_json: {path} is a JSON object without \"rows\" (keys: {keys or 'none'}), "
                f"not a History; {_EXPECTED}."
            )
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            what = _json_kind(rows) if not isinstance(rows, list) else "an array holding non-objects"
            raise HistoryFileError(
                f"History.from_json: {path}: \"rows\" is {what}, not an array of per-epoch objects; "
                f"{_EXPECTED}."
            )
        return cls.from_dict(data)

    def equals(self, other: History, *, ignore: Sequence[str] = ("time",)) -> bool:
        """True if both hold the same rows (bit-equal floats) apart from ``ignore`` columns."""

        def strip(h: History) -> list[dict[str, Any]]:
            return [{k: v for k, v in r.items() if k not in ignore} for r in h.rows]

        def same(a: Any, b: Any) -> bool:
            return a == b or (
                isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
            )

        sa, sb = strip(self), strip(other)
        return len(sa) == len(sb) and all(
            ra.keys() == rb.keys() and all(same(ra[k], rb[k]) for k in ra) for ra, rb in zip(sa, sb)
        )
