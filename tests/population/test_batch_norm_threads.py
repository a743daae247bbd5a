"""BatchNorm members give the same numbers whatever the thread split (threads=1 against 2)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from reglab.models import CNN1D, MLP
from reglab.population import Population
from reglab.population._stack import batch_norm_train
from tests.population.conftest import make_data


@pytest.fixture
def two_intra_op_threads():
    # threads=1 runs one shard on the process's intra-op threads: with two, torch's BatchNorm kernel
    # split a (B, C) batch between them, and the sums (so the weights) differed from threads=2's.
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize(
    "build,features",
    [
        (lambda: MLP(24, 3, hidden=(16, 16), norm="batch"), 24),  # the hand-written backward
        (lambda: CNN1D(8, 3, channels=8, norm="batch"), 8),  # its last convolution has length 1
    ],
    ids=["mlp", "cnn-length-1"],
)
def test_batch_norm_results_do_not_depend_on_threads(two_intra_op_threads, build, features):
    train = make_data(96, features, 3, seed=2)
    configs = [{"lr": 3e-2, "seed": s} for s in range(4)]
    states = []
    for threads in (1, 2):
        pop = Population(build(), configs, seed=5, dtype=torch.float64, threads=threads)
        pop.fit(train, epochs=2, batch_size=16, progress="off")
        states.append([pop.member(k).state_dict() for k in range(len(configs))])
    for one, two in zip(*states, strict=True):
        for name in one:
            assert torch.equal(one[name], two[name]), name  # was 6e-10 (MLP), 2e-9 (CNN) apart


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_batch_norm_train_is_torchs_batch_norm(dtype):
    """Output, running statistics (unbiased variance) and gradients as F.batch_norm's, to rounding."""
    g = torch.Generator().manual_seed(0)
    x = (3 + 2 * torch.randn(20, 6, generator=g, dtype=torch.float64)).to(dtype).requires_grad_()
    w = torch.rand(6, generator=g, dtype=torch.float64).add(0.5).to(dtype).requires_grad_()
    b = torch.randn(6, generator=g, dtype=torch.float64).to(dtype).requires_grad_()
    mean, var = torch.randn(6, dtype=dtype), torch.rand(6, dtype=dtype) + 1
    want_mean, want_var = mean.clone(), var.clone()
    got = batch_norm_train(x, w, b, mean, var, 0.1, 1e-5)[0]
    want = F.batch_norm(x, want_mean, want_var, w, b, training=True, momentum=0.1, eps=1e-5)
    tol = {torch.float64: 1e-12, torch.float32: 1e-5, torch.bfloat16: 2e-2}[dtype]
    assert got.dtype == dtype
    torch.testing.assert_close(got, want, rtol=tol, atol=tol)
    torch.testing.assert_close(mean, want_mean, rtol=tol, atol=tol)
    torch.testing.assert_close(var, want_var, rtol=tol, atol=tol)
    dy = torch.randn(20, 6, generator=g, dtype=torch.float64).to(dtype)
    for a, c in zip(torch.autograd.grad(got, (x, w, b), dy), torch.autograd.grad(want, (x, w, b), dy)):
        torch.testing.assert_close(a, c, rtol=tol, atol=tol * 10)
