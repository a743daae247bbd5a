"""Read a run's training curves and say whether it over-fits, under-fits, is over-regularized or is fine.

The verdict comes from a few numbers measured on the curves (:class:`Evidence`) and fixed
rules with documented thresholds (:class:`Thresholds`). End-of-run values are the mean of
the last ``k = max(1, round(n / 10))`` epochs, so one noisy epoch does not flip the verdict.
Relative quantities are divided by the lowest validation loss.

The training loss is **still falling** when, over the last quarter of the run, it fell at least
``improving`` (5 %) of its level, or at least ``min_drop`` (1 %) of its level that is also at
least ``recent_share`` (10 %) of its whole fall since the first epoch. The second clause does
not depend on the loss floor: above a high floor (noisy targets) a run that is far from
converged falls only a little relative to its level, but the last quarter still carries a
large part of the run's fall, while a converged run's last quarter carries almost none of it.

Rules, checked in this order (the first that holds decides):

1. **over-regularized, both rising**: training *and* validation loss end at least
   ``rising`` (5 %) above their own (running-mean) minimum: the fit is being pushed back.
2. **over-fit**: validation loss ends at least ``rise`` (10 %) above its running-mean minimum, or the
   gap ``val - train`` ends at least ``gap`` (25 %) of the best validation loss and grew
   since mid-run by at least ``gap_growth`` (1 %) of the best validation loss. A smaller change
   counts as "not growing": a gap that stays constant while both losses fall (rounding moves it by
   1e-16) is not over-fitting.
3. **under-fit, still improving**: training loss still falling and the lowest validation
   loss lies in the last 20 % of epochs.
4. **over-regularized**: training loss ends at least ``negative_gap`` (5 %) above
   validation loss (train-time noise and penalties dominate the fit).
5. **under-fit, converged at a high loss** (rule ``high-plateau``): training loss ends above
   ``progress`` (50 %) of its first value but is no longer falling, and the gap ``val - train``
   is under ``gap`` (25 %) of the best validation loss.
6. **under-fit, little progress**: training loss ends above ``progress`` (50 %) of its
   first value otherwise (still falling, or flat with a larger gap).
7. otherwise **fine**.

A high training loss with train close to validation is under-fitting in the textbook sense
(high bias), but its advice depends on whether the loss still falls. Still falling (rules 3
and 6): train longer, or loosen the regularization. Flat (rule 5): more epochs will not help,
and the floor is either bias (a model too small or too regularized for the data) or the data's
own noise (a regression whose targets carry noise, labels that are partly wrong), which no
model goes below. The curves cannot tell those apart (in seeded runs, a linear model at the
noise floor of 20 000 noisy samples ended at 99.7 % of its first-epoch loss, an MLP held at
chance on ``digits`` by weight decay 1 at 100.6 %), so rule 5's advice is the experiment that
tells them apart: halve the regularization, add capacity; if neither lowers the training loss,
the floor is the data's and no amount of regularization will lower it (there is no gap to close).

Recommendations follow the usual practice (Goodfellow et al., *Deep Learning*, ch. 7;
Srivastava et al. 2014 for dropout; Li et al. 2019, "Understanding the disharmony between
dropout and batch normalization", for dropout ≤ 0.2 with BatchNorm) and the MNIST-1D
measurements in ``/work/shared/DESIGN.md`` (early stopping on validation loss stops long
before validation accuracy peaks).

Example:
    >>> import numpy as np, pandas as pd
    >>> e = np.arange(40)
    >>> h = pd.DataFrame({"epoch": e, "train_loss": 2 * np.exp(-e / 5) + 0.01,
    ...                   "val_loss": 0.5 + 0.002 * (e - 10) ** 2})
    >>> diagnose(h, task="image").verdict
    'overfit'
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from reglab._validation import Interval, check_bool, check_int, check_option, check_scalar, fail
from reglab.errors import UserError

if TYPE_CHECKING:
    from reglab.train.history import History

__all__ = [
    "TASKS",
    "VERDICTS",
    "Thresholds",
    "Context",
    "Evidence",
    "Recommendation",
    "Diagnosis",
    "measure",
    "classify",
    "recommend",
    "still_falling",
    "diagnose",
    "json_safe",
]

TASKS = ("image", "text", "tabular", "signal")
VERDICTS = ("overfit", "underfit", "overregularized", "fine")
_LABELS = {
    "overfit": "over-fitting",
    "underfit": "under-fitting",
    "overregularized": "over-regularized",
    "fine": "fine",
}
# A rule whose verdict needs a qualifier to be read right: a flat high loss is under-fitting that more
# epochs will not cure.
_RULE_LABELS = {"high-plateau": "under-fitting, converged at a high loss"}

# Context thresholds for the recommendation seeds.
MANY_FEATURES = 50  # features >= 50, or >= samples / 10: L1 (sparse input weights) is worth a try
SMALL_DATA = 5_000  # fewer training examples: early stopping + augmentation
LARGE_MODEL_RATIO = 10  # parameters >= 10 x examples (or >= 10M when examples unknown): large model
BATCHNORM_MAX_DROPOUT = 0.2


@dataclass(frozen=True)
class Thresholds:
    """The documented thresholds of the rules (fractions, see the module docstring).

    All are fractions: ``rise``, ``gap`` and ``gap_growth`` of the best validation loss,
    ``rising`` of each loss's own minimum, ``improving`` of the training loss three quarters
    into the run, ``min_drop`` of that too, ``recent_share`` of the training loss's whole fall
    (first epoch to end), ``negative_gap`` of the best validation loss, ``progress`` of the
    first training loss (above it a training loss is under-fitting, still falling or converged
    at a high loss, see the module docstring). ``recent_share`` 10 %: a loss that decays
    exponentially to its floor makes under 10 % of its fall in the last quarter once the run
    lasts more than about two time constants (it is then within 14 % of its first excess over the
    floor). ``min_drop`` 1 %: a smaller fall per quarter is flat for practical purposes (twice
    the epochs would gain under 4 %), and it keeps 1 % epoch-to-epoch noise on a small fall
    from reading as a large share.

    ``gap_growth`` is the least growth of the gap (end minus mid-run) that counts as
    "growing": without it a gap that is constant up to rounding (``+1e-16``) decided the
    verdict by the sign of the rounding error. 1 % lies far above rounding and a drift of 1e-9
    per epoch, and low enough that a gap which opens because validation loss stalls while
    training loss keeps falling still counts.

    Example:
        >>> Thresholds(rise=0.2).rise
        0.2
    """

    rise: float = 0.10
    gap: float = 0.25
    gap_growth: float = 0.01
    improving: float = 0.05
    min_drop: float = 0.01
    recent_share: float = 0.10
    negative_gap: float = 0.05
    progress: float = 0.5
    rising: float = 0.05
    min_epochs: int = 5

    def __post_init__(self) -> None:
        for name in ("rise", "gap", "gap_growth", "improving", "min_drop", "recent_share", "negative_gap",
                     "progress", "rising"):
            check_scalar(getattr(self, name), name, owner="Thresholds", interval=Interval(0, None))
        check_int(self.min_epochs, "min_epochs", owner="Thresholds", interval=Interval(3, None))


@dataclass(frozen=True)
class Context:
    """What is known about the run beyond its curves; every field is optional.

    Args:
        task: ``"image"``, ``"text"``, ``"tabular"`` or ``"signal"``.
        features: number of input features.
        samples: number of training examples.
        params: number of trainable parameters.
        batchnorm: whether the model uses BatchNorm.

    Example:
        >>> Context(task="text", samples=2000).small_data
        True
    """

    task: str | None = None
    features: int | None = None
    samples: int | None = None
    params: int | None = None
    batchnorm: bool = False

    def __post_init__(self) -> None:
        if self.task is not None:
            check_option(self.task, "task", owner="diagnose", options=TASKS)
        for name in ("features", "samples", "params"):
            if getattr(self, name) is not None:
                check_int(getattr(self, name), name, owner="diagnose", interval=Interval(1, None))
        check_bool(self.batchnorm, "batchnorm", owner="diagnose")

    @property
    def many_features(self) -> bool:
        if self.features is None:
            return False
        return self.features >= MANY_FEATURES or (
            self.samples is not None and self.features >= self.samples / 10
        )

    @property
    def small_data(self) -> bool:
        return self.samples is not None and self.samples < SMALL_DATA

    @property
    def large_model(self) -> bool:
        if self.params is None:
            return False
        if self.samples is None:
            return self.params >= 10_000_000
        return self.params >= LARGE_MODEL_RATIO * self.samples


@dataclass(frozen=True)
class Evidence:
    """Numbers measured on the curves; epochs are numbered as in the history file.

    Epoch fields are ``int`` when the file numbers epochs by integers (every reader here
    does), ``float`` only for fractional epoch numbers. The ``final_*`` values are means over the
    last ``window`` epochs (a tenth of the run), and the rises are measured from the lowest mean of
    ``window`` consecutive epochs, so that one noisy epoch moves neither. ``train_recent_share``
    is the part of the training loss's fall from the first epoch to the end made in the last
    quarter (0 when the training loss did not fall over the run). ``nan_train_epochs`` / ``nan_val_epochs``
    are the epochs left out because that loss was NaN or infinite there while later epochs were finite.
    """

    epochs: int
    first_epoch: int | float
    last_epoch: int | float
    best_epoch: int | float
    best_val_loss: float
    final_train_loss: float
    final_val_loss: float
    val_rise: float
    gap: float
    gap_mid: float
    relative_gap: float
    gap_trend: float
    train_recent_drop: float
    train_progress: float
    train_rise: float
    best_in_last_fifth: bool
    best_val_accuracy_epoch: int | float | None = None
    best_val_accuracy: float | None = None
    final_train_accuracy: float | None = None
    final_val_accuracy: float | None = None
    window: int = 1
    train_recent_share: float = 0.0
    nan_train_epochs: tuple = ()
    nan_val_epochs: tuple = ()


@dataclass(frozen=True)
class Recommendation:
    """One thing to try: ``action`` for people, ``change`` as a machine-readable recipe hint."""

    action: str
    why: str
    change: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Diagnosis:
    """The verdict, the rule that fired, the evidence and what to try.

    Example:
        >>> import pandas as pd
        >>> h = pd.DataFrame({"epoch": range(6), "train_loss": [1, .8, .7, .65, .62, .6],
        ...                   "val_loss": [1, .82, .72, .67, .64, .62]})
        >>> d = diagnose(h)
        >>> d.verdict, d.to_dict()["label"]
        ('underfit', 'under-fitting')
    """

    verdict: str
    rule: str
    evidence: Evidence
    findings: list[str]
    recommendations: list[Recommendation]
    context: Context
    thresholds: Thresholds
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return _RULE_LABELS.get(self.rule, _LABELS[self.verdict])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN becomes ``None``)."""
        out = dataclasses.asdict(self)
        out["label"] = self.label
        return json_safe(out)

    def to_text(self) -> str:
        """A short plain-text report: verdict, evidence, recommendations."""
        lines = [f"Diagnosis: {self.label} (rule: {self.rule})", "Evidence:"]
        lines += [f"  - {f}" for f in self.findings]
        where = f" (task: {self.context.task})" if self.context.task else ""
        lines.append(f"What to try{where}:")
        lines += [f"  {i}. {r.action} [{r.why}]" for i, r in enumerate(self.recommendations, 1)]
        if self.notes:
            lines.append("Notes:")
            lines += [f"  - {n}" for n in self.notes]
        return "\n".join(lines)


