"""torch's BatchNorm1d and LayerNorm against their formulas written out by hand in numpy (float64).

BatchNorm (Ioffe & Szegedy 2015): y = gamma (x - mu_B) / sqrt(var_B + eps) + beta with the *biased* batch
variance; running_mean <- (1 - m) running_mean + m mu_B and running_var <- (1 - m) running_var
+ m var_B^unbiased; eval uses the running statistics. LayerNorm (Ba et al. 2016) normalizes each sample
over its last dims, with the biased variance, identically in training and eval. reglab's models and
mc_predict rely on these semantics. Tolerances: float64, rtol 1e-12 (atol 1e-14 for values near zero).
"""

import numpy as np
import pytest
import torch
from torch import nn


def affine(layer: nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layer.weight.copy_(torch.rand(layer.weight.shape, generator=g, dtype=torch.float64) + 0.5)
        layer.bias.copy_(torch.randn(layer.bias.shape, generator=g, dtype=torch.float64))


def batch_norm_reference(x, gamma, beta, eps, axes):
    mu = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)  # numpy's default ddof=0: biased
    return gamma * (x - mu) / np.sqrt(var + eps) + beta


@pytest.mark.parametrize("shape", [(16, 5), (8, 5, 3)])
def test_batch_norm_training_output_and_running_statistics(shape):
    torch.manual_seed(0)
    bn = nn.BatchNorm1d(5, momentum=0.2, eps=1e-3).double()
    affine(bn, 1)
    axes = (0,) if len(shape) == 2 else (0, 2)
    bcast = (1, 5) if len(shape) == 2 else (1, 5, 1)
    gamma, beta = bn.weight.detach().numpy().reshape(bcast), bn.bias.detach().numpy().reshape(bcast)
    running_mean, running_var = np.zeros(5), np.ones(5)  # torch's initial running statistics
    for step in range(3):
        x = torch.randn(shape, dtype=torch.float64) * 3 + step
        y = bn.train()(x)
        xn = x.numpy()
        np.testing.assert_allclose(
            y.detach().numpy(), batch_norm_reference(xn, gamma, beta, 1e-3, axes), rtol=1e-12, atol=1e-14
        )
        n = xn.size // 5
        mu = xn.mean(axis=axes)
        unbiased = ((xn - mu.reshape(bcast)) ** 2).sum(axis=axes) / (n - 1)
        running_mean = 0.8 * running_mean + 0.2 * mu
        running_var = 0.8 * running_var + 0.2 * unbiased
        np.testing.assert_allclose(bn.running_mean.numpy(), running_mean, rtol=1e-12)
        np.testing.assert_allclose(bn.running_var.numpy(), running_var, rtol=1e-12)
        assert bn.num_batches_tracked.item() == step + 1
    x = torch.randn(shape, dtype=torch.float64)
    with torch.no_grad():
        y = bn.eval()(x)
    expected = gamma * (x.numpy() - running_mean.reshape(bcast)) / np.sqrt(running_var.reshape(bcast) + 1e-3)
    np.testing.assert_allclose(y.numpy(), expected + beta, rtol=1e-12, atol=1e-14)
    assert bn.num_batches_tracked.item() == 3  # eval does not update


def test_batch_norm_momentum_none_is_a_cumulative_average():
    bn = nn.BatchNorm1d(3, momentum=None).double()
    g = torch.Generator().manual_seed(2)
    batches = [torch.randn(10, 3, generator=g, dtype=torch.float64) for _ in range(4)]
    for x in batches:
        bn(x)
    means = np.stack([x.numpy().mean(0) for x in batches])
    variances = np.stack([x.numpy().var(0, ddof=1) for x in batches])
    # running_k = running_{k-1} + (stat_k - running_{k-1}) / k, started from (0, 1): the plain average
    np.testing.assert_allclose(bn.running_mean.numpy(), means.mean(0), rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.numpy(), variances.mean(0), rtol=1e-12)


@pytest.mark.parametrize("normalized_shape", [(6,), (4, 6)])
def test_layer_norm_over_the_last_dims(normalized_shape):
    ln = nn.LayerNorm(normalized_shape, eps=1e-4).double()
    affine(ln, 3)
    x = torch.randn(5, 4, 6, dtype=torch.float64) * 2 + 1
    axes = tuple(range(x.ndim - len(normalized_shape), x.ndim))
    xn = x.numpy()
    mu, var = xn.mean(axis=axes, keepdims=True), xn.var(axis=axes, keepdims=True)
    expected = ln.weight.detach().numpy() * (xn - mu) / np.sqrt(var + 1e-4) + ln.bias.detach().numpy()
    np.testing.assert_allclose(ln.train()(x).detach().numpy(), expected, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(ln.eval()(x).detach().numpy(), expected, rtol=1e-12, atol=1e-13)
    assert dict(ln.named_buffers()) == {}  # no running statistics


def test_layer_norm_is_per_sample_and_batch_norm_is_not():
    torch.manual_seed(4)
    x = torch.randn(8, 6, dtype=torch.float64)
    ln, bn = nn.LayerNorm(6).double(), nn.BatchNorm1d(6).double()
    torch.testing.assert_close(ln(x)[:3], ln(x[:3]), rtol=0, atol=1e-15)
    assert not torch.allclose(bn(x)[:3], bn(x[:3]))
