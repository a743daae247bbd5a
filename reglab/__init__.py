"""reglab: regularization for neural-network training, exact, measurable and fast.

The public API is re-exported here by hand; see ``docs/architecture.md`` for the layout and the
contracts between modules. Every name loads its module on first use (``reglab.L2`` imports
``reglab.penalties``, and torch with it), so ``import reglab`` alone imports no torch and the
``reglab`` command starts without the modules its subcommand does not need.

Example:
    >>> import torch, reglab
    >>> model = reglab.MLP(40, 10, hidden=(64,))
    >>> float(reglab.L2(0.01)(model).detach()) > 0
    True
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

# The two exception types are light (no torch): the CLI needs them before it knows which command runs.
from reglab._validation import InvalidParameterError
from reglab.errors import UserError

if TYPE_CHECKING:  # the lazy names below, for type checkers and IDEs
    from reglab import augment, conventions, data, population, report, study
    from reglab.callbacks import EMA, SWA, Callback, EarlyStopping, ModelCheckpoint, ProgressBar
    from reglab.clipping import ClipGradNorm, ClipGradNormPerTensor, ClipGradValue
    from reglab.constraints import MaxNorm, NonNeg, UnitNorm
    from reglab.data import DataSplits, TensorSplit, kfold
    from reglab.data import load as load_data
    from reglab.init import initialize, reinitialize
    from reglab.layers import DropConnect, DropPath, GaussianDropout, GaussianNoise, mc_predict
    from reglab.models import CNN1D, CNN2D, MLP
    from reglab.optim import ProximalOptimizer, param_groups, proximal, sparsity
    from reglab.penalties import L1, L2, ElasticNet, GroupLasso, Penalty, Sum, attach, attached
    from reglab.population import MemberConfig, Population, train_population
    from reglab.selectors import Selection, Selector, weight_norm
    from reglab.study import Study, StudyConfig, config_json_schema
    from reglab.targets import CutMix, LabelSmoothing, Mixup
    from reglab.train import History, HistoryFileError, Trainer, fit

__version__ = "0.1.0"


def _from(module: str, *names: str) -> dict[str, tuple[str, str | None]]:
    return {name: (module, name) for name in names}


# name -> (module, attribute or None for the module itself); resolved on first access.
_LAZY: dict[str, tuple[str, str | None]] = {
    "conventions": ("reglab.conventions", None),
    **_from("reglab.callbacks", "EMA", "SWA", "Callback", "EarlyStopping", "ModelCheckpoint", "ProgressBar"),
    **_from("reglab.clipping", "ClipGradNorm", "ClipGradNormPerTensor", "ClipGradValue"),
    **_from("reglab.constraints", "MaxNorm", "NonNeg", "UnitNorm"),
    **_from("reglab.init", "initialize", "reinitialize"),
    **_from("reglab.layers", "DropConnect", "DropPath", "GaussianDropout", "GaussianNoise", "mc_predict"),
    **_from("reglab.models", "CNN1D", "CNN2D", "MLP"),
    **_from("reglab.optim", "ProximalOptimizer", "param_groups", "proximal", "sparsity"),
    **_from("reglab.penalties", "L1", "L2", "ElasticNet", "GroupLasso", "Penalty", "Sum", "attach",
            "attached"),
    **_from("reglab.selectors", "Selection", "Selector", "weight_norm"),
    **_from("reglab.targets", "CutMix", "LabelSmoothing", "Mixup"),
    **_from("reglab.train", "History", "HistoryFileError", "Trainer", "fit"),
    "data": ("reglab.data", None),
    "augment": ("reglab.augment", None),
    "population": ("reglab.population", None),
    "study": ("reglab.study", None),
    "report": ("reglab.report", None),
    "load_data": ("reglab.data", "load"),
    **_from("reglab.data", "DataSplits", "TensorSplit", "kfold"),
    **_from("reglab.population", "Population", "MemberConfig", "train_population"),
    **_from("reglab.study", "Study", "StudyConfig", "config_json_schema"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        # A submodule (``reglab.penalties``, ``reglab.train``) is an attribute once imported, as it was
        # while ``import reglab`` imported the core eagerly.
        if name.startswith("__") or importlib.util.find_spec(f"{__name__}.{name}") is None:
            raise AttributeError(f"module 'reglab' has no attribute {name!r}")
        return importlib.import_module(f"{__name__}.{name}")
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
