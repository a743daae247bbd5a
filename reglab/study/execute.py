"""Execute one trial: the only place that maps a recipe onto training.

A :class:`TrialSpec` (phase, recipe, resolved parameters, seed, fold, epochs) plus the
study config become one training run; the result is a :class:`TrialOutcome` (status,
final metrics, every epoch's metrics). Everything else in ``reglab.study`` (search,
storage, backends, CLI) is independent of how a trial trains.

Protocol: ``cv`` trials train on a fold's training part and are scored on its
validation part (k-fold over train + val, ``reglab.data.kfold``), or on ``val`` for a
hold-out; ``final`` trials train on ``train``, monitor ``val`` (early stopping / best
epoch) and are the only ones that evaluate ``test``.

Training goes through :class:`reglab.Trainer`: the recipe becomes its penalty
(``reglab.penalties``, optionally proximal), decay (coupled or decoupled), constraints
(``MaxNorm``), batch transforms (augmentation, noise, mixup, label smoothing), callbacks
(``EarlyStopping``) and restarts; norm, dropout and width fill the model's slots. A
``ModelCheckpoint`` writes ``last.pt`` in the trial's checkpoint folder after every
epoch; an interrupted trial resumes from it (``fit(resume_from=...)``) and finishes with
exactly the numbers of an uninterrupted run. Trials with ``restarts > 1`` run one Trainer per
restart (``restart<r>/last.pt``, and ``restart<r>/done.pt`` once it ends), so finished restarts
are kept and the interrupted one resumes. A population group writes
``group-<hash>/population.pt`` after every epoch (``Population.fit(checkpoint=...)``) and
resumes from it the same way.

Example:
    >>> from reglab.study.schema import parse_config
    >>> cfg = parse_config({"name": "t", "dataset": {"name": "breast_cancer"},
    ...     "model": {"hidden": [8]}, "training": {"epochs": 2, "batch_size": 64},
    ...     "recipes": {"none": {}}})
    >>> out = run_trial(cfg, TrialSpec("final", "none", {}, seed=0, fold=-1, epochs=2))
    >>> out.status, 0.5 < out.metrics["test_accuracy"] <= 1.0
    ('done', True)
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import math
import os
import pickle
import time
import traceback
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reglab.callbacks.base import Callback
from reglab.errors import UserError
from reglab.init import reinitialize
from reglab.models import CNN1D, CNN2D, MLP
from reglab.study.schema import EarlyStoppingConfig, StudyConfig

__all__ = [
    "TrialSpec", "TrialOutcome", "run_trial", "run_group", "check_params", "load_splits", "fold_data",
    "build_model", "data_fingerprint", "resolve_task_defaults", "data_source", "make_penalty",
    "make_transforms", "population_key", "member_config", "weight_histogram", "HISTOGRAM_BINS",
    "group_checkpoint",
]

# A loss above this (or non-finite) marks the trial diverged; cross-entropy of a
# useless classifier is ~log(K) < 10 and regression targets are standardized (MSE of a
# constant prediction ~1), so this leaves room for any sane run.
DIVERGED_LOSS = 1e6
HISTOGRAM_BINS = 81  # odd: the middle bin is centred on 0, where L1 puts its exact zeros


@dataclass(frozen=True)
class TrialSpec:
    """One trial: what to train (recipe parameters), on which data (seed, fold) and for how long."""

    phase: str
    recipe: str
    params: dict[str, Any]
    seed: int
    fold: int
    epochs: int
    checkpoint: str | None = None
    # The study's data fingerprint (data_fingerprint at its start): a trial refuses to train on data
    # that hashes otherwise (a data file edited while the study runs). None: not checked.
    data: str | None = None

    def key(self) -> tuple[str, str, str, int, int]:
        from reglab.study.storage import params_key

        return (self.phase, self.recipe, params_key(self.params), self.seed, self.fold)


@dataclass
class TrialOutcome:
    """A finished trial: ``status`` is ``done``, ``diverged`` or ``failed``.

    ``duration`` is the wall time (seconds) this run spent on the trial. ``group`` trials trained
    together as one population share one wall time: each gets ``group wall time / group``.
    ``evaluated_only``: the trial trained no epoch in this run, only evaluated a model trained before
    (a hold-out final trial reusing its cv run's model, or a run that ended before an interruption).
    """

    spec: TrialSpec
    status: str
    metrics: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    duration: float = 0.0
    error: str | None = None
    histogram: dict[str, Any] | None = None  # final trials: weight_histogram() of the trained model
    group: int = 1
    evaluated_only: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- data ------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _splits_cached(dataset_json: str, stamp: tuple[int, int] | None = None, dtype: str = "float32") -> Any:
    """``stamp``: the data file's (mtime, size), so that an edited file is read again; ``dtype``: the
    training dtype, in which the inputs are loaded (a float64 study would otherwise train on data
    rounded to float32)."""
    import json

    from reglab.study.schema import DatasetConfig

    cfg = DatasetConfig.model_validate(json.loads(dataset_json))
    from reglab.data import load

    sizes: dict[str, Any] = {"seed": cfg.split_seed, "dtype": getattr(torch, dtype)}
    for key in ("val_size", "test_size"):
        if getattr(cfg, key) is not None:
            sizes[key] = getattr(cfg, key)
    def read(**extra: Any) -> Any:
        if cfg.path is not None:
            return load(cfg.path, **cfg.file_keywords(), **sizes, **extra)
        return load(cfg.name, **sizes, **extra)

    splits = read()
    # Regression targets are standardized on train: MSE is in units of the target's variance, so
    # one strength grid and one learning rate suit any regression dataset.
    return read(scale_y=True) if splits.task == "regression" else splits


def load_splits(config: StudyConfig) -> Any:
    """The study's ``DataSplits`` (cached per process)."""
    return _splits_cached(*_data_key(config))


# Dataset (as JSON) -> the file stamp a running trial group checked (see _verified_data): while the
# group runs, every load reads the data of that stamp, so an edit mid-group cannot reach it.
_PINNED: dict[str, tuple[int, int] | None] = {}


def _data_key(config: StudyConfig) -> tuple[str, tuple[int, int] | None, str]:
    """The cache key of the study's data: its dataset settings, the file's (mtime, size) and the dtype."""
    dataset, dtype = config.dataset.model_dump_json(), config.training.dtype
    if dataset in _PINNED:
        return dataset, _PINNED[dataset], dtype
    path = config.dataset.path
    try:
        info = os.stat(path) if path is not None else None
    except OSError:  # a missing file: the loader names it
        info = None
    return dataset, None if info is None else (info.st_mtime_ns, info.st_size), dtype


@functools.lru_cache(maxsize=4)
def _folds_cached(
    dataset_json: str, stamp: tuple[int, int] | None, dtype: str, k: int, seed: int, stratified: bool = True
) -> list[tuple[Any, Any]]:
    from reglab.data import kfold

    return list(kfold(_splits_cached(dataset_json, stamp, dtype), k=k, seed=seed, stratified=stratified))


@functools.lru_cache(maxsize=4)
def _fingerprint_cached(dataset_json: str, stamp: tuple[int, int] | None, dtype: str = "float32") -> str:
    """The hash of the splits cached under this key: computed once per process and file stamp."""
    from reglab.population._checkpoint import tensor_digest

    splits = _splits_cached(dataset_json, stamp, dtype)
    parts = (splits.train, splits.val, splits.test)
    return tensor_digest(*(t for split in parts if split is not None for t in (split.x, split.y)))


def data_fingerprint(config: StudyConfig) -> str:
    """SHA-256 of the study's loaded splits (inputs and targets, in order): it changes exactly when the
    data a trial trains on would (a file edited, a built-in dataset regenerated differently)."""
    return _fingerprint_cached(*_data_key(config))


def data_source(config: StudyConfig) -> str:
    """The study's data in words, for messages: ``the dataset file 'x.csv'`` or ``the built-in ...``."""
    if config.dataset.path:
        return f"the dataset file {config.dataset.path!r}"
    return f"the built-in dataset {config.dataset.name!r}"


@contextlib.contextmanager
def _verified_data(config: StudyConfig, expected: str | None) -> Iterator[None]:
    """Check that the data hashes to ``expected`` (the study's fingerprint), then keep that very data
    for every load until the block ends. A changed data file raises ``UserError``: the block's trials
    would train on other data than the study's finished trials did."""
    if expected is None:
        yield
        return
    dataset, stamp, dtype = _data_key(config)
    found = _fingerprint_cached(dataset, stamp, dtype)
    if found != expected:
        raise UserError(
            f"{data_source(config)} changed while the study ran (its contents hash to {found[:12]}, not "
            f"{expected[:12]} as when the study started), so no further trial runs on it; finished trials "
            "are kept. Restore the data and rerun to resume, or study the new data in another --out "
            "directory (or --storage)."
        )
    if dataset in _PINNED:  # already pinned by an enclosing block
        yield
        return
    _PINNED[dataset] = stamp
    try:
        yield
    finally:
        del _PINNED[dataset]


def fold_data(config: StudyConfig, spec: TrialSpec) -> tuple[Any, Any, Any]:
    """``(train, val, test or None)`` for a trial; only ``final`` trials get the test split."""
    splits = load_splits(config)
    if spec.phase == "final":
        return splits.train, splits.val, splits.test
    if config.validation.kind == "holdout":
        return splits.train, splits.val, None
    folds = _folds_cached(*_data_key(config), config.validation.folds, config.dataset.split_seed,
                           config.validation.stratified)
    train, val = folds[spec.fold]
    return train, val, None


# -- model -----------------------------------------------------------------------------------


def build_model(config: StudyConfig, params: dict[str, Any], splits: Any) -> nn.Module:
    """The study's model family with the recipe's norm, dropout and width slots filled."""
    m = config.model
    norm, dropout, width = params.get("norm"), params.get("dropout", 0.0), params.get("width")
    shape = tuple(splits.input_shape)
    classes = int(splits.num_classes) if splits.task == "classification" else 1  # regression: one output
    if m.family == "mlp":
        hidden = [width] * len(m.hidden) if width else list(m.hidden)
        return MLP(math.prod(shape), classes, hidden=hidden, activation=m.activation, norm=norm,
                   dropout=dropout, residual=m.residual)
    if m.family == "cnn1d":
        channels = width or (m.channels if isinstance(m.channels, int) else 25)
        return CNN1D(shape[-1], classes, channels=channels, activation=m.activation, norm=norm,
                     dropout=dropout)
    channels = (width, 2 * width) if width else tuple(m.channels or (16, 32))
    size = shape[-1] if len(shape) >= 2 else math.isqrt(math.prod(shape))  # flat 8x8 digits: 64 features
    if math.prod(shape) != size * size or size < 4:
        raise UserError(
            "model.family cnn2d takes one-channel square images of at least 4 x 4 pixels (or them flat: 64 "
            f"features for 8 x 8); the dataset {splits.name!r} has inputs of shape {shape}. Use family mlp "
            "(or cnn1d for signals)."
        )
    return CNN2D(size, classes, channels=channels, activation=m.activation, norm=norm, dropout=dropout)


def _swap_dropout(model: nn.Module, variant: str, rate: float) -> None:
    """Replace the model's ``nn.Dropout`` slots by another dropout of the same rate."""
    from reglab import layers

    make = {"gaussian": layers.GaussianDropout, "alpha": nn.AlphaDropout}[variant]
    for name, child in list(model.named_children()):
        if isinstance(child, nn.Dropout):
            setattr(model, name, make(rate))
        else:
            _swap_dropout(child, variant, rate)


# -- regularizers ----------------------------------------------------------------------------


def make_penalty(params: dict[str, Any]) -> Any:
    """The recipe's penalty (``reglab.penalties``; Keras convention) or ``None``."""
    from reglab.penalties import L1, L2, ElasticNet, GroupLasso

    terms = []
    l1, l2 = float(params.get("l1", 0.0)), float(params.get("l2", 0.0))
    if params.get("elastic_net"):
        ratio = float(params.get("l1_ratio", 0.5))
        terms.append(ElasticNet(l1=params["elastic_net"] * ratio, l2=params["elastic_net"] * (1.0 - ratio)))
    if l1:
        terms.append(L1(l1))
    if l2:
        terms.append(L2(l2))
    if params.get("group_lasso"):
        terms.append(GroupLasso(float(params["group_lasso"])))
    if not terms:
        return None
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    return total


def _gaussian_noise(sigma: float) -> Any:
    from reglab.layers.functional import gaussian_noise

    def transform(x: torch.Tensor, y: torch.Tensor, *, generator: torch.Generator) -> tuple[Any, Any]:
        return gaussian_noise(x, sigma, training=True, generator=generator), y

    return transform


def make_transforms(params: dict[str, Any], classes: int) -> Any:
    """The recipe's batch transforms, in order: augmentation, input noise, mixup, label smoothing."""
    from reglab import augment, targets

    chain = []
    if params.get("augment"):
        chain.append(augment.from_config(params["augment"]))
    if params.get("gaussian_noise"):
        chain.append(_gaussian_noise(float(params["gaussian_noise"])))
    if params.get("mixup"):
        chain.append(targets.Mixup(float(params["mixup"]), classes))
    if params.get("label_smoothing"):
        chain.append(targets.LabelSmoothing(float(params["label_smoothing"]), classes))
    if not chain:
        return None
    return chain[0] if len(chain) == 1 else augment.Compose(chain)


class _DivergenceGuard(Callback):
    """Stops a run whose training loss has blown up (finite but above ``DIVERGED_LOSS``).

    The Trainer already stops on a non-finite loss; under Adam an absurd learning rate
    often stays finite but astronomically large, which is divergence all the same.
    """

    def __init__(self) -> None:
        self.reason: str | None = None
        # Epochs trained in this process; not in state_dict, so checkpoints are unchanged.
        self.epochs = 0

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, Any]) -> None:
        self.epochs += 1
        loss = logs.get("train_loss")
        if isinstance(loss, float) and not (math.isfinite(loss) and loss <= DIVERGED_LOSS):
            self.reason = f"training loss {loss:.3g} above {DIVERGED_LOSS:g} at epoch {epoch}"
            trainer.should_stop = True

    def state_dict(self) -> dict[str, Any]:
        return {"reason": self.reason}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.reason = state["reason"]


