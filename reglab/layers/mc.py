"""Monte Carlo dropout: predictive mean and spread from dropout kept on at test time.

Reference:
    Gal & Ghahramani, "Dropout as a Bayesian approximation: representing model
    uncertainty in deep learning", ICML 2016.
"""

from __future__ import annotations

import torch
from torch import nn

from reglab._validation import Interval, check_generator, check_int, fail
from reglab.layers.modules import DropConnect, DropPath, GaussianDropout

__all__ = ["mc_predict", "MC_LAYERS"]

#: Module types switched to training mode by :func:`mc_predict`: torch's dropout family
#: (``Dropout``, ``Dropout1d/2d/3d``, ``AlphaDropout``, ``FeatureAlphaDropout``) and reglab's.
MC_LAYERS: tuple[type[nn.Module], ...] = (
    nn.modules.dropout._DropoutNd,
    DropConnect,
    DropPath,
    GaussianDropout,
)


@torch.no_grad()
def mc_predict(
    model: nn.Module,
    x: torch.Tensor,
    *,
    samples: int = 30,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``model`` ``samples`` times with dropout on; return the mean and std of the outputs.

    Only the :data:`MC_LAYERS` modules are put in training mode; everything else
    (BatchNorm above all: its running statistics are neither used from the batch
    nor updated) stays in eval mode. Every module's mode is restored afterwards,
    even on error. ``std`` is the sample standard deviation over the passes
    (Bessel-corrected). Apply a softmax inside ``model`` if you want the spread of
    probabilities rather than of logits.

    With a ``generator``, torch's dropout layers (which only read the global RNG)
    run under a forked global RNG seeded from it, so the result is reproducible
    and the caller's global RNG (CPU, and ``x``'s accelerator) is left untouched.
    reglab layers built with their own generator keep using it.

    Args:
        model: a module containing at least one dropout-family layer.
        x: the input batch.
        samples: number of stochastic forward passes, at least 2.
        generator: optional ``torch.Generator`` (CPU) seeding the passes.

    Returns:
        ``(mean, std)``, each shaped like one output of ``model(x)``.

    Example:
        >>> model = nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.5), nn.Linear(8, 1))
        >>> mean, std = mc_predict(model, torch.ones(4, 3), samples=10,
        ...                        generator=torch.Generator().manual_seed(0))
        >>> mean.shape, bool((std > 0).all())
        (torch.Size([4, 1]), True)
    """
    if not isinstance(model, nn.Module):
        raise fail("mc_predict", "model", "a torch.nn.Module", type(model).__name__)
    if not isinstance(x, torch.Tensor):
        raise fail("mc_predict", "x", "a torch.Tensor (the input batch)", type(x).__name__)
    samples = check_int(samples, "samples", owner="mc_predict", interval=Interval(2, None))
    check_generator(generator, "mc_predict")
    stochastic = [m for m in model.modules() if isinstance(m, MC_LAYERS)]
    if not stochastic:
        raise fail(
            "mc_predict",
            "model",
            "a module containing a dropout-family layer (" + ", ".join(t.__name__ for t in MC_LAYERS) + ")",
            type(model).__name__,
        )
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        for m in stochastic:
            m.training = True  # this module only: a wrapped layer (DropConnect's Linear) stays in eval
        if generator is None:
            outputs = torch.stack([model(x) for _ in range(samples)])
        else:
            seed = int(torch.randint(2**62, (1,), generator=generator))
            accel = [] if x.device.type == "cpu" else [x.device]
            with torch.random.fork_rng(devices=accel, device_type=x.device.type if accel else "cuda"):
                torch.manual_seed(seed)
                outputs = torch.stack([model(x) for _ in range(samples)])
    finally:
        for m, mode in modes:
            m.training = mode
    std, mean = torch.std_mean(outputs, dim=0)
    return mean, std
