import math

import pytest
import torch

from reglab._validation import InvalidParameterError
from reglab.augment import FeatureDropout, FeatureNoise


def test_feature_noise_std():
    x = torch.zeros(1000, 50, dtype=torch.float64)
    out, y = FeatureNoise(0.3)(x, "y", generator=torch.Generator().manual_seed(0))
    assert y == "y" and out.std().item() == pytest.approx(0.3, rel=0.015)


@pytest.mark.parametrize("rescale", [False, True])
def test_feature_dropout_rate_and_survivors(rescale):
    p = 0.25
    x = torch.rand(400, 50, generator=torch.Generator().manual_seed(1), dtype=torch.float64) + 1.0
    out, _ = FeatureDropout(p, rescale=rescale)(x, None, generator=torch.Generator().manual_seed(2))
    dropped = out == 0
    n = x.numel()
    assert abs(dropped.double().mean().item() - p) < 5 * math.sqrt(p * (1 - p) / n)
    scale = 1 / (1 - p) if rescale else 1.0
    torch.testing.assert_close(out[~dropped], x[~dropped] * scale)


def test_tabular_errors():
    expected = r"'p' parameter of FeatureDropout must be a float in the range \[0, 1\)"
    with pytest.raises(InvalidParameterError, match=expected):
        FeatureDropout(1.0)
    expected = r"'x' parameter of FeatureNoise must be a floating tensor of shape \(N, F\)"
    with pytest.raises(InvalidParameterError, match=expected):
        FeatureNoise(0.1)(torch.zeros(2, 3, 4), None, generator=torch.Generator())