# -- one trial -------------------------------------------------------------------------------


def _resume_state(ckpt_dir: Path | None) -> tuple[Path | None, int | None]:
    """``(last.pt or None, epochs to pass)``: a run that had already stopped early trains no further."""
    path = None if ckpt_dir is None else ckpt_dir / "last.pt"
    if path is None or not path.is_file():
        return None, None
    try:
        state = torch.load(path, weights_only=True)  # never runs code from the file
        stopped = any(
            (c["class"] == "EarlyStopping" and c["state"].get("stopped"))
            or (c["class"] == "_DivergenceGuard" and c["state"].get("reason"))
            for c in state["callbacks"]
        )
        epoch = int(state["epoch"])
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, KeyError, TypeError, ValueError,
            AttributeError, IndexError):
        # Unreadable, untrusted (objects other than tensors) or not a Trainer checkpoint: as for a
        # population group's checkpoint, the trial trains from the start instead of failing for good.
        path.unlink(missing_ok=True)
        return None, None
    return path, (epoch + 1 if stopped else None)


def _make_trainer(config: StudyConfig, spec: TrialSpec, model: nn.Module, *, seed: int, restarts: int,
                  ckpt_dir: Path | None, epochs: int) -> tuple[Any, _DivergenceGuard]:
    """The recipe as a :class:`reglab.Trainer` (penalty, decay, constraints, transforms, callbacks)."""
    from reglab.callbacks import EarlyStopping, ModelCheckpoint
    from reglab.constraints import MaxNorm
    from reglab.train import Trainer

    p, t = spec.params, config.training
    splits = load_splits(config)
    es_cfg = EarlyStoppingConfig.model_validate(p["early_stopping"]) if p.get("early_stopping") else None
    guard = _DivergenceGuard()
    callbacks: list[Any] = [guard]
    if es_cfg is not None:
        callbacks.append(EarlyStopping(monitor=es_cfg.monitor, patience=es_cfg.patience,
                                       restore_best_weights=es_cfg.restore_best))
    if ckpt_dir is not None:
        callbacks.append(ModelCheckpoint(ckpt_dir, save_best=False, save_last=True))
    penalty = make_penalty(p)
    decoupled = float(p.get("decoupled_decay", 0.0))
    trainer = Trainer(
        model,
        optimizer=t.optimizer,
        lr=float(p.get("lr", t.lr)),
        momentum=t.momentum if t.optimizer == "sgd" else 0.0,
        weight_decay=decoupled or float(p.get("weight_decay", 0.0)),
        decoupled=bool(decoupled),
        penalty=penalty,
        proximal=bool(p.get("proximal", False)) and penalty is not None,
        constraints=[MaxNorm(float(p["max_norm"]))] if p.get("max_norm") else [],
        augment=make_transforms(p, int(splits.num_classes or 0)),
        callbacks=callbacks,
        epochs=epochs,
        batch_size=t.batch_size,
        seed=seed,
        dtype=torch.float64 if t.dtype == "float64" else torch.float32,
        restarts=restarts,
        init=None if p.get("init", "default") == "default" else p["init"],
        monitor=config.search.metric,
        task=splits.task,
        progress="off",
    )
    return trainer, guard


