"""from_tensors(dtype=): float32 by default (float64 input rounded), float64 kept exact when asked."""

import numpy as np
import pytest
import torch
from sklearn.preprocessing import StandardScaler
from torch.utils.data import TensorDataset

from reglab._validation import InvalidParameterError
from reglab.data import from_dataset, from_tensors, kfold
from reglab.models import MLP
from reglab.train import Trainer

D = torch.float64


def _x(n=40):
    # 1 + 1e-12 needs float64: float32 rounds it to 1.
    x = torch.randn(n, 3, generator=torch.Generator().manual_seed(0), dtype=D)
    x[:, 2] = 1.0 + 1e-12 * torch.arange(n, dtype=D)
    return x


def test_the_default_is_float32_whatever_the_input_and_float64_is_kept_exact_when_asked():
    x, y = _x(), torch.arange(40) % 2
    rounded = from_tensors(x, y, val_size=0, test_size=0, scale=False)  # no split: rows in order
    assert rounded.train.x.dtype == torch.float32 and rounded.dtype == torch.float32
    assert torch.equal(rounded.train.x, x.float()) and not torch.equal(rounded.train.x.double(), x)
    exact = from_tensors(x, y, val_size=0, test_size=0, scale=False, dtype=D)
    assert exact.train.x.dtype == D and exact.dtype == D and torch.equal(exact.train.x, x)
    assert exact.train.y.dtype == torch.int64  # class labels stay indices


def test_float64_scaling_and_regression_targets_match_scikit_learn_in_float64():
    x = _x()
    y = x[:, 0] * 1e-3 + 1.0 + 1e-12  # regression targets that need float64
    d = from_tensors(x.numpy(), y.numpy(), val_size=0, test_size=0, scale_y=True, dtype=D)
    expected_x = StandardScaler().fit_transform(x.numpy())
    expected_y = StandardScaler().fit_transform(y.numpy().reshape(-1, 1)).ravel()
    assert d.task == "regression" and d.train.y.dtype == D
    np.testing.assert_array_equal(d.train.x.numpy(), expected_x)
    np.testing.assert_array_equal(d.train.y.numpy(), expected_y)


def test_every_split_and_every_fold_keeps_the_dtype():
    x, y = _x(60), torch.arange(60) % 3
    d = from_tensors(x, y, dtype=D)
    assert {s.x.dtype for s in (d.train, d.val, d.test)} == {D}
    assert {t.dtype for pair in kfold(d, k=3) for s in pair for t in (s.x,)} == {D}
    assert from_dataset(TensorDataset(x, y), dtype=D).train.x.dtype == D


def test_a_float64_model_trains_on_float64_splits_exactly_as_on_the_tensors():
    """The library's float64 equivalence needs the data in float64: float32 splits were rounded first."""
    x = _x()
    x[:, 2] = x[:, 2] * 1e6  # features whose float32 rounding moves the fit
    y = (x[:, 0] > 0).long()

    def history(data):
        torch.manual_seed(0)
        model = MLP(3, 2, hidden=(4,)).double()
        return Trainer(model, epochs=2, batch_size=8, lr=0.05, progress="off").fit(data)

    reference = history((x, y))
    assert history(from_tensors(x, y, val_size=0, test_size=0, scale=False, dtype=D)).equals(reference)
    assert not history(from_tensors(x, y, val_size=0, test_size=0, scale=False)).equals(reference)


@pytest.mark.parametrize("dtype", [torch.int64, "float64", np.float64, None])
def test_a_dtype_that_is_not_a_floating_torch_dtype_is_one_line(dtype):
    with pytest.raises(InvalidParameterError) as info:
        from_tensors(_x(), torch.arange(40) % 2, dtype=dtype)
    message = str(info.value)
    assert message.startswith("The 'dtype' parameter of load('tensors') must be a floating torch.dtype, e.g. "
                              "torch.float32 (the default) or torch.float64. Got ")
    assert "\n" not in message
