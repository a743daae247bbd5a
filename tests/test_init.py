"""reglab.init.initialize: empirical spread against each scheme's formula (5 standard errors), references."""

import math

import pytest
import torch
from torch import nn

from reglab._validation import InvalidParameterError
from reglab.init import initialize, reinitialize


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def std_tolerance(n: int, kurtosis: float) -> float:
    """5 standard errors of a sample std, relative: SE(s)/sigma ~ sqrt((kurtosis - 1) / (4 n))."""
    return 5 * math.sqrt((kurtosis - 1) / (4 * n))


UNIFORM_KURTOSIS, NORMAL_KURTOSIS = 1.8, 3.0


def test_xavier_uniform_bound_and_std():
    layer = nn.Linear(300, 200).double()
    initialize(layer, "xavier_uniform", gain=1.5, generator=gen())
    bound = 1.5 * math.sqrt(6 / (300 + 200))
    w = layer.weight
    assert w.abs().max().item() <= bound
    assert w.abs().max().item() > 0.999 * bound  # 60,000 draws reach the edge
    assert abs(w.std().item() / (bound / math.sqrt(3)) - 1) < std_tolerance(w.numel(), UNIFORM_KURTOSIS)
    assert torch.equal(layer.bias, torch.zeros(200, dtype=torch.float64))


def test_glorot_uniform_is_xavier_uniform():
    a, b = nn.Linear(20, 10), nn.Linear(20, 10)
    initialize(a, "glorot_uniform", generator=gen(1))
    initialize(b, "xavier_uniform", generator=gen(1))
    assert torch.equal(a.weight, b.weight)


@pytest.mark.parametrize(
    ("scheme", "kurtosis"), [("kaiming_normal", NORMAL_KURTOSIS), ("kaiming_uniform", 1.8)]
)
def test_kaiming_std_uses_the_conv_fan_in(scheme, kurtosis):
    conv = nn.Conv2d(16, 64, 5).double()  # fan_in = 16 * 5 * 5 = 400
    initialize(conv, scheme, generator=gen())
    expected = math.sqrt(2 / 400)
    assert abs(conv.weight.std().item() / expected - 1) < std_tolerance(conv.weight.numel(), kurtosis)


def test_kaiming_matches_torch_relu_draw_and_he_uniform():
    ours, ref, he = nn.Linear(50, 30), torch.empty(30, 50), nn.Linear(50, 30)
    initialize(ours, "kaiming_uniform", generator=gen(2))
    initialize(he, "he_uniform", generator=gen(2))
    nn.init.kaiming_uniform_(ref, nonlinearity="relu", generator=gen(2))
    torch.testing.assert_close(ours.weight.detach(), ref, rtol=1e-6, atol=0)
    assert torch.equal(ours.weight, he.weight)


def test_xavier_normal_std():
    layer = nn.Linear(400, 100).double()
    initialize(layer, "xavier_normal", generator=gen())
    expected = math.sqrt(2 / 500)
    assert abs(layer.weight.std().item() / expected - 1) < std_tolerance(40_000, NORMAL_KURTOSIS)


@pytest.mark.parametrize(("scheme", "variance"), [("glorot_normal", 2 / 500), ("he_normal", 2 / 400)])
def test_keras_truncated_normals(scheme, variance):
    layer = nn.Linear(400, 100).double()
    initialize(layer, scheme, generator=gen())
    w, std = layer.weight, math.sqrt(variance) / 0.87962566103423978
    assert w.abs().max().item() <= 2 * std  # truncated at two (pre-rescaling) standard deviations
    # kurtosis of N(0,1) truncated to [-2, 2] is about 2.36
    assert abs(w.std().item() / math.sqrt(variance) - 1) < std_tolerance(w.numel(), 2.4)


@pytest.mark.parametrize("shape", [(20, 50), (50, 20)])
def test_orthogonal_gives_scaled_orthonormal_rows_or_columns(shape):
    layer = nn.Linear(shape[1], shape[0]).double()
    initialize(layer, "orthogonal", gain=2.0, generator=gen())
    w = layer.weight
    gram = w @ w.T if shape[0] <= shape[1] else w.T @ w
    torch.testing.assert_close(gram, 4.0 * torch.eye(min(shape), dtype=torch.float64), rtol=0, atol=1e-12)


def test_default_equals_pytorch_reset_parameters_from_the_same_seed():
    def build():
        return nn.Sequential(nn.Conv1d(2, 4, 3), nn.Flatten(), nn.Linear(4 * 6, 5))

    ours, ref = build(), build()
    initialize(ours, "default", generator=gen(7))
    torch.manual_seed(7)  # a fresh Generator and the global one give the same stream for the same seed
    for m in ref.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    for a, b in zip(ours.parameters(), ref.parameters()):
        assert torch.equal(a, b)