def json_safe(value: Any) -> Any:
    """Nested dicts / lists with NaN as ``None`` and numpy scalars as Python numbers."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    return value


def _epoch_number(value: Any) -> int | float:
    """An epoch as the file numbers it: ``int`` when integral (CSV readers give floats: 8.0 -> 8)."""
    value = float(value)
    return int(value) if value.is_integer() else value


def _tail_mean(x: np.ndarray, end: int, k: int) -> float:
    return float(np.mean(x[max(0, end - k) : end]))


def measure(history: pd.DataFrame, thresholds: Thresholds = Thresholds()) -> Evidence:
    """Measure the :class:`Evidence` on a canonical history (see :mod:`reglab.report.histories`).

    Example:
        >>> import pandas as pd
        >>> h = pd.DataFrame({"epoch": range(5), "train_loss": [5, 4, 3, 2, 1], "val_loss": [5, 4, 3, 3, 4]})
        >>> measure(h).best_epoch
        2
    """
    missing = [c for c in ("epoch", "train_loss", "val_loss") if c not in history.columns]
    if missing:
        raise UserError(f"the history lacks column(s) {', '.join(missing)}; read files with read_history().")
    for column in ("epoch", "train_loss", "val_loss"):
        # Numbers, not text: "10" < "9" as strings would reorder the epochs.
        values = pd.to_numeric(history[column], errors="coerce")
        bad = values.isna() & history[column].notna()
        if bad.any():
            first = history[column][bad].iloc[0]
            raise UserError(f"the history's {column} column holds text ({first!r} in row "
                            f"{int(bad.idxmax())}), not numbers; read files with read_history().")
        history = history.assign(**{column: values})
    repeated = history["epoch"][history["epoch"].duplicated()]
    if len(repeated):
        # Sorted, two runs' rows would interleave into one zig-zag curve.
        raise UserError(f"the history repeats epoch {repeated.iloc[0]:g}: diagnose judges one run, one row "
                        "per epoch; keep one run's rows (read_history merges a Lightning log's rows).")
    ordered = history.sort_values("epoch")
    train_all = pd.to_numeric(ordered["train_loss"], errors="coerce").to_numpy(dtype=float)
    # A diverged run's last row holds its NaN / inf training loss (a reglab History, Keras's CSVLogger);
    # dropping NaN rows below would hide it and judge the epochs before the blow-up.
    blown = np.isinf(train_all).any() or (np.isfinite(train_all).any() and np.isnan(train_all[-1]))
    if len(train_all) and blown:
        raise UserError(
            "the history holds NaN or infinite losses: the run diverged; lower the learning rate."
        )
    val_all = pd.to_numeric(ordered["val_loss"], errors="coerce").to_numpy(dtype=float)
    epochs_all = ordered["epoch"].to_numpy(dtype=float)
    bad_val = ~np.isfinite(val_all)
    if len(val_all) and bad_val[-1]:
        # The model of the last epoch(s) gives a NaN / inf validation loss: judging the epochs before it would
        # advise on a run whose end is broken.
        first = len(bad_val) - int(np.argmin(bad_val[::-1])) if not bad_val.all() else 0
        what = _nonfinite_word(val_all[first:])
        if first == 0:
            raise UserError(
                f"the validation loss is {what} at every epoch while the training loss is finite: check the "
                "validation data (a NaN input or target) and how val_loss is computed."
            )
        last = len(bad_val) - first
        raise UserError(
            f"the validation loss is {what} from epoch {_epoch_number(epochs_all[first]):g} on (the last "
            f"{f'{last} epochs' if last > 1 else 'epoch'}; the training loss is finite): the run diverged at "
            "its end; lower the learning rate."
        )
    bad_train = np.isnan(train_all)
    nan_train = tuple(_epoch_number(e) for e in epochs_all[bad_train])
    nan_val = tuple(_epoch_number(e) for e in epochs_all[bad_val])
    h = ordered[~(bad_train | bad_val)]
    n = len(h)
    if n < thresholds.min_epochs:
        raise UserError(
            f"the history has {n} epoch(s) with both losses; diagnose needs at least "
            f"{thresholds.min_epochs}: train longer or log validation loss every epoch."
        )
    epoch = h["epoch"].to_numpy(dtype=float)
    train = h["train_loss"].to_numpy(dtype=float)
    val = h["val_loss"].to_numpy(dtype=float)
    if not (np.isfinite(train).all() and np.isfinite(val).all()):
        raise UserError(
            "the history holds NaN or infinite losses: the run diverged; lower the learning rate."
        )
    k = max(1, round(n / 10))
    # Minima of the k-epoch running means, comparable with the k-epoch end values.
    train_low = float(pd.Series(train).rolling(k).mean().min())
    val_low = float(pd.Series(val).rolling(k).mean().min())
    ibest = int(np.argmin(val))
    best = float(val[ibest])
    scale = max(abs(best), 1e-12)
    final_train = _tail_mean(train, n, k)
    final_val = _tail_mean(val, n, k)
    gap = final_val - final_train
    mid = n // 2 + k // 2 + 1
    gap_mid = _tail_mean(val - train, mid, k)
    q = max(1, (3 * n) // 4)
    train_q = _tail_mean(train, q, k)
    fall = float(train[0]) - final_train  # the training loss's whole fall, first epoch to end
    acc: dict[str, Any] = {}
    if "val_accuracy" in h.columns and h["val_accuracy"].notna().any():
        va = h["val_accuracy"].to_numpy(dtype=float)
        ia = int(np.nanargmax(va))
        acc["best_val_accuracy_epoch"] = _epoch_number(epoch[ia])
        acc["best_val_accuracy"] = float(va[ia])
        acc["final_val_accuracy"] = float(np.nanmean(va[-k:]))
    if "train_accuracy" in h.columns and h["train_accuracy"].notna().any():
        acc["final_train_accuracy"] = float(np.nanmean(h["train_accuracy"].to_numpy(dtype=float)[-k:]))
    return Evidence(
        epochs=n,
        first_epoch=_epoch_number(epoch[0]),
        last_epoch=_epoch_number(epoch[-1]),
        best_epoch=_epoch_number(epoch[ibest]),
        best_val_loss=best,
        final_train_loss=final_train,
        final_val_loss=final_val,
        # Both rises are >= 0 by construction (a minimum of running means); max() drops float noise.
        val_rise=max(0.0, (final_val - val_low) / scale),
        gap=gap,
        gap_mid=gap_mid,
        relative_gap=gap / scale,
        gap_trend=(gap - gap_mid) / scale,
        train_recent_drop=(train_q - final_train) / max(abs(train_q), 1e-12),
        train_recent_share=(train_q - final_train) / fall if fall > 0 else 0.0,
        train_progress=final_train / max(abs(float(train[0])), 1e-12),
        train_rise=max(0.0, (final_train - train_low) / max(abs(train_low), 1e-12)),
        best_in_last_fifth=ibest >= math.floor(0.8 * (n - 1)),
        **acc,
        window=k,
        nan_train_epochs=nan_train,
        nan_val_epochs=nan_val,
    )


def _nonfinite_word(values: np.ndarray) -> str:
    nan, inf = np.isnan(values).any(), np.isinf(values).any()
    return "NaN or infinite" if nan and inf else "NaN" if nan else "infinite"


def classify(ev: Evidence, t: Thresholds = Thresholds()) -> tuple[str, str]:
    """Apply the rules of the module docstring: ``(verdict, rule name)``.

    Example:
        >>> import pandas as pd
        >>> h = pd.DataFrame({"epoch": range(6), "train_loss": [1.0, .5, .4, .4, .4, .4],
        ...                   "val_loss": [.9, .3, .3, .3, .3, .3]})
        >>> classify(measure(h))
        ('overregularized', 'train-above-val')
    """
    if ev.train_rise >= t.rising and ev.val_rise >= t.rising:
        return "overregularized", "both-rising"
    if ev.val_rise >= t.rise:
        return "overfit", "val-rising"
    if ev.relative_gap >= t.gap and ev.gap_trend >= t.gap_growth:
        return "overfit", "gap-growing"
    falling = still_falling(ev, t)
    if falling and ev.best_in_last_fifth:
        return "underfit", "still-improving"
    if ev.relative_gap <= -t.negative_gap:
        return "overregularized", "train-above-val"
    if ev.train_progress > t.progress:
        # Flat, with train close to val: more epochs will not help and the floor may be the data's noise,
        # so it gets its own advice. Still falling, or flat with a large gap: the general under-fit advice.
        if not falling and ev.relative_gap < t.gap:
            return "underfit", "high-plateau"
        return "underfit", "little-progress"
    return "fine", "none"


def still_falling(ev: Evidence, t: Thresholds = Thresholds()) -> bool:
    """Whether the training loss is still falling (see the module docstring).

    Example:
        >>> e = np.arange(40)  # a slow, steady fall: 2.7 % of its level, 27 % of its fall in the last quarter
        >>> ev = measure(pd.DataFrame({"epoch": e, "train_loss": 2 - 0.005 * e, "val_loss": 2.1 - 0.005 * e}))
        >>> round(ev.train_recent_drop, 3), round(ev.train_recent_share, 2), still_falling(ev)
        (0.027, 0.27, True)
    """
    return ev.train_recent_drop >= t.improving or (
        ev.train_recent_drop >= t.min_drop and ev.train_recent_share >= t.recent_share
    )


def _trend(ev: Evidence, t: Thresholds) -> str:
    if still_falling(ev, t):
        return "still falling"
    return "rising" if ev.train_recent_drop <= -t.improving else "flat"


def _findings(ev: Evidence, t: Thresholds) -> list[str]:
    # The end values are means of the last `window` epochs and the rises start from the lowest such
    # mean: said so, as "+0.0%" next to a higher single-epoch lowest read as a contradiction.
    end = "at the end" if ev.window == 1 else f"over the last {ev.window} epochs"
    low = "lowest" if ev.window == 1 else f"lowest {ev.window}-epoch mean"
    out = [
        f"{ev.epochs} epochs ({ev.first_epoch:g}..{ev.last_epoch:g}); lowest validation loss "
        f"{ev.best_val_loss:.4g} at epoch {ev.best_epoch:g}; {end} it is {ev.final_val_loss:.4g} "
        f"({ev.val_rise:+.1%} above its {low}; over-fit above +{t.rise:.0%})",
        f"generalization gap (val - train loss) {ev.gap:.4g} at the end = {ev.relative_gap:+.1%} of the "
        f"best validation loss; mid-run {ev.gap_mid:.4g} "
        f"({'growing' if ev.gap_trend >= t.gap_growth else 'not growing'}, {ev.gap_trend:+.1%}; "
        f"growing from +{t.gap_growth:.0%})",
        f"training loss {ev.final_train_loss:.4g} {end}: {ev.train_progress:.1%} of its first value, "
        # train_recent_drop is a drop (positive when falling); the text states the signed change.
        f"{0.0 - ev.train_recent_drop:+.1%} change over the last quarter "
        f"({_trend(ev, t)}), {ev.train_recent_share:.0%} of its whole fall made in the last quarter, "
        f"{ev.train_rise:+.1%} above its {low}",
    ]
    skipped = [f"{name} loss NaN or infinite at epoch{'s' * (len(e) > 1)} {_epochs(e)}"
               for name, e in (("training", ev.nan_train_epochs), ("validation", ev.nan_val_epochs)) if e]
    if skipped:
        out.insert(1, f"{' and '.join(skipped)}, finite after: left out of this diagnosis; a loss that is "
                   "non-finite mid-run and recovers points to a logging bug or a batch that blew up: check "
                   "the logging and those epochs")
    if ev.best_val_accuracy is not None:
        out.append(
            f"best validation accuracy {ev.best_val_accuracy:.4g} at epoch {ev.best_val_accuracy_epoch:g}"
            + (
                f"; training accuracy at the end {ev.final_train_accuracy:.4g}"
                if ev.final_train_accuracy is not None
                else ""
            )
        )
    return out


def _epochs(epochs: tuple) -> str:
    shown = ", ".join(f"{e:g}" for e in epochs[:8])
    return shown + (f", ... ({len(epochs)} in all)" if len(epochs) > 8 else "")


def recommend(verdict: str, rule: str, ev: Evidence, ctx: Context = Context()) -> list[Recommendation]:
    """Turn a verdict and the run's context into recommendations (the seeds of the issue).

    Example:
        >>> ev = measure(pd.DataFrame({"epoch": range(6), "train_loss": [3, 2, 1, .5, .2, .1],
        ...                            "val_loss": [3, 2, 1, 1.2, 1.5, 2.0]}))
        >>> [r.change for r in recommend("overfit", "val-rising", ev, Context(task="text"))][0]
        {'weight_decay': 0.01}
    """
    check_option(verdict, "verdict", owner="recommend", options=VERDICTS)
    max_dropout = BATCHNORM_MAX_DROPOUT if ctx.batchnorm else 0.5
    recs: list[Recommendation] = []

    def add(action: str, why: str, **change: Any) -> None:
        if all(r.change != change for r in recs):
            recs.append(Recommendation(action, why, change))

    if verdict == "overfit":
        if ctx.task == "image":
            p = min(0.3, max_dropout)
            # A mirror changes what a digit or letter means (a flipped digits run loses ~14 points
            # of test accuracy), so a flip is advised only where mirrored images keep their class.
            add(f"add dropout {p:g} and image augmentation (random crops / small shifts; a horizontal flip "
                "only if a mirrored image keeps its class, which digits and letters do not)",
                "image task", dropout=p, augment="image")
        elif ctx.task == "text":
            add("add L2 / decoupled weight decay (AdamW weight_decay 0.01)", "text task", weight_decay=0.01)
        elif ctx.task == "signal":
            add("add signal augmentation (circular shift, amplitude scaling, noise) and dropout 0.1",
                "signal task: matches the data's invariances", dropout=0.1, augment="signal")
        elif ctx.task == "tabular" and not ctx.many_features:
            add("add L2 weight decay 1e-3 and dropout 0.1", "tabular task", weight_decay=1e-3, dropout=0.1)
        if ctx.many_features:
            add("add an L1 penalty (proximal updates give exact zeros) to drop useless inputs",
                f"many features (>= {MANY_FEATURES} or >= samples/10)", l1=1e-4)
        if ctx.small_data:
            add("use early stopping and augmentation", f"small data (< {SMALL_DATA} examples)",
                early_stopping=True, augment=ctx.task or True)
        if ctx.large_model:
            p = min(0.3, max_dropout)
            add(f"add weight decay and dropout {p:g}", "large model (params >= 10 x examples)",
                weight_decay=0.01, dropout=p)
        if not recs:
            add("add L2 weight decay 1e-3", "over-fit, no context given", weight_decay=1e-3)
        # Verified on the validation loss this advice is about (a study's default monitor is accuracy,
        # which can tie at its best epoch and restore another one).
        add(f"stop at (or restore the weights of) epoch {ev.best_epoch:g}, the lowest validation loss",
            "validation loss bottoms out there", early_stopping={"monitor": "val_loss", "patience": 10})
    elif verdict == "underfit" and rule == "high-plateau":
        # Converged with train close to val: the floor is bias (too much regularization, too little
        # capacity) or the data's noise; the curves cannot tell which, these two experiments can.
        add("reduce regularization (halve penalties and dropout)",
            "converged with train close to validation: if regularization holds the fit up, both losses fall",
            regularization_factor=0.5)
        add("add capacity (wider / deeper) or more informative features, if you expect a lower loss",
            "the floor may be bias: a model too small for the data", capacity_factor=2)
        add("if neither lowers the training loss, the run is at the data's noise floor: more regularization, "
            "more epochs or early stopping will not improve it", "no gap to close, no fall left")
    elif verdict == "underfit":
        if rule == "still-improving":
            add("train longer (about twice the epochs): both losses are still falling", "still improving",
                epochs_factor=2)
        add("reduce regularization (halve penalties and dropout) or add capacity (wider / deeper)",
            "the model does not fit the training data", regularization_factor=0.5)
    elif verdict == "overregularized":
        why = "both errors rising" if rule == "both-rising" else "training loss above validation loss"
        add("use less regularization: halve penalty strengths, dropout and augmentation strength", why,
            regularization_factor=0.5)
        if rule == "train-above-val":
            # The logged training loss is the mean over the epoch's batches in training mode: dropout,
            # noise and augmentation raise it, so a healthy dropout run also ends above its validation loss.
            add("if the run uses dropout, noise or augmentation, its training loss was measured with them "
                "on, so some excess over the validation loss is expected; --verify measures whether halving "
                "them helps before you change a recipe that works", "training loss measured in training mode")
        if rule == "both-rising":
            add("check the learning rate: a rate too high also makes both losses rise", why, lr_factor=0.5)
    else:
        add(f"keep the recipe; keep the weights of epoch {ev.best_epoch:g} (lowest validation loss)",
            "no problem found")
    if ctx.batchnorm and (
        any(r.change.get("dropout", 0) > 0 for r in recs)
        or verdict in ("overregularized", "underfit")
    ):
        add(f"with BatchNorm, keep dropout at or below {BATCHNORM_MAX_DROPOUT:g}",
            "BatchNorm + dropout disharmony", max_dropout=BATCHNORM_MAX_DROPOUT)
    return recs


def _notes(ev: Evidence) -> list[str]:
    notes = []
    if ev.best_val_accuracy_epoch is not None:
        lag = ev.best_val_accuracy_epoch - ev.best_epoch
        if lag >= max(5, 0.2 * ev.epochs):
            notes.append(
                f"validation accuracy peaks at epoch {ev.best_val_accuracy_epoch:g}, {lag:g} epochs "
                f"after the lowest validation loss (epoch {ev.best_epoch:g}): early stopping on val_loss "
                "would stop too soon; monitor val_accuracy (or keep the best epoch by accuracy)."
            )
    return notes


def _as_frame(history: Any) -> pd.DataFrame:
    """The history as a DataFrame: a DataFrame as it is, a reglab ``History`` via ``to_pandas()``, a mapping
    of column -> per-epoch values via ``pandas.DataFrame`` (then named as :func:`read_history` names a file's
    columns: Keras's ``loss``, ``epoch`` 0, 1, ... when absent)."""
    from reglab.report.histories import _one_run, normalize_history
    from reglab.train.history import History

    if isinstance(history, pd.DataFrame):
        _one_run(history, "the history")
        return history
    if isinstance(history, History):
        return history.to_pandas()
    if isinstance(history, Mapping):
        try:
            frame = pd.DataFrame({str(k): v for k, v in history.items()})
        except (ValueError, TypeError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise UserError(
                f"diagnose: the mapping is not a table ({first}); give one sequence of per-epoch values "
                "per column, all of the same length."
            ) from None
        return normalize_history(frame, source="the history mapping")
    raise UserError(
        f"diagnose needs a pandas DataFrame, a reglab History (what reglab.fit returns) or a mapping of "
        f"column -> per-epoch values, not {type(history).__name__}; read a file with "
        "reglab.report.read_history(path)."
    )


def diagnose(
    history: pd.DataFrame | History | Mapping[str, Any],
    *,
    task: str | None = None,
    features: int | None = None,
    samples: int | None = None,
    params: int | None = None,
    batchnorm: bool = False,
    thresholds: Thresholds = Thresholds(),
) -> Diagnosis:
    """Diagnose one run from its per-epoch history.

    Args:
        history: a DataFrame with columns ``epoch, train_loss, val_loss`` and optionally
            ``train_accuracy, val_accuracy`` (:func:`reglab.report.histories.read_history` builds it
            from a file); or the reglab ``History`` that :func:`reglab.fit` returns; or a mapping of
            column -> per-epoch values (e.g. ``{"train_loss": [...], "val_loss": [...]}`` or Keras's
            ``History.history``), whose columns are named as ``read_history`` names a file's.
        task: ``"image"``, ``"text"``, ``"tabular"`` or ``"signal"``: picks the recommendations.
        features, samples, params: sizes of the problem, when known (see :class:`Context`).
        batchnorm: whether the model uses BatchNorm (caps recommended dropout at 0.2).
        thresholds: the rule thresholds.

    Returns:
        A :class:`Diagnosis`.

    Example:
        >>> import pandas as pd
        >>> h = pd.DataFrame({"epoch": range(8), "train_loss": [2, 1, .6, .4, .35, .33, .32, .32],
        ...                   "val_loss": [2, 1.1, .7, .5, .45, .43, .42, .42]})
        >>> diagnose(h).verdict
        'fine'
    """
    history = _as_frame(history)
    read_as = history.attrs.get("loss_columns") or {}
    missing = history.attrs.get("missing_losses") or {}
    if not isinstance(thresholds, Thresholds):
        raise fail("diagnose", "thresholds", "a reglab.report.diagnose.Thresholds", thresholds)
    ctx = Context(task=task, features=features, samples=samples, params=params, batchnorm=batchnorm)
    ev = measure(history, thresholds)
    verdict, rule = classify(ev, thresholds)
    return Diagnosis(
        verdict=verdict,
        rule=rule,
        evidence=ev,
        findings=_loss_source(read_as) + _with_missing(_findings(ev, thresholds), missing, ev.last_epoch),
        recommendations=recommend(verdict, rule, ev, ctx),
        context=ctx,
        thresholds=thresholds,
        notes=_notes(ev),
    )


def _with_missing(findings: list[str], missing: Mapping[str, Any], last: float) -> list[str]:
    """Name the epochs read_history dropped for an empty loss cell (``attrs["missing_losses"]``): pandas
    writes a NaN as an empty cell, so each may be a NaN. ``last`` is the last epoch judged."""
    names = {"train_loss": "training", "val_loss": "validation"}
    said = []
    for column, epochs in missing.items():
        mid, end = [e for e in epochs if e < last], [e for e in epochs if e > last]
        for part, where in ((mid, "mid"), (end, "end")):
            if not part:
                continue
            at = f"{names[column]} loss missing at epoch{'s' * (len(part) > 1)} {_epochs(tuple(part))}"
            if where == "mid":
                said.append(f"{at} (an empty or NA cell; pandas writes a NaN so): left out of this "
                            "diagnosis; a NaN mid-run points to a logging bug or a batch that blew up: check "
                            "those epochs")
            else:
                said.append(f"{at}, after the last epoch judged (an empty or NA cell; pandas writes a NaN "
                            "so): if it was a NaN, the run diverged at its end and this diagnosis is of the "
                            "epochs before; lower the learning rate")
    return findings[:1] + said + findings[1:]


def _loss_source(read_as: Mapping[str, str]) -> list[str]:
    """Say which columns stand for the losses when the file had none (read_history's ``loss_columns``)."""
    if not read_as:
        return []
    train, val = read_as["train_loss"], read_as["val_loss"]
    return [f"no loss columns: {train} and {val} are read as the training and validation loss"]
