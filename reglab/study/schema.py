"""The study config: a pydantic schema, loaded from YAML, with one-line errors.

A study names a dataset, a model, a training setup, named recipes (sets of
regularizers, each value fixed or a search space), seeds, a validation protocol
and a budget. Unknown keys are rejected with a did-you-mean; every error is one
line: ``config.yaml: recipes.l2.l2: ... Got ... instead.``

Example:
    >>> cfg = StudyConfig.model_validate({"name": "t", "dataset": {"name": "breast_cancer"},
    ...                                   "recipes": {"none": {}, "l2": {"l2": 1e-3}}})
    >>> cfg.seeds, cfg.validation.kind
    ([0, 1, 2], 'kfold')
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Hashable
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import numpy as np
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from reglab._validation import Interval, check_int, check_option, check_scalar, did_you_mean, fail
from reglab.errors import UserError
from reglab.population._config import MAX_DROPOUT

__all__ = [
    "lower_is_better",
    "metric_range",
    "StudyConfig",
    "DatasetConfig",
    "ModelConfig",
    "TrainingConfig",
    "Recipe",
    "Space",
    "ValidationConfig",
    "SearchConfig",
    "BudgetConfig",
    "EarlyStoppingConfig",
    "config_json_schema",
    "load_config",
    "parse_config",
    "TECHNIQUES",
]


MAX_SEED = 2**62  # the Trainer's largest seed (it adds restart and transform offsets below 2**63)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, value: Any, info: Any) -> Any:
        # pydantic's lax mode reads YAML's true / false as 1 / 0 for a number: `epochs: true` would
        # train one epoch. A field that may be a bool (or anything) keeps them.
        items = value if isinstance(value, list) else [value]
        if any(isinstance(v, bool) for v in items):
            allowed = _leaf_types(cls.model_fields[info.field_name].annotation)
            if allowed & {int, float} and not allowed & {bool, Any}:
                raise ValueError("Input should be a number, not true / false")
        return value


def _leaf_types(annotation: Any) -> set[Any]:
    """The types an annotation is made of: ``list[int] | None`` -> ``{int, NoneType}``."""
    if get_origin(annotation) is Annotated:
        return _leaf_types(get_args(annotation)[0])
    args = get_args(annotation)
    return set().union(*(_leaf_types(a) for a in args)) if args else {annotation}


class Space(_Strict):
    """A search space for one recipe value: exactly one of the keys below.

    ``grid: [a, b, c]`` (every value; grid search), ``loguniform: [low, high]``,
    ``uniform: [low, high]``, ``choice: [a, b]`` (random search and TPE sample them;
    grid search takes ``points`` log- or evenly spaced values from a range).

    Example:
        >>> Space(loguniform=(1e-5, 1e-2)).kind
        'loguniform'
    """

    grid: list[Any] | None = None
    loguniform: tuple[float, float] | None = None
    uniform: tuple[float, float] | None = None
    choice: list[Any] | None = None
    points: int = Field(default=3, ge=2, description="grid points taken from a range under grid search")

    @model_validator(mode="after")
    def _one_kind(self) -> Space:
        kinds = [k for k in ("grid", "loguniform", "uniform", "choice") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                "a search space takes exactly one of 'grid', 'loguniform', 'uniform', 'choice'; "
                f"got {kinds or 'none'}"
            )
        for rng in (self.loguniform, self.uniform):
            if rng is not None and not rng[0] < rng[1]:
                raise ValueError(f"a range [low, high] needs low < high; got {list(rng)}")
        if self.loguniform is not None and self.loguniform[0] <= 0:
            raise ValueError(f"a loguniform range needs low > 0; got {list(self.loguniform)}")
        if (self.grid is not None and not self.grid) or (self.choice is not None and not self.choice):
            raise ValueError("a grid or choice needs at least one value")
        listed = self.grid if self.grid is not None else self.choice
        repeated = [v for i, v in enumerate(listed or []) if _same_value(v, listed[:i])]  # type: ignore[index]
        if repeated:  # each would be one candidate trained twice under one key
            raise ValueError(f"a {self.kind} lists each value once; got {repeated[0]!r} more than once in "
                             f"{listed}")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("grid", "loguniform", "uniform", "choice") if getattr(self, k) is not None)

    def values(self) -> list[Any]:
        """The grid-search values of this space (ranges give ``points`` spaced values)."""
        if self.grid is not None:
            return list(self.grid)
        if self.choice is not None:
            return list(self.choice)
        # numpy.geomspace / linspace: the ends are the range's own numbers (exp(log(1e-2)) is
        # 0.010000000000000004, above the range), the points between evenly spaced in log or plain scale.
        if self.loguniform is not None:
            return [float(v) for v in np.geomspace(*self.loguniform, self.points)]
        return [float(v) for v in np.linspace(*self.uniform, self.points)]  # type: ignore[misc]


def _same_value(v: Any, earlier: list[Any]) -> bool:
    """Whether ``v`` is among ``earlier`` as a candidate key sees it (1 and 1.0 differ, True and 1 too)."""
    return any(type(v) is type(e) and v == e for e in earlier)


def _as_space(value: Any) -> Space:
    try:
        return Space.model_validate(value)
    except ValidationError as exc:
        raise ValueError(format_validation_error(exc, "search space", root=Space)) from None


Value = Any

# Each technique: (kind, interval or options, meaning). The runner maps them in
# reglab.study.execute; this table is the single list of what a recipe may hold.
TECHNIQUES: dict[str, tuple[str, Any, str]] = {
    "l1": ("float", Interval(0, None), "L1 penalty l1*sum|w| on selected weights (Keras formula)"),
    "l2": ("float", Interval(0, None), "L2 penalty l2*sum w^2 added to the loss (coupled)"),
    "elastic_net": ("float", Interval(0, None), "elastic net s: l1 = s*l1_ratio, l2 = s*(1-l1_ratio)"),
    "l1_ratio": ("float", Interval(0, 1), "elastic-net mixing, 1 = pure L1"),
    "group_lasso": ("float", Interval(0, None), "group lasso s*sum_g ||w_g||_2 over the output neurons"),
    "proximal": ("bool", None, "apply L1 / group lasso by proximal steps (exact zeros)"),
    "weight_decay": ("float", Interval(0, None), "coupled decay: the optimizer's weight_decay (adds wd*w)"),
    "decoupled_decay": ("float", Interval(0, None), "decoupled decay (AdamW): w <- w - lr*wd*w"),
    # Below 1 - 2**-17 (the population engine's bound), whichever engine trains the recipe: a rate that
    # passed here would fail its whole population group, the other recipes' trials in it too.
    "dropout": ("float", Interval(0, MAX_DROPOUT, closed="left"),
                "dropout rate in the model's dropout slots"),
    "dropout_variant": ("option", ("standard", "gaussian", "alpha"), "which dropout the slots use"),
    "gaussian_noise": ("float", Interval(0, None), "std of Gaussian noise added to training inputs"),
    "norm": ("option", (None, "batch", "layer"), "normalization slot: BatchNorm or LayerNorm"),
    "augment": ("augment", None, "a batch augmentation: name or {name: ..., options}"),
    "label_smoothing": ("float", Interval(0, 1, closed="left"), "label smoothing epsilon"),
    "mixup": ("float", Interval(0, None, closed="neither"), "mixup Beta(alpha, alpha) parameter"),
    "max_norm": ("float", Interval(0, None, closed="neither"), "max-norm of each neuron's incoming weights"),
    "early_stopping": ("early_stopping", None, "stop on a validation metric; keep the best epoch"),
    "width": ("int", Interval(1, None), "hidden width (MLP) or channels (CNN) replacing the model's"),
    "init": ("option", ("default", "kaiming_uniform", "kaiming_normal", "xavier_uniform", "xavier_normal",
                        "orthogonal"), "initialization scheme of weight matrices"),
    "restarts": ("int", Interval(1, None), "train this many inits per trial; keep the best by validation"),
    "lr": ("float", Interval(0, None, closed="neither"), "learning rate override for this recipe"),
}


# Recipe keys that only shape others: each needs one of its partners set.
_SHAPES = {"l1_ratio": ("elastic_net",), "dropout_variant": ("dropout",),
           "proximal": ("l1", "elastic_net", "group_lasso", "l2")}


class EarlyStoppingConfig(_Strict):
    """Stop when ``monitor`` has not improved for ``patience`` epochs; restore the best epoch.

    Monitor validation accuracy, not loss: on MNIST-1D validation loss bottoms out long
    before accuracy peaks (DESIGN.md measured a 6-point loss from monitoring the loss).
    """

    monitor: Literal["val_accuracy", "val_loss", "val_mse"] = "val_accuracy"
    patience: int = Field(default=10, ge=1)
    restore_best: bool = True


def _check_value(recipe: str, key: str, value: Any) -> Any:
    kind, spec, _ = TECHNIQUES[key]
    owner = f"recipe {recipe!r}"
    if kind == "float":
        return check_scalar(value, key, owner=owner, interval=spec)
    if kind == "int":
        return check_int(value, key, owner=owner, interval=spec)
    if kind == "bool":
        if not isinstance(value, bool):
            raise fail(owner, key, "a bool", value)
        return value
    if kind == "option":
        return check_option(value, key, owner=owner, options=spec)
    if kind == "augment":
        if isinstance(value, str):
            return {"name": value}
        if isinstance(value, dict) and isinstance(value.get("name"), str):
            return dict(value)
        if isinstance(value, list) and value:
            return [_check_value(recipe, key, v) for v in value]
        raise fail(owner, key, "an augmentation name, a mapping with a 'name' key, or a list of them", value)
    if kind == "early_stopping":
        if value is True:
            return EarlyStoppingConfig()
        if isinstance(value, int) and not isinstance(value, bool):
            return EarlyStoppingConfig(patience=value)
        if isinstance(value, dict):
            try:
                return EarlyStoppingConfig.model_validate(value)
            except ValidationError as exc:
                raise ValueError(
                    format_validation_error(exc, f"{key} of {owner}", root=EarlyStoppingConfig)
                ) from None
        if isinstance(value, EarlyStoppingConfig):
            return value
        raise fail(owner, key, "true, a patience (int) or a mapping {monitor, patience}", value)
    raise AssertionError(kind)  # pragma: no cover - the table above is closed


class Recipe(_Strict):
    """A named set of regularizers; each value is fixed or a :class:`Space` to search.

    The keys are listed in ``TECHNIQUES`` (``reglab.study.schema.TECHNIQUES``).

    Example:
        >>> Recipe(l2={"loguniform": [1e-5, 1e-2]}, dropout=0.1).searched()
        ['l2']
    """

    l1: Value = None
    l2: Value = None
    elastic_net: Value = None
    l1_ratio: Value = None
    group_lasso: Value = None
    proximal: Value = None
    weight_decay: Value = None
    decoupled_decay: Value = None
    dropout: Value = None
    dropout_variant: Value = None
    gaussian_noise: Value = None
    norm: Value = None
    augment: Value = None
    label_smoothing: Value = None
    mixup: Value = None
    max_norm: Value = None
    early_stopping: Value = None
    width: Value = None
    init: Value = None
    restarts: Value = None
    lr: Value = None
    name: str = ""

    @field_validator("augment")
    @classmethod
    def _augment_names(cls, value: Any) -> Any:
        """An unknown augmentation name or keyword, refused here so that the error names
        ``recipes.<name>.augment``; a missing keyword or a bad value is refused when the study checks
        each recipe by building its transforms (``execute.check_params``)."""
        if value is None:
            return value
        from reglab._validation import InvalidParameterError
        from reglab.augment.registry import available, check

        options = value.values() if isinstance(value, Space) and value.kind in ("grid", "choice") else [value]
        specs = [s for v in options for s in (v if isinstance(v, list) else [v])]
        names = available()
        for spec in specs:
            spec = {"name": spec} if isinstance(spec, str) else spec
            if not (isinstance(spec, dict) and isinstance(spec.get("name"), str)):
                continue  # other shapes are _check_value's to refuse
            if spec["name"] not in names:
                raise ValueError(f"unknown augmentation {spec['name']!r}.{did_you_mean(spec['name'], names)} "
                                 f"Allowed here: {', '.join(names)} (reglab.augment.available()).")
            try:
                check(spec["name"], {k: v for k, v in spec.items() if k != "name"}, complete=False)
            except InvalidParameterError as exc:
                raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="before")
    @classmethod
    def _spaces(cls, data: Any) -> Any:
        """A mapping is a search space, except for the techniques whose values are mappings."""
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for key, value in data.items():
            if key not in TECHNIQUES or not isinstance(value, dict):
                continue
            mapping_valued = TECHNIQUES[key][0] in ("augment", "early_stopping")
            if not mapping_valued or set(value) & set(Space.model_fields):
                out[key] = _as_space(value)
        return out

    @model_validator(mode="after")
    def _check(self) -> Recipe:
        for key in TECHNIQUES:
            value = getattr(self, key)
            if value is None:
                continue
            if isinstance(value, Space):
                for v in value.values() if value.kind in ("grid", "choice") else list(value.loguniform or
                                                                                      value.uniform):
                    _check_value(self.name or "?", key, v)
            else:
                object.__setattr__(self, key, _check_value(self.name or "?", key, value))
        # A setting that only shapes another one would be ignored without a word when that one is not set
        # (`{l1_ratio: 0.5, l1: 0.01}` trained plain L1).
        for key, partners in _SHAPES.items():
            value = getattr(self, key)
            if value in (None, False, "standard") or any(getattr(self, p) is not None for p in partners):
                continue
            shown = value.kind if isinstance(value, Space) else repr(value)
            names = " or ".join(partners)
            raise ValueError(f"{key} ({shown}) only acts on {names}, which this recipe does not set, so it "
                             f"would be ignored; set {names}, or remove {key}")
        return self

    def fixed(self) -> dict[str, Any]:
        """The fixed (not searched) values, JSON-ready."""
        out = {}
        for key in TECHNIQUES:
            value = getattr(self, key)
            if value is None or isinstance(value, Space):
                continue
            out[key] = value.model_dump() if isinstance(value, BaseModel) else value
        return out

    def searched(self) -> list[str]:
        """Names of the values given as a search space, in table order."""
        return [k for k in TECHNIQUES if isinstance(getattr(self, k), Space)]

    def spaces(self) -> dict[str, Space]:
        return {k: getattr(self, k) for k in self.searched()}


def _read_csv_keyword(key: str) -> str:
    """A ``dataset.read_options`` key, checked as :func:`reglab.data.load_csv` checks it."""
    from reglab.data.files import _PIECEWISE_KEYWORDS, _READ_CSV_KEYWORDS

    if key == "filepath_or_buffer":
        raise ValueError("the file to read is the dataset's 'path', not one of its read_options")
    if key in _PIECEWISE_KEYWORDS:  # load_csv refuses them too: a reader of pieces, not a table
        raise ValueError(f"{key!r} makes pandas.read_csv return the file in pieces; a study reads the whole "
                         "file")
    if key not in _READ_CSV_KEYWORDS:
        raise ValueError(f"{key!r} is not a pandas.read_csv keyword (read_options are passed to "
                         f"pandas.read_csv).{did_you_mean(key, _READ_CSV_KEYWORDS)}")
    return key


class DatasetConfig(_Strict):
    """A built-in dataset (``name``), a CSV / Parquet file (``path`` and its ``target`` column) or a
    NumPy ``.npz`` archive (``path``; its arrays ``x_key`` and ``y_key``, default ``x`` and ``y``).
    A file may also name its ``task`` (else inferred from the targets) and, for CSV / Parquet, the
    ``features`` columns to use (else every other column); a CSV file its ``read_options``, the
    ``pandas.read_csv`` keywords :func:`reglab.data.load_csv` passes on (``na_values``, ``comment``, ...)."""

    name: str | None = None
    path: str | None = None
    target: str | None = None
    features: list[str] | None = Field(
        default=None, min_length=1, description="a CSV/Parquet file's input columns (default: all but target)"
    )
    task: Literal["classification", "regression"] | None = Field(
        default=None, description="a file's task (default: inferred from its targets)"
    )
    read_options: dict[Annotated[str, AfterValidator(_read_csv_keyword)], Any] | None = Field(
        default=None, description="a CSV file's pandas.read_csv keywords, e.g. {na_values: ['?']}"
    )
    x_key: str | None = Field(default=None, description="a .npz file's input array (default: x)")
    y_key: str | None = Field(default=None, description="a .npz file's target array (default: y)")
    val_size: float | None = Field(default=None, gt=0, lt=1, description="default: the dataset's own")
    test_size: float | None = Field(default=None, gt=0, lt=1, description="default: the dataset's own")
    split_seed: int = Field(default=0, ge=0, le=2**32 - 1, description="seed of the train/val/test split")

    @model_validator(mode="after")
    def _one_source(self) -> DatasetConfig:
        if (self.name is None) == (self.path is None):
            raise ValueError("give exactly one of 'name' (a built-in dataset) or 'path' (a CSV, Parquet or "
                             "NPZ file)")
        suffix = "" if self.path is None else Path(self.path).suffix.lower()
        if suffix == ".npy":  # one array: the inputs and the labels need two
            raise ValueError(f"path {self.path!r}: a .npy file holds one array; save the inputs and labels "
                             "together (numpy.savez('data.npz', x=x, y=y)) and give the .npz file")
        npz = suffix == ".npz"
        if npz and self.target:
            raise ValueError("a .npz file has arrays, not columns: name them with 'x_key' and 'y_key' "
                             "(default x and y), not 'target'")
        if not npz and (self.x_key or self.y_key):
            raise ValueError("'x_key' and 'y_key' name the arrays of a .npz file; a CSV/Parquet file takes "
                             "'target', its label column")
        if self.path is not None and not npz and not self.target:
            raise ValueError("a dataset file needs 'target': the name of its label column")
        if npz and self.features:
            raise ValueError("a .npz file has arrays, not columns: 'features' names a CSV/Parquet file's "
                             "input columns")
        if suffix in (".parquet", ".pq", ".npz") and self.read_options is not None:
            # load_parquet and load_npz take no read_options: the load would fail on the keyword.
            raise ValueError(f"path {self.path!r}: 'read_options' are pandas.read_csv keywords, for a CSV "
                             "file (.csv, .tsv) only")
        if self.name is not None and (self.target or self.x_key or self.y_key or self.features or self.task
                                      or self.read_options is not None):
            raise ValueError(f"a built-in dataset ({self.name!r}) has its own target, features and task; "
                             "'target', 'features', 'task', 'read_options', 'x_key' and 'y_key' go with "
                             "'path'")
        return self

    def file_keywords(self) -> dict[str, Any]:
        """What :func:`reglab.data.load` takes for this file besides the split sizes."""
        given: dict[str, Any] = {} if self.task is None else {"task": self.task}
        if Path(self.path or "").suffix.lower() == ".npz":
            return {"x_key": self.x_key or "x", "y_key": self.y_key or "y", **given}
        if self.features is not None:
            given["features"] = list(self.features)
        if self.read_options is not None:
            # load() reads a .tsv with sep='\t' only when it is given no read_options of its own.
            tab = {"sep": "\t"} if Path(self.path or "").suffix.lower() == ".tsv" else {}
            given["read_options"] = {**tab, **self.read_options}
        return {"target": self.target or "", **given}


class ModelConfig(_Strict):
    """The architecture: ``mlp`` (``hidden`` widths), ``cnn1d`` or ``cnn2d`` (``channels``)."""

    family: Literal["mlp", "cnn1d", "cnn2d"] = "mlp"
    hidden: list[Annotated[int, Field(ge=1)]] = [100, 100]
    channels: int | list[int] | None = None
    activation: Literal["relu", "gelu", "tanh", "elu", "leaky_relu", "silu"] = "relu"
    residual: bool = False

    @model_validator(mode="after")
    def _fits_the_family(self) -> ModelConfig:
        # A setting the family does not read would be ignored without a word: refuse it instead.
        # By value, not by what was written: a dumped config (the database's, a verify study's) holds
        # every default and must validate again.
        if self.family != "mlp":
            defaults = {k: ModelConfig.model_fields[k].default for k in ("hidden", "residual")}
            extra = [k for k in ("hidden", "residual") if getattr(self, k) != defaults[k]]
            if extra:
                names = " and ".join(map(repr, extra))
                verb = "applies" if len(extra) == 1 else "apply"
                raise ValueError(f"{names} {verb} to family 'mlp', not {self.family!r} (it takes 'channels')")
        ch = self.channels
        if self.family == "mlp" and ch is not None:
            raise ValueError("'channels' applies to families 'cnn1d' and 'cnn2d'; an mlp takes 'hidden'")
        if self.family == "cnn1d" and ch is not None and not (isinstance(ch, int) and ch >= 1):
            raise ValueError(f"channels: cnn1d takes one int >= 1 (its channel count); got {ch!r}")
        if self.family == "cnn2d" and ch is not None and not (
            isinstance(ch, list) and len(ch) == 2 and all(c >= 1 for c in ch)
        ):
            raise ValueError(f"channels: cnn2d takes two ints >= 1 (its two convolutions); got {ch!r}")
        return self


class TrainingConfig(_Strict):
    """Epochs, batch size, optimizer and learning rate, shared by every recipe."""

    epochs: int = Field(default=20, ge=1)
    batch_size: int = Field(default=100, ge=1)
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = Field(default=1e-2, gt=0, allow_inf_nan=False)
    momentum: float = Field(default=0.9, ge=0, lt=1)
    dtype: Literal["float32", "float64"] = "float32"
    threads: int = Field(default=1, ge=1, description="torch threads per trial (fixed for reproducibility)")


class ValidationConfig(_Strict):
    """Model selection on the training split: ``kfold`` CV (scikit-learn's ``StratifiedKFold`` for
    classification, ``KFold`` with ``stratified: false`` and for regression) or ``holdout``."""

    kind: Literal["kfold", "holdout"] = "kfold"
    folds: int = Field(default=3, ge=2)
    stratified: bool = Field(default=True, description="k-fold of classification data keeps each class's "
                             "share in every fold (StratifiedKFold); false: KFold")


class SearchConfig(_Strict):
    """How recipe spaces are searched: ``grid``, ``random`` (log-uniform etc.) or ``tpe`` (Optuna)."""

    method: Literal["grid", "random", "tpe"] = "grid"
    trials: int = Field(default=8, ge=1, description="candidates per recipe for random / tpe")
    seed: int = 0
    metric: Literal["val_accuracy", "val_loss", "val_mse"] = Field(
        default="val_accuracy", description="val_accuracy / val_loss (classification), val_mse / val_loss "
        "(regression)")


class BudgetConfig(_Strict):
    """Limits: ``max_candidates`` per recipe, and successive halving of search candidates.

    With ``halving: true`` every candidate first trains ``epochs / eta**(rungs-1)`` epochs on the
    first seed and fold; the best ``1/eta`` go on to ``eta`` times more epochs, until the last rung
    trains the full epochs on every seed and fold. Only the last rung's results enter the report.
    """

    max_candidates: int | None = Field(default=None, ge=1)
    halving: bool = False
    eta: int = Field(default=3, ge=2)
    rungs: int = Field(default=2, ge=2)


class StudyConfig(_Strict):
    """A whole study. See ``docs/studies.md`` for a commented example.

    Example:
        >>> StudyConfig.model_validate({"name": "s", "dataset": {"name": "digits"},
        ...     "recipes": {"none": {}}}).baseline
        'none'
    """

    # The name becomes a folder (studies/<name>): no separators, and not "." or ".." (which would
    # put the study in studies/ itself or its parent).
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,100}$")
    description: str = ""
    dataset: DatasetConfig
    model: ModelConfig = ModelConfig()
    training: TrainingConfig = TrainingConfig()
    recipes: dict[str, Recipe]
    baseline: str = "none"
    # Seeds seed the Trainer (0 .. 2**62) and are stored as 64-bit signed database integers.
    seeds: list[Annotated[int, Field(ge=0, le=MAX_SEED)]] = [0, 1, 2]
    validation: ValidationConfig = ValidationConfig()
    search: SearchConfig = SearchConfig()
    budget: BudgetConfig = BudgetConfig()
    population: bool = Field(
        default=True,
        description="train trials the population engine can express (same fold and architecture) as one "
        "stacked model; false: every trial through the Trainer",
    )

    @field_validator("name")
    @classmethod
    def _not_dots(cls, name: str) -> str:
        if set(name) == {"."}:
            raise ValueError(f"the study name becomes a folder: letters, digits, . _ - and not only dots; "
                             f"got {name!r}")
        return name

    @model_validator(mode="before")
    @classmethod
    def _name_recipes(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("recipes"), dict):
            recipes = {}
            for name, body in data["recipes"].items():
                body = {} if body is None else body
                recipes[name] = {**body, "name": name} if isinstance(body, dict) else body
            data = {**data, "recipes": recipes}
        return data

    @model_validator(mode="after")
    def _check(self) -> StudyConfig:
        if not self.recipes:
            raise ValueError("recipes: a study needs at least one recipe; got none")
        if self.baseline not in self.recipes:
            raise ValueError(
                f"baseline {self.baseline!r} is not a recipe; recipes are {sorted(self.recipes)}"
                + did_you_mean(self.baseline, self.recipes)
            )
        for name, recipe in self.recipes.items():
            if not (isinstance(name, str) and 0 < len(name) <= 100 and name.isprintable()):
                # Recipe names are database keys (200 characters at most) and report labels.
                raise ValueError(f"recipes: a recipe name must be 1 to 100 printable characters; "
                                 f"got {name!r}")
            if recipe.weight_decay is not None and recipe.decoupled_decay is not None:
                raise ValueError(f"recipe {name!r} sets both weight_decay (coupled) and decoupled_decay; "
                                 "keep one")
            if recipe.weight_decay is not None and self.training.optimizer == "adamw":
                raise ValueError(
                    f"recipe {name!r}: AdamW's decay is always decoupled; use decoupled_decay, or "
                    "training.optimizer 'adam' for coupled weight_decay"
                )
            norms = recipe.norm.values() if isinstance(recipe.norm, Space) else [recipe.norm]
            if "batch" in norms and self.training.batch_size == 1:
                # Trainer.fit and Population.fit refuse it, but only once the recipe's first trial trains.
                raise ValueError(
                    f"recipes.{name}.norm: 'batch' (BatchNorm) needs training batches of at least 2 "
                    "examples; got training.batch_size 1. Use training.batch_size >= 2, or norm 'layer'"
                )
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be a non-empty list of distinct ints; got {self.seeds}")
        return self

    def canonical_json(self) -> str:
        """The config as sorted JSON: what storage compares to detect a changed study."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True)

    def differences(self, stored_json: str, limit: int = 3) -> list[str]:
        """Where a stored config differs from this one, read as :meth:`same_study` reads it: up to ``limit``
        ``"path: stored -> now"`` entries, sorted by path; empty when the stored config cannot be read.

        Example:
            >>> cfg = load_config("breast_cancer")
            >>> old = json.loads(cfg.canonical_json()); old["training"]["epochs"] = 5
            >>> cfg.differences(json.dumps(old))
            ['training.epochs: 5 -> 15']
        """
        try:
            stored = json.loads(type(self).model_validate(json.loads(stored_json)).canonical_json())
        except (ValueError, TypeError):
            return []
        found: list[str] = []
        _differences(stored, json.loads(self.canonical_json()), "", found)
        return found[:limit]

    def same_study(self, stored_json: str) -> bool:
        """Whether a stored :meth:`canonical_json` is this study's, read with today's schema: a config
        stored before a setting existed gets its default, so adding a setting never stops a resume.

        Example:
            >>> cfg = load_config("breast_cancer")
            >>> old = json.loads(cfg.canonical_json()); del old["dataset"]["features"]  # stored before it
            >>> cfg.same_study(json.dumps(old)), cfg.same_study("{}")
            (True, False)
        """
        try:
            stored = type(self).model_validate(json.loads(stored_json))
        except (ValueError, TypeError):  # a JSON or validation error: not a config of this schema
            return False
        return stored.canonical_json() == self.canonical_json()