def test_same_seed_same_weights_and_global_rng_untouched():
    a, b, c = (nn.Sequential(nn.Linear(6, 6), nn.Linear(6, 2)) for _ in range(3))
    state = torch.get_rng_state()  # after building: constructing layers draws from the global RNG
    names = initialize(a, "orthogonal", generator=gen(3))
    initialize(b, "orthogonal", generator=gen(3))
    initialize(c, "orthogonal", generator=gen(4))
    assert names == ["0.weight", "1.weight"]
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a[0].weight, c[0].weight)
    assert torch.equal(torch.get_rng_state(), state)


def test_bias_constant_and_norm_layers_untouched():
    model = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2, bias=False))
    ln = [p.detach().clone() for p in model[1].parameters()]
    initialize(model, "xavier_normal", bias=0.1, generator=gen())
    assert torch.equal(model[0].bias, torch.full((4,), 0.1))
    assert all(torch.equal(a, b) for a, b in zip(ln, model[1].parameters()))


def test_unknown_scheme_suggests_the_nearest():
    with pytest.raises(InvalidParameterError) as info:
        initialize(nn.Linear(2, 2), "xavier_unifrom")
    text = str(info.value)
    assert text.startswith("The 'scheme' parameter of initialize must be one of 'xavier_uniform', ")
    assert text.endswith("Got 'xavier_unifrom' instead. Did you mean 'xavier_uniform'?")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: initialize(nn.Linear(2, 2), gain=-1.0),
            "The 'gain' parameter of initialize must be a float in the range [0, inf). Got -1.0 instead.",
        ),
        (
            lambda: initialize(None),
            "The 'model' parameter of initialize must be a torch.nn.Module. Got 'NoneType' instead.",
        ),
        (
            lambda: initialize(nn.ReLU()),
            "The 'model' parameter of initialize must be a module containing Linear or Conv layers. "
            "Got 'ReLU' instead.",
        ),
    ],
)
def test_bad_arguments_give_one_line(call, message):
    with pytest.raises(InvalidParameterError) as info:
        call()
    assert str(info.value) == message


def _net() -> nn.Module:
    return nn.Sequential(nn.Linear(5, 7), nn.BatchNorm1d(7), nn.ReLU(), nn.Linear(7, 3))


def test_reinitialize_equals_building_the_model_under_the_seed():
    """A restart draws what PyTorch's constructors draw under torch.manual_seed(seed), and leaves
    the global random stream where it was."""
    torch.manual_seed(11)
    reference = _net()
    model = _net()  # other weights
    with torch.no_grad():
        model[1].running_mean.fill_(3.0)  # BatchNorm's state is reset too
    state = torch.get_rng_state()
    assert reinitialize(model, 11) is model
    assert torch.equal(torch.get_rng_state(), state)
    for (name, p), q in zip(model.state_dict().items(), reference.state_dict().values()):
        assert torch.equal(p, q), name


def test_reinitialize_with_a_scheme_applies_it_from_the_seed():
    model, reference = _net(), _net()
    reinitialize(model, 5, "orthogonal")
    reinitialize(reference, 5)
    initialize(reference, "orthogonal", generator=gen(5))
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), reference.parameters()))
    w = model[0].weight  # (7, 5): orthonormal columns
    torch.testing.assert_close(w.T @ w, torch.eye(5), atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: reinitialize(nn.Linear(2, 2), 1.5),
            "The 'seed' parameter of reinitialize must be an int in the range [0, 9223372036854775807]. "
            "Got 1.5 instead.",
        ),
        (
            lambda: reinitialize(nn.Linear(2, 2), 0, "glorot"),
            "The 'scheme' parameter of reinitialize must be one of",
        ),
    ],
)
def test_reinitialize_bad_arguments(call, message):
    with pytest.raises(InvalidParameterError) as info:
        call()
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


class _RawWeight(nn.Module):
    """A parameter no reset_parameters() redraws."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(5, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.w


def test_a_parameter_no_restart_can_redraw_is_refused_before_training():
    from reglab.errors import UserError
    from reglab.train import Trainer

    model = nn.Sequential(nn.Linear(5, 5), _RawWeight())
    with pytest.raises(UserError, match=r"^reinitialize: .1.w. belong to modules without reset_param"):
        reinitialize(model, 1)
    x, y = torch.randn(20, 5), torch.randint(0, 2, (20,))
    with pytest.raises(UserError, match=r"'1.w' belong to modules without reset_parameters"):
        Trainer(model, restarts=2, epochs=1, progress="off").fit((x, y))
    assert torch.equal(model[1].w, torch.zeros(5, 2))  # refused before the first restart trained
    Trainer(model, epochs=1, progress="off").fit((x, y))  # one run needs no redraw