def _fit(config: StudyConfig, spec: TrialSpec, *, dry_run: bool = False) -> dict[str, Any] | None:
    """Build the trial's model and Trainer from the recipe, fit (or resume), return the outcome."""
    from reglab.init import initialize

    p = spec.params
    splits = load_splits(config)
    train, val, test = fold_data(config, spec)
    with torch.random.fork_rng():
        torch.manual_seed(spec.seed)  # the model's initialization is the caller's (architecture.md)
        model = build_model(config, p, splits)
        if p.get("dropout_variant", "standard") != "standard" and p.get("dropout", 0.0) > 0:
            _swap_dropout(model, p["dropout_variant"], p["dropout"])
        if p.get("init", "default") != "default":
            initialize(model, p["init"], generator=torch.Generator().manual_seed(spec.seed))
    restarts = int(p.get("restarts", 1))
    ckpt_dir = Path(spec.checkpoint) if spec.checkpoint else None
    if dry_run:  # validates every argument, restarts included
        _make_trainer(config, spec, model, seed=spec.seed, restarts=restarts, ckpt_dir=None,
                      epochs=spec.epochs)
        return None
    if restarts > 1:
        model, trainer, history, guard_reason, trained = _fit_restarts(config, spec, model, restarts,
                                                                       ckpt_dir)
    else:
        resume, stop_epochs = _resume_state(ckpt_dir)
        trainer, guard = _make_trainer(config, spec, model, seed=spec.seed, restarts=1, ckpt_dir=ckpt_dir,
                                       epochs=stop_epochs or spec.epochs)
        history = trainer.fit(train, val, test=test, resume_from=resume)
        guard_reason, trained = guard.reason, guard.epochs > 0
    rows = [_plain_row(r) for r in history.rows]
    reason = history.stop_reason or guard_reason or ""
    if reason.startswith("non-finite") or guard_reason:
        return {"status": "diverged", "metrics": {"diverged_epoch": len(rows) - 1, "reason": reason},
                "history": rows}
    metrics = _final_metrics(model, trainer.evaluate(val), rows, history.best_epoch,
                             None if test is None else history.test)
    if restarts > 1:
        metrics["restart"] = next(r["restart"] for r in history.restarts if r["chosen"])
    hist = weight_histogram(model) if spec.phase == "final" else None
    return {"status": "done", "metrics": metrics, "history": rows, "histogram": hist,
            "evaluated_only": not trained}


