"""The splits own their memory: they never alias the caller's arrays (nor a data frame's read-only buffer)."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from reglab.data import from_frame, from_tensors, kfold


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_changing_the_callers_tensors_afterwards_leaves_the_splits_and_folds_alone(dtype):
    x = torch.randn(30, 3, generator=torch.Generator().manual_seed(0), dtype=dtype)
    y = torch.randn(30, dtype=dtype)
    # No val / test split and no scaling: nothing copied the rows; the train split was the caller's x itself.
    d = from_tensors(x, y, val_size=0, test_size=0, scale=False, dtype=dtype)
    before_x, before_y = x.clone(), y.clone()
    folds_before = [(t.x.clone(), v.y.clone()) for t, v in kfold(d, k=3)]
    x.add_(100.0)
    y.mul_(-1.0)
    assert torch.equal(d.train.x, before_x) and torch.equal(d.train.y, before_y)
    for (tx, vy), (t, v) in zip(folds_before, kfold(d, k=3)):
        assert torch.equal(t.x, tx) and torch.equal(v.y, vy)


def test_a_data_frames_read_only_columns_are_copied_without_a_warning():
    frame = pd.DataFrame({"a": np.linspace(0, 1, 30), "y": np.linspace(5, 6, 30)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warned: "The given NumPy array is not writable"
        d = from_frame(frame, "y", val_size=0, test_size=0, scale=False, dtype=torch.float64)
    d.train.y.add_(1.0)
    np.testing.assert_array_equal(frame["y"].to_numpy(), np.linspace(5, 6, 30))
