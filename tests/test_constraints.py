"""reglab.constraints against Keras's formulas, written out by hand in numpy on Keras's (in, out) layout."""

import numpy as np
import pytest
import torch
from torch import nn

from reglab._validation import InvalidParameterError
from reglab.constraints import MaxNorm, NonNeg, UnitNorm
from reglab.models import MLP
from reglab.selectors import Selector

EPS = 1e-7  # keras.backend.epsilon()


def keras_max_norm(kernel: np.ndarray, c: float, axis) -> np.ndarray:
    # keras.constraints.MaxNorm.__call__: w * clip(norms, 0, c) / (epsilon + norms)
    norms = np.sqrt(np.sum(np.square(kernel), axis=axis, keepdims=True))
    return kernel * (np.clip(norms, 0, c) / (EPS + norms))


def keras_unit_norm(kernel: np.ndarray, axis) -> np.ndarray:
    return kernel / (EPS + np.sqrt(np.sum(np.square(kernel), axis=axis, keepdims=True)))


def linear_with_rows(norms):
    """A float64 Linear(5, len(norms)) whose output units have the given incoming-weight norms."""
    torch.manual_seed(0)
    layer = nn.Linear(5, len(norms)).double()
    with torch.no_grad():
        w = layer.weight / torch.linalg.vector_norm(layer.weight, dim=1, keepdim=True)
        layer.weight.copy_(w * torch.tensor(norms, dtype=torch.float64)[:, None])
    return layer


def test_max_norm_equals_keras_default_axis_on_the_transposed_kernel():
    layer = linear_with_rows([0.5, 1.0, 3.0, 10.0])
    kernel = layer.weight.detach().numpy().T.copy()  # Keras Dense kernel layout (in, out)
    bias = layer.bias.detach().clone()
    MaxNorm(2.0)(layer)
    np.testing.assert_allclose(
        layer.weight.detach().numpy().T, keras_max_norm(kernel, 2.0, axis=0), rtol=1e-15
    )
    assert torch.equal(layer.bias, bias)  # the default selector leaves biases alone


def test_max_norm_bounds_every_unit_and_leaves_small_ones_untouched():
    layer = linear_with_rows([0.5, 1.9, 2.5, 40.0])
    before = layer.weight.detach().clone()
    MaxNorm(2.0)(layer)
    norms = torch.linalg.vector_norm(layer.weight, dim=1)
    assert bool((norms <= 2.0).all())
    torch.testing.assert_close(norms[2:], torch.full((2,), 2.0, dtype=torch.float64), rtol=1e-6, atol=0)
    # rows inside the ball change only by Keras's factor norm / (norm + 1e-7)
    torch.testing.assert_close(layer.weight[:2], before[:2], rtol=1e-6, atol=0)


def test_max_norm_per_output_channel_of_a_convolution():
    torch.manual_seed(1)
    conv = nn.Conv2d(3, 4, 3).double()
    with torch.no_grad():
        conv.weight.mul_(torch.tensor([1.0, 5.0, 20.0, 100.0], dtype=torch.float64)[:, None, None, None])
    # Keras Conv2D kernel is (kh, kw, in, out) and MaxNorm(axis=[0, 1, 2]) is per output channel
    kernel = conv.weight.detach().numpy().transpose(2, 3, 1, 0).copy()
    MaxNorm(3.0)(conv)
    expected = keras_max_norm(kernel, 3.0, axis=(0, 1, 2)).transpose(3, 2, 0, 1)
    np.testing.assert_allclose(conv.weight.detach().numpy(), expected, rtol=1e-15)


def test_explicit_axis_is_in_pytorch_layout():
    layer = linear_with_rows([3.0, 4.0, 5.0])
    kernel = layer.weight.detach().numpy().T.copy()
    MaxNorm(1.5, axis=0)(layer)  # per input feature: Keras's axis=1 on the (in, out) kernel
    np.testing.assert_allclose(
        layer.weight.detach().numpy().T, keras_max_norm(kernel, 1.5, axis=1), rtol=1e-15
    )


def test_unit_norm_equals_keras():
    layer = linear_with_rows([0.1, 2.0, 7.0])
    kernel = layer.weight.detach().numpy().T.copy()
    UnitNorm()(layer)
    np.testing.assert_allclose(layer.weight.detach().numpy().T, keras_unit_norm(kernel, axis=0), rtol=1e-15)
    torch.testing.assert_close(
        torch.linalg.vector_norm(layer.weight, dim=1), torch.ones(3, dtype=torch.float64), rtol=1e-6, atol=0
    )


def test_non_neg_zeroes_negatives_and_keeps_the_rest():
    torch.manual_seed(2)
    layer = nn.Linear(6, 6)
    before = layer.weight.detach().clone()
    NonNeg()(layer)
    assert torch.equal(layer.weight, torch.where(before >= 0, before, torch.zeros_like(before)))


def test_norm_layers_and_biases_are_skipped_and_selector_narrows():
    torch.manual_seed(3)
    model = MLP(4, 3, hidden=(5,), norm="batch").double()
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(-1.0)
    NonNeg(selector=Selector(include="out.*"))(model)
    assert bool((model.out.weight == 0).all()) and bool((model.out.bias == 0).all())
    assert bool((model.hidden[0].linear.weight == -1).all())
    NonNeg()(model)
    assert bool((model.hidden[0].linear.weight == 0).all())
    assert bool((model.hidden[0].norm.weight == -1).all()) and bool((model.hidden[0].linear.bias == -1).all())
    assert str(NonNeg().describe(model)).startswith("NonNeg constrains 2 tensors")


