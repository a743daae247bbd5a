import numpy as np
import pytest
import torch
from sklearn import datasets as skd
from sklearn.preprocessing import StandardScaler

from reglab._validation import InvalidParameterError
from reglab.data import available, builtin, load, make_synthetic


def test_mnist1d_shapes_and_official_test_set(mnist1d_run):
    d = mnist1d_run["splits"]
    assert (len(d.train), len(d.val), len(d.test)) == (3500, 500, 1000)
    assert d.input_shape == (40,) and d.num_classes == 10 and d.task == "classification"
    assert d.train.x.shape == (3500, 40) and d.train.x.dtype == torch.float32
    assert d.train.y.dtype == torch.int64 and set(d.train.y.tolist()) == set(range(10))
    assert d.scaler is None  # mnist1d default: already standardized by its generator
    [cached] = list(mnist1d_run["cache"].glob("mnist1d-*.npz"))
    with np.load(cached) as f:
        # The official test set is kept as is, in order; train + val is exactly the official train set.
        np.testing.assert_allclose(d.test.x.numpy(), f["x_test"].astype(np.float32))
        np.testing.assert_array_equal(d.test.y.numpy(), f["y_test"])
        dev = torch.cat([d.train.x, d.val.x]).numpy().astype(np.float64)
        ref = f["x"].astype(np.float32).astype(np.float64)
        assert sorted(map(tuple, dev)) == sorted(map(tuple, ref))
        expected_val = np.bincount(f["y"]) * 500 / 4000
    assert np.abs(np.bincount(d.val.y.numpy(), minlength=10) - expected_val).max() <= 1


def test_mnist1d_leaves_global_rng_untouched(mnist1d_run):
    (py_before, np_before), (py_after, np_after) = mnist1d_run["before"], mnist1d_run["after"]
    assert py_before == py_after
    assert np_before[0] == np_after[0] and np.array_equal(np_before[1], np_after[1])
    assert np_before[2:] == np_after[2:]


def test_mnist1d_second_load_hits_cache(mnist1d_run, monkeypatch):
    monkeypatch.setenv("REGLAB_CACHE_DIR", str(mnist1d_run["cache"]))

    def no_generation(args):
        raise AssertionError("mnist1d was regenerated instead of read from the cache")

    monkeypatch.setattr(builtin, "_generate_mnist1d", no_generation)
    again = load("mnist1d", seed=0)
    first = mnist1d_run["splits"]
    assert torch.equal(again.train.x, first.train.x) and torch.equal(again.val.y, first.val.y)
    other_seed = load("mnist1d", seed=1)
    assert not torch.equal(other_seed.val.y, first.val.y)


def test_mnist1d_corrupt_cache_is_regenerated(mnist1d_run, monkeypatch, tmp_path):
    monkeypatch.setenv("REGLAB_CACHE_DIR", str(tmp_path))
    [cached] = list(mnist1d_run["cache"].glob("mnist1d-*.npz"))
    (tmp_path / cached.name).write_bytes(b"not a zip file")
    with np.load(cached) as f:
        arrays = {k: f[k] for k in f.files}
    calls = []
    monkeypatch.setattr(builtin, "_generate_mnist1d", lambda args: calls.append(1) or arrays)
    d = load("mnist1d", val_size=0.125)
    assert calls == [1] and len(d.val) == 500
    with np.load(tmp_path / cached.name) as f:  # rewritten whole
        np.testing.assert_array_equal(f["y"], arrays["y"])


def test_mnist1d_rejects_test_size():
    expected = r"'test_size' parameter of load\('mnist1d'\) must be None or 0 \(the mnist1d test set is fixed"
    with pytest.raises(InvalidParameterError, match=expected):
        builtin.mnist1d(test_size=0.2)


