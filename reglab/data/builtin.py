"""Built-in datasets, all offline: MNIST-1D, scikit-learn's bundled sets, synthetic problems.

Each loader takes the common keywords ``seed``, ``val_size``, ``test_size``, ``scale``,
``dtype`` (and ``scale_y`` for regression) and returns a :class:`~reglab.data.splits.DataSplits`.
The splits hold ``dtype`` inputs (and regression targets), float32 by default; pass
``dtype=torch.float64`` to keep float64 data exact (see :func:`reglab.data.from_tensors`):
all these sets are float64 (MNIST-1D, scikit-learn's, the synthetic ones).
``reglab.data.load(name, ...)`` finds them by name in :data:`BUILTINS`.

References:
    Greydanus & Kobak, "Scaling down deep learning with MNIST-1D", ICML 2024.
"""

from __future__ import annotations

import hashlib
import json
import random
import zipfile
from collections.abc import Callable

import numpy as np
import torch
from sklearn import datasets as skd

from reglab._validation import Interval, check_int, check_option, check_scalar, fail
from reglab.data._cache import cache_dir, save_npz_atomic
from reglab.data.splits import DataSplits, split_arrays

__all__ = [
    "BUILTINS",
    "available",
    "mnist1d",
    "digits",
    "breast_cancer",
    "wine",
    "diabetes",
    "make_synthetic",
    "synthetic_classification",
    "synthetic_regression",
]

Size = float | int | None


def _mnist1d_args():
    import mnist1d.data  # lazy: imports matplotlib.pyplot and requests (about 1 s)

    return mnist1d.data.get_dataset_args()


def _generate_mnist1d(args) -> dict[str, np.ndarray]:
    """Run MNIST-1D's generator with the global ``random`` / ``numpy.random`` states left untouched.

    ``make_dataset`` calls ``random.seed`` and ``np.random.seed`` (its reproducibility
    recipe), which would silently reseed the caller's experiment; save and restore both.
    """
    import mnist1d.data

    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        data = mnist1d.data.make_dataset(args)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    return {k: np.asarray(data[k]) for k in ("x", "y", "x_test", "y_test", "t")}


def _mnist1d_arrays() -> dict[str, np.ndarray]:
    """MNIST-1D's arrays, generated once and cached as ``.npz`` (keyed by the generator's arguments)."""
    args = _mnist1d_args()
    fields = {k: v for k, v in vars(args).items() if k != "url"}
    key = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]
    path = cache_dir() / f"mnist1d-{key}.npz"
    if path.exists():
        try:
            with np.load(path) as f:
                return {k: f[k] for k in f.files}
        except (OSError, ValueError, zipfile.BadZipFile):
            pass  # a corrupt cache file (e.g. a disk filled up): regenerate and overwrite it
    arrays = _generate_mnist1d(args)
    save_npz_atomic(path, **arrays)
    return arrays


def mnist1d(
    *, seed: int = 0, val_size: Size = 500, test_size: Size = None, scale: bool = False,
    dtype: torch.dtype = torch.float32,
) -> DataSplits:
    """MNIST-1D: 10 classes of 40-sample 1-D signals; 4000 train(+val) and 1000 test examples.

    Generated offline by ``mnist1d.data.make_dataset(get_dataset_args())`` (never the
    download) and cached in :func:`reglab.data.cache_dir`. The official test set is kept as
    ``test``; ``val_size`` rows (default 500, the paper's 3500 + 500 recipe) are split out of
    the official train set, stratified by class.

    ``scale`` defaults to ``False`` here: the generator already standardizes the whole set
    (mean 0, std 1), and a per-position scaler would distort the translation structure that
    shift augmentation relies on.

    Example:
        >>> d = mnist1d()
        >>> len(d.train), len(d.val), len(d.test), d.input_shape, d.num_classes
        (3500, 500, 1000, (40,), 10)
    """
    a = _mnist1d_arrays()
    return split_arrays(
        a["x"],
        a["y"],
        task="classification",
        name="mnist1d",
        seed=seed,
        val_size=val_size,
        test_size=test_size,
        scale=scale,
        test=(a["x_test"], a["y_test"]),
        feature_names=[f"t{i}" for i in range(a["x"].shape[1])],
        classes=list(range(10)),
        dtype=dtype,
    )


