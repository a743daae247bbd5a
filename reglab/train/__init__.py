"""The training engine: :class:`Trainer`, :func:`fit`, :class:`History`.

Example:
    >>> from reglab.train import Trainer, fit, History
"""

from reglab.train.history import COLUMNS, History
from reglab.train.trainer import TRANSFORM_SEED_OFFSET, Trainer, fit

__all__ = ["Trainer", "fit", "History", "COLUMNS", "TRANSFORM_SEED_OFFSET"]