@pytest.mark.parametrize(
    ("name", "bunch", "task", "n_classes"),
    [
        ("digits", skd.load_digits, "classification", 10),
        ("breast_cancer", skd.load_breast_cancer, "classification", 2),
        ("wine", skd.load_wine, "classification", 3),
        ("diabetes", skd.load_diabetes, "regression", None),
    ],
)
def test_sklearn_sets_match_sklearn(name, bunch, task, n_classes):
    ref = bunch()
    d = load(name, seed=0, scale=False)
    n = len(ref.target)
    assert (d.task, d.num_classes, d.name) == (task, n_classes, name)
    assert d.feature_names == list(ref.feature_names)
    assert len(d.test) == int(np.ceil(0.2 * n)) and len(d.val) == int(np.ceil(0.1 * n))
    assert len(d.train) + len(d.val) + len(d.test) == n
    x = torch.cat([d.train.x, d.val.x, d.test.x]).double().numpy()
    assert sorted(map(tuple, x)) == sorted(map(tuple, ref.data.astype(np.float32).astype(np.float64)))
    assert d.train.y.dtype == (torch.int64 if task == "classification" else torch.float32)
    if task == "classification":
        assert d.classes == [str(c) for c in ref.target_names]


def test_digits_image_layout():
    flat, image = load("digits"), load("digits", image=True)
    assert flat.input_shape == (64,) and image.input_shape == (1, 8, 8)
    assert torch.equal(image.train.x.reshape(-1, 64), flat.train.x)


def test_scaler_fitted_on_train_only():
    raw, scaled = load("wine", seed=3, scale=False), load("wine", seed=3)
    ref = StandardScaler().fit(raw.train.x.double().numpy())
    np.testing.assert_allclose(scaled.scaler.mean_, ref.mean_, rtol=1e-6)
    np.testing.assert_allclose(scaled.scaler.scale_, ref.scale_, rtol=1e-6)
    np.testing.assert_allclose(scaled.test.x.numpy(), ref.transform(raw.test.x.double().numpy()), atol=1e-5)
    all_x = torch.cat([raw.train.x, raw.val.x, raw.test.x]).double().numpy()
    assert np.abs(StandardScaler().fit(all_x).mean_ - ref.mean_).max() > 1e-3  # not fitted on everything


def test_synthetic_data_seed_fixes_the_data_and_seed_the_split():
    a = make_synthetic("classification", 120, 6, seed=0, scale=False)
    b = make_synthetic("classification", 120, 6, seed=1, scale=False)
    x_ref, _ = skd.make_classification(
        n_samples=120, n_features=6, n_informative=3, n_redundant=0, n_classes=2, random_state=0
    )

    def rows(d):
        return sorted(map(tuple, torch.cat([d.train.x, d.val.x, d.test.x]).double().numpy()))

    assert rows(a) == rows(b) == sorted(map(tuple, x_ref.astype(np.float32).astype(np.float64)))
    assert not torch.equal(a.train.x, b.train.x)
    r = load("synthetic_regression", n_samples=50, n_features=3, noise=0.0)
    assert r.task == "regression" and r.input_shape == (3,)


def test_synthetic_errors():
    with pytest.raises(InvalidParameterError, match="'kind' parameter of make_synthetic must be one of"):
        make_synthetic("clasification")
    with pytest.raises(InvalidParameterError, match="'noise' parameter of make_synthetic must be 0"):
        make_synthetic("classification", noise=0.5)
    expected = r"'n_classes' parameter of make_synthetic must be an int in the range \[2, 2\]. Got 5"
    with pytest.raises(InvalidParameterError, match=expected):
        make_synthetic("classification", n_features=2, n_informative=2, n_classes=5)


def test_available_and_unknown_name():
    assert {"mnist1d", "digits", "breast_cancer", "wine", "diabetes"} <= set(available())
    with pytest.raises(InvalidParameterError) as err:
        load("mnist1f")
    msg = str(err.value)
    assert msg.startswith("The 'name' parameter of load must be one of 'mnist1d', ")
    assert "Got 'mnist1f' instead. Did you mean 'mnist1d'?" in msg


def test_unknown_keyword_is_named():
    expected = r"load\('wine'\) does not take the keyword 'sacle'; it takes 'seed', .*Did you mean 'scale'\?"
    with pytest.raises(InvalidParameterError, match=expected):
        load("wine", sacle=False)
