"""User data: CSV, Parquet and ``.npz`` files, data frames, tensors and torch Datasets.

Every loader ends in :func:`reglab.data.splits.split_arrays`, so user data comes back as
the same :class:`~reglab.data.splits.DataSplits` as the built-in sets. Mistakes in the
data raise one :class:`reglab.errors.UserError` line that says what is wrong, where, and
how to fix it: a missing file, a missing column (with the columns listed and the nearest
suggested), a non-numeric column, missing values, a single class, too few rows.

Task inference (override with ``task=``): a string, boolean or categorical target, or a
target of whole numbers (integers, or floats such as ``0.0`` / ``1.0``) with at most
:data:`MAX_CLASSES` distinct values, is classification (labels encoded with scikit-learn's
``LabelEncoder``; the original labels are kept in ``DataSplits.classes``, whole floats as
ints); any other numeric target is regression.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import inspect
import lzma
import os
import re
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.preprocessing import LabelEncoder
from torch.utils.data import Dataset

from reglab._validation import InvalidParameterError, check_option, did_you_mean, fail
from reglab.data.splits import TASKS, DataSplits, split_arrays
from reglab.errors import UserError

__all__ = [
    "MAX_CLASSES",
    "infer_task",
    "from_frame",
    "from_tensors",
    "from_dataset",
    "load_csv",
    "load_parquet",
    "load_npz",
]

MAX_CLASSES = 50
Size = float | int | None
PathLike = str | os.PathLike


def _whole_floats(y: np.ndarray | pd.Series) -> np.ndarray | None:
    """``y`` as int64 when it is floating and holds only whole numbers (exactly representable), else None."""
    if not pd.api.types.is_float_dtype(y.dtype):
        return None
    values = np.asarray(y, dtype=np.float64)
    if not (np.isfinite(values).all() and (np.abs(values) <= 2**53).all()):
        return None
    return values.astype(np.int64) if np.array_equal(values, np.round(values)) else None


def infer_task(y: np.ndarray | pd.Series) -> str:
    """``"classification"`` for string/bool/categorical targets or few whole numbers, else regression.

    Whole numbers count the same whether stored as integers or as floats (``0.0`` / ``1.0``):
    at most :data:`MAX_CLASSES` distinct values are classes.

    Example:
        >>> [infer_task(np.array(y)) for y in ([0, 1, 1], [0.0, 1.0, 1.0], [0.5, 1.5])]
        ['classification', 'classification', 'regression']
    """
    dtype = y.dtype
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(dtype):
        return "classification"
    if not pd.api.types.is_numeric_dtype(dtype):
        return "classification"
    whole = np.asarray(y) if pd.api.types.is_integer_dtype(dtype) else _whole_floats(y)
    if whole is not None and len(pd.unique(whole)) <= MAX_CLASSES:
        return "classification"
    return "regression"


def _encode_target(y: np.ndarray, task: str | None, where: str) -> tuple[np.ndarray, str, list | None]:
    """Return ``(y, task, classes)`` with classification labels encoded as ``0..K-1``."""
    if task is None:
        task = infer_task(y)
    task = check_option(task, "task", owner=f"loading {where}", options=TASKS)
    if task == "regression":
        if not pd.api.types.is_numeric_dtype(y.dtype) or pd.api.types.is_bool_dtype(y.dtype):
            raise UserError(
                f"The target of {where} is not numeric (dtype {y.dtype}), so it cannot be regressed; "
                "pass task='classification' or encode it as numbers."
            )
        return np.asarray(y, dtype=np.float64), task, None
    whole = _whole_floats(y)  # 0.0 / 1.0: the classes 0 and 1, as if stored as integers
    encoder = LabelEncoder()
    codes = encoder.fit_transform(np.asarray(y) if whole is None else whole)
    classes = encoder.classes_.tolist()
    if len(classes) < 2:
        raise UserError(
            f"The target of {where} has a single class ({classes[0]!r}); classification needs at least 2 "
            "(or pass task='regression')."
        )
    return codes.astype(np.int64), task, classes


def _missing_column(column: str, columns: Sequence[str], where: str, role: str) -> UserError:
    listed = ", ".join(repr(str(c)) for c in columns)
    return UserError(
        f"The {role} column {column!r} is not in {where}; its columns are {listed}."
        f"{did_you_mean(column, [str(c) for c in columns])}"
    )


def _check_column(series: pd.Series, where: str, role: str) -> None:
    missing = int(series.isna().sum())
    if missing:
        first = series.index[series.isna().to_numpy()][0]
        raise UserError(
            f"The {role} column {series.name!r} of {where} has missing values in {missing} row(s) "
            f"(first at row {first}); drop or impute them before loading (e.g. DataFrame.dropna())."
        )
    if pd.api.types.is_complex_dtype(series.dtype):
        raise UserError(
            f"The {role} column {series.name!r} of {where} is complex (dtype {series.dtype}); give the real "
            "and imaginary parts as separate columns."
        )
    if role == "feature" and not (
        pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype)
    ):
        # Name the first value that is not a number, not merely the first value (often a number).
        text = pd.to_numeric(series, errors="coerce").isna().to_numpy()
        row = series.index[text][0] if text.any() else series.index[0]
        raise UserError(
            f"The feature column {series.name!r} of {where} is not numeric (dtype {series.dtype}; "
            f"row {row} holds {series.loc[row]!r}); encode it as numbers (e.g. pandas.get_dummies) or "
            "leave it out with features=[...]."
        )
    if pd.api.types.is_float_dtype(series.dtype):
        infinite = np.isinf(series.to_numpy())
        if infinite.any():
            first = series.index[infinite][0]
            raise UserError(
                f"The {role} column {series.name!r} of {where} has infinite values in "
                f"{int(infinite.sum())} row(s) (first at row {first}); replace or drop them before loading."
            )


def _column(frame: pd.DataFrame, name: object) -> object:
    """``name``, or the one column whose name reads as ``name``: a header-less CSV's columns are the ints
    0, 1, ... (``read_options={'header': None}``), and ``target='2'`` (a CLI's or config's text) is column 2.
    """
    try:
        if name in frame.columns:
            return name
    except TypeError:  # an unhashable name: the missing-column error names it
        return name
    matches = [c for c in frame.columns if str(c) == str(name)]
    return matches[0] if len(matches) == 1 else name


def _check_feature_list(features: Sequence[str], target: str, where: str) -> None:
    """Refuse the target among the features (the label would leak into the inputs) and repeated names."""
    if isinstance(features, str):
        raise UserError(f"{where}: features must be a list of column names; got the string {features!r}.")
    if target in features:
        raise UserError(
            f"{where}: the target column {target!r} is also listed in features; the label would be an "
            "input. Remove it from features."
        )
    repeated = sorted({str(f) for f in features if list(features).count(f) > 1})
    if repeated:
        raise UserError(f"{where}: features lists {', '.join(map(repr, repeated))} more than once.")


def from_frame(
    frame: pd.DataFrame,
    target: str,
    *,
    features: Sequence[str] | None = None,
    task: str | None = None,
    name: str = "dataframe",
    seed: int = 0,
    val_size: Size = 0.1,
    test_size: Size = 0.2,
    scale: bool = True,
    scale_y: bool = False,
    dtype: torch.dtype = torch.float32,
) -> DataSplits:
    """Split a DataFrame: ``target`` is the label column, ``features`` (default: all others) the inputs.

    The splits hold ``dtype`` inputs (and regression targets), float32 by default; pass
    ``dtype=torch.float64`` to keep float64 data exact (see :func:`from_tensors`).

    Example:
        >>> df = pd.DataFrame({"a": range(20), "label": ["x", "y"] * 10})
        >>> d = from_frame(df, "label", val_size=4, test_size=4)
        >>> d.classes, d.feature_names
        (['x', 'y'], ['a'])
    """
    where = name
    if len(frame) == 0:
        raise UserError(f"{where} has no rows; a dataset needs one row per example.")
    columns = [str(c) for c in frame.columns]
    target = _column(frame, target)
    if target not in frame.columns:
        raise _missing_column(target, columns, where, "target")
    if features is None:
        features = [c for c in frame.columns if c != target]
    elif not isinstance(features, str):
        features = [_column(frame, f) for f in features]
    _check_feature_list(features, target, where)
    for column in features:
        if column not in frame.columns:
            raise _missing_column(column, columns, where, "feature")
    if not features:
        raise UserError(f"{where} has no feature columns besides the target {target!r}; add input columns.")
    _check_column(frame[target], where, "target")
    for column in features:
        _check_column(frame[column], where, "feature")
    y, task, classes = _encode_target(frame[target].to_numpy(), task, f"{where} (column {target!r})")
    x = frame[list(features)].to_numpy(dtype=np.float64)
    return split_arrays(
        x, y, task=task, name=name, seed=seed, val_size=val_size, test_size=test_size,
        scale=scale, scale_y=scale_y, feature_names=[str(f) for f in features], classes=classes, dtype=dtype,
    )


def _one_hot(y: np.ndarray | torch.Tensor) -> bool:
    """Whether a 2-D ``y`` holds one 1 and otherwise 0s in every row (NumPy array or tensor)."""
    values = _numpy(y)
    if not np.issubdtype(values.dtype, np.number) and values.dtype != bool:
        return False
    return bool(np.isin(values, (0, 1)).all() and (values.sum(axis=1) == 1).all())


def _existing(path: PathLike, kind: str) -> Path:
    path = Path(path).expanduser()
    if path.is_dir():
        raise UserError(f"{kind} path {str(path)!r} is a directory, not a file; give the {kind} file itself.")
    if not path.is_file():
        raise UserError(
            f"{kind} file not found: {str(path)!r} (looked at {str(path.resolve())!r}); check the path."
        )
    return path


def _unreadable(path: Path, kind: str, exc: BaseException) -> UserError:
    """A file the reader rejects (not that format, truncated, no permission): one line naming it."""
    detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    first = (detail.strip().splitlines() or [type(exc).__name__])[0]
    return UserError(f"cannot read the {kind} file {str(path)!r}: {first}")


def _no_rows(path: Path, kind: str) -> UserError:
    return UserError(f"{kind} file {str(path)!r} has no rows; a dataset needs one row per example.")


#: pandas.read_csv's keywords, which ``read_options`` may hold (the path is load_csv's own).
_READ_CSV_KEYWORDS = [p for p in inspect.signature(pd.read_csv).parameters if p != "filepath_or_buffer"]
#: read_csv keywords that make it return a reader of pieces instead of the table.
_PIECEWISE_KEYWORDS = ("chunksize", "iterator")
#: Separators tried when a file read with commas has a single column (csv.Sniffer picks among them).
_OTHER_SEPARATORS = ";\t|"


def _read_options(options: object) -> dict:
    """``read_options`` checked against pandas.read_csv's keywords, with load_csv's defaults under them."""
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        allowed = "a dict of pandas.read_csv keywords, e.g. {'sep': ';'}"
        raise fail("load_csv", "read_options", allowed, options)
    for key in options:
        if key not in _READ_CSV_KEYWORDS:
            raise InvalidParameterError(
                f"The 'read_options' parameter of load_csv must be a dict of pandas.read_csv keywords; "
                f"{key!r} is not one.{did_you_mean(str(key), _READ_CSV_KEYWORDS)}"
            )
        if key in _PIECEWISE_KEYWORDS and options[key] not in (None, False):
            # read_csv then returns a reader, not a table, and loading failed on it with AttributeError.
            raise InvalidParameterError(
                f"The 'read_options' parameter of load_csv cannot hold {key}={options[key]!r}: it makes "
                "pandas.read_csv return the file in pieces, and load_csv reads the whole file."
            )
    # "a, b, label": spaces after the separator belong to neither names nor values.
    return {"skipinitialspace": True, **options}


#: Compressions of a CSV that pandas.read_csv infers from its last suffix (data.csv.gz), and their openers.
COMPRESSIONS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open, ".zip": None}


def _text_sample(path: Path, encoding: str) -> str:
    """The first 64 KiB of a CSV as text, read through its compression as pandas reads it."""
    suffix = path.suffix.lower()
    if suffix == ".zip":  # pandas reads the archive's only member
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            raw = archive.read(names[0])[: 64 * 1024] if len(names) == 1 else b""
        return raw.decode(encoding, errors="replace")
    opener = COMPRESSIONS.get(suffix) or open
    with opener(path, "rt", encoding=encoding, errors="replace", newline="") as fh:
        return fh.read(64 * 1024)


def _sniffed_separator(path: Path, frame: pd.DataFrame, options: dict) -> str | None:
    """The separator of a file that commas split into one column: ``;``, tab or ``|`` (csv.Sniffer)."""
    if frame.shape[1] != 1 or "sep" in options or "delimiter" in options:
        return None
    if not any(c in str(frame.columns[0]) for c in _OTHER_SEPARATORS):
        return None
    sample = _text_sample(path, options.get("encoding") or "utf-8")
    try:
        return csv.Sniffer().sniff(sample, delimiters=_OTHER_SEPARATORS).delimiter
    except csv.Error:  # no consistent separator: the comma reading stands, and its errors
        return None


def _numeric_columns(frame: pd.DataFrame) -> int:
    return sum(pd.api.types.is_numeric_dtype(dtype) for dtype in frame.dtypes)


#: A number as a CSV header cell, with the ".1" pandas appends to a repeated name.
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?(\.\d+)?")


def _numeric_header(frame: pd.DataFrame) -> bool:
    """Every column name of a CSV is a number (its first row was data, not names)."""
    return all(isinstance(c, str) and _NUMBER.fullmatch(c.strip()) for c in frame.columns)


def _unnamed_column(frame: pd.DataFrame, target: str, where: str) -> UserError | None:
    """A feature column the header leaves unnamed (pandas' 'Unnamed: 0'), most often to_csv's index."""
    for position, column in enumerate(frame.columns):
        if column != target and re.fullmatch(r"Unnamed: \d+", str(column)):
            return UserError(
                f"Column {position + 1} of {where} has no name in the header (pandas calls it {column!r}): "
                "often the row index DataFrame.to_csv writes, which as a feature would hand the model each "
                "row's position. Write the file with to_csv(..., index=False) or name the column; or pass "
                "read_options={'index_col': 0} or features=[...]."
            )
    return None


def load_csv(
    path: PathLike,
    target: str,
    *,
    features: Sequence[str] | None = None,
    task: str | None = None,
    read_options: dict | None = None,
    seed: int = 0,
    val_size: Size = 0.1,
    test_size: Size = 0.2,
    scale: bool = True,
    scale_y: bool = False,
    dtype: torch.dtype = torch.float32,
) -> DataSplits:
    """Load a CSV file with ``pandas.read_csv`` (``read_options`` are passed to it) and split it.

    Spaces after a separator are skipped (``skipinitialspace``). A file that commas split into
    a single column, whose header holds ``;``, tabs or ``|``, is read with the separator
    ``csv.Sniffer`` finds among them, unless ``read_options`` names a ``sep``; a ``;`` file whose
    numbers use a decimal comma (``0,5``, as spreadsheets write in many locales) is read with
    ``decimal=","`` when that makes more of its columns numeric. A column without a
    name in the header (pandas' ``Unnamed: 0``, most often the index ``DataFrame.to_csv``
    writes) is refused as a feature: pass ``read_options={"index_col": 0}`` or ``features=``.

    The splits hold ``dtype`` inputs (and regression targets), float32 by default; pass
    ``dtype=torch.float64`` to keep float64 data exact (see :func:`from_tensors`).

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "toy.csv"
        >>> _ = p.write_text("a,b,label\\n" + "".join(f"{i},{i % 3},{i % 2}\\n" for i in range(20)))
        >>> load_csv(p, target="label", val_size=4, test_size=4).num_classes
        2
    """
    path = _existing(path, "CSV")
    options = _read_options(read_options)
    try:
        frame = pd.read_csv(path, **options)
        sep = _sniffed_separator(path, frame, options)
        if sep is not None:
            frame = pd.read_csv(path, **options, sep=sep)
        if sep == ";" and "decimal" not in options:  # a spreadsheet's export where ',' is the decimal mark
            comma = pd.read_csv(path, **options, sep=sep, decimal=",")
            if _numeric_columns(comma) > _numeric_columns(frame):
                frame = comma
    except pd.errors.EmptyDataError:  # not even a header
        raise _no_rows(path, "CSV") from None
    except (OSError, ValueError, TypeError, UnicodeDecodeError) as exc:  # ParserError is a ValueError
        raise _unreadable(path, "CSV", exc) from None
    if len(frame) == 0:
        raise _no_rows(path, "CSV")
    if features is None and (error := _unnamed_column(frame, target, path.name)) is not None:
        raise error
    if _column(frame, target) not in frame.columns and _numeric_header(frame):
        # The first row was data: pandas made it the header, and the columns are named by its values.
        raise UserError(
            f"The target column {target!r} is not in {path.name}, whose header is all numbers "
            f"({', '.join(repr(str(c)) for c in frame.columns)}): the file may have no header. If so, pass "
            "read_options={'header': None} and name the column by position (0 first), e.g. "
            f"target='{frame.shape[1] - 1}' for the last."
        )
    return from_frame(
        frame, target, features=features, task=task, name=path.name, seed=seed,
        val_size=val_size, test_size=test_size, scale=scale, scale_y=scale_y, dtype=dtype,
    )


def load_parquet(
    path: PathLike,
    target: str,
    *,
    features: Sequence[str] | None = None,
    task: str | None = None,
    seed: int = 0,
    val_size: Size = 0.1,
    test_size: Size = 0.2,
    scale: bool = True,
    scale_y: bool = False,
    dtype: torch.dtype = torch.float32,
) -> DataSplits:
    """Load a Parquet file (``pandas.read_parquet`` over pyarrow) and split it.

    The splits hold ``dtype`` inputs (and regression targets), float32 by default; pass
    ``dtype=torch.float64`` to keep float64 data exact (see :func:`from_tensors`).

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "toy.parquet"
        >>> pd.DataFrame({"a": range(20), "y": [0.5 * i for i in range(20)]}).to_parquet(p)
        >>> load_parquet(p, target="y", val_size=4, test_size=4).task
        'regression'
    """
    import pyarrow.parquet as pq

    path = _existing(path, "Parquet")
    try:
        names = pq.read_schema(path).names
        if features is not None:  # read only the columns needed; name a missing one as from_frame does
            _check_feature_list(features, target, path.name)
            for column, role in [(target, "target"), *((f, "feature") for f in features)]:
                if column not in names:
                    raise _missing_column(column, names, path.name, role)
        frame = pd.read_parquet(path, columns=None if features is None else [*features, target])
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise _unreadable(path, "Parquet", exc) from None
    if len(frame) == 0:
        raise _no_rows(path, "Parquet")
    return from_frame(
        frame, target, features=features, task=task, name=path.name, seed=seed,
        val_size=val_size, test_size=test_size, scale=scale, scale_y=scale_y, dtype=dtype,
    )


def _from_arrays(
    x: np.ndarray, y: np.ndarray, *, task: str | None, name: str, feature_names: Sequence[str] | None, **split
) -> DataSplits:
    """Checks shared by tensors, ``.npz`` files and Datasets, then the split."""
    if y.ndim == 2 and y.shape[1] == 1:  # one target per row, as a column: the same targets
        y = y.reshape(-1)
    if x.ndim < 2 or y.ndim != 1 or len(x) != len(y):
        hint = " For one feature per row, reshape x to (n, 1): x.reshape(-1, 1)." if x.ndim == 1 else ""
        if y.ndim == 2 and len(x) == len(y) and x.ndim >= 2 and _one_hot(y):
            hint = (f" y looks one-hot ({y.shape[1]} columns of 0/1, one 1 a row): use the class indices "
                    "y.argmax(1).")
        raise UserError(
            f"{name} must hold inputs of shape (n, ...) and targets of shape (n,); got x {tuple(x.shape)} "
            f"and y {tuple(y.shape)}.{hint}"
        )
    if len(x) == 0:
        raise UserError(f"{name} has no rows (x of shape {tuple(x.shape)}); nothing to split or train on.")
    for role, a in (("inputs", x), ("targets", y)):
        if np.iscomplexobj(a):
            raise UserError(f"The {role} of {name} are complex (dtype {a.dtype}); give the real and "
                            "imaginary parts as separate features.")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise UserError(f"The inputs of {name} are not numeric (dtype {x.dtype}); encode them as numbers.")
    for role, a in (("inputs", x), ("targets", y)):
        if np.issubdtype(a.dtype, np.floating):
            bad = ~np.isfinite(a.reshape(len(a), -1)).all(axis=1)
            if bad.any():
                raise UserError(
                    f"The {role} of {name} have NaN or infinite values in {int(bad.sum())} row(s) (first at "
                    f"row {int(np.argmax(bad))}); drop or impute them before loading."
                )
    n_features = int(np.prod(x.shape[1:]))
    if feature_names is not None and len(feature_names) != n_features:
        raise UserError(
            f"{name} has {n_features} features but {len(feature_names)} feature_names were given."
        )
    y, task, classes = _encode_target(y, task, name)
    return split_arrays(x, y, task=task, name=name, feature_names=feature_names, classes=classes, **split)


def from_tensors(
    x: torch.Tensor | np.ndarray,
    y: torch.Tensor | np.ndarray,
    *,
    task: str | None = None,
    name: str = "tensors",
    feature_names: Sequence[str] | None = None,
    seed: int = 0,
    val_size: Size = 0.1,
    test_size: Size = 0.2,
    scale: bool = True,
    scale_y: bool = False,
    dtype: torch.dtype = torch.float32,
) -> DataSplits:
    """Split in-memory inputs ``x`` of shape ``(n, ...)`` and targets ``y`` of shape ``(n,)``.

    ``input_shape`` is ``x.shape[1:]``; ``y`` of at most :data:`MAX_CLASSES` whole numbers
    (integers, or floats such as ``0.0`` / ``1.0``) means classification, other ``y`` regression
    (unless ``task=`` says otherwise).

    The splits hold ``dtype`` inputs (and regression targets): **float32 by default, whatever
    the input's dtype**, as torch's default and the built-in sets, so a float64 NumPy array
    is rounded to float32. Pass ``dtype=torch.float64`` to keep float64 data exact (scaling
    runs in the input's precision) and train a float64 model on it (``model.double()`` or
    ``Trainer(dtype=torch.float64)``); the Trainer casts each batch to its model's dtype.

    Example:
        >>> d = from_tensors(torch.randn(30, 1, 4, 4), torch.arange(30) % 3, val_size=6, test_size=6)
        >>> d.input_shape, d.num_classes, d.train.x.dtype
        ((1, 4, 4), 3, torch.float32)
        >>> from_tensors(torch.randn(30, 2, dtype=torch.float64), torch.arange(30) % 2,
        ...              dtype=torch.float64).train.x.dtype
        torch.float64
    """
    x, y = _numpy(x), _numpy(y)
    return _from_arrays(
        x, y, task=task, name=name, feature_names=feature_names, seed=seed,
        val_size=val_size, test_size=test_size, scale=scale, scale_y=scale_y, dtype=dtype,
    )


def _numpy(a: torch.Tensor | np.ndarray | object) -> np.ndarray:
    """A tensor (any device) or array-like as a NumPy array."""
    if not isinstance(a, torch.Tensor):
        return np.asarray(a)
    a = a.detach().cpu()
    if a.is_floating_point() and a.dtype not in (torch.float16, torch.float32, torch.float64):
        a = a.float()  # bfloat16 / float8 have no NumPy dtype (Tensor.numpy raised); float32 is exact
    return a.numpy()


def _describe_item(item: object) -> str:
    length = f" of {len(item)}" if isinstance(item, tuple | list) else ""
    return f"a {type(item).__name__}{length}"


def _stack(values: list, role: str, name: str) -> np.ndarray:
    """Stack one entry of every item (tensors, NumPy values, lists, numbers, strings) as rows."""
    arrays = [_numpy(v) for v in values]
    first = arrays[0].shape
    odd = next((i for i, a in enumerate(arrays) if a.shape != first), None)
    if odd is not None:
        raise UserError(
            f"{name} yields {role}s of different shapes: item 0's is {first}, item {odd}'s "
            f"{arrays[odd].shape}; every item's {role} needs the same shape."
        )
    return np.stack(arrays)


def _pair(item: object, index: int, x_key: str | None, y_key: str | None, name: str) -> tuple:
    """``(x, y)`` of one item: a pair, or a dict read by ``x_key`` / ``y_key`` (default ``x`` / ``y``)."""
    if isinstance(item, Mapping):
        keys = [str(k) for k in item]
        for role, key in (("x_key", x_key or "x"), ("y_key", y_key or "y")):
            if key not in item:
                raise UserError(
                    f"{name}: item {index} is a dict without the key {key!r} ({role}); its keys are "
                    f"{', '.join(map(repr, keys))}.{did_you_mean(key, keys)} Pass {role}=..."
                )
        return item[x_key or "x"], item[y_key or "y"]
    if not (isinstance(item, tuple | list) and len(item) == 2):
        raise UserError(f"{name} must yield (x, y) pairs; item {index} is {_describe_item(item)}.")
    for key, value in (("x_key", x_key), ("y_key", y_key)):
        if value is not None:
            raise fail("from_dataset", key, f"None when the items are pairs (item {index} is "
                       f"{_describe_item(item)}); it names an entry of dict items", value)
    return item[0], item[1]


def from_dataset(
    dataset: Dataset,
    *,
    x_key: str | None = None,
    y_key: str | None = None,
    task: str | None = None,
    name: str | None = None,
    seed: int = 0,
    val_size: Size = 0.1,
    test_size: Size = 0.2,
    scale: bool = True,
    scale_y: bool = False,
    dtype: torch.dtype = torch.float32,
) -> DataSplits:
    """Materialize a map-style torch ``Dataset`` of ``(x, y)`` pairs (or dicts) and split it.

    Each item is a pair ``(x, y)``, or a dict whose entries ``x_key`` and ``y_key`` (default
    ``"x"`` and ``"y"``) are the input and the target. An input may be a tensor, a NumPy array,
    a list or a number, all of one shape; a target a number or a class name. The items are
    stacked as rows with ``numpy.stack``; the data must fit in memory.
    The splits hold ``dtype`` inputs (and regression targets), float32 by default; pass
    ``dtype=torch.float64`` to keep float64 data exact (see :func:`from_tensors`).

    Example:
        >>> from torch.utils.data import TensorDataset
        >>> ds = TensorDataset(torch.randn(20, 3), torch.arange(20) % 2)
        >>> len(from_dataset(ds, val_size=4, test_size=4).train)
        12
    """
    name = name or type(dataset).__name__
    if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
        raise UserError(
            f"{name} is not a map-style Dataset (it needs __len__ and __getitem__); "
            "collect an iterable dataset into tensors and use from_tensors."
        )
    items = [dataset[i] for i in range(len(dataset))]
    if not items:
        raise UserError(f"{name} must yield (x, y) pairs; it is empty.")
    pairs = [_pair(item, i, x_key, y_key, name) for i, item in enumerate(items)]
    x = _stack([p[0] for p in pairs], "input", name)
    y = _stack([p[1] for p in pairs], "target", name)
    return from_tensors(
        x, y, task=task, name=name, seed=seed,
        val_size=val_size, test_size=test_size, scale=scale, scale_y=scale_y, dtype=dtype,
    )


def load_npz(
    path: PathLike,
    x_key: str = "x",
    y_key: str = "y",
    *,
    task: str | None = None,
    feature_names: Sequence[str] | None = None,
    seed: int = 0,
    val_size: Size = 0.1,
    test_size: Size = 0.2,
    scale: bool = True,
    scale_y: bool = False,
    dtype: torch.dtype = torch.float32,
) -> DataSplits:
    """Load inputs and targets from a NumPy ``.npz`` archive (no pickles) and split them.

    The splits hold ``dtype`` inputs (and regression targets), float32 by default; pass
    ``dtype=torch.float64`` to keep float64 data exact (see :func:`from_tensors`).

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "toy.npz"
        >>> np.savez(p, x=np.random.rand(20, 3), y=np.arange(20) % 2)
        >>> load_npz(p, val_size=4, test_size=4).input_shape
        (3,)
    """
    path = _existing(path, "NPZ")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        # np.load takes a file that is neither a zip archive nor a .npy array for a pickle
        raise UserError(f"cannot read the NPZ file {str(path)!r}: it is not a NumPy .npz archive "
                        f"({type(exc).__name__}); write one with numpy.savez.") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise UserError(f"cannot read the NPZ file {str(path)!r}: it holds a single .npy array, not an "
                        "archive of named arrays; write one with numpy.savez(path, x=..., y=...).")
    with archive:
        keys = list(archive.files)
        for role, key in (("x_key", x_key), ("y_key", y_key)):
            if key not in keys:
                raise UserError(
                    f"{path.name} has no array {key!r} ({role}); its arrays are "
                    f"{', '.join(repr(k) for k in keys)}.{did_you_mean(key, keys)} Pass {role}=..."
                )
        try:
            x, y = archive[x_key], archive[y_key]
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:  # a damaged or object array
            raise _unreadable(path, "NPZ", exc) from None
    return _from_arrays(
        x, y, task=task, name=path.name, feature_names=feature_names, seed=seed,
        val_size=val_size, test_size=test_size, scale=scale, scale_y=scale_y, dtype=dtype,
    )
