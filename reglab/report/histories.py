"""Read training curves from the files other tools write, into one per-epoch table.

:func:`read_history` accepts

* a reglab ``History`` saved as CSV or JSON (columns ``epoch, train_loss, val_loss,
  train_accuracy, val_accuracy, ...``), or any CSV with ``epoch`` / ``train_loss`` /
  ``val_loss`` columns;
* a Keras ``CSVLogger`` file: ``epoch`` (0-based) then the sorted log keys, e.g.
  ``epoch,accuracy,loss,val_accuracy,val_loss``; missing values are written ``NA``;
* a Keras ``History.history`` dict dumped to JSON (``{"loss": [...], "val_loss": [...]}``);
* a Lightning ``CSVLogger`` ``metrics.csv``: one row per ``log_metrics`` call with
  ``epoch`` and ``step`` columns; training and validation metrics land on different rows
  with empty cells. Rows are merged per epoch: a metric's epoch value is the mean of its
  non-empty cells in that epoch (Lightning's own ``on_epoch=True`` reduction), and a
  ``<name>_epoch`` column, when present, wins over ``<name>`` / ``<name>_step``.

A table of several runs (a study's ``reglab export --epochs``: rows that differ in ``phase``, ``recipe``,
``params``, ``seed`` or ``fold``) is refused, as is a trials export without ``--epochs``: merged per epoch
they would make one curve no run had. So is a file that numbers an epoch twice without Lightning's ``step``
column (two Keras runs appended to one ``CSVLogger(append=True)`` log).

A regression log with no loss columns but a pair of error columns, ``train_mse`` / ``val_mse`` (Keras:
``mse`` / ``val_mse``, ``mean_squared_error`` / ``val_mean_squared_error``) or else ``train_mae`` /
``val_mae``, is read with that pair as its losses (they are the L2 and L1 losses); the frame's
``attrs["loss_columns"]`` names the columns read, and ``diagnose`` says so in a note. Other metrics (an RMSE,
an R², an accuracy) are not losses whose rises the rules measure: such a file is refused.

The result always has ``epoch``, ``train_loss`` and ``val_loss``, plus ``train_accuracy`` and
``val_accuracy`` when the file holds them. Epoch numbers are kept as the file numbers them
(Keras and Lightning count from 0).

Example:
    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "training.log"
    >>> rows = ["epoch,accuracy,loss,val_accuracy,val_loss", "0,0.5,1.2,0.55,1.1", "1,0.7,0.8,0.6,1.0"]
    >>> _ = p.write_text("\\n".join(rows) + "\\n")
    >>> read_history(p)[["epoch", "train_loss", "val_loss"]].to_dict("list")
    {'epoch': [0, 1], 'train_loss': [1.2, 0.8], 'val_loss': [1.1, 1.0]}
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reglab._json import loads_exact
from reglab.errors import UserError

__all__ = ["read_history", "normalize_history", "CANONICAL"]

CANONICAL = ("epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy")

# Accepted spellings of each canonical column, in order of preference (first present wins).
_ALIASES: dict[str, tuple[str, ...]] = {
    "train_loss": ("train_loss", "train_loss_epoch", "loss", "training_loss"),
    "val_loss": ("val_loss", "val_loss_epoch", "valid_loss", "validation_loss"),
    "train_accuracy": (
        "train_accuracy",
        "train_accuracy_epoch",
        "train_acc",
        "train_acc_epoch",
        "accuracy",
        "acc",
    ),
    "val_accuracy": ("val_accuracy", "val_accuracy_epoch", "val_acc", "val_acc_epoch", "valid_acc"),
}

# A regression log without loss columns: its first complete (training, validation) error pair is its loss.
_ERROR_PAIRS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("train_mse", "train_mse_epoch", "mse", "mean_squared_error"),
     ("val_mse", "val_mse_epoch", "valid_mse", "val_mean_squared_error")),
    (("train_mae", "train_mae_epoch", "mae", "mean_absolute_error"),
     ("val_mae", "val_mae_epoch", "valid_mae", "val_mean_absolute_error")),
)

_FIX = "pass a CSV or JSON file with columns epoch, train_loss, val_loss (Keras: loss, val_loss)"

# read_history's per-row mark: 1 where the file wrote a loss as a non-finite number (``nan``/``inf`` text,
# a JSON NaN or a ``$nonfinite`` mark), 0 where the loss is just missing (an empty cell, ``NA``, ``null``).
# pandas reads both as NaN; only the first is a divergence.
_WRITTEN_NONFINITE = "__reglab_written_nonfinite__"
_LOSS_NAMES = frozenset(_ALIASES["train_loss"] + _ALIASES["val_loss"])


def _loss_pair(columns) -> tuple[str, str] | None:
    """The columns read as (training, validation) loss: the loss columns, else the first error pair."""
    names = [str(c).strip() for c in columns]
    for train, val in ((_ALIASES["train_loss"], _ALIASES["val_loss"]), *_ERROR_PAIRS):
        found = [next((a for a in aliases if a in names), None) for aliases in (train, val)]
        if None not in found:
            return found[0], found[1]
    return None


def _loss_names(columns) -> frozenset[str]:
    """The names whose non-finite cells mark a divergence: the error pair's when it stands for the losses."""
    pair = _loss_pair(columns)
    return _LOSS_NAMES if pair is None or pair[0] in _LOSS_NAMES else frozenset(pair)
