"""dtype= on every loader (files, data frames, built-in sets), as from_tensors: float32 by default,
float64 keeps the data exact, anything but a floating torch.dtype is one line."""

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn import datasets as skd
from sklearn.preprocessing import StandardScaler

from reglab._validation import InvalidParameterError
from reglab.data import builtin, from_frame, load, load_csv, load_npz, load_parquet

D = torch.float64
N = 40
RNG = np.random.default_rng(0)
# 1 + 1e-12 * i needs float64: float32 rounds every value of 'fine' to 1.
FRAME = pd.DataFrame({"coarse": RNG.normal(size=N), "fine": 1.0 + 1e-12 * np.arange(N),
                      "label": np.arange(N) % 2, "amount": 1.0 + 1e-12 * RNG.normal(size=N)})


def _write(tmp_path, kind):
    if kind == "csv":
        FRAME.to_csv(tmp_path / "d.csv", index=False, float_format="%.17g")
        return tmp_path / "d.csv", pd.read_csv(tmp_path / "d.csv")
    if kind == "parquet":
        FRAME.to_parquet(tmp_path / "d.parquet")
        return tmp_path / "d.parquet", pd.read_parquet(tmp_path / "d.parquet")
    np.savez(tmp_path / "d.npz", x=FRAME[["coarse", "fine"]].to_numpy(), y=FRAME["label"].to_numpy(),
             amount=FRAME["amount"].to_numpy())
    return tmp_path / "d.npz", FRAME


def _loaders(tmp_path, kind, target):
    path, stored = _write(tmp_path, kind)
    if kind == "npz":
        y_key = "y" if target == "label" else "amount"
        return (lambda **kw: load_npz(path, y_key=y_key, **kw)), stored
    features = ["coarse", "fine"]
    read = {"csv": load_csv, "parquet": load_parquet}.get(kind)
    if read is None:
        return (lambda **kw: from_frame(FRAME, target, features=features, **kw)), FRAME
    return (lambda **kw: read(path, target=target, features=features, **kw)), stored


@pytest.mark.parametrize("kind", ["csv", "parquet", "npz", "frame"])
def test_float64_keeps_the_files_values_exact_and_float32_is_the_default(tmp_path, kind):
    read, stored = _loaders(tmp_path, kind, "label")
    values = stored[["coarse", "fine"]].to_numpy()
    whole = dict(val_size=0, test_size=0)  # no split: the rows in file order
    exact = read(scale=False, dtype=D, **whole)
    assert exact.dtype == D and exact.train.x.dtype == D and exact.train.y.dtype == torch.int64
    np.testing.assert_array_equal(exact.train.x.numpy(), values)
    rounded = read(scale=False, **whole)
    assert rounded.dtype == torch.float32 and rounded.train.x.dtype == torch.float32
    assert torch.equal(rounded.train.x, torch.tensor(values).float())
    assert not np.array_equal(rounded.train.x.double().numpy(), values)
    scaled = read(dtype=D, **whole)  # standardized in float64, as scikit-learn does
    np.testing.assert_array_equal(scaled.train.x.numpy(), StandardScaler().fit_transform(values))


@pytest.mark.parametrize("kind", ["csv", "parquet", "npz", "frame"])
def test_float64_keeps_regression_targets_exact(tmp_path, kind):
    read, stored = _loaders(tmp_path, kind, "amount")
    d = read(val_size=0, test_size=0, dtype=D)
    assert d.task == "regression" and d.train.y.dtype == D
    np.testing.assert_array_equal(d.train.y.numpy(), stored["amount"].to_numpy())


def test_load_passes_dtype_to_the_file_loader(tmp_path):
    path, stored = _write(tmp_path, "csv")
    d = load(str(path), target="label", features=["coarse", "fine"], scale=False, val_size=0, test_size=0,
             dtype=D)
    np.testing.assert_array_equal(d.train.x.numpy(), stored[["coarse", "fine"]].to_numpy())


SKLEARN = {"digits": skd.load_digits, "breast_cancer": skd.load_breast_cancer, "wine": skd.load_wine,
           "diabetes": skd.load_diabetes}


@pytest.mark.parametrize("name", list(SKLEARN))
def test_builtin_sets_in_float64_hold_scikit_learns_values_exactly(name):
    bunch = SKLEARN[name]()
    raw = load(name, seed=1, scale=False, dtype=D)
    assert raw.dtype == D and {s.x.dtype for s in (raw.train, raw.val, raw.test)} == {D}
    rows = {tuple(r) for r in bunch.data}
    assert all(tuple(r) in rows for r in raw.train.x.numpy())  # each row exactly one of the data's
    scaled = load(name, seed=1, dtype=D)
    scaler = StandardScaler().fit(raw.train.x.numpy())  # fitted on the training split only
    for part in ("train", "val", "test"):
        expected = scaler.transform(getattr(raw, part).x.numpy())
        np.testing.assert_array_equal(getattr(scaled, part).x.numpy(), expected)
    if name == "diabetes":
        assert raw.train.y.dtype == D and set(raw.train.y.tolist()) <= set(bunch.target.tolist())
    assert load(name, seed=1).train.x.dtype == torch.float32


def test_synthetic_sets_in_float64_match_scikit_learns_generator():
    x, _ = skd.make_regression(n_samples=100, n_features=5, n_informative=2, noise=0.1, random_state=0)
    d = builtin.make_synthetic("regression", 100, 5, noise=0.1, scale=False, val_size=0, test_size=0, dtype=D)
    np.testing.assert_array_equal(d.train.x.numpy(), x)
    assert load("synthetic_classification", n_samples=60, dtype=D).train.x.dtype == D
    assert load("synthetic_regression", n_samples=60, dtype=D).train.y.dtype == D


def test_mnist1d_in_float64_keeps_the_official_test_set_exact(mnist1d_run, monkeypatch):
    monkeypatch.setenv("REGLAB_CACHE_DIR", str(mnist1d_run["cache"]))
    [cached] = list(mnist1d_run["cache"].glob("mnist1d-*.npz"))
    d = load("mnist1d", dtype=D)
    with np.load(cached) as f:
        np.testing.assert_array_equal(d.test.x.numpy(), f["x_test"])


@pytest.mark.parametrize("dtype", [torch.int64, "float64", np.float64, None])
@pytest.mark.parametrize("name", ["d.csv", "d.parquet", "d.npz", "wine", "synthetic_regression"])
def test_a_dtype_that_is_not_a_floating_torch_dtype_is_the_same_line_everywhere(tmp_path, name, dtype):
    kind = name.rpartition(".")[2]
    if kind in ("csv", "parquet", "npz"):
        path, _ = _write(tmp_path, kind)
        source, keywords = str(path), ({} if kind == "npz" else {"target": "label"})
    else:
        source, keywords = name, {}
    with pytest.raises(InvalidParameterError) as info:
        load(source, dtype=dtype, **keywords)
    message = str(info.value)
    assert message.startswith(f"The 'dtype' parameter of load({name!r}) must be a floating torch.dtype, e.g. "
                              "torch.float32 (the default) or torch.float64. Got ")
    assert "\n" not in message