def _fit_restarts(config: StudyConfig, spec: TrialSpec, model: nn.Module, restarts: int,
                  ckpt_dir: Path | None) -> tuple[nn.Module, Any, Any, str | None, bool]:
    """``Trainer(restarts=n)``'s procedure, one restart at a time, so that it resumes.

    Restart ``r`` is a ``Trainer(seed=seed + r)`` run; for ``r > 0`` the model is first
    re-initialized as the Trainer does (``reset_parameters()`` under ``torch.manual_seed(seed + r)``,
    then the recipe's ``init`` scheme drawn with seed ``seed + r``),
    and the best restart by ``search.metric`` (re-evaluated at its end) is kept: exactly what
    ``Trainer(restarts=n)`` does. With a checkpoint folder, restart ``r`` writes
    ``restart<r>/last.pt`` every epoch and ``restart<r>/done.pt`` (its score, history and weights)
    when it ends; a rerun loads finished restarts and resumes the interrupted one from its
    ``last.pt``. Returns ``(model with the chosen weights, a trainer, History, divergence reason,
    whether any epoch trained in this process)``.
    """
    from reglab.callbacks import save_atomic
    from reglab.callbacks.early_stopping import infer_mode
    from reglab.train import History
    from reglab.train.trainer import _better  # the Trainer's own comparison of restart scores

    train, val, test = fold_data(config, spec)
    monitor = config.search.metric
    metric, direction = monitor.split("_", 1)[1], infer_mode(monitor)
    source = val if monitor.startswith("val_") else train
    runs: list[dict[str, Any]] = []
    trainer, trained = None, False
    for r in range(restarts):
        folder = None if ckpt_dir is None else ckpt_dir / f"restart{r}"
        done = _load_restart(folder)
        if done is not None:
            runs.append(done)
            continue
        resume, stop_epochs = _resume_state(folder)
        trainer, guard = _make_trainer(config, spec, model, seed=spec.seed + r, restarts=1, ckpt_dir=folder,
                                       epochs=stop_epochs or spec.epochs)
        if r > 0:
            # As Trainer.fit: the model is on its device and dtype before it is re-initialized (the
            # draws depend on the dtype), whether or not the earlier restarts ran in this process.
            model.to(trainer.device, dtype=trainer.dtype)
            reinitialize(model, spec.seed + r, trainer.init)  # the Trainer's own restart
        history = trainer.fit(train, val, resume_from=resume)
        trained = trained or guard.epochs > 0
        run = {"restart": r, "seed": spec.seed + r, "score": trainer.evaluate(source)[metric],
               "epochs": len(history), "best_epoch": history.best_epoch, "stop_reason": history.stop_reason,
               "guard": guard.reason, "history": history.to_dict(),
               "model": {k: v.detach().clone() for k, v in model.state_dict().items()}}
        if folder is not None:
            save_atomic(run, folder / "done.pt")
        runs.append(run)
    best = 0
    for i, run in enumerate(runs):
        if i and _better(run["score"], runs[best]["score"], direction):
            best = i
    if trainer is None:  # every restart was loaded: a trainer only to evaluate
        trainer, _ = _make_trainer(config, spec, model, seed=spec.seed, restarts=1, ckpt_dir=None, epochs=0)
        model.to(trainer.device, dtype=trainer.dtype)  # before loading: a float32 model would round
    model.load_state_dict(runs[best]["model"])
    keys = ("restart", "seed", "score", "epochs", "best_epoch", "stop_reason")
    history = History.from_dict(runs[best]["history"])
    history.restarts = [dict({k: run[k] for k in keys}, chosen=i == best) for i, run in enumerate(runs)]
    if test is not None:
        history.test = trainer.evaluate(test)
    # One divergence guard watched every restart in Trainer(restarts=n): the latest reason it saw.
    guard_reason = next((run["guard"] for run in reversed(runs) if run["guard"]), None)
    return model, trainer, history, guard_reason, trained


