"""reglab: regularization for neural-network training, exact, measurable and fast.

The public API is re-exported here by hand; see ``docs/architecture.md`` for the layout and the
contracts between modules. The core (penalties, layers, models, training) is imported eagerly; the
heavier parts (data, augmentation, population, studies, reports) load on first use, so
``import reglab`` costs little more than ``import torch``.

Example:
    >>> import torch, reglab
    >>> model = reglab.MLP(40, 10, hidden=(64,))
    >>> float(reglab.L2(0.01)(model).detach()) > 0
    True
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from reglab import conventions
from reglab._validation import InvalidParameterError
from reglab.callbacks import EMA, SWA, Callback, EarlyStopping, ModelCheckpoint, ProgressBar
from reglab.clipping import ClipGradNorm, ClipGradNormPerTensor, ClipGradValue
from reglab.constraints import MaxNorm, NonNeg, UnitNorm
from reglab.errors import UserError
from reglab.init import initialize, reinitialize
from reglab.layers import DropConnect, DropPath, GaussianDropout, GaussianNoise, mc_predict
from reglab.models import CNN1D, CNN2D, MLP
from reglab.optim import ProximalOptimizer, param_groups, proximal, sparsity
from reglab.penalties import L1, L2, ElasticNet, GroupLasso, Penalty, Sum, attach, attached
from reglab.selectors import Selection, Selector, weight_norm
from reglab.targets import CutMix, LabelSmoothing, Mixup
from reglab.train import History, HistoryFileError, Trainer, fit

if TYPE_CHECKING:  # the lazy names below, for type checkers and IDEs
    from reglab import augment, data, population, report, study
    from reglab.data import DataSplits, TensorSplit, kfold
    from reglab.data import load as load_data
    from reglab.population import MemberConfig, Population, train_population
    from reglab.study import Study, StudyConfig, config_json_schema

__version__ = "0.1.0"

# name -> (module, attribute or None for the module itself); resolved on first access.
_LAZY: dict[str, tuple[str, str | None]] = {
    "data": ("reglab.data", None),
    "augment": ("reglab.augment", None),
    "population": ("reglab.population", None),
    "study": ("reglab.study", None),
    "report": ("reglab.report", None),
    "load_data": ("reglab.data", "load"),
    "DataSplits": ("reglab.data", "DataSplits"),
    "TensorSplit": ("reglab.data", "TensorSplit"),
    "kfold": ("reglab.data", "kfold"),
    "Population": ("reglab.population", "Population"),
    "MemberConfig": ("reglab.population", "MemberConfig"),
    "train_population": ("reglab.population", "train_population"),
    "Study": ("reglab.study", "Study"),
    "StudyConfig": ("reglab.study", "StudyConfig"),
    "config_json_schema": ("reglab.study", "config_json_schema"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'reglab' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "__version__",
    # errors
    "InvalidParameterError",
    "UserError",
    "HistoryFileError",
    # penalties, selection, conventions, optimizer side
    "L1",
    "L2",
    "ElasticNet",
    "GroupLasso",
    "Penalty",
    "Sum",
    "attach",
    "attached",
    "Selector",
    "Selection",
    "weight_norm",
    "conventions",
    "param_groups",
    "proximal",
    "ProximalOptimizer",
    "sparsity",
    # constraints, layers, init, clipping, targets
    "MaxNorm",
    "UnitNorm",
    "NonNeg",
    "DropConnect",
    "DropPath",
    "GaussianNoise",
    "GaussianDropout",
    "mc_predict",
    "initialize",
    "reinitialize",
    "ClipGradNorm",
    "ClipGradValue",
    "ClipGradNormPerTensor",
    "LabelSmoothing",
    "Mixup",
    "CutMix",
    # data and augmentation
    "data",
    "augment",
    "load_data",
    "DataSplits",
    "TensorSplit",
    "kfold",
    # models and training
    "MLP",
    "CNN1D",
    "CNN2D",
    "Trainer",
    "fit",
    "History",
    "Callback",
    "EarlyStopping",
    "ModelCheckpoint",
    "EMA",
    "SWA",
    "ProgressBar",
    # population engine
    "population",
    "Population",
    "MemberConfig",
    "train_population",
    # studies and reports
    "study",
    "Study",
    "StudyConfig",
    "config_json_schema",
    "report",
]
