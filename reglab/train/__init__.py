"""The training engine: :class:`Trainer`, :func:`fit`, :class:`History` (and
:class:`HistoryFileError`, which :meth:`History.from_json` raises for a file that is no History).

Example:
    >>> from reglab.train import Trainer, fit, History, HistoryFileError
"""

from reglab.train.history import COLUMNS, History, HistoryFileError
from reglab.train.trainer import LOSSES, TRANSFORM_SEED_OFFSET, Trainer, fit

__all__ = ["Trainer", "fit", "History", "HistoryFileError", "COLUMNS", "LOSSES", "TRANSFORM_SEED_OFFSET"]