def _load_restart(folder: Path | None) -> dict[str, Any] | None:
    """A finished restart's record, or None (not finished, or an unreadable / untrusted file)."""
    path = None if folder is None else folder / "done.pt"
    if path is None or not path.is_file():
        return None
    try:  # tensors and plain containers only: a pickle payload is refused, and the restart retrains
        return torch.load(path, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError):
        return None


def _final_metrics(model: nn.Module, val: dict[str, float], rows: list[dict[str, Any]], best_epoch: Any,
                   test: dict[str, float] | None) -> dict[str, Any]:
    """A finished trial's metrics: ``val_*`` / ``test_*`` of every evaluated metric (accuracy for
    classification, mse and mae for regression), the last epoch's training metrics, weight stats."""
    from reglab.train.loop import weight_stats

    norm, zeros = weight_stats(model)
    metrics: dict[str, Any] = {f"val_{k}": v for k, v in val.items()}
    for k in val:
        metrics[f"train_{k}"] = rows[-1].get(f"train_{k}")
    metrics.update(epochs_run=len(rows), best_epoch=best_epoch, weight_norm=norm, zero_fraction=zeros)
    if test is not None:
        metrics.update({f"test_{k}": v for k, v in test.items()})
    return metrics


def weight_histogram(model: nn.Module, bins: int = HISTOGRAM_BINS) -> dict[str, Any]:
    """Fixed-bin histogram of the regularized weights (``reglab.selectors.Selector()``: weights,
    not biases or norm parameters), over the symmetric range ``[-max|w|, max|w|]``.

    Returns ``{"edges": bins + 1 floats, "counts": bins ints, "zeros": exact zeros, "total": n}``;
    counts are ``numpy.histogram`` of the weights on those edges (so they sum to ``total``).

    Example:
        >>> h = weight_histogram(nn.Linear(4, 3), bins=5)
        >>> len(h["edges"]), sum(h["counts"]), h["total"]
        (6, 12, 12)
    """
    import numpy as np

    from reglab.selectors import Selector

    selected = [p.detach().reshape(-1) for _, p in Selector().select(model)]
    w = torch.cat(selected).double().cpu().numpy() if selected else np.zeros(0)
    lim = float(np.abs(w).max()) if w.size else 0.0
    edges = np.linspace(-lim, lim, bins + 1) if lim > 0 else np.linspace(-1.0, 1.0, bins + 1)
    counts, _ = np.histogram(w, bins=edges)
    return {"edges": edges.tolist(), "counts": counts.tolist(), "zeros": int(np.sum(w == 0)),
            "total": int(w.size)}


def _plain_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (float(v) if isinstance(v, float) else v) for k, v in row.items()}


def check_params(config: StudyConfig, recipe: str, params: dict[str, Any]) -> None:
    """Build (not train) everything a trial of ``params`` needs; a bad value raises ``UserError`` now.

    The runner calls this before any training so that a mistake in a recipe (an unknown
    augmentation, decoupled decay with SGD, ...) stops the study with one line at once.
    """
    from reglab._validation import InvalidParameterError

    _check_task(config, recipe, params)
    _check_batch_norm(config, recipe, params)
    try:
        _fit(config, TrialSpec("check", recipe, params, seed=0, fold=-1, epochs=1), dry_run=True)
    except (InvalidParameterError, UserError) as exc:
        raise UserError(f"recipe {recipe!r}: {exc}") from None
    splits = load_splits(config)
    model = build_model(config, params, splits).eval()
    try:
        with torch.no_grad():
            model.to(splits.train.x.dtype)(splits.train.x[:2])  # as the trial will: in the training dtype
    except RuntimeError as exc:
        raise UserError(
            f"recipe {recipe!r}: model family {config.model.family!r} cannot take inputs of shape "
            f"{tuple(splits.input_shape)} from dataset {splits.name!r} ({exc}); choose another model.family."
        ) from None
    # A transform that cannot take these inputs (an image augmentation without the shape of flat
    # inputs, ColorJitter on standardized values) fails on every batch: refuse it now, in one line.
    transform = make_transforms(params, int(splits.num_classes or 0))
    if transform is not None:
        try:
            transform(splits.train.x[:2], splits.train.y[:2], generator=torch.Generator().manual_seed(0))
        except (InvalidParameterError, UserError) as exc:
            raise UserError(f"recipe {recipe!r}: {exc}") from None


