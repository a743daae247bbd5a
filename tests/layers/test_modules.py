"""reglab.layers.modules: the modules follow .training, equal their functions, and validate once."""

import copy

import pytest
import torch
from torch import nn

from reglab._validation import InvalidParameterError
from reglab.layers import functional as RF
from reglab.layers import modules as M


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize(
    ("module", "function"),
    [
        (
            lambda g: M.DropPath(0.3, generator=g),
            lambda x, g: RF.drop_path(x, 0.3, training=True, generator=g),
        ),
        (
            lambda g: M.GaussianNoise(0.3, generator=g),
            lambda x, g: RF.gaussian_noise(x, 0.3, training=True, generator=g),
        ),
        (
            lambda g: M.GaussianDropout(0.3, generator=g),
            lambda x, g: RF.gaussian_dropout(x, 0.3, training=True, generator=g),
        ),
    ],
)
def test_module_equals_its_function_in_training_and_is_identity_in_eval(module, function):
    x = torch.randn(16, 4)
    layer = module(gen(5))
    assert torch.equal(layer(x), function(x, gen(5)))
    assert layer.eval()(x) is x


def test_drop_connect_wraps_a_linear_and_keeps_its_parameters():
    torch.manual_seed(0)
    linear = nn.Linear(5, 3).double()
    layer = M.DropConnect(linear, p=0.5, generator=gen(1))
    assert [n for n, _ in layer.named_parameters()] == ["layer.weight", "layer.bias"]
    x = torch.randn(4, 5, dtype=torch.float64)
    expected = RF.drop_connect(x, linear.weight, linear.bias, 0.5, training=True, generator=gen(1))
    assert torch.equal(layer(x), expected)
    assert torch.equal(layer.eval()(x), linear(x))
    assert "p=0.5" in repr(layer)


def test_drop_connect_gradient_reaches_only_kept_weights():
    linear = nn.Linear(6, 4, bias=False)
    layer = M.DropConnect(linear, p=0.5, generator=gen(2))
    layer(torch.ones(3, 6)).sum().backward()
    kept = linear.weight.grad != 0
    assert 0 < kept.sum() < kept.numel()
    # d/dW of sum(x @ (M*W/(1-p)).T) with x = ones(3, 6) is 3 * M / (1 - p)
    assert torch.allclose(linear.weight.grad[kept], torch.full_like(linear.weight.grad[kept], 3 / 0.5))


def test_modules_survive_deepcopy_with_their_generator_state():
    layer = M.DropPath(0.5, generator=gen(4))
    twin = copy.deepcopy(layer)
    x = torch.ones(32, 2)
    assert torch.equal(layer(x), twin(x))


def test_torch_dropout_family_is_re_exported_unchanged():
    assert (M.Dropout, M.Dropout1d, M.Dropout2d, M.Dropout3d, M.AlphaDropout) == (
        nn.Dropout,
        nn.Dropout1d,
        nn.Dropout2d,
        nn.Dropout3d,
        nn.AlphaDropout,
    )


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: M.DropPath(1.0),
            "The 'p' parameter of DropPath must be a float in the range [0, 1). Got 1.0 instead.",
        ),
        (
            lambda: M.GaussianDropout(-0.2),
            "The 'p' parameter of GaussianDropout must be a float in the range [0, 1). Got -0.2 instead.",
        ),
        (
            lambda: M.GaussianNoise(-1),
            "The 'sigma' parameter of GaussianNoise must be a float in the range [0, inf). Got -1.0 instead.",
        ),
        (
            lambda: M.DropConnect(nn.Linear(2, 2), p=1),
            "The 'p' parameter of DropConnect must be a float in the range [0, 1). Got 1.0 instead.",
        ),
        (
            lambda: M.DropConnect(nn.Conv1d(1, 1, 3)),
            "The 'layer' parameter of DropConnect must be an nn.Linear. Got 'Conv1d' instead.",
        ),
    ],
)
def test_bad_arguments_give_one_line(build, message):
    with pytest.raises(InvalidParameterError) as info:
        build()
    assert str(info.value) == message


def test_drop_path_scale_by_keep_must_be_a_bool():
    with pytest.raises(InvalidParameterError, match=r"'scale_by_keep' parameter of DropPath must be a bool"):
        M.DropPath(0.1, scale_by_keep="no")
    with pytest.raises(InvalidParameterError, match=r"'scale_by_keep' parameter of drop_path must be a bool"):
        RF.drop_path(torch.ones(2, 3), 0.1, training=True, scale_by_keep=1)
