"""reglab: regularization for neural-network training, exact, measurable and fast.

The public API is re-exported here by hand; implementation modules are private or
documented in ``docs/architecture.md``.
"""

from reglab._validation import InvalidParameterError
from reglab.errors import UserError
from reglab.models import CNN1D, CNN2D, MLP

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "InvalidParameterError",
    "UserError",
    "MLP",
    "CNN1D",
    "CNN2D",
]