# Validation metrics each task logs (reglab.Trainer's History columns), by task.
TASK_METRICS = {"classification": ("val_accuracy", "val_loss"), "regression": ("val_mse", "val_loss")}


def resolve_task_defaults(config: StudyConfig) -> StudyConfig:
    """``config`` with the defaults that depend on the dataset's task filled in for a regression
    dataset: ``search.metric`` and each recipe's early-stopping ``monitor``, when not written, are
    ``val_mse`` (the search metric, for the monitor) instead of a classifier's ``val_accuracy``.

    The schema is read before the data, so it cannot know the task; a study resolves this before it
    checks or stores its config, the same way on every resume.
    """
    if load_splits(config).task != "regression":
        return config
    search = config.search
    if "metric" not in search.model_fields_set:
        search = search.model_copy(update={"metric": "val_mse"})
    recipes = {}
    for name, recipe in config.recipes.items():
        es = recipe.early_stopping
        if isinstance(es, EarlyStoppingConfig) and "monitor" not in es.model_fields_set:
            monitor = es.model_copy(update={"monitor": search.metric})
            recipe = recipe.model_copy(update={"early_stopping": monitor})
        recipes[name] = recipe
    return config.model_copy(update={"search": search, "recipes": recipes})


def _check_task(config: StudyConfig, recipe: str, params: dict[str, Any]) -> None:
    """Metrics and target transforms must fit the dataset's task (classification or regression)."""
    splits = load_splits(config)
    allowed = TASK_METRICS[splits.task]
    if config.search.metric not in allowed:
        raise UserError(
            f"search.metric must be one of {', '.join(allowed)} for the {splits.task} dataset "
            f"{splits.name!r}; got {config.search.metric!r}."
        )
    es = params.get("early_stopping")
    if es:
        monitor = EarlyStoppingConfig.model_validate(es).monitor
        if monitor not in allowed:
            raise UserError(
                f"recipe {recipe!r}: early_stopping.monitor must be one of {', '.join(allowed)} for the "
                f"{splits.task} dataset {splits.name!r}; got {monitor!r}."
            )
    if splits.task == "regression":
        for key in ("mixup", "label_smoothing"):
            if params.get(key):
                raise UserError(
                    f"recipe {recipe!r}: {key} needs class labels; the dataset {splits.name!r} is a "
                    f"regression dataset. Remove {key!r} from the recipe."
                )


def _check_batch_norm(config: StudyConfig, recipe: str, params: dict[str, Any]) -> None:
    """BatchNorm needs training batches of two examples: Trainer.fit and Population.fit refuse a
    batch size of 1 or a single training example, but only when a trial trains, mid-study."""
    if params.get("norm") != "batch":
        return
    field = f"recipes.{recipe}.norm: 'batch' (BatchNorm) needs training batches of at least 2 examples"
    if config.training.batch_size < 2:  # the schema refuses it too
        raise UserError(f"{field}; got training.batch_size {config.training.batch_size}. Use "
                        "training.batch_size >= 2, or norm 'layer'.")
    splits = load_splits(config)
    sizes = [(len(splits.train), "the training split", "lower dataset.val_size / test_size")]
    if config.validation.kind == "kfold":
        v = config.validation
        folds = _folds_cached(*_data_key(config), v.folds, config.dataset.split_seed, v.stratified)
        sizes.append((min(len(train) for train, _ in folds),
                      f"a fold's training part (validation.folds {v.folds})", "raise validation.folds"))
    n, where, hint = min(sizes)
    if n < 2:
        raise UserError(f"{field}; {where} of the dataset {splits.name!r} holds {n} example. Add rows, "
                        f"{hint}, or use norm 'layer'.")


# Errors of a write the machine refuses: the disk or quota is full, the file system went read-only or
# failed, the folder's permissions changed. None is the trial's fault, so none is recorded as its failure.
_REFUSED_WRITE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO, errno.EACCES,
                            errno.EPERM})


def refused_write(exc: BaseException) -> UserError | None:
    """The one-line error that stops a study whose checkpoint write the machine refused, else None.

    Recorded as ``failed``, such a trial would stay failed on every resume (finished trials are
    never rerun) and put its candidate out of the selection; stopped, it reruns once there is space.

    Example:
        >>> print(refused_write(OSError(errno.ENOSPC, "No space left on device", "ck/last.pt")))
        ... # doctest: +ELLIPSIS
        cannot write the study checkpoint 'ck/last.pt': No space left on device. No trial is recorded ...
        >>> refused_write(ValueError("a bug")) is None
        True
    """
    if not isinstance(exc, OSError) or exc.errno not in _REFUSED_WRITE:
        return None
    where = f" {str(exc.filename)!r}" if exc.filename is not None else ""
    return UserError(
        f"cannot write the study checkpoint{where}: {exc.strerror or exc}. No trial is recorded as failed "
        "for it and finished trials are kept: free space (or fix the folder) and run the same command "
        "again to resume."
    )