def test_max_norm_after_each_optimizer_step_keeps_the_ball():
    torch.manual_seed(4)
    model = MLP(6, 2, hidden=(8,))
    opt = torch.optim.SGD(model.parameters(), lr=5.0)
    constraint = MaxNorm(0.5)
    x, y = torch.randn(32, 6), torch.randint(0, 2, (32,))
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        constraint(model)
        for w in (model.hidden[0].linear.weight, model.out.weight):
            assert bool((torch.linalg.vector_norm(w, dim=1) <= 0.5).all())
    assert model.out.weight.requires_grad and model.out.weight.grad_fn is None


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: MaxNorm(0),
            "The 'c' parameter of MaxNorm must be a float in the range (0, inf). Got 0.0 instead.",
        ),
        (
            lambda: MaxNorm(-1.0),
            "The 'c' parameter of MaxNorm must be a float in the range (0, inf). Got -1.0 instead.",
        ),
        (
            lambda: UnitNorm(axis="in"),
            "The 'axis' parameter of UnitNorm must be None (per output unit), an int or a tuple of ints. "
            "Got 'in' instead.",
        ),
        (
            lambda: NonNeg(selector="weights"),
            "The 'selector' parameter of NonNeg must be a reglab.selectors.Selector or None. "
            "Got 'weights' instead.",
        ),
    ],
)
def test_bad_arguments_give_one_line(build, message):
    with pytest.raises(InvalidParameterError) as info:
        build()
    assert str(info.value) == message


def test_axis_out_of_range_raises_before_touching_anything():
    model = nn.Sequential(nn.Linear(3, 3), nn.Conv1d(1, 2, 3))
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(InvalidParameterError) as info:
        MaxNorm(1e-3, axis=2)(model)
    assert str(info.value) == (
        "The 'axis' parameter of MaxNorm must be distinct dims of every selected parameter (0.weight has 2). "
        "Got 2 instead."
    )
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_an_axis_given_twice_is_refused():
    with pytest.raises(InvalidParameterError, match=r"'axis' parameter of MaxNorm must be distinct dims"):
        MaxNorm(axis=(1, 1))
    with pytest.raises(InvalidParameterError, match=r"must be distinct dims of every selected parameter"):
        MaxNorm(axis=(1, -1))(nn.Sequential(nn.Linear(3, 2)))  # the same dim of a matrix, written twice


@pytest.mark.parametrize("constraint", [
    MaxNorm(2.0, selector=Selector(include="nope*")),  # picks nothing
    MaxNorm(2.0, axis=(1, 2)),  # a dim the weight matrices do not have
])
def test_the_trainer_refuses_a_constraint_that_cannot_apply_before_the_first_step(constraint):
    """It was refused after the first optimizer step, which had already moved the weights."""
    from reglab.train import Trainer

    torch.manual_seed(0)
    model = MLP(4, 2, hidden=(8,))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.randn(32, 4), torch.randint(0, 2, (32,))
    trainer = Trainer(model, epochs=1, batch_size=8, progress="off", constraints=[constraint])
    with pytest.raises(InvalidParameterError, match=r"parameter of MaxNorm"):
        trainer.fit((x, y))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def _feeding_masks(layer: nn.Module, in_channels: int) -> list[torch.Tensor]:
    """For each output channel, the weights it depends on, read off autograd (no layout assumed)."""
    x = torch.randn(1, in_channels, 5, 5)
    masks = []
    for o in range(layer.out_channels):
        (g,) = torch.autograd.grad(layer(x)[:, o].sum(), layer.weight)
        masks.append(g != 0)
    return masks


@pytest.mark.parametrize(
    "layer",
    [nn.ConvTranspose2d(3, 4, 2), nn.ConvTranspose2d(4, 6, 2, groups=2), nn.Conv2d(4, 6, 2, groups=2)],
    ids=["conv_transpose", "conv_transpose_groups", "conv_groups"],
)
@pytest.mark.parametrize("constraint", [MaxNorm(1.0), UnitNorm()], ids=["max_norm", "unit_norm"])
def test_norm_constraints_act_per_output_channel_of_any_conv_layout(layer, constraint):
    torch.manual_seed(0)
    masks = _feeding_masks(layer, layer.in_channels)
    with torch.no_grad():
        layer.weight.mul_(50.0)
    w0 = layer.weight.detach().double().clone()
    expected = w0.clone()
    for mask in masks:  # Keras's formula on each output unit's incoming weights
        norm = w0[mask].norm()
        target = min(float(norm), constraint.c) if isinstance(constraint, MaxNorm) else 1.0
        expected[mask] = w0[mask] * (target / (1e-7 + norm))
    constraint(layer)
    torch.testing.assert_close(layer.weight.detach().double(), expected, rtol=1e-6, atol=1e-7)
    for mask in masks:
        assert float(layer.weight.detach()[mask].norm()) == pytest.approx(1.0, rel=1e-5)
