"""``load(name_or_path, ...)``: one entry point for built-in datasets and user files."""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

import pandas as pd

from reglab._validation import InvalidParameterError, did_you_mean, fail
from reglab.data.builtin import BUILTINS
from reglab.data.files import (
    COMPRESSIONS,
    _existing,
    _read_options,
    _sniffed_separator,
    load_csv,
    load_npz,
    load_parquet,
)
from reglab.data.splits import DataSplits
from reglab.errors import UserError

__all__ = ["load", "FILE_LOADERS"]

FILE_LOADERS = {
    ".csv": load_csv,
    ".tsv": load_csv,
    ".npz": load_npz,
    ".parquet": load_parquet,
    ".pq": load_parquet,
}


def _kind(path: Path) -> str:
    """The suffix that picks a file's loader, ``.csv`` for a compressed ``data.csv.gz`` too."""
    last = path.suffixes[-2:]
    if len(last) == 2 and last[1].lower() in COMPRESSIONS and last[0].lower() in (".csv", ".tsv"):
        return last[0].lower()
    return path.suffix.lower()


def _check_keywords(owner: str, loader, kwargs: dict[str, Any]) -> None:
    """Reject keywords ``loader`` does not take, in the one-format style, instead of a bare TypeError."""
    accepted = [p for p in inspect.signature(loader).parameters if p not in ("path", "frame")]
    for key in kwargs:
        if key not in accepted:
            listed = ", ".join(repr(a) for a in accepted)
            raise InvalidParameterError(
                f"{owner} does not take the keyword {key!r}; it takes {listed}.{did_you_mean(key, accepted)}"
            )


def _columns(path: Path, read_options: Any) -> list[str]:
    """A table's column names, for a message; ``[]`` when the file cannot tell them."""
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            return [str(c) for c in pq.read_schema(path).names]
        options = _read_options(read_options)
        header = pd.read_csv(path, nrows=0, **options)
        sep = _sniffed_separator(path, header, options)
        if sep is not None:
            header = pd.read_csv(path, nrows=0, **options, sep=sep)
        return [str(c) for c in header.columns]
    except (OSError, ValueError, TypeError, UnicodeDecodeError):  # the loader names what is wrong
        return []


def _check_required(owner: str, path: Path, loader, kwargs: dict[str, Any]) -> None:
    """A file loader's required keyword (``target``) missing: one line with the columns to choose from."""
    for name, parameter in inspect.signature(loader).parameters.items():
        if name == "path" or parameter.default is not inspect.Parameter.empty or name in kwargs:
            continue
        _existing(path, "Parquet" if path.suffix.lower() in (".parquet", ".pq") else "CSV")  # missing first
        hint = ""
        if name == "target":
            columns = _columns(path, kwargs.get("read_options"))
            listed = f"; its columns are {', '.join(map(repr, columns))}" if columns else ""
            hint = f": the name of the label column{listed}"
        raise InvalidParameterError(f"{owner} needs the keyword {name!r}{hint}.")


def _not_a_directory(path: Path) -> None:
    if path.is_dir():
        raise UserError(f"{str(path)!r} is a directory, not a data file; give a "
                        f"{'/'.join(FILE_LOADERS)} file.")


def load(name: str | os.PathLike, /, **kwargs: Any) -> DataSplits:
    """Load a built-in dataset by name, or a user file by path (dispatched on its suffix).

    Built-in names are listed by :func:`reglab.data.available`. Files: ``.csv`` / ``.tsv``, also
    compressed (``.csv.gz``, ``.bz2``, ``.xz``, ``.zip``, as pandas reads them)
    (:func:`~reglab.data.load_csv`, needs ``target=``), ``.parquet`` / ``.pq``
    (:func:`~reglab.data.load_parquet`, needs ``target=``), ``.npz``
    (:func:`~reglab.data.load_npz`). Common keywords: ``seed``, ``val_size``, ``test_size``,
    ``scale``, ``dtype`` (float32 by default; ``torch.float64`` keeps float64 data exact), and
    ``scale_y`` for regression; each loader documents its defaults.

    Example:
        >>> d = load("breast_cancer", seed=1, val_size=0.1, test_size=0.2)
        >>> d.num_classes, len(d.feature_names)
        (2, 30)
    """
    if isinstance(name, os.PathLike) or (isinstance(name, str) and _kind(Path(name)) in FILE_LOADERS):
        path = Path(name)
        loader = FILE_LOADERS.get(_kind(path))
        if loader is None:
            _not_a_directory(path)
            raise fail("load", "name", f"a file ending in {', '.join(FILE_LOADERS)}", str(name))
        if _kind(path) == ".tsv":
            kwargs.setdefault("read_options", {"sep": "\t"})
        _check_keywords(f"load({path.name!r})", loader, kwargs)
        _check_required(f"load({path.name!r})", path, loader, kwargs)
        return loader(path, **kwargs)
    if not isinstance(name, str) or name not in BUILTINS:
        if isinstance(name, str):
            _not_a_directory(Path(name))
        listed = ", ".join(repr(n) for n in BUILTINS)
        hint = did_you_mean(name, BUILTINS) if isinstance(name, str) else ""
        raise InvalidParameterError(
            f"The 'name' parameter of load must be one of {listed} or a path to a "
            f"{'/'.join(FILE_LOADERS)} file. Got {name!r} instead.{hint}"
        )
    loader = BUILTINS[name]
    _check_keywords(f"load({name!r})", loader, kwargs)
    return loader(**kwargs)
