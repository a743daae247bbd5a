import numpy as np
import pytest
import torch
from sklearn.preprocessing import StandardScaler
from torch.utils.data import DataLoader

from reglab._validation import InvalidParameterError
from reglab.data import TensorSplit, kfold, split_arrays
from reglab.errors import UserError


def _imbalanced(n=203, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1, 2], [n - 70 - 21, 70, 21])
    # Column 0 is the row number, so tests can tell which rows went where.
    x = np.column_stack([np.arange(n, dtype=float), rng.normal(size=n) * 5 + 3])
    return x, y


def _rows(split):
    return split.x[:, 0].round().long().tolist()


def _split(seed, **kw):
    x, y = _imbalanced()
    return split_arrays(x, y, task="classification", name="toy", seed=seed, **kw)


def test_sizes_partition_and_determinism():
    x, y = _imbalanced()
    d = _split(7, val_size=0.15, test_size=30, scale=False)
    assert (len(d.val), len(d.test)) == (int(np.ceil(0.15 * 203)), 30)
    ids = _rows(d.train) + _rows(d.val) + _rows(d.test)
    assert sorted(ids) == list(range(203))  # disjoint and complete
    assert all(y[i] == lab for i, lab in zip(_rows(d.train), d.train.y.tolist()))
    again = _split(7, val_size=0.15, test_size=30, scale=False)
    assert _rows(again.val) == _rows(d.val) and _rows(again.test) == _rows(d.test)
    other = _split(8, val_size=0.15, test_size=30, scale=False)
    assert _rows(other.test) != _rows(d.test)


@pytest.mark.parametrize("seed", range(5))
def test_splits_are_stratified(seed):
    x, y = _imbalanced()
    d = split_arrays(x, y, task="classification", name="toy", seed=seed, val_size=0.2, test_size=0.2)
    total = np.bincount(y)
    for split in (d.train, d.val, d.test):
        expected = total * len(split) / len(y)
        assert np.abs(np.bincount(split.y.numpy(), minlength=3) - expected).max() <= 1.0


def test_zero_sizes_give_no_split():
    x, y = _imbalanced()
    d = split_arrays(x, y, task="classification", name="toy", val_size=0, test_size=None)
    assert d.val is None and d.test is None and len(d.train) == 203
    assert "val: (none)" in d.describe()


def test_scaling_uses_train_statistics_only():
    x, y = _imbalanced()
    d = split_arrays(x, y, task="classification", name="toy", seed=1)
    raw = split_arrays(x, y, task="classification", name="toy", seed=1, scale=False)
    ref = StandardScaler().fit(d._raw["train"][0])
    np.testing.assert_allclose(d.scaler.mean_, ref.mean_)
    np.testing.assert_allclose(d.val.x.numpy(), ref.transform(raw.val.x.double().numpy()), atol=1e-5)
    assert torch.allclose(d.train.x.double().mean(0), torch.zeros(2, dtype=torch.float64), atol=1e-6)


def test_regression_scale_y():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 3)), rng.normal(size=60) * 10 + 50
    d = split_arrays(x, y, task="regression", name="reg", seed=0, scale_y=True)
    raw = split_arrays(x, y, task="regression", name="reg", seed=0, scale_y=False)
    assert d.train.y.dtype == torch.float32
    assert d.y_scaler.mean_[0] == pytest.approx(raw.train.y.double().mean().item(), rel=1e-6)
    back = d.y_scaler.inverse_transform(d.test.y.double().numpy().reshape(-1, 1)).ravel()
    np.testing.assert_allclose(back, raw.test.y.numpy(), rtol=1e-5)
    assert d.num_classes is None
    assert d.describe().splitlines()[0].split(": ", 1)[1].startswith("regression, input")  # said once
    with pytest.raises(InvalidParameterError, match="'scale_y' parameter of load\\('toy'\\) must be False"):
        split_arrays(*_imbalanced(), task="classification", name="toy", scale_y=True)


def test_tensor_split_is_a_dataset():
    s = TensorSplit(torch.arange(10.0).reshape(5, 2), torch.tensor([0, 1, 0, 1, 1]))
    xb, yb = next(iter(DataLoader(s, batch_size=5)))
    assert torch.equal(xb, s.x) and torch.equal(yb, s.y) and len(s) == 5


def test_bad_sizes_and_too_few_rows():
    x, y = _imbalanced()
    expected = r"'val_size' parameter of load\('toy'\) must be an int >= 0 or a float in the range \(0, 1\)"
    with pytest.raises(InvalidParameterError, match=expected):
        _split(0, val_size=1.5)
    expected = "too few rows for the requested splits \\(-7 train / 110 val / 100 test from 203 rows\\)"
    with pytest.raises(UserError, match=expected):
        _split(0, val_size=110, test_size=100)
    with pytest.raises(UserError, match="the test split gets 2 rows but there are 3 classes"):
        split_arrays(x, y, task="classification", name="toy", test_size=2)
    tiny_y = np.array([0] * 10 + [1, 1])
    with pytest.raises(UserError, match="class index 1 has 2 example\\(s\\) but 3 splits need one each"):
        split_arrays(np.zeros((12, 1)), tiny_y, task="classification", name="toy", val_size=3, test_size=3)


def test_kfold_partitions_stratifies_and_rescales_per_fold():
    x, y = _imbalanced()
    raw = split_arrays(x, y, task="classification", name="toy", seed=0, scale=False)
    scaled = split_arrays(x, y, task="classification", name="toy", seed=0)
    dev_ids = sorted(_rows(raw.train) + _rows(raw.val))
    folds_raw, folds = list(kfold(raw, k=4, seed=2)), list(kfold(scaled, k=4, seed=2))
    assert len(folds) == 4
    assert sorted(i for _, v in folds_raw for i in _rows(v)) == dev_ids  # each dev row validates once
    dev_counts = np.bincount(y[dev_ids])
    for (tr_raw, va_raw), (_, va) in zip(folds_raw, folds):
        assert not set(_rows(tr_raw)) & set(_rows(va_raw))
        expected = dev_counts * len(va_raw) / len(dev_ids)
        assert np.abs(np.bincount(va_raw.y.numpy(), minlength=3) - expected).max() <= 1.0
        ref = StandardScaler().fit(tr_raw.x.double().numpy())
        np.testing.assert_allclose(va.x.numpy(), ref.transform(va_raw.x.double().numpy()), atol=1e-4)
    again = list(kfold(raw, k=4, seed=2))
    assert all(torch.equal(a[1].x, b[1].x) for a, b in zip(again, folds_raw))
    rarest = int(dev_counts.min())
    expected = f"the rarest class has {rarest} development rows, too few for k={rarest + 1}"
    with pytest.raises(UserError, match=expected):
        list(kfold(raw, k=rarest + 1))
    expected = "'k' parameter of kfold must be an int in the range \\[2, inf\\). Got 1 instead."
    with pytest.raises(InvalidParameterError, match=expected):
        list(kfold(raw, k=1))


def test_kfold_of_something_else_than_data_splits_is_one_clear_error():
    with pytest.raises(InvalidParameterError, match=r"The 'splits' parameter of kfold must be a DataSplits"):
        list(kfold((torch.randn(10, 2), torch.arange(10) % 2), k=2))
