"""Training callbacks: no-op hooks, pure stop decisions, resumable state, a stop flag.

Example:
    >>> from reglab.callbacks import EarlyStopping
    >>> EarlyStopping(monitor="val_accuracy", patience=3).direction
    'max'
"""

from reglab.callbacks.averaging import EMA, SWA
from reglab.callbacks.base import Callback
from reglab.callbacks.checkpoint import ModelCheckpoint, save_atomic
from reglab.callbacks.early_stopping import EarlyStopping, infer_mode
from reglab.callbacks.progress import ProgressBar

__all__ = [
    "Callback",
    "EarlyStopping",
    "ModelCheckpoint",
    "EMA",
    "SWA",
    "ProgressBar",
    "save_atomic",
    "infer_mode",
]
