"""Finite data that cannot be held finite in the splits (a float32 overflow, standardizing 1e300) is one line.

Before, the splits silently held inf / NaN (after a few numpy RuntimeWarnings) and the failure came
later, from the trainer, without naming the column.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from reglab.data import from_tensors, kfold, load, split_arrays
from reglab.errors import UserError

RNG = np.random.default_rng(0)
Y = np.arange(40) % 2


def _x(column_scale):
    x = RNG.normal(size=(40, 3))
    x[:, 1] *= column_scale
    return x


def test_values_beyond_float32_name_the_feature_and_the_way_out(tmp_path):
    x = _x(1e39)
    pd.DataFrame({"a": x[:, 0], "big": x[:, 1], "y": Y}).to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(UserError) as err:
        load(str(tmp_path / "d.csv"), target="y", scale=False)
    peak = np.abs(pd.read_csv(tmp_path / "d.csv")["big"]).max()
    assert str(err.value).startswith(
        f"Feature 'big' of d.csv does not fit the float32 splits: its values reach {peak:.3g} in magnitude "
        "and float32 holds at most 3.4e+38; "
    )
    exact = from_tensors(x, Y, scale=False, val_size=0, test_size=0, dtype=torch.float64)  # the way out
    np.testing.assert_array_equal(exact.train.x.numpy(), x)


def test_standardizing_values_near_float64s_limit_is_refused_not_nan():
    x = _x(1e300)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy overflow warnings on the way
        expected = (r"^Feature index 1 of tensors does not fit the float32 splits: its values reach .*e\+300 "
                    r"in magnitude and standardizing them overflows .*; divide it by a power of 10 "
                    r"or drop it\.$")
        with pytest.raises(UserError, match=expected):
            from_tensors(x, Y)
    assert torch.isfinite(from_tensors(_x(1e30), Y).train.x).all()  # large but standardizable: fine
    assert torch.isfinite(from_tensors(_x(1e30), Y, scale=False).train.x).all()  # within float32


def test_regression_targets_are_checked_too():
    y = RNG.normal(size=40) * 1e39
    with pytest.raises(UserError, match=r"^The targets of tensors do not fit the float32 splits: they reach"):
        from_tensors(_x(1), y)
    assert torch.isfinite(from_tensors(_x(1), y, scale_y=True).train.y).all()  # standardized: fine


def test_kfold_folds_are_checked_like_the_splits():
    # One 1e39 row: standardized with it, it is about 6; a fold whose training part lacks it leaves it
    # near 1e39, beyond float32. split_arrays (val 0, test 0) keeps it in train, where the scaler sees it.
    x = _x(1)
    x[7, 0] = 1e39
    d = split_arrays(x, Y, task="classification", name="t", val_size=0, test_size=0)
    assert torch.isfinite(d.train.x).all()
    with pytest.raises(UserError, match=r"^Feature index 0 of t does not fit the float32 splits"):
        list(kfold(d, k=2))