_NONFINITE_TEXT = frozenset(
    sign + word for sign in ("", "+", "-") for word in ("nan", "inf", "infinity")
)


def read_history(path: str | Path) -> pd.DataFrame:
    """Read a training history file into a per-epoch DataFrame (see the module docstring).

    Args:
        path: a ``.csv`` / ``.log`` / ``.json`` file.

    Returns:
        A DataFrame sorted by epoch with ``epoch, train_loss, val_loss`` and, when present,
        ``train_accuracy, val_accuracy``; other numeric columns are kept after them.

    Raises:
        UserError: the file is missing, unreadable, empty or lacks the needed columns.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"history file not found: {path}; {_FIX}.")
    if not path.is_file():
        raise UserError(f"history path is not a file: {path}; {_FIX}.")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read history file {path} ({exc.__class__.__name__}); {_FIX}.") from None
    if not text.strip():
        raise UserError(f"history file {path} is empty; {_FIX}.")
    if path.suffix.lower() == ".json" or text.lstrip()[:1] in ("{", "["):
        frame, written = _frame_from_json(text, path)
    else:
        frame, written = _frame_from_csv(path)
    frame = frame.copy()
    frame[_WRITTEN_NONFINITE] = np.asarray(written, dtype=float)
    return normalize_history(frame, source=str(path))


def _frame_from_json(text: str, path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    try:
        data: Any = loads_exact(text)  # History.to_json's strict JSON: NaN / inf restored in place
    except json.JSONDecodeError as exc:
        raise UserError(
            f"history file {path} is not valid JSON (line {exc.lineno}: {exc.msg}); {_FIX}."
        ) from None
    except ValueError as exc:  # a malformed "$nonfinite" block: loads_exact names the entry
        raise UserError(f"history file {path}: {exc}; {_FIX}.") from None
    if isinstance(data, dict):
        # reglab's History.to_json nests its rows; Keras History.history is a dict of lists.
        for key in ("rows", "epochs", "history", "records"):
            if key in data and isinstance(data[key], list | dict):
                data = data[key]
                break
    try:
        frame = pd.DataFrame(data)
        # The same table with True where a value is a non-finite number (NaN / inf), not null or absent.
        marks = pd.DataFrame(_nonfinite_leaves(data, depth=2))
    except (ValueError, TypeError):
        raise UserError(
            f"history file {path} holds JSON that is not a table (a list of records or a dict of "
            f"equal-length lists); {_FIX}."
        ) from None
    names = _loss_names(marks.columns)
    losses = [c for c in marks.columns if str(c).strip() in names]
    written = marks[losses].eq(True).any(axis=1).to_numpy()
    return frame, written


def _nonfinite_leaves(data: Any, depth: int) -> Any:
    """``data`` with each number replaced by whether it is NaN or infinite (containers kept as they are)."""
    if depth and isinstance(data, list):
        return [_nonfinite_leaves(v, depth - 1) for v in data]
    if depth and isinstance(data, dict):
        return {k: _nonfinite_leaves(v, depth - 1) for k, v in data.items()}
    return isinstance(data, float) and not np.isfinite(data)


def _frame_from_csv(path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    try:
        sep = _delimiter(path)
        # Keras writes "NA" for a missing value; pandas reads that (and empty cells) as NaN.
        frame = pd.read_csv(path, sep=sep, engine="python")
        # The cells as written, to tell a loss written "nan" / "inf" from a missing one.
        text = pd.read_csv(path, sep=sep, engine="python", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error) as exc:
        first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise UserError(f"history file {path} is not a readable CSV ({first}); {_FIX}.") from None
    return frame, _written_nonfinite_csv(text)


def _delimiter(path: Path) -> str:
    """The file's delimiter among those CSV writers use (``,`` when there is none, one column).

    pandas' ``sep=None`` sniffs any character of the header line: a one-column file ``loss`` split at
    its ``s`` into columns ``lo`` and two unnamed ones, which the missing-column error then listed.
    """
    with path.open(encoding="utf-8", newline="") as f:
        sample = "".join(line for _, line in zip(range(50), f))
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _written_nonfinite_csv(text: pd.DataFrame) -> np.ndarray:
    """Per row: True where a loss cell is written as a non-finite number.

    Keras's and Lightning's loggers write a NaN loss as ``nan``. A reglab History CSV (pandas) writes it
    as an empty cell; its rows always hold ``time`` and, with validation data, both losses, so a loss cell
    that is empty in a row whose ``time`` is present is a NaN (a missing or half-written row has no time).
    """
    text = text.rename(columns=lambda c: str(c).strip()).fillna("")  # a short row's missing cells: ""
    text = text.apply(lambda col: col.astype(str).str.strip().str.lower())
    names = _loss_names(text.columns)
    losses = [c for c in text.columns if c in names]
    written = text[losses].isin(_NONFINITE_TEXT).any(axis=1).to_numpy()
    if {"train_loss", "val_loss", "time"} <= set(text.columns) and "step" not in text.columns:
        reglab = ((text["train_loss"] == "") | (text["val_loss"] == "")) & (text["time"] != "")
        written = written | reglab.to_numpy()
    return written


def normalize_history(frame: pd.DataFrame, *, source: str = "history") -> pd.DataFrame:
    """Map a raw per-row table (reglab, Keras or Lightning) to the canonical per-epoch columns.

    Example:
        >>> import pandas as pd
        >>> raw = pd.DataFrame({"loss": [1.0, 0.5], "val_loss": [1.1, 0.9]})
        >>> normalize_history(raw)["epoch"].tolist()
        [0, 1]
    """
    frame = frame.copy()
    frame.columns = [str(c).strip() for c in frame.columns]
    marked = _WRITTEN_NONFINITE in frame.columns  # read_history's mark (a plain DataFrame has none)
    lightning = "step" in frame.columns  # writes NaN as 'nan': its empty cells are only metrics not logged
    if frame.empty:
        raise UserError(f"{source} has no rows; {_FIX}.")
    _one_run(frame, source)
    if "epoch" in frame.columns:
        numbered = pd.to_numeric(frame["epoch"], errors="coerce")
        repeated = numbered[numbered.duplicated() & numbered.notna()]
        if len(repeated) and "step" not in frame.columns:
            # Only Lightning logs several rows per epoch, always with a step column. Without one, a repeated
            # epoch is a second run in the same file (Keras's CSVLogger(append=True) when a script is rerun):
            # merged, the two runs averaged into a curve neither had.
            first = int(np.flatnonzero(numbered.to_numpy() == repeated.iloc[0])[0])
            again = int(repeated.index[0])
            raise UserError(
                f"{source} numbers epoch {repeated.iloc[0]:g} twice (rows {first + 1} and {again + 1}) and "
                "has no 'step' column: two runs appended to one log (Keras CSVLogger(append=True))? keep one "
                "run's rows."
            )
        if "step" in frame.columns or numbered.duplicated().any():
            frame = _merge_rows_per_epoch(frame, source)
    columns = [c for c in frame.columns if c != _WRITTEN_NONFINITE]  # as the file names them
    if "epoch" not in frame.columns:
        frame.insert(0, "epoch", np.arange(len(frame)))
    out = pd.DataFrame({"epoch": _numeric(frame["epoch"], "epoch", source)})
    for name, aliases in _ALIASES.items():
        found = next((a for a in aliases if a in frame.columns), None)
        if found is not None:
            out[name] = _numeric(frame[found], found, source)
    written = (frame[_WRITTEN_NONFINITE].to_numpy(dtype=float) > 0) if marked else None
    pair = _loss_pair(frame.columns)
    read_as_losses = None
    if pair is not None and pair[0] not in _LOSS_NAMES:
        # No loss columns, an error pair instead: a regression run's MSE (or MAE) is its loss.
        out["train_loss"] = _numeric(frame[pair[0]], pair[0], source)
        out["val_loss"] = _numeric(frame[pair[1]], pair[1], source)
        read_as_losses = {"train_loss": pair[0], "val_loss": pair[1]}
    missing = [c for c in ("train_loss", "val_loss") if c not in out.columns]
    if missing == ["val_loss"] and written is not None and written.any():
        # A History of a run that blew up in its first epoch: one row, no validation loss.
        _diverged_from_the_start(out["train_loss"].to_numpy(dtype=float), source)
    if missing:
        found = ", ".join(columns)
        # A run fit without validation data has a training loss only: renaming a column cannot fix that.
        fix = (
            "diagnose compares training with validation loss: log one every epoch (reglab.fit with "
            "validation data, Keras validation_data=, a Lightning validation_step) or name it 'val_loss'"
            if missing == ["val_loss"]
            else "name the training loss 'train_loss' or 'loss' and the validation loss 'val_loss' (a "
            "regression log without them is read from its train_mse / val_mse or train_mae / val_mae pair)"
        )
        raise UserError(f"{source} lacks the column(s) {', '.join(missing)} (found: {found}); {fix}.")
    used = {a for aliases in _ALIASES.values() for a in aliases} | {"epoch", "step", _WRITTEN_NONFINITE}
    for col in frame.columns:
        if col not in used and col not in out.columns and pd.api.types.is_numeric_dtype(frame[col]):
            out[col] = frame[col].to_numpy()
    if written is not None:
        out[_WRITTEN_NONFINITE] = written
    out = out.sort_values("epoch").reset_index(drop=True)
    if written is not None:
        written = out.pop(_WRITTEN_NONFINITE).to_numpy(dtype=bool)
    # Rows missing a loss are dropped; a loss that is NaN / inf is kept for diagnose to judge: at the end a
    # divergence (Keras's CSVLogger and a reglab History log the blow-up's row), mid-run one it names. From a
    # file, only a loss written as NaN / inf counts: an empty cell, NA or null (a Lightning test row, a
    # cut-off last line, a validation run every other epoch) is just missing. In a table or mapping given
    # in Python, a NaN is a NaN.
    complete = out[["train_loss", "val_loss"]].notna().all(axis=1).to_numpy()
    complete = complete | (written if written is not None else True)
    finite = np.isfinite(out["train_loss"].to_numpy(dtype=float))
    if complete.any() and not finite[complete].any():
        _diverged_from_the_start(out["train_loss"].to_numpy(dtype=float), source)
    # A row with one loss and the other cell empty is dropped too, but named: pandas writes a NaN as an
    # empty cell, so it may be a NaN (a row with neither loss, a Lightning test row, stays silent, as does
    # a Lightning epoch without validation, check_val_every_n_epoch).
    present = out[["train_loss", "val_loss"]].notna().to_numpy()
    half = ~complete & (present.sum(axis=1) == 1) & (not lightning)
    missing = {c: [_epoch_value(e) for e in out.loc[half & ~present[:, i], "epoch"]]
               for i, c in enumerate(("train_loss", "val_loss"))}
    out = out[complete].reset_index(drop=True)
    if out.empty:
        raise UserError(f"{source} has no epoch with both train_loss and val_loss; {_FIX}.")
    if out["epoch"].duplicated().any():
        raise UserError(f"{source} repeats epoch numbers after merging; write one row per epoch.")
    if np.all(np.mod(out["epoch"], 1) == 0):
        out["epoch"] = out["epoch"].astype(int)
    if read_as_losses:
        out.attrs["loss_columns"] = read_as_losses
    if any(missing.values()):
        out.attrs["missing_losses"] = {c: e for c, e in missing.items() if e}
    return out


def _epoch_value(e: float) -> int | float:
    return int(e) if float(e).is_integer() else float(e)


# The columns that tell one trial of a `reglab export` from another. A file holding several trials would
# be merged per epoch (or, without --epochs, read one trial per epoch) into a curve no run ever had.
_RUN_COLUMNS = ("phase", "recipe", "params", "seed", "fold")


def _one_run(frame: pd.DataFrame, source: str) -> None:
    """Refuse a table of several runs (a study's export), which diagnose would judge as one averaged run."""
    keys = [c for c in _RUN_COLUMNS if c in frame.columns]
    if keys and "epoch" not in frame.columns:
        raise UserError(
            f"{source} holds one row per trial (a `reglab export` without --epochs), not one row per epoch; "
            "export the epochs with `reglab export STUDY --epochs` and keep one trial's rows."
        )
    runs = len(frame[keys].astype(str).drop_duplicates()) if keys else 1
    if runs > 1:
        raise UserError(
            f"{source} holds {runs} runs (rows differ in {', '.join(keys)}: a `reglab export --epochs` of a "
            "study); diagnose judges one run: keep the rows of one trial (one phase, recipe, seed and fold), "
            "or see each recipe's diagnosis in `reglab report`."
        )


def _diverged_from_the_start(train_loss: np.ndarray, source: str) -> None:
    """Raise when no epoch has a finite training loss (diagnose has nothing before the blow-up to judge)."""
    if not np.isfinite(train_loss).any():
        raise UserError(
            f"{source}: the training loss is NaN or infinite from the first epoch on: the run diverged; "
            "lower the learning rate."
        )


def _numeric(column: pd.Series, name: str, source: str) -> np.ndarray:
    values = pd.to_numeric(column, errors="coerce")
    bad = column.notna() & values.isna() & (column.astype(str).str.strip() != "")
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise UserError(
            f"{source}: column {name!r} holds a non-number {column.iloc[row]!r} at row {row + 1}; "
            "write plain numbers (empty or NA for missing)."
        )
    return values.to_numpy(dtype=float)


def _merge_rows_per_epoch(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Lightning logs train and validation metrics on separate rows: one row per epoch."""
    frame = frame.drop(columns=[c for c in ("step",) if c in frame.columns])
    numeric = frame.apply(pd.to_numeric, errors="coerce")
    if numeric["epoch"].isna().all():
        raise UserError(f"{source}: column 'epoch' holds no numbers; {_FIX}.")
    merged = numeric.dropna(subset=["epoch"]).groupby("epoch", sort=True).mean()
    # A metric logged with on_step and on_epoch appears as name_step and name_epoch: keep the epoch value.
    for col in list(merged.columns):
        if col.endswith("_epoch"):
            base = col[: -len("_epoch")]
            merged[base] = merged[col]
            merged = merged.drop(columns=[c for c in (col, base + "_step") if c in merged.columns])
    return merged.reset_index()