def run_trial(config: StudyConfig, spec: TrialSpec) -> TrialOutcome:
    """Train one trial through :class:`reglab.Trainer`, resuming from ``spec.checkpoint`` when present.

    A trial whose training loss becomes non-finite ends with status ``diverged``; any other
    exception (except user errors, Ctrl-C and a write the disk refused: :func:`refused_write`)
    with status ``failed`` and its last line.
    """
    start = time.perf_counter()
    torch.set_num_threads(config.training.threads)  # a fixed thread count: the same numbers in every worker
    try:
        with _verified_data(config, spec.data):
            result = _fit(config, spec) or {}
    except (UserError, KeyboardInterrupt):
        raise
    except Exception as exc:  # one bad trial must not end the study: it is recorded as failed
        refused = refused_write(exc)
        if refused is not None:
            raise refused from None
        line = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return TrialOutcome(spec, "failed", {}, [], time.perf_counter() - start, line)
    return TrialOutcome(spec, result["status"], result["metrics"], result["history"],
                        time.perf_counter() - start, histogram=result.get("histogram"),
                        evaluated_only=result.get("evaluated_only", False))


# -- population groups -----------------------------------------------------------------------

# Recipe keys the population engine expresses (reglab.population.MemberConfig and the
# architecture slots); a trial with any other key (augmentation, mixup, group lasso, init
# schemes, restarts, dropout variants) runs alone through the Trainer.
POPULATION_KEYS = frozenset({
    "l1", "l2", "elastic_net", "l1_ratio", "proximal", "weight_decay", "decoupled_decay", "dropout",
    "gaussian_noise", "label_smoothing", "max_norm", "lr", "norm", "width", "early_stopping",
})
MAX_MEMBERS = 16  # members per population: bounds one task's size so groups spread over workers


def population_key(config: StudyConfig, spec: TrialSpec) -> tuple[Any, ...] | None:
    """Trials with equal keys train together as one population; ``None``: this trial needs the Trainer."""
    p = spec.params
    if config.model.family == "cnn2d" or config.training.optimizer == "adamw" or not config.population:
        return None
    if load_splits(config).task != "classification":  # the population engine is classification-only
        return None
    if not set(p) <= POPULATION_KEYS or int(p.get("restarts", 1)) > 1:
        return None
    if config.training.optimizer == "sgd" and p.get("decoupled_decay"):
        return None
    es = p.get("early_stopping")
    return (spec.phase, spec.fold, spec.epochs, p.get("norm"), p.get("width"),
            json.dumps(es, sort_keys=True) if es else None)


def member_config(config: StudyConfig, spec: TrialSpec) -> dict[str, Any]:
    """A trial's recipe as a ``reglab.population.MemberConfig`` (same conventions as the Trainer path)."""
    p = spec.params
    l1, l2 = float(p.get("l1", 0.0)), float(p.get("l2", 0.0))
    if p.get("elastic_net"):
        ratio = float(p.get("l1_ratio", 0.5))
        l1, l2 = l1 + p["elastic_net"] * ratio, l2 + p["elastic_net"] * (1.0 - ratio)
    out: dict[str, Any] = {"lr": float(p.get("lr", config.training.lr)), "seed": spec.seed}
    if p.get("proximal"):
        out.update(prox_l1=l1, prox_l2=l2)
    else:
        out.update(l1=l1, l2=l2)
    out.update(
        weight_decay=float(p.get("weight_decay", 0.0)),
        decoupled_decay=float(p.get("decoupled_decay", 0.0)),
        max_norm=p.get("max_norm"),
        dropout=float(p.get("dropout", 0.0)),
        noise=float(p.get("gaussian_noise", 0.0)),
        label_smoothing=float(p.get("label_smoothing", 0.0)),
    )
    return out


@torch.no_grad()
def _evaluate(model: nn.Module, split: Any, dtype: torch.dtype) -> dict[str, float]:
    model.eval()
    logits = model(split.x.to(dtype))
    return {"loss": float(F.cross_entropy(logits, split.y)),
            "accuracy": float((logits.argmax(1) == split.y).double().mean())}


