"""Datasets, all offline: built-in sets, user files, seeded splits, train-only scaling, k-fold.

Example:
    >>> from reglab import data
    >>> d = data.load("wine", seed=0)
    >>> d.train.x.dtype, d.train.y.dtype
    (torch.float32, torch.int64)
"""

import random as _random

# scikit-learn (its progress-bar callback, sklearn.callback) imports rich, and rich.style draws from Python's
# global `random` generator at import (getrandbits): a library must not shift the stream of a user who seeded
# it, so the state is put back. NumPy's and torch's global generators are not touched by these imports.
_state = _random.getstate()
try:
    from reglab.data._cache import cache_dir
    from reglab.data._load import load
    from reglab.data.builtin import available, make_synthetic
    from reglab.data.files import from_dataset, from_frame, from_tensors, load_csv, load_npz, load_parquet
    from reglab.data.splits import DataSplits, TensorSplit, kfold, split_arrays
finally:
    _random.setstate(_state)
    del _state

__all__ = [
    "load",
    "available",
    "make_synthetic",
    "load_csv",
    "load_npz",
    "load_parquet",
    "from_frame",
    "from_tensors",
    "from_dataset",
    "DataSplits",
    "TensorSplit",
    "split_arrays",
    "kfold",
    "cache_dir",
]
