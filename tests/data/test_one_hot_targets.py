"""One-hot targets given to from_tensors / an .npz are refused in one line that says to use y.argmax(1)."""

import numpy as np
import pytest
import torch

from reglab import data
from reglab.errors import UserError


def test_one_hot_y_is_refused_with_the_argmax_advice(tmp_path):
    labels = torch.arange(60) % 3
    x, y = torch.randn(60, 4), torch.eye(3)[labels]
    np.savez(tmp_path / "oh.npz", x=x.numpy(), y=y.numpy())
    for load in (lambda: data.from_tensors(x, y), lambda: data.load(tmp_path / "oh.npz")):
        with pytest.raises(UserError) as info:
            load()
        message = str(info.value)
        assert "\n" not in message and "got x (60, 4) and y (60, 3)" in message
        assert "looks one-hot (3 columns of 0/1, one 1 a row): use the class indices y.argmax(1)." in message
    assert data.from_tensors(x, y.argmax(1)).num_classes == 3  # the advice works
    with pytest.raises(UserError) as info:  # probabilities are not one-hot: no such advice
        data.from_tensors(x, torch.full((60, 3), 1 / 3))
    assert "one-hot" not in str(info.value)
