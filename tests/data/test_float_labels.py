"""Class labels stored as floats (0.0 / 1.0, as BCE losses and many .npz files hold them) are classes.

Before, a float target was regression whatever its values, and a study (which has no task= setting)
trained a regression on 0.0 / 1.0 labels.
"""

import numpy as np
import pandas as pd
import pytest
import torch

from reglab.data import from_tensors, load_csv, load_npz
from reglab.data.files import MAX_CLASSES, infer_task

RNG = np.random.default_rng(0)
X = RNG.normal(size=(60, 3))
LABELS = np.arange(60) % 3


def _same(a, b):
    assert (a.task, a.classes, a.num_classes) == (b.task, b.classes, b.num_classes)
    for part in ("train", "val", "test"):
        assert torch.equal(getattr(a, part).x, getattr(b, part).x)
        assert torch.equal(getattr(a, part).y, getattr(b, part).y)


def test_whole_float_labels_load_as_the_integer_labels(tmp_path):
    ints = from_tensors(X, LABELS, seed=3)
    assert ints.task == "classification" and ints.classes == [0, 1, 2]
    _same(from_tensors(torch.as_tensor(X), torch.as_tensor(LABELS).float(), seed=3), ints)
    np.savez(tmp_path / "d.npz", x=X, y=LABELS.astype(np.float64))
    _same(load_npz(tmp_path / "d.npz", seed=3), ints)
    frame = pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2]})
    frame.assign(y=LABELS).to_csv(tmp_path / "int.csv", index=False)
    frame.assign(y=LABELS.astype(float)).to_csv(tmp_path / "float.csv", index=False)  # written as 0.0, 1.0
    assert "1.0" in (tmp_path / "float.csv").read_text()
    reference = load_csv(tmp_path / "int.csv", target="y", seed=3)
    _same(load_csv(tmp_path / "float.csv", target="y", seed=3), reference)


@pytest.mark.parametrize(
    "y",
    [
        np.arange(60) % 2,
        np.arange(60) % MAX_CLASSES,
        np.arange(60) % (MAX_CLASSES + 1),  # too many values for classes: regression, as integers
        np.arange(60) * 7 - 100,
        np.array([0, 1] * 30) * 10**12,
    ],
)
def test_the_task_does_not_depend_on_whether_whole_numbers_are_stored_as_floats(y):
    assert infer_task(y.astype(np.float64)) == infer_task(y.astype(np.int64))
    assert infer_task(pd.Series(y, dtype="Float64")) == infer_task(y)


def test_fractional_float_targets_stay_regression_and_task_overrides():
    assert from_tensors(X, LABELS + 0.5).task == "regression"
    assert from_tensors(X, RNG.normal(size=60)).task == "regression"
    forced = from_tensors(X, LABELS.astype(float), task="regression")
    assert forced.task == "regression" and forced.train.y.dtype == torch.float32