def _sklearn(bunch, name: str, task: str, *, shape=None, **split) -> DataSplits:
    classes = [str(c) for c in bunch.target_names] if task == "classification" else None
    return split_arrays(
        bunch.data,
        bunch.target,
        task=task,
        name=name,
        input_shape=shape,
        feature_names=list(bunch.feature_names),
        classes=classes,
        **split,
    )


def digits(
    *,
    seed: int = 0,
    val_size: Size = 0.1,
    test_size: Size = 0.2,
    scale: bool = True,
    image: bool = False,
    dtype: torch.dtype = torch.float32,
) -> DataSplits:
    """scikit-learn's 8x8 handwritten digits (1797 examples, 10 classes, pixels 0-16).

    Inputs are flat, ``input_shape == (64,)``, unless ``image=True``: then ``x`` is
    ``(N, 1, 8, 8)`` (for image augmentation). ``reglab.CNN2D(8, 10)`` takes either.

    Example:
        >>> digits(image=True).train.x.shape[1:]
        torch.Size([1, 8, 8])
    """
    shape = (1, 8, 8) if image else None
    return _sklearn(
        skd.load_digits(), "digits", "classification", shape=shape,
        seed=seed, val_size=val_size, test_size=test_size, scale=scale, dtype=dtype,
    )


def breast_cancer(
    *, seed: int = 0, val_size: Size = 0.1, test_size: Size = 0.2, scale: bool = True,
    dtype: torch.dtype = torch.float32,
) -> DataSplits:
    """Wisconsin breast cancer (569 examples, 30 features, 2 classes: malignant, benign).

    Example:
        >>> breast_cancer().classes
        ['malignant', 'benign']
    """
    return _sklearn(
        skd.load_breast_cancer(), "breast_cancer", "classification",
        seed=seed, val_size=val_size, test_size=test_size, scale=scale, dtype=dtype,
    )


def wine(
    *, seed: int = 0, val_size: Size = 0.1, test_size: Size = 0.2, scale: bool = True,
    dtype: torch.dtype = torch.float32,
) -> DataSplits:
    """UCI wine recognition (178 examples, 13 features, 3 classes).

    Example:
        >>> wine().feature_names[0]
        'alcohol'
    """
    return _sklearn(
        skd.load_wine(), "wine", "classification",
        seed=seed, val_size=val_size, test_size=test_size, scale=scale, dtype=dtype,
    )


def diabetes(
    *, seed: int = 0, val_size: Size = 0.1, test_size: Size = 0.2, scale: bool = True, scale_y: bool = False,
    dtype: torch.dtype = torch.float32,
) -> DataSplits:
    """Diabetes progression regression (442 examples, 10 features; y is a disease score 25-346).

    scikit-learn ships the features already centred and scaled; ``scale=True`` re-standardizes
    them on the training split. ``scale_y=True`` standardizes the target as well.

    Example:
        >>> diabetes().task
        'regression'
    """
    return _sklearn(
        skd.load_diabetes(), "diabetes", "regression",
        seed=seed, val_size=val_size, test_size=test_size, scale=scale, scale_y=scale_y, dtype=dtype,
    )


