"""from_tensors / from_dataset on bfloat16 and float8 tensors, which have no NumPy dtype."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import TensorDataset

from reglab import data


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float8_e4m3fn])
def test_low_precision_inputs_load_as_their_exact_float32_values(dtype):
    # Tensor.numpy() raised "TypeError: Got unsupported ScalarType BFloat16" (a traceback, no reglab line).
    x = torch.randn(40, 3).to(dtype)
    y = torch.arange(40) % 2
    got = data.from_tensors(x, y, scale=False)
    ref = data.from_tensors(x.float(), y, scale=False)  # every bfloat16 / float8 value is a float32
    for part in ("train", "val", "test"):
        assert torch.equal(getattr(got, part).x, getattr(ref, part).x)
        assert torch.equal(getattr(got, part).y, getattr(ref, part).y)
    assert got.task == "classification" and got.train.x.dtype == torch.float32


def test_bfloat16_regression_targets_and_datasets():
    x = torch.randn(40, 2)
    y = (torch.linspace(0, 3, 40) + 0.01).to(torch.bfloat16)
    got = data.from_tensors(x, y, scale=False)
    ref = data.from_tensors(x, y.float(), scale=False)
    assert got.task == ref.task == "regression" and torch.equal(got.train.y, ref.train.y)
    ds = TensorDataset(x.to(torch.bfloat16), torch.arange(40) % 2)
    from_ds = data.from_dataset(ds, scale=False)
    assert torch.equal(from_ds.train.x, data.from_tensors(x.to(torch.bfloat16).float(), torch.arange(40) % 2,
                                                          scale=False).train.x)
