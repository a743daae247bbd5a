"""reglab.layers.functional: seeded statistical checks (tolerances = 5 standard errors) and references."""

import math

import pytest
import torch
import torch.nn.functional as F

from reglab._validation import InvalidParameterError
from reglab.layers import functional as RF

N = 100_000  # elements per statistical check: standard errors of about 2e-3


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_dropout_keeps_the_mean_and_drops_a_fraction_p():
    p = 0.3
    y = RF.dropout(torch.ones(N, dtype=torch.float64), p, training=True, generator=gen())
    assert set(y.unique().tolist()) == {0.0, 1 / (1 - p)}
    frac = (y == 0).double().mean().item()
    assert abs(frac - p) < 5 * math.sqrt(p * (1 - p) / N)
    assert abs(y.mean().item() - 1.0) < 5 * math.sqrt(p / (1 - p) / N)


def test_dropout_in_eval_is_the_input_as_in_torch():
    x = torch.randn(4, 5)
    assert RF.dropout(x, 0.5, training=False) is x
    assert torch.equal(F.dropout(x, 0.5, training=False), RF.dropout(x, 0.5, training=False))


@pytest.mark.parametrize(
    "fn",
    [
        lambda x, **kw: RF.dropout(x, 0.4, **kw),
        lambda x, **kw: RF.drop_path(x, 0.4, **kw),
        lambda x, **kw: RF.gaussian_noise(x, 0.4, **kw),
        lambda x, **kw: RF.gaussian_dropout(x, 0.4, **kw),
    ],
)
def test_same_seed_same_output_and_identity_in_eval(fn):
    x = torch.randn(64, 8, dtype=torch.float64)
    a, b = fn(x, training=True, generator=gen(1)), fn(x, training=True, generator=gen(1))
    c = fn(x, training=True, generator=gen(2))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert fn(x, training=False, generator=gen(1)) is x


@pytest.mark.parametrize("fn", [RF.dropout, RF.drop_path, RF.gaussian_dropout, RF.gaussian_noise])
def test_zero_rate_is_identity_in_training(fn):
    x = torch.randn(10, 3)
    assert fn(x, 0.0, training=True, generator=gen()) is x


def test_drop_path_drops_whole_samples_and_scales_survivors():
    p, n = 0.25, 4000
    x = torch.rand(n, 3, 5, dtype=torch.float64) + 0.5  # strictly positive: a zero means dropped
    y = RF.drop_path(x, p, training=True, generator=gen())
    dropped = (y == 0).flatten(1).all(1)
    kept = torch.isclose(y, x / (1 - p), rtol=0, atol=1e-15).flatten(1).all(1)
    assert bool((dropped ^ kept).all())  # each sample is entirely one or the other
    assert abs(dropped.double().mean().item() - p) < 5 * math.sqrt(p * (1 - p) / n)
    unscaled = RF.drop_path(x, p, training=True, generator=gen(), scale_by_keep=False)
    assert torch.equal(unscaled[~dropped], x[~dropped])


def test_gaussian_noise_has_the_stated_std_and_zero_mean():
    sigma = 0.7
    x = torch.full((N,), 3.0, dtype=torch.float64)
    noise = RF.gaussian_noise(x, sigma, training=True, generator=gen()) - x
    assert abs(noise.mean().item()) < 5 * sigma / math.sqrt(N)
    assert abs(noise.std().item() - sigma) < 5 * sigma / math.sqrt(2 * N)


def test_gaussian_dropout_is_multiplicative_with_keras_variance():
    p = 0.3
    var = p / (1 - p)  # Keras GaussianDropout: stddev = sqrt(rate / (1 - rate))
    x = torch.full((N,), 2.0, dtype=torch.float64)
    factor = RF.gaussian_dropout(x, p, training=True, generator=gen()) / x
    assert abs(factor.mean().item() - 1.0) < 5 * math.sqrt(var / N)
    assert abs(factor.var().item() - var) < 5 * var * math.sqrt(2 / N)
    assert torch.equal(RF.gaussian_dropout(torch.zeros(5), p, training=True, generator=gen()), torch.zeros(5))


def test_drop_connect_drops_weights_not_activations():
    p = 0.5
    w = torch.randn(30, 40, dtype=torch.float64)
    b = torch.randn(30, dtype=torch.float64)
    eye = torch.eye(40, dtype=torch.float64)  # row i of the output is column i of the effective weight
    assert torch.allclose(RF.drop_connect(eye, w, b, p, training=False), F.linear(eye, w, b))
    effective = (RF.drop_connect(eye, w, b, p, training=True, generator=gen()) - b).T
    zero = effective == 0
    assert torch.allclose(effective[~zero], w[~zero] / (1 - p), rtol=1e-12)
    assert abs(zero.double().mean().item() - p) < 5 * math.sqrt(p * (1 - p) / w.numel())
    # one mask per call, shared by the batch: two copies of the same input give the same output
    x = torch.randn(1, 40, dtype=torch.float64).expand(2, 40)
    y = RF.drop_connect(x, w, b, p, training=True, generator=gen(3))
    assert torch.equal(y[0], y[1])


def test_drop_connect_keeps_the_expected_output():
    p, draws = 0.4, 4000
    g = gen()
    w, x = torch.randn(3, 6, dtype=torch.float64), torch.randn(2, 6, dtype=torch.float64)
    outs = torch.stack([RF.drop_connect(x, w, None, p, training=True, generator=g) for _ in range(draws)])
    se = outs.std(0) / math.sqrt(draws)
    assert bool(((outs.mean(0) - x @ w.T).abs() < 5 * se).all())


@pytest.mark.parametrize("p", [1.0, -0.1, 1.5, float("nan"), "0.5", True])
def test_bad_rate_is_one_clear_error(p):
    expected = r"^The 'p' parameter of drop_path must be a float in the range \[0, 1\)\. Got .* instead\.$"
    with pytest.raises(InvalidParameterError, match=expected):
        RF.drop_path(torch.ones(2), p, training=True)


def test_negative_sigma_is_one_clear_error():
    with pytest.raises(InvalidParameterError) as info:
        RF.gaussian_noise(torch.ones(2), -0.5, training=True)
    assert str(info.value) == (
        "The 'sigma' parameter of gaussian_noise must be a float in the range [0, inf). Got -0.5 instead."
    )


def test_training_is_a_bool_and_drop_path_needs_a_batch():
    import pytest

    from reglab._validation import InvalidParameterError
    from reglab.layers import functional as RF

    for call in (lambda: RF.dropout(torch.ones(3), 0.5, training="False"),
                 lambda: RF.gaussian_noise(torch.ones(3), 0.5, training="False"),
                 lambda: RF.drop_path(torch.ones(3), 0.5, training="no")):
        with pytest.raises(InvalidParameterError, match=r"'training' parameter of \w+ must be a bool"):
            call()  # a truthy string would have dropped units
    with pytest.raises(InvalidParameterError, match=r"'x' parameter of drop_path must be a batch"):
        RF.drop_path(torch.tensor(1.0), 0.5, training=True)
