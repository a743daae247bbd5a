"""Models: shapes, the residual path by hand, norm / dropout slots, argument errors."""

import pytest
import torch
from torch import nn

from reglab._validation import InvalidParameterError
from reglab.models import CNN1D, CNN2D, MLP

D = torch.float64


@pytest.mark.parametrize(
    ("model", "x", "out"),
    [
        (MLP(40, 10), torch.zeros(3, 40), (3, 10)),
        (MLP(40, 10, hidden=()), torch.zeros(3, 40), (3, 10)),
        (CNN1D(40, 10), torch.zeros(2, 40), (2, 10)),
        (CNN1D(40, 10), torch.zeros(2, 1, 40), (2, 10)),
        (CNN2D(8, 10), torch.zeros(2, 64), (2, 10)),
        (CNN2D(8, 10), torch.zeros(2, 1, 8, 8), (2, 10)),
    ],
)
def test_output_shapes(model, x, out):
    assert model(x).shape == out


def test_mlp_residual_equals_hand_computation():
    torch.manual_seed(0)
    model = MLP(5, 3, hidden=(4, 4), residual=True).double()
    x = torch.randn(6, 5, dtype=D)
    l1, l2, l3 = model.hidden[0].linear, model.hidden[1].linear, model.out
    h = torch.relu(x @ l1.weight.T + l1.bias)  # first block: widths differ, no skip
    h = h + torch.relu(h @ l2.weight.T + l2.bias)
    torch.testing.assert_close(model(x), h @ l3.weight.T + l3.bias, rtol=0, atol=1e-14)
    plain = MLP(5, 3, hidden=(4, 4)).double()
    plain.load_state_dict(model.state_dict())
    assert not torch.allclose(plain(x), model(x))


def test_mlp_logistic_is_one_linear_layer():
    model = MLP(4, 2, hidden=())
    assert len(model.hidden) == 0 and isinstance(model.out, nn.Linear)


def test_cnn1d_matches_paper_layout():
    model = CNN1D(40, 10)
    assert [(c.kernel_size[0], c.stride[0], c.padding[0]) for c in model.convs] == [
        (5, 2, 1),
        (3, 2, 1),
        (3, 2, 1),
    ]
    assert model.out.in_features == 25 * 5


@pytest.mark.parametrize(
    ("norm", "kind"), [(None, nn.Identity), ("batch", nn.BatchNorm1d), ("layer", nn.LayerNorm)]
)
def test_norm_and_dropout_slots(norm, kind):
    model = MLP(4, 2, hidden=(8, 8), norm=norm, dropout=0.25)
    assert all(isinstance(b.norm, kind) for b in model.hidden)
    assert all(isinstance(b.dropout, nn.Dropout) and b.dropout.p == 0.25 for b in model.hidden)
    cnn = CNN1D(40, 10, norm=norm, dropout=0.1)
    assert isinstance(cnn.drop, nn.Dropout) and len(cnn.norms) == 3
    if norm == "layer":
        assert all(isinstance(n, nn.GroupNorm) and n.num_groups == 1 for n in cnn.norms)
    assert isinstance(
        CNN2D(8, 10, norm=norm).norm1, nn.Identity if norm is None else (nn.BatchNorm2d, nn.GroupNorm)
    )


def test_dropout_active_only_in_training():
    torch.manual_seed(0)
    model = MLP(4, 2, hidden=(64,), dropout=0.5)
    x = torch.randn(8, 4)
    model.eval()
    assert torch.equal(model(x), model(x))
    model.train()
    assert not torch.equal(model(x), model(x))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: MLP(0, 2), r"'in_features' parameter of MLP must be an int in the range \[1, inf\)"),
        (lambda: MLP(4, 2, hidden=(8, 0)), r"'hidden' parameter of MLP"),
        (lambda: MLP(4, 2, hidden=5), r"'hidden' parameter of MLP must be a sequence of hidden-layer widths, "
         r"e.g. \(100, 100\) or \(5,\). Got 5 instead."),
        (lambda: MLP(4, 2, dropout=1.0), r"'dropout' parameter of MLP must be a float in the range \[0, 1\)"),
        (lambda: MLP(4, 2, norm="btch"), r"'norm' parameter of MLP must be one of .*Did you mean 'batch'"),
        (lambda: CNN1D(40, 10, activation="rleu"), r"'activation' parameter of CNN1D .*Did you mean 'relu'"),
        (lambda: CNN2D(2, 10), r"'size' parameter of CNN2D"),
    ],
)
def test_argument_errors(build, message):
    with pytest.raises(InvalidParameterError, match=message):
        build()


@pytest.mark.parametrize(
    "build,message",
    [
        (lambda: MLP(4, 2, residual="no"), "The 'residual' parameter of MLP must be a bool. Got 'no'"),
        (lambda: CNN2D(8, 10, channels=5), "The 'channels' parameter of CNN2D must be a pair of ints >= 1"),
        (lambda: CNN2D(8, 10, channels=(4, 4, 4)), "Got (4, 4, 4) instead."),
        (lambda: CNN2D(8, 10, channels=(0, 4)), "The 'channels' parameter of CNN2D must be an int in the"),
    ],
)
def test_model_arguments_are_checked(build, message):
    with pytest.raises(InvalidParameterError) as err:
        build()
    assert message in str(err.value)


def test_cnn2d_takes_a_list_of_two_channel_counts():
    model = CNN2D(8, 10, channels=[4, 8])
    assert model.channels == (4, 8) and model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
