"""The population engine: K regularization configurations trained at once as one stacked model.

See :class:`Population` and ``docs/population.md``.
"""

from reglab.population._config import MemberConfig
from reglab.population._population import Population, train_population

__all__ = ["Population", "MemberConfig", "train_population"]
