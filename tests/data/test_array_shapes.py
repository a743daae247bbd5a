"""Array shapes and kinds users bring: targets of shape (n, 1), a 1-D x, complex numbers."""

import numpy as np
import pandas as pd
import pytest
import torch

from reglab.data import from_frame, from_tensors, load_npz
from reglab.errors import UserError

RNG = np.random.default_rng(0)
X = RNG.normal(size=(30, 3))


@pytest.mark.parametrize("y", [np.arange(30) % 3, RNG.normal(size=30)], ids=["classes", "regression"])
def test_targets_of_shape_n_by_1_are_the_same_targets(y, tmp_path):
    flat = from_tensors(X, y, seed=0)
    column = from_tensors(torch.as_tensor(X), torch.as_tensor(y).reshape(-1, 1), seed=0)
    np.savez(tmp_path / "d.npz", x=X, y=y.reshape(-1, 1))
    for d in (column, load_npz(tmp_path / "d.npz", seed=0)):
        assert d.task == flat.task and d.train.y.shape == flat.train.y.shape
        for part in ("train", "val", "test"):
            assert torch.equal(getattr(d, part).y, getattr(flat, part).y)
            assert torch.equal(getattr(d, part).x, getattr(flat, part).x)


def test_other_target_shapes_are_refused():
    with pytest.raises(UserError, match=r"targets of shape \(n,\).*got x \(30, 3\) and y \(30, 2\)"):
        from_tensors(X, np.zeros((30, 2)))


def test_a_one_dimensional_x_says_how_to_make_it_one_feature():
    with pytest.raises(UserError) as err:
        from_tensors(X[:, 0], np.arange(30) % 2)
    assert str(err.value) == (
        "tensors must hold inputs of shape (n, ...) and targets of shape (n,); got x (30,) and y (30,). "
        "For one feature per row, reshape x to (n, 1): x.reshape(-1, 1)."
    )


def test_complex_inputs_are_refused_not_truncated():
    with pytest.raises(UserError, match=r"^The inputs of tensors are complex \(dtype complex128\); "):
        from_tensors(X * 1j, np.arange(30) % 2)
    with pytest.raises(UserError, match=r"^The targets of tensors are complex \(dtype complex128\); "):
        from_tensors(X, RNG.normal(size=30) * 1j)
    frame = pd.DataFrame({"a": X[:, 0] + 1j * X[:, 1], "b": X[:, 2], "y": np.arange(30) % 2})
    # to_numpy(float64) dropped the imaginary part with only a ComplexWarning.
    with pytest.raises(UserError, match=r"^The feature column 'a' of dataframe is complex \(dtype complex"):
        from_frame(frame, "y")
