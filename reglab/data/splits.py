"""Train/validation/test splits, train-only scaling and k-fold folds.

Every dataset reglab loads ends here: :func:`split_arrays` turns one ``(x, y)``
array pair into a :class:`DataSplits` with seeded, stratified (classification)
train/val/test splits made by scikit-learn's ``train_test_split``, and a
``StandardScaler`` fitted on the training split only and applied to the others.
:func:`kfold` re-splits the development data (train + val) into folds with
``StratifiedKFold`` / ``KFold``, refitting the scaler on each fold's training part.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split
from sklearn.preprocessing import StandardScaler
from torch.utils.data import Dataset

from reglab._validation import (
    Interval,
    check_bool,
    check_int,
    check_option,
    fail,
)
from reglab.errors import UserError

__all__ = ["TensorSplit", "DataSplits", "split_arrays", "kfold", "TASKS"]

TASKS = ("classification", "regression")
Task = Literal["classification", "regression"]


@dataclass(eq=False)
class TensorSplit(Dataset):
    """One split: float32 inputs ``x`` and labels ``y`` (int64 classes or float32 targets); another
    floating dtype when the loader was given ``dtype=`` (``from_tensors(x, y, dtype=torch.float64)``).

    Also a ``torch.utils.data.Dataset`` of ``(x[i], y[i])`` pairs.

    Example:
        >>> s = TensorSplit(torch.zeros(3, 2), torch.tensor([0, 1, 0]))
        >>> len(s), s[1][1].item()
        (3, 1)
    """

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[index], self.y[index]

    def __repr__(self) -> str:
        return f"TensorSplit(x={tuple(self.x.shape)} {self.x.dtype}, y={tuple(self.y.shape)} {self.y.dtype})"


@dataclass(eq=False)
class DataSplits:
    """A dataset split into train / val / test, with what a trainer needs to know about it.

    Attributes:
        train, val, test: the splits; ``val`` or ``test`` is ``None`` when its size was 0.
        task: ``"classification"`` or ``"regression"``.
        num_classes: number of classes (``None`` for regression).
        input_shape: shape of one example, e.g. ``(40,)`` or ``(1, 8, 8)``.
        feature_names: one name per flattened feature, or ``None``.
        name: dataset name.
        classes: original label of each class index (classification), e.g. ``['cat', 'dog']``.
        scaler: the ``StandardScaler`` fitted on the flattened training inputs, or ``None``.
        y_scaler: the ``StandardScaler`` fitted on training targets (regression with
            ``scale_y=True``), or ``None``; ``y_scaler.inverse_transform`` maps predictions back.
        seed: the seed the splits were drawn with.
        dtype: the floating dtype of the inputs (and regression targets), ``torch.float32``
            unless the loader was given another; :func:`kfold` keeps it.

    Example:
        >>> from reglab.data import load
        >>> d = load("wine", seed=0)
        >>> d.task, d.num_classes, d.input_shape, len(d.train) + len(d.val) + len(d.test)
        ('classification', 3, (13,), 178)
    """

    train: TensorSplit
    val: TensorSplit | None
    test: TensorSplit | None
    task: Task
    num_classes: int | None
    input_shape: tuple[int, ...]
    feature_names: list[str] | None
    name: str
    classes: list | None = None
    scaler: StandardScaler | None = None
    y_scaler: StandardScaler | None = None
    seed: int = 0
    dtype: torch.dtype = torch.float32
    # Unscaled numpy copies of each split, so that kfold can refit the scaler per fold.
    _raw: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)

    def describe(self) -> str:
        """One short paragraph: name, task, shapes, split sizes, class balance, scaling.

        Example:
            >>> from reglab.data import load
            >>> print(load("wine").describe().splitlines()[0])
            wine: classification, 3 classes, input shape (13,)
        """
        if self.task == "classification":
            kind = f"classification, {self.num_classes} classes"
        else:  # "regression, regression" before: the task said twice
            targets = 1 if self.train is None or self.train.y.dim() < 2 else self.train.y.shape[1]
            kind = "regression" + (f", {targets} targets" if targets > 1 else "")
        lines = [f"{self.name}: {kind}, input shape {self.input_shape}"]
        for part in ("train", "val", "test"):
            split = getattr(self, part)
            if split is None:
                lines.append(f"  {part}: (none)")
                continue
            info = f"  {part}: {len(split)} examples"
            if self.task == "classification":
                counts = torch.bincount(split.y, minlength=self.num_classes).tolist()
                info += f", per class {counts}"
            else:
                info += f", y mean {split.y.mean().item():.4g} std {split.y.std().item():.4g}"
            lines.append(info)
        scaling = "inputs standardized on train" if self.scaler is not None else "inputs unscaled"
        if self.y_scaler is not None:
            scaling += ", targets standardized on train"
        lines.append(f"  {scaling}; seed {self.seed}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        sizes = "/".join(str(0 if s is None else len(s)) for s in (self.train, self.val, self.test))
        return (
            f"DataSplits(name={self.name!r}, task={self.task!r}, num_classes={self.num_classes}, "
            f"input_shape={self.input_shape}, train/val/test={sizes})"
        )


def _check_dtype(dtype: object, owner: str) -> torch.dtype:
    """``dtype`` if it is a floating ``torch.dtype`` (the dtype of loaded inputs), else the one-line error."""
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        allowed = "a floating torch.dtype, e.g. torch.float32 (the default) or torch.float64"
        raise fail(owner, "dtype", allowed, dtype)
    return dtype


def _count(size: float | int | None, n: int, name: str, owner: str) -> int:
    """A split size as a number of rows: an int is a count, a float in (0, 1) a fraction of ``n``."""
    if size is None:
        return 0
    if isinstance(size, bool):
        raise fail(owner, name, "an int >= 0 or a float in the range (0, 1)", size)
    if isinstance(size, int | np.integer):
        return check_int(size, name, owner=owner, interval=Interval(0, None))
    if isinstance(size, float) and 0.0 < size < 1.0:
        return math.ceil(size * n)  # scikit-learn's rounding for a fractional test size
    if isinstance(size, float) and size == 0.0:
        return 0
    raise fail(owner, name, "an int >= 0 or a float in the range (0, 1)", size)


def _check_feasible(y: np.ndarray, task: str, n_val: int, n_test: int, name: str) -> None:
    """Raise one UserError when the rows cannot fill the requested splits."""
    n = len(y)
    n_train = n - n_val - n_test
    sizes = f"{n_train} train / {n_val} val / {n_test} test from {n} rows"
    if n_train < 1:
        raise UserError(
            f"Dataset {name!r} has too few rows for the requested splits ({sizes}): "
            "lower val_size / test_size or add rows."
        )
    if task != "classification":
        return
    counts = np.bincount(y)
    k = len(counts)
    parts = [("train", n_train)] + [(p, m) for p, m in (("val", n_val), ("test", n_test)) if m > 0]
    for part, m in parts:
        if m < k:
            raise UserError(
                f"Dataset {name!r} has too few rows for stratified splits: the {part} split gets {m} rows "
                f"but there are {k} classes ({sizes}); raise its size or add rows."
            )
    if counts.min() < len(parts):
        rare = int(counts.argmin())
        raise UserError(
            f"Dataset {name!r} has too few rows for stratified splits: class index {rare} has "
            f"{int(counts.min())} example(s) but {len(parts)} splits need one each; add rows or "
            "use fewer splits (val_size=0 / test_size=0)."
        )


def _split(x: np.ndarray, y: np.ndarray, size: int, seed: int, stratify: bool):
    try:
        return train_test_split(
            x, y, test_size=size, random_state=seed, shuffle=True, stratify=y if stratify else None
        )
    except ValueError as err:  # scikit-learn's own feasibility checks, in the one-line format
        raise UserError(f"Cannot split the data as requested: {err}") from None


def _tensors(
    x: np.ndarray, y: np.ndarray, task: str, shape: tuple[int, ...], dtype: torch.dtype
) -> TensorSplit:
    ydtype = torch.int64 if task == "classification" else dtype
    # torch.tensor copies: as_tensor shared the caller's array (or a data frame's read-only buffer)
    # when no split, scaling or cast had copied it.
    xt = torch.tensor(np.ascontiguousarray(x), dtype=dtype).reshape(-1, *shape)
    return TensorSplit(xt, torch.tensor(np.ascontiguousarray(y), dtype=ydtype))


def _not_finite(
    part: str, raw: np.ndarray, done: np.ndarray, split: TensorSplit, scaled: bool, dtype: torch.dtype,
    name: str, feature_names: Sequence[str] | None,
) -> UserError | None:
    """The one-line error when finite data is not finite in the split (``None`` when it is).

    ``raw`` is the split before scaling, ``done`` after (NumPy, the data's precision), ``split`` the
    tensors: scaling values beyond about 1e154 overflows float64, casting them beyond the dtype's range
    overflows it. Targets have ``raw.ndim == 1``.
    """
    tensor = split.y if raw.ndim == 1 else split.x.reshape(len(split.x), -1)
    if not tensor.is_floating_point() or bool(torch.isfinite(tensor).all()):
        return None
    column = raw.reshape(len(raw), -1)
    j = int((~torch.isfinite(tensor.reshape(len(tensor), -1))).any(dim=0).nonzero()[0])
    values = column[:, j].astype(np.float64)
    kind = str(dtype).removeprefix("torch.")
    if raw.ndim == 1:
        what, verb = f"The targets of {name}", "do not fit"
    else:
        label = repr(str(feature_names[j])) if feature_names and len(feature_names) > j else f"index {j}"
        what, verb = f"Feature {label} of {name}", "does not fit"
    where = "" if part == "train" else f" ({part} split)"
    if not np.isfinite(values).all():  # only when split_arrays was given NaN / inf itself
        return UserError(f"{what}{where} holds NaN or infinite values; drop or impute them before loading.")
    peak = float(np.abs(values).max())
    fix = "" if dtype == torch.float64 else ", pass dtype=torch.float64"
    if not np.isfinite(done.reshape(len(done), -1)[:, j]).all():
        why, fix = "standardizing them overflows (their squares pass float64's 1.8e+308)", ""
    elif scaled:
        why = f"{kind} holds at most {torch.finfo(dtype).max:.2g} (after standardizing on the training split)"
    else:
        why = f"{kind} holds at most {torch.finfo(dtype).max:.2g}"
    it = "they" if raw.ndim == 1 else "its values"
    return UserError(
        f"{what} {verb} the {kind} splits{where}: {it} reach {peak:.3g} in magnitude and {why}; "
        f"divide {'them' if raw.ndim == 1 else 'it'} by a power of 10{fix} or drop "
        f"{'the rows' if raw.ndim == 1 else 'it'}."
    )


def _scaled(
    raw: dict[str, tuple[np.ndarray, np.ndarray]],
    task: str,
    shape: tuple[int, ...],
    scale: bool,
    scale_y: bool,
    dtype: torch.dtype = torch.float32,
    name: str = "data",
    feature_names: Sequence[str] | None = None,
) -> tuple[dict[str, TensorSplit], StandardScaler | None, StandardScaler | None]:
    """Fit the scalers on ``raw['train']`` only and apply them to every split.

    Finite inputs that do not stay finite (standardizing values near float64's limit, casting
    values beyond ``dtype``'s range) raise one :class:`UserError` naming the feature.
    """
    x_train, y_train = raw["train"]
    # Overflow shows as inf / NaN in the result, which is checked below: no numpy warnings on the way.
    with np.errstate(over="ignore", invalid="ignore"):
        scaler = StandardScaler().fit(x_train) if scale else None
        y_scaler = StandardScaler().fit(y_train.reshape(-1, 1)) if scale_y else None
        done = {}
        for part, (x, y) in raw.items():
            if scaler is not None:
                x = scaler.transform(x)
            if y_scaler is not None:
                y = y_scaler.transform(y.reshape(-1, 1)).ravel()
            done[part] = (x, y)
    out = {}
    for part, (x, y) in done.items():
        out[part] = _tensors(x, y, task, shape, dtype)
        for a, b, scaled in ((raw[part][0], x, scale), (raw[part][1], y, scale_y)):
            error = _not_finite(part, a, b, out[part], scaled, dtype, name, feature_names)
            if error is not None:
                raise error
    return out, scaler, y_scaler


def split_arrays(
    x: np.ndarray,
    y: np.ndarray,
    *,
    task: Task,
    name: str,
    seed: int = 0,
    val_size: float | int | None = 0.1,
    test_size: float | int | None = 0.2,
    scale: bool = True,
    scale_y: bool = False,
    input_shape: Sequence[int] | None = None,
    feature_names: Sequence[str] | None = None,
    classes: Sequence | None = None,
    test: tuple[np.ndarray, np.ndarray] | None = None,
    dtype: torch.dtype = torch.float32,
) -> DataSplits:
    """Split arrays into seeded train/val/test and standardize inputs on train only.

    Args:
        x: inputs, shape ``(n, ...)``; scaling works on the flattened features.
        y: class indices ``0..K-1`` (classification) or real targets (regression), shape ``(n,)``.
        task: ``"classification"`` (splits stratified by ``y``) or ``"regression"``.
        name: dataset name, used in messages.
        seed: seed of the shuffles (``random_state`` of ``train_test_split``).
        val_size, test_size: an int is a number of rows, a float in (0, 1) a fraction of all
            ``n`` rows (rounded up), 0 or ``None`` means no such split.
        scale: standardize inputs with a ``StandardScaler`` fitted on the training split.
        scale_y: standardize regression targets the same way (off by default: losses and
            metrics then stay in the data's units).
        input_shape: shape of one example (default ``x.shape[1:]``).
        feature_names: one name per flattened feature.
        classes: the original label of each class index.
        test: a fixed test set ``(x_test, y_test)`` (e.g. a dataset's official one); then
            ``test_size`` must be 0 or ``None``.
        dtype: the floating dtype of the split inputs and regression targets (scaling runs in
            the arrays' own precision first).

    Example:
        >>> import numpy as np
        >>> x, y = np.arange(40.0).reshape(20, 2), np.arange(20) % 2
        >>> d = split_arrays(x, y, task="classification", name="toy", val_size=4, test_size=4)
        >>> len(d.train), len(d.val), len(d.test)
        (12, 4, 4)
    """
    owner = f"load({name!r})"
    check_option(task, "task", owner=owner, options=TASKS)
    seed = check_int(seed, "seed", owner=owner, interval=Interval(0, 2**32 - 1))
    scale = check_bool(scale, "scale", owner=owner)
    scale_y = check_bool(scale_y, "scale_y", owner=owner)
    dtype = _check_dtype(dtype, owner)
    if scale_y and task != "regression":
        raise fail(owner, "scale_y", "False for a classification task", scale_y)
    x = np.asarray(x)
    y = np.asarray(y)
    shape = tuple(int(s) for s in (x.shape[1:] if input_shape is None else input_shape))
    x = x.reshape(len(x), -1)
    num_classes = None
    if task == "classification":
        y = y.astype(np.int64)
        num_classes = len(classes) if classes is not None else int(y.max()) + 1
    n_val = _count(val_size, len(y), "val_size", owner)
    if test is not None and test_size:
        raise fail(owner, "test_size", f"None or 0 (the {name} test set is fixed)", test_size)
    n_test = 0 if test is not None else _count(test_size, len(y), "test_size", owner)
    _check_feasible(y, task, n_val, n_test, name)
    stratify = task == "classification"
    raw: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if n_test:
        x, x_te, y, y_te = _split(x, y, n_test, seed, stratify)
        raw["test"] = (x_te, y_te)
    elif test is not None:
        raw["test"] = (np.asarray(test[0]).reshape(len(test[0]), -1), np.asarray(test[1]))
    if n_val:
        x, x_va, y, y_va = _split(x, y, n_val, seed, stratify)
        raw["val"] = (x_va, y_va)
    if not n_test and not n_val:  # kfold's unscaled copy: not a view of the caller's arrays
        x, y = x.copy(order="K"), y.copy(order="K")  # the layout kept: the scaler sums as on x
    raw = {"train": (x, y), **raw}
    splits, scaler, y_scaler = _scaled(raw, task, shape, scale, scale_y, dtype, name, feature_names)
    return DataSplits(
        train=splits["train"],
        val=splits.get("val"),
        test=splits.get("test"),
        task=task,
        num_classes=num_classes,
        input_shape=shape,
        feature_names=None if feature_names is None else [str(f) for f in feature_names],
        name=name,
        classes=None if classes is None else list(classes),
        scaler=scaler,
        y_scaler=y_scaler,
        seed=seed,
        dtype=dtype,
        _raw=raw,
    )


def kfold(
    splits: DataSplits, k: int = 5, seed: int = 0, *, include_val: bool = True, stratified: bool = True
) -> Iterator[tuple[TensorSplit, TensorSplit]]:
    """Yield ``k`` ``(train, val)`` folds of the development data (train + val; test untouched).

    Folds come from scikit-learn's ``StratifiedKFold`` (classification, unless ``stratified=False``)
    or ``KFold`` (regression), shuffled with ``seed``. When ``splits`` was scaled, a fresh scaler is
    fitted on each fold's training part only (the same for ``scale_y``).

    Args:
        splits: what :func:`reglab.data.load` returned.
        k: number of folds, at least 2.
        seed: seed of the fold assignment.
        include_val: pool the validation split with train before folding (default); with
            ``False`` only the training split is folded.
        stratified: for classification, keep each class's share in every fold (``StratifiedKFold``);
            ``False`` folds as ``KFold`` does.

    Example:
        >>> from reglab.data import load
        >>> folds = list(kfold(load("wine"), k=3, seed=0))
        >>> len(folds), sum(len(v) for _, v in folds)
        (3, 142)
    """
    owner = "kfold"
    if not isinstance(splits, DataSplits):
        raise fail(owner, "splits", "a DataSplits (from reglab.data.load / from_tensors / load_csv)", splits)
    k = check_int(k, "k", owner=owner, interval=Interval(2, None))
    seed = check_int(seed, "seed", owner=owner, interval=Interval(0, 2**32 - 1))
    include_val = check_bool(include_val, "include_val", owner=owner)
    stratified = check_bool(stratified, "stratified", owner=owner)
    parts = ["train"] + (["val"] if include_val and "val" in splits._raw else [])
    x = np.concatenate([splits._raw[p][0] for p in parts])
    y = np.concatenate([splits._raw[p][1] for p in parts])
    if len(y) < k:
        raise UserError(f"Dataset {splits.name!r} has {len(y)} development rows, too few for k={k} folds.")
    if splits.task == "classification" and stratified:
        smallest = int(np.bincount(y).min())
        if smallest < k:
            raise UserError(
                f"Dataset {splits.name!r}: the rarest class has {smallest} development rows, too few for "
                f"k={k} stratified folds; lower k."
            )
        folder = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    else:
        folder = KFold(n_splits=k, shuffle=True, random_state=seed)
    for train_idx, val_idx in folder.split(x, y):
        raw = {"train": (x[train_idx], y[train_idx]), "val": (x[val_idx], y[val_idx])}
        out, _, _ = _scaled(
            raw, splits.task, splits.input_shape, splits.scaler is not None, splits.y_scaler is not None,
            splits.dtype, splits.name, splits.feature_names,
        )
        yield out["train"], out["val"]