def _differences(old: Any, new: Any, path: str, found: list[str]) -> None:
    """Append ``"path: old -> new"`` for each leaf where two canonical configs differ, ``"path: added"`` or
    ``"path: removed"`` for a key (a recipe) only one of them has."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            where = f"{path}.{key}" if path else str(key)
            if key not in old or key not in new:
                found.append(f"{where}: {'added' if key in new else 'removed'}")
            else:
                _differences(old[key], new[key], where, found)
    elif old != new:
        found.append(f"{path}: {_short(old)} -> {_short(new)}")


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return text if len(text) <= 40 else text[:37] + "..."


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of a study metric is better (losses and MSE), e.g. for selection.

    Example:
        >>> lower_is_better("val_mse"), lower_is_better("test_accuracy")
        (True, False)
    """
    return metric.endswith(("loss", "mse", "mae"))


def metric_range(metric: str) -> tuple[float, float]:
    """The values a study metric can take, read from its name as :func:`lower_is_better` reads it.

    Accuracies and the exact-zero fraction lie in [0, 1]; losses, MSE, MAE and the weight norm are
    never negative; any other metric is unbounded. Confidence intervals are clipped to this range.

    Example:
        >>> metric_range("test_accuracy"), metric_range("val_mse"), metric_range("val_r2")
        ((0.0, 1.0), (0.0, inf), (-inf, inf))
    """
    if metric.endswith(("accuracy", "zero_fraction")):
        return 0.0, 1.0
    if lower_is_better(metric) or metric == "weight_norm":
        return 0.0, math.inf
    return -math.inf, math.inf