def _run_population(config: StudyConfig, specs: list[TrialSpec], start: float) -> list[TrialOutcome]:
    """Train trials of one population key as one stacked model (``reglab.population.Population``).

    The group's wall time since ``start`` is split evenly over its trials (``TrialOutcome.group``).
    """
    from reglab.callbacks import EarlyStopping
    from reglab.population import Population
    from reglab.population._checkpoint import CheckpointError
    from reglab.train.loop import weight_stats

    t = config.training
    dtype = torch.float64 if t.dtype == "float64" else torch.float32
    splits = load_splits(config)
    train, val, test = fold_data(config, specs[0])
    first = specs[0].params
    template = build_model(config, {k: first[k] for k in ("norm", "width") if k in first}, splits)
    es_raw = first.get("early_stopping")
    es_cfg = EarlyStoppingConfig.model_validate(es_raw) if es_raw else None
    es = None if es_cfg is None else EarlyStopping(monitor=es_cfg.monitor, patience=es_cfg.patience,
                                                   restore_best_weights=es_cfg.restore_best)
    folder = group_checkpoint(specs)
    path = None if folder is None else folder / "population.pt"

    def fit() -> tuple[Population, list[Any]]:
        pop = Population(template, [member_config(config, s) for s in specs], optimizer=t.optimizer,
                         momentum=t.momentum if t.optimizer == "sgd" else 0.0, data_order="per_member",
                         seed=specs[0].seed, dtype=dtype)
        return pop, pop.fit(train, val, epochs=specs[0].epochs, batch_size=t.batch_size, early_stopping=es,
                            checkpoint=path, progress="off")

    try:
        pop, histories = fit()  # resumes from the group's last epoch checkpoint when there is one
    except CheckpointError:  # unreadable, untrusted or another fit's: train the group from the start
        if path is None:
            raise
        path.unlink(missing_ok=True)
        pop, histories = fit()
    # Split evenly: members share every step and no member's own cost is measured, so a member that
    # stopped early is charged as much as one that trained every epoch (docs/studies.md says so).
    seconds, group = (time.perf_counter() - start) / len(specs), len(specs)
    outcomes = []
    for k, spec in enumerate(specs):
        rows = [_plain_row(r) for r in histories[k].rows]
        losses = [r.get("train_loss") for r in rows]
        if pop.status[k] == "diverged" or any(
            isinstance(v, float) and not (math.isfinite(v) and v <= DIVERGED_LOSS) for v in losses
        ):
            reason = f"training loss above {DIVERGED_LOSS:g} or non-finite"
            metrics = {"diverged_epoch": len(rows) - 1, "reason": reason}
            outcomes.append(TrialOutcome(spec, "diverged", metrics, rows, seconds, group=group))
            continue
        model = pop.member(k)
        final = _evaluate(model, val, dtype)
        norm, zeros = weight_stats(model)
        metrics = {
            "val_loss": final["loss"], "val_accuracy": final["accuracy"],
            "train_loss": rows[-1].get("train_loss"), "train_accuracy": rows[-1].get("train_accuracy"),
            "epochs_run": len(rows), "best_epoch": histories[k].best_epoch,
            "weight_norm": norm, "zero_fraction": zeros,
        }
        if test is not None:
            result = _evaluate(model, test, dtype)
            metrics["test_loss"], metrics["test_accuracy"] = result["loss"], result["accuracy"]
        hist = weight_histogram(model) if spec.phase == "final" else None
        outcome = TrialOutcome(spec, "done", metrics, rows, seconds, histogram=hist, group=group)
        if spec.checkpoint and config.validation.kind == "holdout" and spec.phase == "cv":
            _save_finished(spec.checkpoint, model, outcome)
        outcomes.append(outcome)
    return outcomes


def group_checkpoint(specs: list[TrialSpec]) -> Path | None:
    """The checkpoint folder of a population group (``group-<hash of its trials>`` next to the trials'
    folders), or None without checkpoints. The runner deletes it once the group's results are stored.

    Example:
        >>> specs = [TrialSpec("cv", "l2", {"l2": 0.1}, 0, 0, 5, "ckpt/a"),
        ...          TrialSpec("cv", "none", {}, 0, 0, 5, "ckpt/b")]
        >>> group_checkpoint(specs).parent.name, group_checkpoint(specs).name.startswith("group-")
        ('ckpt', True)
    """
    import hashlib

    if not specs or not specs[0].checkpoint:
        return None
    digest = hashlib.sha1("\n".join(repr(s.key()) for s in specs).encode()).hexdigest()[:20]
    return Path(specs[0].checkpoint).parent / f"group-{digest}"


def _save_finished(checkpoint: str, model: nn.Module, outcome: TrialOutcome) -> None:
    """Keep a finished hold-out model so that its final trial only evaluates the test split."""
    from reglab.callbacks import save_atomic

    save_atomic({"model": model.state_dict(), "metrics": outcome.metrics, "history": outcome.history},
                Path(checkpoint) / "finished.pt")


def _from_finished(config: StudyConfig, spec: TrialSpec) -> TrialOutcome | None:
    path = Path(spec.checkpoint) / "finished.pt" if spec.checkpoint else None
    if path is None or spec.phase != "final" or not path.is_file():
        return None
    start = time.perf_counter()
    try:  # tensors and plain containers only: a pickle payload in the file is refused, never run
        state = torch.load(path, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError):
        return None  # unreadable or untrusted: the final trial is trained again instead
    dtype = torch.float64 if config.training.dtype == "float64" else torch.float32
    model = build_model(config, spec.params, load_splits(config)).to(dtype)
    model.load_state_dict(state["model"])
    _, _, test = fold_data(config, spec)
    result = _evaluate(model, test, dtype)
    metrics = {**state["metrics"], "test_loss": result["loss"], "test_accuracy": result["accuracy"]}
    return TrialOutcome(spec, "done", metrics, state["history"], time.perf_counter() - start,
                        histogram=weight_histogram(model), evaluated_only=True)


def run_group(config: StudyConfig, specs: list[TrialSpec]) -> list[TrialOutcome]:
    """Run a group of trials in this process: one population when they share a population key,
    else one after another through the Trainer. This is the unit a backend ships to a worker.

    With the study's data fingerprint in the specs (``TrialSpec.data``), the group first checks that
    the data still hashes to it (once per process and file stamp) and raises ``UserError`` if not; the
    whole group then trains on the data it checked, even if the file changes meanwhile.
    """
    torch.set_num_threads(config.training.threads)
    with _verified_data(config, specs[0].data if specs else None):  # the whole group on the study's data
        key = population_key(config, specs[0])
        if key is None or any(population_key(config, s) != key for s in specs):
            return [run_trial(config, s) for s in specs]
        reused = [_from_finished(config, s) for s in specs]
        if all(r is not None for r in reused):
            return reused  # type: ignore[return-value]
        start = time.perf_counter()
        try:
            return _run_population(config, specs, start)
        except (UserError, KeyboardInterrupt):
            raise
        except Exception as exc:  # record the group as failed; the study goes on
            refused = refused_write(exc)
            if refused is not None:
                raise refused from None
            line = traceback.format_exception_only(type(exc), exc)[-1].strip()
            # The time the group trained before it failed, split as a finished group's.
            seconds = (time.perf_counter() - start) / len(specs)
            return [TrialOutcome(s, "failed", {}, [], seconds, line, group=len(specs)) for s in specs]