def make_synthetic(
    kind: str = "classification",
    n_samples: int = 500,
    n_features: int = 20,
    *,
    n_informative: int | None = None,
    n_classes: int = 2,
    noise: float = 0.0,
    flip_y: float = 0.0,
    data_seed: int = 0,
    seed: int = 0,
    val_size: Size = 0.1,
    test_size: Size = 0.2,
    scale: bool = True,
    scale_y: bool = False,
    dtype: torch.dtype = torch.float32,
) -> DataSplits:
    """A synthetic problem from ``sklearn.datasets.make_classification`` / ``make_regression``.

    Args:
        kind: ``"classification"`` or ``"regression"``.
        n_samples, n_features: size of the problem.
        n_informative: informative features (default ``max(2, n_features // 2)``, capped at
            ``n_features``); the rest are noise (no redundant features).
        n_classes: classes (classification); needs ``n_classes * 2 <= 2 ** n_informative``.
        noise: standard deviation of Gaussian noise on the target (regression only).
        flip_y: fraction of labels assigned at random (classification only).
        data_seed: seed of the generated data; ``seed`` only draws the splits, so that
            several split seeds see the same dataset.
        seed, val_size, test_size, scale, scale_y: as in :func:`reglab.data.load`.
        dtype: the floating dtype of the split inputs (and regression targets), float32 by
            default; ``torch.float64`` keeps the generated float64 data exact.

    Example:
        >>> d = make_synthetic("regression", n_samples=100, n_features=5, noise=0.1)
        >>> d.task, d.input_shape, len(d.train)
        ('regression', (5,), 70)
    """
    owner = "make_synthetic"
    kind = check_option(kind, "kind", owner=owner, options=("classification", "regression"))
    n_samples = check_int(n_samples, "n_samples", owner=owner, interval=Interval(2, None))
    n_features = check_int(n_features, "n_features", owner=owner, interval=Interval(1, None))
    if n_informative is None:
        n_informative = min(n_features, max(2, n_features // 2))
    n_informative = check_int(n_informative, "n_informative", owner=owner, interval=Interval(1, n_features))
    noise = check_scalar(noise, "noise", owner=owner, interval=Interval(0, None))
    flip_y = check_scalar(flip_y, "flip_y", owner=owner, interval=Interval(0, 1))
    data_seed = check_int(data_seed, "data_seed", owner=owner, interval=Interval(0, 2**32 - 1))
    split = dict(seed=seed, val_size=val_size, test_size=test_size, scale=scale, dtype=dtype)
    if kind == "regression":
        if flip_y:
            raise fail(owner, "flip_y", "0 for kind='regression' (use noise=)", flip_y)
        x, y = skd.make_regression(
            n_samples=n_samples, n_features=n_features, n_informative=n_informative,
            noise=noise, random_state=data_seed,
        )
        return split_arrays(
            x, y, task="regression", name="synthetic_regression", scale_y=scale_y,
            feature_names=[f"x{i}" for i in range(n_features)], **split,
        )
    if noise:
        raise fail(owner, "noise", "0 for kind='classification' (use flip_y=)", noise)
    n_classes = check_int(n_classes, "n_classes", owner=owner, interval=Interval(2, 2 ** (n_informative - 1)))
    x, y = skd.make_classification(
        n_samples=n_samples, n_features=n_features, n_informative=n_informative, n_redundant=0,
        n_classes=n_classes, n_clusters_per_class=2, flip_y=flip_y, random_state=data_seed,
    )
    return split_arrays(
        x, y, task="classification", name="synthetic_classification", scale_y=scale_y,
        feature_names=[f"x{i}" for i in range(n_features)], **split,
    )


def synthetic_classification(
    *, n_samples: int = 500, n_features: int = 20, n_classes: int = 2, data_seed: int = 0,
    seed: int = 0, val_size: Size = 0.1, test_size: Size = 0.2, scale: bool = True,
    dtype: torch.dtype = torch.float32,
) -> DataSplits:
    """``make_synthetic("classification", ...)`` under a name for ``load``.

    Example:
        >>> synthetic_classification(n_samples=100).num_classes
        2
    """
    return make_synthetic(
        "classification", n_samples, n_features, n_classes=n_classes, data_seed=data_seed,
        seed=seed, val_size=val_size, test_size=test_size, scale=scale, dtype=dtype,
    )


def synthetic_regression(
    *, n_samples: int = 500, n_features: int = 20, noise: float = 0.1, data_seed: int = 0,
    seed: int = 0, val_size: Size = 0.1, test_size: Size = 0.2, scale: bool = True, scale_y: bool = False,
    dtype: torch.dtype = torch.float32,
) -> DataSplits:
    """``make_synthetic("regression", ...)`` under a name for ``load``.

    Example:
        >>> synthetic_regression(n_samples=100).task
        'regression'
    """
    return make_synthetic(
        "regression", n_samples, n_features, noise=noise, data_seed=data_seed,
        seed=seed, val_size=val_size, test_size=test_size, scale=scale, scale_y=scale_y, dtype=dtype,
    )


BUILTINS: dict[str, Callable[..., DataSplits]] = {
    "mnist1d": mnist1d,
    "digits": digits,
    "breast_cancer": breast_cancer,
    "wine": wine,
    "diabetes": diabetes,
    "synthetic_classification": synthetic_classification,
    "synthetic_regression": synthetic_regression,
}


def available() -> list[str]:
    """Names of the built-in datasets, for ``reglab.data.load(name)``.

    Example:
        >>> "mnist1d" in available()
        True
    """
    return list(BUILTINS)
