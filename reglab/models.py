"""Model families with slots for the regularizers that live inside a network.

Every family has the same slots: ``norm`` (``None``, ``"batch"`` or ``"layer"``)
and ``dropout`` (a rate in [0, 1)). The layout is fixed and documented because
the population engine (``reglab.population``) stacks these exact modules and
``population.member(k)`` rebuilds them: a hidden block is always
``Linear -> norm -> activation -> dropout``.

References:
    Greydanus & Kobak, "Scaling down deep learning with MNIST-1D", ICML 2024
    (the MLP with a residual hidden layer and the 1-D CNN below are the paper's).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from reglab._validation import Interval, check_bool, check_int, check_option, check_scalar, fail

__all__ = ["MLP", "CNN1D", "CNN2D", "ACTIVATIONS", "NORMS", "make_activation", "make_norm"]

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
    "silu": nn.SiLU,
}
NORMS = (None, "batch", "layer")


def make_activation(name: str) -> nn.Module:
    return ACTIVATIONS[name]()


def make_norm(kind: str | None, features: int, *, dims: int = 1) -> nn.Module:
    """BatchNorm over features (1-D or 2-D feature maps), LayerNorm, or identity."""
    if kind is None:
        return nn.Identity()
    if kind == "batch":
        return {1: nn.BatchNorm1d, 2: nn.BatchNorm2d}[dims](features)
    if dims == 1:
        return nn.LayerNorm(features)
    return nn.GroupNorm(1, features)  # LayerNorm over (C, H, W) of a feature map


def _check_slots(owner: str, activation: str, norm: str | None, dropout: float) -> float:
    check_option(activation, "activation", owner=owner, options=ACTIVATIONS)
    check_option(norm, "norm", owner=owner, options=NORMS)
    return check_scalar(dropout, "dropout", owner=owner, interval=Interval(0, 1, closed="left"))


class MLPBlock(nn.Module):
    """``Linear -> norm -> activation -> dropout``."""

    def __init__(
        self, in_features: int, out_features: int, activation: str, norm: str | None, dropout: float
    ):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.norm = make_norm(norm, out_features)
        self.act = make_activation(activation)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.act(self.norm(self.linear(x))))


class MLP(nn.Module):
    """Multi-layer perceptron with optional residual hidden layers, norm and dropout.

    ``residual=True`` adds a skip connection around every hidden block whose input
    and output widths are equal (all but the first when widths are constant), as in
    the MNIST-1D paper's MLP: ``h = relu(W1 x); h = h + relu(W2 h); y = W3 h``.
    ``hidden=()`` is logistic (softmax) regression.

    Example:
        >>> model = MLP(40, 10, hidden=(100, 100), residual=True, dropout=0.1)
        >>> model(torch.zeros(3, 40)).shape
        torch.Size([3, 10])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden: Sequence[int] = (100, 100),
        *,
        activation: str = "relu",
        norm: str | None = None,
        dropout: float = 0.0,
        residual: bool = False,
    ):
        super().__init__()
        check_int(in_features, "in_features", owner="MLP", interval=Interval(1, None))
        check_int(out_features, "out_features", owner="MLP", interval=Interval(1, None))
        if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence):
            raise fail("MLP", "hidden", "a sequence of hidden-layer widths, e.g. (100, 100) or (5,)", hidden)
        hidden = tuple(check_int(h, "hidden", owner="MLP", interval=Interval(1, None)) for h in hidden)
        dropout = _check_slots("MLP", activation, norm, dropout)
        self.in_features, self.out_features, self.hidden_sizes = in_features, out_features, hidden
        residual = check_bool(residual, "residual", owner="MLP")
        self.activation, self.norm, self.dropout, self.residual = activation, norm, dropout, residual
        widths = (in_features, *hidden)
        self.hidden = nn.ModuleList(
            MLPBlock(a, b, activation, norm, dropout) for a, b in zip(widths[:-1], widths[1:])
        )
        self.out = nn.Linear(widths[-1], out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.flatten(1)
        for block in self.hidden:
            y = block(h)
            h = h + y if self.residual and y.shape == h.shape else y
        return self.out(h)


class CNN1D(nn.Module):
    """The MNIST-1D paper's 1-D CNN: three stride-2 convolutions and a linear head.

    Input ``(N, length)`` or ``(N, 1, length)``; with ``length=40`` and 25 channels the
    head sees 25 x 5 = 125 features, as in the paper.

    Example:
        >>> CNN1D(40, 10)(torch.zeros(2, 40)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        length: int,
        out_features: int,
        *,
        channels: int = 25,
        activation: str = "relu",
        norm: str | None = None,
        dropout: float = 0.0,
    ):
        super().__init__()
        check_int(length, "length", owner="CNN1D", interval=Interval(8, None))
        check_int(out_features, "out_features", owner="CNN1D", interval=Interval(1, None))
        check_int(channels, "channels", owner="CNN1D", interval=Interval(1, None))
        dropout = _check_slots("CNN1D", activation, norm, dropout)
        self.length, self.out_features, self.channels = length, out_features, channels
        self.activation, self.norm, self.dropout = activation, norm, dropout
        specs = [(1, 5), (channels, 3), (channels, 3)]
        self.convs = nn.ModuleList(nn.Conv1d(c_in, channels, k, stride=2, padding=1) for c_in, k in specs)
        # LayerNorm over a (C, L) map is GroupNorm(1, C); BatchNorm1d takes (N, C, L) as is.
        self.norms = nn.ModuleList(
            make_norm(norm, channels, dims=2 if norm == "layer" else 1) for _ in specs
        )
        self.act = make_activation(activation)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        out_len = length
        for _, k in specs:
            out_len = (out_len + 2 - k) // 2 + 1
        self.out = nn.Linear(channels * out_len, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.reshape(x.shape[0], 1, -1)
        for conv, norm in zip(self.convs, self.norms):
            h = self.act(norm(conv(h)))
        return self.out(self.drop(h.flatten(1)))


class CNN2D(nn.Module):
    """A small 2-D CNN for 8 x 8 images (scikit-learn's digits).

    ``conv3x3(16) -> norm -> act -> maxpool2 -> conv3x3(32) -> norm -> act -> maxpool2
    -> dropout -> linear``.

    Example:
        >>> CNN2D(8, 10)(torch.zeros(2, 64)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        size: int,
        out_features: int,
        *,
        channels: tuple[int, int] = (16, 32),
        activation: str = "relu",
        norm: str | None = None,
        dropout: float = 0.0,
    ):
        super().__init__()
        check_int(size, "size", owner="CNN2D", interval=Interval(4, None))
        check_int(out_features, "out_features", owner="CNN2D", interval=Interval(1, None))
        dropout = _check_slots("CNN2D", activation, norm, dropout)
        if not (isinstance(channels, (tuple, list)) and len(channels) == 2):
            raise fail("CNN2D", "channels", "a pair of ints >= 1 (first and second convolution)", channels)
        channels = tuple(check_int(c, "channels", owner="CNN2D", interval=Interval(1, None))
                         for c in channels)
        self.size, self.out_features, self.channels = size, out_features, channels
        self.activation, self.norm, self.dropout = activation, norm, dropout
        c1, c2 = self.channels
        self.conv1, self.conv2 = nn.Conv2d(1, c1, 3, padding=1), nn.Conv2d(c1, c2, 3, padding=1)
        self.norm1, self.norm2 = make_norm(norm, c1, dims=2), make_norm(norm, c2, dims=2)
        self.act = make_activation(activation)
        self.pool = nn.MaxPool2d(2)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.out = nn.Linear(c2 * (size // 4) ** 2, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.reshape(x.shape[0], 1, self.size, self.size)
        h = self.pool(self.act(self.norm1(self.conv1(h))))
        h = self.pool(self.act(self.norm2(self.conv2(h))))
        return self.out(self.drop(h.flatten(1)))
