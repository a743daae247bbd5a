"""The rich classes reglab uses, imported without moving Python's global ``random`` stream.

``rich.style`` draws from the global generator when it is imported (``getrandbits``, the seed of its
style ids), so a user who seeded ``random`` would get another stream after reglab first printed a
table or a progress bar. Every reglab module takes rich's classes from here, imported with the state
put back. (``reglab.data`` guards scikit-learn's imports the same way.)
"""

import random

_state = random.getstate()
try:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table
finally:
    random.setstate(_state)
    del _state

__all__ = [
    "BarColumn", "Console", "MofNCompleteColumn", "Progress", "Table", "TextColumn", "TimeElapsedColumn",
]
