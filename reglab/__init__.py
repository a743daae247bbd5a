"""reglab: regularization for neural-network training, exact, measurable and fast.

The public API is re-exported here by hand; see ``docs/architecture.md`` for the
layout and the contracts between modules.

Example:
    >>> import torch, reglab
    >>> model = reglab.MLP(40, 10, hidden=(64,))
    >>> float(reglab.L2(0.01)(model).detach()) > 0
    True
"""

from reglab import augment, conventions, data, population
from reglab._validation import InvalidParameterError
from reglab.callbacks import EMA, SWA, Callback, EarlyStopping, ModelCheckpoint, ProgressBar
from reglab.clipping import ClipGradNorm, ClipGradNormPerTensor, ClipGradValue
from reglab.constraints import MaxNorm, NonNeg, UnitNorm
from reglab.data import DataSplits, TensorSplit, kfold
from reglab.data import load as load_data
from reglab.errors import UserError
from reglab.init import initialize
from reglab.layers import DropConnect, DropPath, GaussianDropout, GaussianNoise, mc_predict
from reglab.models import CNN1D, CNN2D, MLP
from reglab.optim import ProximalOptimizer, param_groups, proximal, sparsity
from reglab.penalties import L1, L2, ElasticNet, GroupLasso, Penalty, Sum, attach, attached
from reglab.population import MemberConfig, Population, train_population
from reglab.selectors import Selection, Selector, weight_norm
from reglab.targets import CutMix, LabelSmoothing, Mixup
from reglab.train import History, Trainer, fit

__version__ = "0.1.0"

__all__ = [
    "__version__",
    # errors
    "InvalidParameterError",
    "UserError",
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
]