def config_json_schema() -> dict[str, Any]:
    """The JSON Schema of a study config (for editors and validation outside Python).

    Example:
        >>> config_json_schema()["title"]
        'StudyConfig'
    """
    return StudyConfig.model_json_schema()


def _fields_at(loc: tuple[Any, ...], root: type[BaseModel] = None) -> list[str]:  # type: ignore[assignment]
    """The keys allowed at a config path, for the did-you-mean on an unknown key."""
    model: Any = root or StudyConfig
    parts = list(loc[:-1])
    while parts:
        part = parts.pop(0)
        if model is StudyConfig and part == "recipes":
            if not parts:
                return []
            parts.pop(0)  # the recipe's own name
            model = Recipe
            continue
        field = model.model_fields.get(part)
        ann = getattr(field, "annotation", None)
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return []
        model = ann
    return [f for f in model.model_fields if not (model is Recipe and f == "name")]


def format_validation_error(
    exc: ValidationError, source: str = "config", root: type[BaseModel] | None = None
) -> str:
    """One line from a pydantic error: where (field path), what was given, what is allowed."""
    errors = exc.errors()
    # An unknown key explains a "missing" one (a typo), so report it first.
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p in ("Space",))))
    path = ".".join(str(p) for p in loc) or "(top level)"
    given = err.get("input")
    if err["type"] == "extra_forbidden":
        allowed = _fields_at(loc, root)
        hint = did_you_mean(str(loc[-1]), allowed)
        listed = ", ".join(allowed)
        return f"{source}: unknown key {path!r}.{hint} Allowed here: {listed}."
    if err["type"] == "missing":
        return f"{source}: {path}: this key is required."
    msg = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if err["type"] == "value_error":
        # Whole-config checks name their own fields in the message.
        return f"{source}: {msg}" if not loc else f"{source}: {path}: {msg}"
    return f"{source}: {path}: {msg}. Got {given!r} instead."


