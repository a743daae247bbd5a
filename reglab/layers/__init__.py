"""Stochastic regularization layers: pure functions, thin modules, and MC dropout.

``reglab.layers.functional`` holds the functions (explicit ``training=`` and
``generator=``); the modules wrap them; :func:`mc_predict` runs a model with its
dropout layers on to estimate predictive uncertainty.
"""

from reglab.layers.functional import drop_connect, drop_path, dropout, gaussian_dropout, gaussian_noise
from reglab.layers.mc import MC_LAYERS, mc_predict
from reglab.layers.modules import (
    AlphaDropout,
    DropConnect,
    Dropout,
    Dropout1d,
    Dropout2d,
    Dropout3d,
    DropPath,
    GaussianDropout,
    GaussianNoise,
)

__all__ = [
    "Dropout",
    "Dropout1d",
    "Dropout2d",
    "Dropout3d",
    "AlphaDropout",
    "DropConnect",
    "DropPath",
    "GaussianNoise",
    "GaussianDropout",
    "mc_predict",
    "MC_LAYERS",
    "dropout",
    "drop_connect",
    "drop_path",
    "gaussian_noise",
    "gaussian_dropout",
]
