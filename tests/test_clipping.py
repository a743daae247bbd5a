"""reglab.clipping against norms computed by hand and Keras's clip formulas."""

import math
import warnings

import pytest
import torch
from torch import nn

from reglab._validation import InvalidParameterError
from reglab.clipping import ClipGradNorm, ClipGradNormPerTensor, ClipGradValue
from reglab.errors import UserError


def params_with_grads(*grads):
    out = []
    for g in grads:
        p = nn.Parameter(torch.zeros(len(g), dtype=torch.float64))
        p.grad = torch.tensor(g, dtype=torch.float64)
        out.append(p)
    return out


def test_global_norm_clip_by_hand():
    a, b = params_with_grads([3.0, 4.0], [12.0])  # global norm 13
    total = ClipGradNorm(6.5)([a, b])
    assert total == 13.0
    scale = 6.5 / (13.0 + 1e-6)  # PyTorch's clip coefficient
    torch.testing.assert_close(
        a.grad, torch.tensor([3.0, 4.0], dtype=torch.float64) * scale, rtol=1e-15, atol=0
    )
    torch.testing.assert_close(b.grad, torch.tensor([12.0], dtype=torch.float64) * scale, rtol=1e-15, atol=0)
    # Keras global_clipnorm scales by c / max(norm, c): the same up to 1e-6 relative
    assert abs(a.grad[0].item() - 3.0 * 6.5 / 13.0) < 1e-6


def test_global_norm_under_the_limit_is_untouched_and_inf_norm():
    (a,) = params_with_grads([0.3, -0.4])
    assert math.isclose(ClipGradNorm(1.0)(a), 0.5, rel_tol=1e-15)
    assert a.grad.tolist() == [0.3, -0.4]
    b, c = params_with_grads([1.0, -5.0], [2.0])
    assert ClipGradNorm(2.5, norm_type=math.inf)([b, c]) == 5.0  # max |g|
    torch.testing.assert_close(b.grad, torch.tensor([1.0, -5.0], dtype=torch.float64) * 2.5 / (5 + 1e-6))


def test_module_input_skips_parameters_without_gradient():
    model = nn.Linear(2, 1, bias=True).double()
    model.weight.grad = torch.tensor([[6.0, 8.0]], dtype=torch.float64)  # bias has no grad
    assert ClipGradNorm(1.0)(model) == 10.0
    assert model.bias.grad is None
    assert ClipGradNorm(1.0)(nn.Linear(2, 2)) == 0.0  # nothing to clip


def test_value_clipping_returns_the_norm_before():
    a, b = params_with_grads([3.0, -0.5], [-2.0])
    total = ClipGradValue(1.0)([a, b])
    assert math.isclose(total, math.sqrt(9 + 0.25 + 4), rel_tol=1e-15)
    assert a.grad.tolist() == [1.0, -0.5] and b.grad.tolist() == [-1.0]


def test_per_tensor_norm_is_keras_clipnorm():
    a, b = params_with_grads([3.0, 4.0], [0.6, 0.0])
    total = ClipGradNormPerTensor(1.0)([a, b])
    assert math.isclose(total, math.sqrt(25 + 0.36), rel_tol=1e-15)
    # keras clip_by_norm: g * c / max(||g||, c)
    torch.testing.assert_close(a.grad, torch.tensor([0.6, 0.8], dtype=torch.float64), rtol=1e-15, atol=0)
    assert b.grad.tolist() == [0.6, 0.0]


def test_nonfinite_norm_is_reported_counted_or_raised():
    (a,) = params_with_grads([float("nan"), 1.0])
    clip = ClipGradNorm(1.0)
    with pytest.warns(RuntimeWarning, match=r"ClipGradNorm: the gradient norm is nan .* at call 1; lower"):
        total = clip(a)
    assert math.isnan(total) and clip.nonfinite_steps_ == 1
    (b,) = params_with_grads([float("inf"), 1.0])
    strict = ClipGradValue(1.0, on_nonfinite="raise")
    with pytest.raises(UserError, match="ClipGradValue: the gradient norm is inf"):
        strict(b)
    assert b.grad[0].item() == float("inf")  # nothing changed before raising
    quiet = ClipGradNormPerTensor(1.0, on_nonfinite="ignore")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet(params_with_grads([float("inf")]))
    assert quiet.nonfinite_steps_ == 1
    restored = ClipGradNorm(1.0)
    restored.load_state_dict(clip.state_dict())
    assert restored.nonfinite_steps_ == 1 and math.isnan(restored.last_norm_)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: ClipGradNorm(-1),
            "The 'max_norm' parameter of ClipGradNorm must be a float in the range (0, inf). "
            "Got -1.0 instead.",
        ),
        (
            lambda: ClipGradNorm(1.0, norm_type=0),
            "The 'norm_type' parameter of ClipGradNorm must be a float in the range (0, inf]. "
            "Got 0.0 instead.",
        ),
        (
            lambda: ClipGradValue(0),
            "The 'value' parameter of ClipGradValue must be a float in the range (0, inf). Got 0.0 instead.",
        ),
        (
            lambda: ClipGradNormPerTensor(1.0, on_nonfinite="warning"),
            "The 'on_nonfinite' parameter of ClipGradNormPerTensor must be one of 'warn', 'raise', 'ignore'. "
            "Got 'warning' instead. Did you mean 'warn'?",
        ),
    ],
)
def test_bad_arguments_give_one_line(build, message):
    with pytest.raises(InvalidParameterError) as info:
        build()
    assert str(info.value) == message


@pytest.mark.parametrize("clipper", [ClipGradNorm(1.0), ClipGradValue(1.0), ClipGradNormPerTensor(1.0)])
def test_sparse_gradients_and_non_tensors_are_one_clear_error(clipper):
    embedding = nn.Embedding(10, 3, sparse=True)
    embedding(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(UserError, match=r"1 parameter\(s\) have sparse gradients .* needs dense ones"):
        clipper(embedding)
    for bad in (5, [1, 2]):
        with pytest.raises(InvalidParameterError, match=r"'parameters' parameter of \w+ must be a module"):
            clipper(bad)


def test_the_gap_to_keras_global_clipnorm_is_a_relative_1e_6_over_the_norm():
    """As the docstring says: Keras scales by c / norm, PyTorch by c / (norm + 1e-6), so they differ by a
    relative 1e-6 / norm, which passes 1e-6 when a small max_norm (c < 1) clips a norm below 1."""
    for c, grad in ((6.5, [3.0, 4.0, 12.0]), (0.01, [0.03, 0.04])):  # global norms 13 and 0.05
        (p,) = params_with_grads(grad)
        norm = float(ClipGradNorm(c)([p]))
        keras = torch.tensor(grad, dtype=torch.float64) * c / max(norm, c)
        gap = float((keras / p.grad - 1).abs().max())
        assert gap == pytest.approx(1e-6 / norm, rel=1e-6)
    assert gap > 1e-6  # c = 0.01: 2e-5