def parse_config(data: Any, source: str = "config") -> StudyConfig:
    """Validate a mapping into a :class:`StudyConfig`; errors become one-line ``UserError``."""
    if data is None:  # an empty (or all-comment) YAML file; it said "... got NoneType"
        raise UserError(f"{source}: the config is empty; a study config is a mapping of keys to values "
                        "(name, dataset, recipes, ...)")
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise UserError(f"{source}: a study config must be a mapping of keys to values; got {kind}")
    try:
        config = StudyConfig.model_validate(data)
    except ValidationError as exc:
        raise UserError(format_validation_error(exc, source)) from None
    # A k-fold setting given with hold-out validation (the dataset's own validation split) was ignored
    # without a word. Checked on what the user wrote, not in the model: a stored config (canonical_json)
    # carries every default, folds and stratified included, and must still load and resume; and only a
    # value other than the default, so that a config's model_dump() validates again.
    given = data.get("validation")
    if config.validation.kind == "holdout" and isinstance(given, dict):
        for key in ("folds", "stratified"):
            if key in given and getattr(config.validation, key) != ValidationConfig.model_fields[key].default:
                raise UserError(f"{source}: validation.{key} ({given[key]!r}) only acts on kind: kfold, and "
                                "this config sets kind: holdout (the dataset's own validation split), so it "
                                f"would be ignored; set kind: kfold, or remove {key}")
    return config


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last one
    without a word, so a second ``recipes:`` would silently replace the first).

    Merge keys (``<<: *anchor``) load exactly as ``yaml.safe_load`` loads them: a key written in the
    mapping overrides a merged one, and merged keys never count as given twice.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            # Only the keys written in this mapping, not '<<' (its keys are merged, not given).
            written = [k for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"]
            self.flatten_mapping(node)  # resolves the merge (SafeLoader's own step; a second one is a no-op)
            seen: set[Any] = set()
            for key_node in written:
                key = self.construct_object(key_node, deep=True)
                if not isinstance(key, Hashable):
                    continue  # SafeLoader's own error names an unhashable key
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"the key {key!r} is given twice in one mapping", key_node.start_mark
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


# YAML 1.2 reads 1e-3, 1E3 and 1.0e3 as numbers; PyYAML (YAML 1.1) reads them as text, so `l2: 1e-3` was
# refused as "must be a float ... Got '1e-3'" while `lr: 1e-3` passed (pydantic turned that text into
# a number). The config loader reads them as numbers everywhere.
_UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_config(path: str | Path) -> StudyConfig:
    """Read a YAML study config (or a built-in name such as ``mnist1d``) and validate it.

    Example:
        >>> load_config("breast_cancer").dataset.name
        'breast_cancer'
    """
    from reglab.study.builtin import resolve

    file = resolve(path)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read the study config {str(file)!r}: {exc.strerror or exc}") from None
    try:
        source = raw.decode("utf-8-sig")  # UTF-8, with or without a byte-order mark
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise UserError(
            f"{file}: line {line} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "a study config is a YAML file saved as UTF-8."
        ) from None
    try:
        data = yaml.load(source, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise UserError(f"{file}:{where} is not valid YAML: {getattr(exc, 'problem', exc)}") from None
    return parse_config(data, str(file))
