"""The hand-written MLP backward against autograd on the same stacked net, masks and batch (float64)."""

from __future__ import annotations

import warnings

import pytest
import torch

from reglab.models import ACTIVATIONS, CNN1D, MLP
from reglab.population import _backprop
from reglab.population._dropout import Dropout
from reglab.population._loss import correct, cross_entropy
from reglab.population._stack import StackedNet

K, B = 3, 7


class Replay:
    """A dropout source that hands out the same fixed masks, in order, to both passes; ``scale`` is
    each member's ``1 / (1 - p_k)``, the value of its kept units."""

    def __init__(self, masks: list[torch.Tensor], rate: torch.Tensor):
        self.masks, self.calls = masks, 0
        self.scale = (1 / (1 - rate)).view(K, 1, 1)

    def __call__(self, shape: torch.Size, out: torch.Tensor | None = None) -> torch.Tensor:
        mask = self.masks[self.calls]
        assert mask.shape == shape
        self.calls += 1
        return mask


def stacked(in_features: int, **kwargs) -> StackedNet:
    members = []
    for k in range(K):
        torch.manual_seed(k)
        members.append(MLP(in_features, 4, **kwargs))
    return StackedNet(members, dtype=torch.float64, device="cpu")


def masks(widths: tuple[int, ...], rate: torch.Tensor, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    scale = (1 / (1 - rate)).view(K, 1, 1)
    keep = [torch.rand(K, B, w, generator=g, dtype=torch.float64) >= rate.view(K, 1, 1) for w in widths]
    return [k * scale for k in keep]


def autograd_grad(net, x, y, drop, smoothing):
    net.grad.zero_()
    logits = net.forward(x, train=True, drop=drop)
    loss = cross_entropy(logits, y, smoothing)
    with warnings.catch_warnings():  # the flat buffer's grads are strided views, as in Shard.step
        warnings.filterwarnings("ignore", message="grad and param do not obey")
        loss.sum().backward()
    return loss.detach(), correct(logits.detach(), y), net.grad.clone()


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("features", [6, 5])  # 5: the first hidden block has a skip from the input too
@pytest.mark.parametrize("dropout", [True, False])
@pytest.mark.parametrize("norm", [None, "batch", "layer"])
def test_gradient_equals_autograd(activation, residual, features, dropout, norm):
    net = stacked(features, hidden=(5, 5), activation=activation, residual=residual, norm=norm)
    with torch.no_grad():  # norm layers' affine parameters away from their (1, 0) initialization
        for name, p in net.params.items():
            if ".norm." in name:
                g = torch.Generator().manual_seed(len(name))
                p.add_(torch.randn(p.shape, generator=g, dtype=p.dtype))
    g = torch.Generator().manual_seed(1)
    x = torch.randn(B, features, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (B,), generator=g)
    rate = torch.tensor([0.0, 0.3, 0.6], dtype=torch.float64)
    drop_masks = masks((5, 5), rate, seed=2)
    drop = Replay(drop_masks, rate) if dropout else None
    buffers = {name: b.clone() for name, b in net.buffers.items()}
    loss_ref, right_ref, grad_ref = autograd_grad(net, x, y, drop, None)
    buffers_ref, net.buffers = net.buffers, buffers  # BatchNorm's statistics: updated once by each pass

    net.grad.fill_(float("nan"))  # every slot must be overwritten, not accumulated into
    net.grad[:, sum(s.numel for s in net.slots) :] = 0  # (the row padding is never written)
    drop = Replay(drop_masks, rate) if dropout else None
    loss, right, tape = _backprop.forward(net, x, y, drop, None)
    _backprop.backward(net, tape)

    assert torch.equal(loss, loss_ref)
    assert torch.equal(right, right_ref)
    torch.testing.assert_close(net.grad, grad_ref, rtol=1e-12, atol=1e-14)
    assert buffers.keys() == buffers_ref.keys()
    assert all(torch.equal(buffers[name], buffers_ref[name]) for name in buffers)


def test_per_member_batches_and_label_smoothing_equal_autograd():
    net = stacked(6, hidden=(8,), activation="relu")
    g = torch.Generator().manual_seed(3)
    x = torch.randn(K, B, 6, generator=g, dtype=torch.float64)  # each member its own batch
    y = torch.randint(0, 4, (K, B), generator=g)
    smoothing = torch.tensor([[0.0], [0.1], [0.4]], dtype=torch.float64)
    rate = torch.tensor([0.5, 0.0, 0.2], dtype=torch.float64)
    drop_masks = masks((8,), rate, seed=4)
    loss_ref, right_ref, grad_ref = autograd_grad(net, x, y, Replay(drop_masks, rate), smoothing)

    loss, right, tape = _backprop.forward(net, x, y, Replay(drop_masks, rate), smoothing)
    _backprop.backward(net, tape)
    torch.testing.assert_close(loss, loss_ref, rtol=1e-14, atol=0)
    assert torch.equal(right, right_ref)
    torch.testing.assert_close(net.grad, grad_ref, rtol=1e-12, atol=1e-14)


def test_logistic_regression_and_no_dropout_equal_autograd():
    for hidden in [(), (5,)]:
        net = stacked(6, hidden=hidden)
        x, y = torch.randn(B, 6, dtype=torch.float64), torch.randint(0, 4, (B,))
        _, _, grad_ref = autograd_grad(net, x, y, None, None)
        _, _, tape = _backprop.forward(net, x, y, None, None)
        _backprop.backward(net, tape)
        torch.testing.assert_close(net.grad, grad_ref, rtol=1e-12, atol=1e-14)


def test_cnns_go_through_autograd():
    assert _backprop.supports(stacked(6, hidden=(5,)))
    assert _backprop.supports(stacked(6, hidden=(5,), norm="batch"))
    assert _backprop.supports(stacked(6, hidden=(5,), norm="layer"))
    torch.manual_seed(0)
    cnn = StackedNet([CNN1D(40, 4), CNN1D(40, 4)], dtype=torch.float64, device="cpu")
    assert not _backprop.supports(cnn)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("common", [False, True])
def test_masks_drawn_in_the_kernel_are_dropouts_own(activation, common):
    """Forward with a Dropout (masks drawn inside the compiled kernel) equals forward with the masks an
    identically seeded Dropout hands out layer by layer; and p_k = 0 members keep every unit."""
    net = stacked(6, hidden=(5, 5), activation=activation)
    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(B, 6, generator=g, dtype=torch.float64), torch.randint(0, 4, (B,), generator=g)
    rate = torch.tensor([[0.0], [0.3], [0.6]], dtype=torch.float64)

    def dropout() -> Dropout:
        gens = [torch.Generator().manual_seed(10 + k) for k in range(K)]
        common_generator = torch.Generator().manual_seed(9)
        return Dropout(rate, common=common, generators=gens, common_generator=common_generator)

    twin = dropout()
    drawn = [twin(torch.Size([K, B, 5])) for _ in range(2)]
    assert torch.equal(drawn[0][0], torch.ones(B, 5, dtype=torch.float64))
    loss_ref, right_ref, grad_ref = autograd_grad(net, x, y, Replay(drawn, rate.flatten()), None)
    loss, right, tape = _backprop.forward(net, x, y, dropout(), None)
    _backprop.backward(net, tape)
    assert torch.equal(loss, loss_ref) and torch.equal(right, right_ref)
    torch.testing.assert_close(net.grad, grad_ref, rtol=1e-12, atol=1e-14)
