"""Seeded weight initialization of every Linear and convolution layer, over ``torch.nn.init``.

``initialize(model, scheme, generator=g)`` re-draws the weights of every
``nn.Linear`` and ``nn.Conv*``/``nn.ConvTranspose*`` in ``model`` from ``g``, so a
model's starting point is a function of one seed and does not depend on the global
RNG or on the order in which layers were built.

Where frameworks disagree:
    PyTorch's own default (``"default"`` here) is ``kaiming_uniform_(a=sqrt(5))``,
    i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)), with a bias from the same range. Keras's
    default is ``glorot_uniform`` (= ``xavier_uniform``) with zero biases. Keras's
    ``glorot_normal`` and ``he_normal`` draw from a normal truncated at two standard
    deviations and rescaled by 1/0.8796 so the variance stays ``scale / fan``; torch's
    ``xavier_normal_``/``kaiming_normal_`` do not truncate. Both are offered.

References:
    Glorot & Bengio, "Understanding the difficulty of training deep feedforward
    neural networks", AISTATS 2010. He et al., "Delving deep into rectifiers", ICCV
    2015. Saxe et al., "Exact solutions to the nonlinear dynamics of learning in deep
    linear neural networks", ICLR 2014 (orthogonal).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from reglab._validation import Interval, check_generator, check_int, check_option, check_scalar, fail
from reglab.errors import UserError

__all__ = ["initialize", "reinitialize", "check_resettable", "SCHEMES", "LAYER_TYPES"]

#: Layers whose ``weight`` (and ``bias``) :func:`initialize` re-draws.
LAYER_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, nn.modules.conv._ConvNd)

_TRUNC_STD = 0.87962566103423978  # std of N(0, 1) truncated to [-2, 2]; Keras divides by it


def _fans(w: torch.Tensor) -> tuple[int, int]:
    # torch's own fan computation (receptive field x channels), the same as Keras's.
    return nn.init._calculate_fan_in_and_fan_out(w)


def _keras_truncated(w: torch.Tensor, variance: float, g: torch.Generator | None) -> None:
    std = math.sqrt(variance) / _TRUNC_STD
    nn.init.trunc_normal_(w, 0.0, std, -2 * std, 2 * std, generator=g)


def _kaiming(fn: Callable) -> Callable:
    # torch's kaiming takes a nonlinearity, not a gain: draw the unit-gain ("linear") version and scale.
    def draw(w: torch.Tensor, gain: float, g: torch.Generator | None) -> None:
        fn(w, mode="fan_in", nonlinearity="linear", generator=g)
        w.mul_(gain)

    return draw


def _default(w: torch.Tensor, gain: float, g: torch.Generator | None) -> None:
    # nn.Linear.reset_parameters takes no generator; this is its weight draw with one.
    nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=g)
    if gain != 1.0:
        w.mul_(gain)


#: scheme -> (draw(weight, gain, generator), default gain). Keras names are aliases or Keras's exact draw.
SCHEMES: dict[str, tuple[Callable[[torch.Tensor, float, torch.Generator | None], None], float]] = {
    "xavier_uniform": (lambda w, gain, g: nn.init.xavier_uniform_(w, gain, generator=g), 1.0),
    "xavier_normal": (lambda w, gain, g: nn.init.xavier_normal_(w, gain, generator=g), 1.0),
    "kaiming_uniform": (_kaiming(nn.init.kaiming_uniform_), math.sqrt(2.0)),
    "kaiming_normal": (_kaiming(nn.init.kaiming_normal_), math.sqrt(2.0)),
    "orthogonal": (lambda w, gain, g: nn.init.orthogonal_(w, gain, generator=g), 1.0),
    "default": (_default, 1.0),
    "glorot_uniform": (lambda w, gain, g: nn.init.xavier_uniform_(w, gain, generator=g), 1.0),
    "he_uniform": (_kaiming(nn.init.kaiming_uniform_), math.sqrt(2.0)),
    "glorot_normal": (lambda w, gain, g: _keras_truncated(w, gain**2 * 2.0 / sum(_fans(w)), g), 1.0),
    "he_normal": (lambda w, gain, g: _keras_truncated(w, gain**2 / _fans(w)[0], g), math.sqrt(2.0)),
}


@torch.no_grad()
def initialize(
    model: nn.Module,
    scheme: str = "xavier_uniform",
    *,
    gain: float | None = None,
    generator: torch.Generator | None = None,
    bias: float | None = None,
) -> list[str]:
    """Re-draw the weights of every Linear and Conv layer in ``model``, in place.

    Weight distributions (``fan_in``/``fan_out`` include the kernel size):

    ========================  =============================================================
    ``xavier_uniform``        U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out));
                              ``glorot_uniform`` is the same (Keras's default kernel)
    ``xavier_normal``         N(0, gain^2 * 2 / (fan_in + fan_out))
    ``kaiming_uniform``       U(-b, b), b = gain * sqrt(3 / fan_in), gain sqrt(2) (ReLU);
                              ``he_uniform`` is the same
    ``kaiming_normal``        N(0, gain^2 / fan_in), gain sqrt(2)
    ``orthogonal``            a (semi-)orthogonal matrix times gain: W W^T = gain^2 I
    ``default``               PyTorch's own Linear/Conv init, drawn from ``generator``
    ``glorot_normal``         Keras: truncated normal, variance gain^2 * 2 / (fan_in + fan_out)
    ``he_normal``             Keras: truncated normal, variance gain^2 / fan_in, gain sqrt(2)
    ========================  =============================================================

    Args:
        model: the module to initialize (its sub-modules of :data:`LAYER_TYPES`).
        scheme: one of :data:`SCHEMES`.
        gain: scale of the weights; default 1, or sqrt(2) for the He/Kaiming schemes.
        generator: a ``torch.Generator`` to draw from; ``None`` uses the global RNG.
        bias: constant for the biases. ``None`` follows the scheme's framework: zeros,
            except for ``"default"`` which draws PyTorch's U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    Returns:
        The qualified names of the weights that were initialized.

    Example:
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> initialize(model, "kaiming_normal", generator=torch.Generator().manual_seed(0))
        ['0.weight', '2.weight']
        >>> model[0].bias.abs().sum().item()
        0.0
    """
    if not isinstance(model, nn.Module):
        raise fail("initialize", "model", "a torch.nn.Module", type(model).__name__)
    scheme = check_option(scheme, "scheme", owner="initialize", options=SCHEMES)
    check_generator(generator, "initialize")
    draw, default_gain = SCHEMES[scheme]
    gain = default_gain if gain is None else check_scalar(
        gain, "gain", owner="initialize", interval=Interval(0, None)
    )
    if bias is not None:
        bias = check_scalar(bias, "bias", owner="initialize")
    layers = [(name, m) for name, m in model.named_modules() if isinstance(m, LAYER_TYPES)]
    if not layers:
        raise fail("initialize", "model", "a module containing Linear or Conv layers", type(model).__name__)
    for _, m in layers:
        draw(m.weight, gain, generator)
        if m.bias is None:
            continue
        if bias is not None:
            m.bias.fill_(bias)
        elif scheme == "default":
            fan_in = _fans(m.weight)[0]
            bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            nn.init.uniform_(m.bias, -bound, bound, generator=generator)
        else:
            m.bias.zero_()
    return [f"{name}.weight" if name else "weight" for name, _ in layers]


def reinitialize(model: nn.Module, seed: int, scheme: str | None = None) -> nn.Module:
    """A restart of ``model``, in place: fresh weights that depend on ``seed`` alone.

    Every sub-module with a ``reset_parameters()`` method (PyTorch's own layers, norm layers
    included) redraws its parameters under ``torch.manual_seed(seed)``; then ``scheme``, if
    given, re-draws the Linear and Conv weights with :func:`initialize` from a generator seeded
    with ``seed``. The global random state is left as it was. This is what ``Trainer(restarts=)``
    does before restart ``r > 0`` (with ``seed + r``).

    Returns:
        ``model``.

    Example:
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> first = reinitialize(model, 3)[0].weight.clone()
        >>> bool(torch.equal(reinitialize(model, 3)[0].weight, first))
        True
        >>> bool(torch.equal(reinitialize(model, 4)[0].weight, first))
        False
    """
    seed = check_int(seed, "seed", owner="reinitialize", interval=Interval(0, 2**63 - 1))
    if scheme is not None:
        scheme = check_option(scheme, "scheme", owner="reinitialize", options=SCHEMES)
    check_resettable(model)
    # reset_parameters() draws from the global RNG; fork it (and the RNG of every CUDA device the
    # model is on) so that only the seed matters and the caller's stream is not consumed.
    devices = sorted({p.device for p in model.parameters() if p.device.type == "cuda"}, key=str)
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        for module in model.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    if scheme is not None:
        initialize(model, scheme, generator=torch.Generator().manual_seed(seed))
    return model


def check_resettable(model: nn.Module) -> None:
    """Raise a one-line ``UserError`` if a parameter of ``model`` belongs to a module without
    ``reset_parameters()``: :func:`reinitialize` could not redraw it, and a restart would go on
    training the previous restart's value instead of starting afresh.

    Example:
        >>> check_resettable(nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2)))  # torch's layers: fine
    """
    stuck = [
        f"{prefix}.{name}" if prefix else name
        for prefix, module in model.named_modules()
        if not hasattr(module, "reset_parameters")
        for name, _ in module.named_parameters(recurse=False)
    ]
    if stuck:
        more = f" and {len(stuck) - 5} more" if len(stuck) > 5 else ""
        shown = ", ".join(repr(n) for n in stuck[:5]) + more
        raise UserError(
            f"reinitialize: {shown} belong to modules without reset_parameters(), so a restart cannot redraw "
            "them; give those modules a reset_parameters() method, or train with restarts=1."
        )
