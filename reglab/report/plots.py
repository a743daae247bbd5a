"""The report's charts, as matplotlib Figures (no pyplot state), encoded as PNG data URIs.

Colours are the Okabe-Ito palette (safe for the common colour-vision deficiencies), and
training vs validation also differ by line style, so no chart relies on colour alone.
Mathtext is off for every user-supplied string: a recipe named ``$x$`` is drawn as typed.

Each function returns ``None`` when the study holds no data for that chart.

Recipes appear in the ranking's order (:func:`reglab.report.aggregate.recipe_order`: best mean first),
labelled ``"<rank>. <name>"`` with the rank of the ranking table (:func:`recipe_labels`; names longer
than 28 characters are cut with an ellipsis). The learning-curves grid draws at most ``max_recipes``
(12) recipes: the best ones, and the baseline in the last panel when it ranks lower
(:func:`curve_recipes` also returns the ones left out, which the report names under the chart).

Example:
    >>> from matplotlib.figure import Figure
    >>> fig = Figure(); _ = fig.add_subplot().plot([0, 1])
    >>> to_data_uri(fig).startswith("data:image/png;base64,")
    True
"""

from __future__ import annotations

import base64
import io
import math
import warnings

import matplotlib as mpl
import numpy as np
from matplotlib.figure import Figure

from reglab.report.aggregate import StudyData, mean_curves, ranking, shared_mean_curves
from reglab.study.schema import lower_is_better

__all__ = [
    "OKABE_ITO",
    "to_data_uri",
    "recipe_labels",
    "curve_recipes",
    "learning_curves",
    "generalization_gap",
    "regularization_paths",
    "weight_histograms",
    "norm_lines",
    "convergence_by_norm",
]

OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#E69F00", "#56B4E9", "#CC79A7", "#F0E442", "#000000")
TRAIN_STYLE = {"color": OKABE_ITO[0], "linestyle": "-", "label": "training loss"}
VAL_STYLE = {"color": OKABE_ITO[1], "linestyle": "--", "label": "validation loss"}
_RC = {"font.size": 9, "axes.grid": True, "grid.alpha": 0.3}
LABEL_CHARS = 28  # a longer recipe name is cut in the charts (titles, ticks), not in the tables


def _plain(*texts) -> None:
    """Draw user strings as typed (no mathtext); tick labels of log axes keep their math."""
    for t in texts:
        t.set_parse_math(False)


def _legend(ax, **kwargs) -> None:
    _plain(*ax.legend(**kwargs).get_texts())


def to_data_uri(fig: Figure, *, dpi: int = 96) -> str:
    """Encode a figure as a ``data:image/png;base64,...`` URI (inline in HTML, no request)."""
    buf = io.BytesIO()
    with mpl.rc_context(_RC), warnings.catch_warnings():
        # A character the font lacks (CJK without a CJK font installed) is drawn as a box; the tables
        # show the name as typed, so matplotlib's warning per glyph and chart is noise on the terminal.
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font", category=UserWarning)
        fig.savefig(buf, format="png", dpi=dpi)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _short(name: str) -> str:
    return name if len(name) <= LABEL_CHARS else name[: LABEL_CHARS - 1] + "\u2026"


def recipe_labels(data: StudyData) -> dict[str, str]:
    """Every recipe with trials, in the ranking's order, with its chart label: ``"<rank>. <name>"``.

    The rank is the ranking table's (``#``); a recipe without a mean has none. Names longer than
    ``LABEL_CHARS`` are cut with an ellipsis (the rank keeps two such names apart).

    Example:
        >>> import pandas as pd
        >>> t = pd.DataFrame({"trial_id": [0, 1], "recipe": ["none", "l2"], "seed": [0, 0]})
        >>> e = pd.DataFrame({"trial_id": [0], "epoch": [0], "train_loss": [1.0], "val_loss": [1.0]})
        >>> r = pd.DataFrame({"trial_id": [0, 1], "test_accuracy": [0.6, 0.7]})
        >>> recipe_labels(StudyData("s", t, e, r))
        {'l2': '1. l2', 'none': '2. none'}
    """
    table = ranking(data)
    return {name: f"{rank}. {_short(name)}" if n else _short(name)
            for rank, (name, n) in enumerate(zip(table["recipe"], table["n"]), 1)
            if name not in data.unfinished}


def curve_recipes(data: StudyData, *, max_recipes: int = 12) -> tuple[list[str], list[str]]:
    """The recipes the learning-curves grid draws, and those it leaves out, both in ranking order.

    With more than ``max_recipes`` recipes it draws the best ``max_recipes`` ones, or, when the
    baseline ranks below them, the best ``max_recipes - 1`` and the baseline (last).

    Example:
        >>> import pandas as pd
        >>> names = ["none", "a", "b", "c"]
        >>> t = pd.DataFrame({"trial_id": range(4), "recipe": names, "seed": 0})
        >>> e = pd.DataFrame({"trial_id": range(4), "epoch": 0, "train_loss": 1.0, "val_loss": 1.0})
        >>> r = pd.DataFrame({"trial_id": range(4), "test_accuracy": [0.5, 0.9, 0.8, 0.7]})
        >>> curve_recipes(StudyData("s", t, e, r, baseline="none"), max_recipes=3)
        (['a', 'b', 'none'], ['c'])
    """
    curves = mean_curves(data)
    drawn = set(curves["recipe"].astype(str))
    order = [r for r in recipe_labels(data) if r in drawn]
    if len(order) <= max_recipes:
        return order, []
    shown = order[:max_recipes]
    if data.baseline in order and data.baseline not in shown and max_recipes >= 2:
        shown = order[: max_recipes - 1] + [data.baseline]
    return shown, [r for r in order if r not in shown]


def _grid(n: int, *, cols: int = 3, w: float = 3.4, h: float = 2.5) -> tuple[Figure, list]:
    cols = min(cols, n)
    rows = math.ceil(n / cols)
    with mpl.rc_context(_RC):
        fig = Figure(figsize=(w * cols, h * rows), layout="constrained")
        axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def _best_epochs(data: StudyData) -> dict[str, float]:
    """Mean stopping / best epoch per recipe: ``results.best_epoch`` or the lowest validation loss."""
    if "best_epoch" in data.results.columns:
        j = data.joined()
        return j.groupby(j["recipe"].astype(str))["best_epoch"].mean().to_dict()
    curves = shared_mean_curves(data)  # a survivors' mean can dip where a trial stops
    # A recipe whose validation loss is NaN throughout (every run diverged at once) has no best epoch.
    return {
        r: float(g.loc[g["val_loss"].idxmin(), "epoch"])
        for r, g in curves.groupby("recipe")
        if g["val_loss"].notna().any()
    }


def learning_curves(data: StudyData, *, max_recipes: int = 12) -> Figure | None:
    """Training vs validation loss per recipe, the gap shaded, the best epoch marked.

    The mean is over the epochs every trial of the recipe reached (:func:`shared_mean_curves`): past the
    first early stop a mean over the trials left would step as each one stops. When trials stopped at
    different epochs, each trial is also drawn on its own (thin, faint) to its last epoch.
    """
    curves = mean_curves(data)
    if curves.empty:
        return None
    shared = shared_mean_curves(data)
    per_trial = data.epochs.merge(data.trials[["trial_id", "recipe"]], on="trial_id")
    per_trial = per_trial.assign(recipe=per_trial["recipe"].astype(str)).replace([np.inf, -np.inf], np.nan)
    recipes, _ = curve_recipes(data, max_recipes=max_recipes)
    labels = recipe_labels(data)
    best = _best_epochs(data)
    with mpl.rc_context(_RC):
        fig, axes = _grid(len(recipes))
        for ax, recipe in zip(axes, recipes):
            runs = per_trial[per_trial["recipe"] == recipe]
            n = runs["trial_id"].nunique()
            if runs.groupby("trial_id")["epoch"].max().nunique() > 1:
                for i, (_, run) in enumerate(runs.sort_values("epoch").groupby("trial_id")):
                    one = {"linewidth": 0.7, "alpha": 0.35}
                    ax.plot(run["epoch"], run["train_loss"], color=TRAIN_STYLE["color"], linestyle="-", **one)
                    ax.plot(run["epoch"], run["val_loss"], color=VAL_STYLE["color"], linestyle="--", **one,
                            label="" if i else "one trial (to its stop)")
            # An infinite loss (a run that blew up at an epoch) is a gap in the line, not a broken axis.
            c = shared[shared["recipe"].astype(str) == recipe].replace([np.inf, -np.inf], np.nan)
            mean = f" (mean of {n})" if n > 1 else ""
            ax.plot(c["epoch"], c["train_loss"], **(TRAIN_STYLE | {"label": TRAIN_STYLE["label"] + mean}))
            ax.plot(c["epoch"], c["val_loss"], **(VAL_STYLE | {"label": VAL_STYLE["label"] + mean}))
            ax.fill_between(
                c["epoch"],
                c["train_loss"],
                c["val_loss"],
                color="0.6",
                alpha=0.25,
                label="generalization gap",
            )
            if recipe in best and np.isfinite(best[recipe]):
                ax.axvline(
                    best[recipe],
                    color="black",
                    linestyle=":",
                    linewidth=1.2,
                    # A mean over trials (3.5): rounded to a whole epoch the label disagreed with the line.
                    label=f"best / stop epoch ({round(best[recipe], 1):g})",
                )
            _plain(ax.set_title(labels[recipe], fontsize=9))
            ax.set_xlabel("epoch")
            ax.set_ylabel("loss")
            _legend(ax, fontsize=7, loc="upper right")
    return fig


def generalization_gap(data: StudyData) -> Figure | None:
    """Final validation minus training loss per recipe (mean over trials, with each trial as a dot)."""
    e = data.epochs.sort_values("epoch").groupby("trial_id").tail(1)
    e = e.merge(data.trials[["trial_id", "recipe"]], on="trial_id")
    if e.empty:
        return None
    gap = e["val_loss"] - e["train_loss"]
    e = e.assign(gap=gap.where(np.isfinite(gap)), recipe=e["recipe"].astype(str))  # no bar for an inf loss
    labels = recipe_labels(data)
    recipes = [r for r in labels if r in set(e["recipe"])]
    longest = max((len(labels[r]) for r in recipes), default=0)
    with mpl.rc_context(_RC):
        # Tick labels are rotated 30 degrees: the figure grows with the longest, so the bars keep their room.
        fig = Figure(figsize=(max(4.0, 0.9 * len(recipes) + 2), 2.6 + 0.045 * longest), layout="constrained")
        ax = fig.add_subplot()
        means = [e.loc[e["recipe"] == r, "gap"].mean() for r in recipes]
        x = np.arange(len(recipes))
        ax.bar(x, means, color=OKABE_ITO[4], edgecolor=OKABE_ITO[0])
        for i, r in enumerate(recipes):
            vals = e.loc[e["recipe"] == r, "gap"].to_numpy()
            ax.plot(np.full(len(vals), i), vals, "o", color="black", markersize=3)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(x, [labels[r] for r in recipes], rotation=30, ha="right")
        _plain(*ax.get_xticklabels())
        ax.set_ylabel("val loss - train loss (last epoch)")
        ax.set_title("Generalization gap per recipe")
    return fig


def regularization_paths(data: StudyData) -> Figure | None:
    """Metric, weight norm and exact-zero fraction against strength (log axis), one line per penalty."""
    j = data.paths if data.paths is not None else data.joined()
    if not {"penalty", "strength"} <= set(j.columns):
        return None
    j = j[j["strength"].astype(float) > 0]
    if j.empty:
        return None
    labels = {"weight_norm": "weight norm (L2)", "zero_fraction": "exact-zero fraction"}
    # The selection metric of the candidates (val_mse for a study ranked by test_mse), before the fallbacks.
    selection = "val_" + data.metric.removeprefix("test_")
    present = [c for c in (data.metric, selection, "val_accuracy", "val_loss", "weight_norm", "zero_fraction")
               if c in j.columns and j[c].notna().any()]
    # One score (val_loss beside val_accuracy pushed the exact-zero fraction out), weight norm, zeros.
    panels = [c for c in present if c not in labels][:1] + [c for c in present if c in labels]
    penalties = sorted(set(j["penalty"].astype(str)))
    if "recipe" in j.columns:  # a penalty's line comes in the ranking's order of its best recipe
        rank = {r: i for i, r in enumerate(recipe_labels(data))}
        best = {str(pen): min(rank.get(r, len(rank)) for r in g["recipe"].astype(str))
                for pen, g in j.groupby(j["penalty"].astype(str))}
        penalties.sort(key=lambda p: (best[p], p))
    with mpl.rc_context(_RC):
        fig, axes = _grid(len(panels), w=3.6, h=2.8)
        for ax, col in zip(axes, panels):
            for i, pen in enumerate(penalties):
                g = j[j["penalty"].astype(str) == pen]
                m = g.groupby("strength")[col].mean().sort_index()
                ax.plot(m.index, m.values, marker="os^Dv<>p"[i % 8], color=OKABE_ITO[i % 8],
                        label=_short(pen))
            ax.set_xscale("log")
            ax.set_xlabel("strength")
            better = "lower" if lower_is_better(col) else "higher"
            direction = "" if col in labels else f" ({better} is better)"
            _plain(ax.set_ylabel(labels.get(col, col) + direction))
            _legend(ax, fontsize=7, title="penalty")
        fig.suptitle("Regularization paths")
    return fig


def weight_histograms(data: StudyData) -> Figure | None:
    """Histograms of final weights per recipe (e.g. none vs L1 vs L2 vs elastic net), shared bins.

    Raw ``data.weights`` are binned here; a study's stored ``data.histograms`` (fixed bins per
    trial) are drawn as stored, on a shared x range.
    """
    labels = recipe_labels(data)
    if not data.weights:
        return _binned_histograms(data.histograms, labels) if data.histograms else None
    names = _in_rank_order(data.weights, labels)
    allw = np.concatenate([np.ravel(np.asarray(w, dtype=float)) for w in data.weights.values()])
    lim = float(np.quantile(np.abs(allw), 0.995)) or 1.0
    bins = np.linspace(-lim, lim, 61)
    with mpl.rc_context(_RC):
        fig, axes = _grid(len(names), cols=4, w=2.8, h=2.3)
        for i, (ax, name) in enumerate(zip(axes, names)):
            w = np.ravel(np.asarray(data.weights[name], dtype=float))
            ax.hist(np.clip(w, -lim, lim), bins=bins, color=OKABE_ITO[i % 8])
            ax.set_yscale("log")
            title = labels.get(name, _short(name))
            _plain(ax.set_title(f"{title}\n{np.mean(w == 0):.0%} exact zeros", fontsize=9))
            ax.set_xlabel("weight")
        fig.suptitle("Final weights")
    return fig


def _in_rank_order(names, labels: dict[str, str]) -> list[str]:
    """Recipes in the ranking's order, then other names (not recipes) as given."""
    return [r for r in labels if r in names] + [n for n in names if n not in labels]


def _binned_histograms(hists: dict, labels: dict[str, str]) -> Figure:
    names = _in_rank_order(hists, labels)
    lim = max(max(abs(h["edges"][0]), abs(h["edges"][-1])) for h in hists.values())
    with mpl.rc_context(_RC):
        fig, axes = _grid(len(names), cols=4, w=2.8, h=2.3)
        for i, (ax, name) in enumerate(zip(axes, names)):
            h = hists[name]
            # Counts in log scale: an empty bin has no bar (stairs from 0.5 keeps log axes valid).
            counts = np.asarray(h["counts"], dtype=float)
            ax.stairs(counts, np.asarray(h["edges"]), fill=True, color=OKABE_ITO[i % 8], baseline=0.5)
            ax.set_yscale("log")
            ax.set_xlim(-lim, lim)
            share = h["zeros"] / h["total"] if h["total"] else 0.0
            _plain(ax.set_title(f"{labels.get(name, _short(name))}\n{share:.0%} exact zeros", fontsize=9))
            ax.set_xlabel("weight")
        fig.suptitle("Final regularized weights (one trial per recipe)")
    return fig


def norm_lines(data: StudyData, *, max_lines: int = 8) -> dict[str, list[str]]:
    """The convergence chart's lines: label -> the recipes averaged into it.

    The line without normalization is the baseline recipe when it has none (every recipe without a norm
    layer otherwise, labelled with their count); then one line per recipe with BatchNorm or LayerNorm, in
    the ranking's order, labelled with its rank and norm. Averaging every recipe without a norm layer
    mixed penalties, dropout, augmentation and mixup into the line BatchNorm was compared with.

    Example:
        >>> import pandas as pd
        >>> t = pd.DataFrame({"trial_id": [0, 1, 2], "recipe": ["none", "l2", "bn"], "seed": 0,
        ...                   "norm": ["none", "none", "batch"]})
        >>> e = pd.DataFrame({"trial_id": [0, 1, 2], "epoch": 0, "train_loss": 1.0, "val_loss": 1.0})
        >>> r = pd.DataFrame({"trial_id": [0, 1, 2], "test_accuracy": [0.6, 0.7, 0.8]})
        >>> norm_lines(StudyData("s", t, e, r, baseline="none"))
        {'3. none (no norm)': ['none'], '1. bn (batch)': ['bn']}
    """
    if "norm" not in data.trials.columns:
        return {}
    norms = data.trials.assign(norm=data.trials["norm"].fillna("none").astype(str),
                               recipe=data.trials["recipe"].astype(str))
    by_recipe = norms.groupby("recipe")["norm"].agg(lambda n: n.iloc[0] if n.nunique() == 1 else "mixed")
    with_curves = set(norms.loc[norms["trial_id"].isin(data.epochs["trial_id"]), "recipe"])
    labels = {r: label for r, label in recipe_labels(data).items() if r in with_curves}
    plain = [r for r in labels if by_recipe.get(r) == "none"]
    lines: dict[str, list[str]] = {}
    if data.baseline in plain:
        lines[f"{labels[data.baseline]} (no norm)"] = [data.baseline]
    elif len(plain) == 1:
        lines[f"{labels[plain[0]]} (no norm)"] = plain
    elif plain:
        lines[f"no norm (mean of {len(plain)} recipes)"] = plain
    for r in labels:
        if by_recipe.get(r, "none") != "none" and len(lines) < max_lines:
            lines[f"{labels[r]} ({by_recipe[r]})"] = [r]
    return lines if len(lines) >= 2 else {}  # one line per norm at most, so two lines hold a norm layer


def convergence_by_norm(data: StudyData) -> Figure | None:
    """Mean training and validation loss per epoch, over the epochs all of a line's trials reached: the
    baseline without normalization against each recipe with BatchNorm or LayerNorm (:func:`norm_lines`)."""
    lines = norm_lines(data)
    if not lines:
        return None
    line_of = {r: label for label, recipes in lines.items() for r in recipes}
    trials = data.trials.assign(line=data.trials["recipe"].astype(str).map(line_of)).dropna(subset=["line"])
    # Over the epochs all of a line's trials reached, as the learning curves (no survivors' mean).
    curves = shared_mean_curves(
        StudyData(data.name, trials, data.epochs, data.results, metric=data.metric), by="line"
    ).replace([np.inf, -np.inf], np.nan)
    with mpl.rc_context(_RC):
        fig = Figure(figsize=(7.5, 3.0), layout="constrained")
        axes = fig.subplots(1, 2)
        for i, label in enumerate(lines):
            c = curves[curves["line"] == label]
            for ax, col in zip(axes, ("train_loss", "val_loss")):
                ax.plot(
                    c["epoch"],
                    c[col],
                    color=OKABE_ITO[i % 8],
                    linestyle=["-", "--", "-.", ":"][i % 4],
                    label=label,
                )
        for ax, title in zip(axes, ("training loss", "validation loss")):
            ax.set_title(title)
            ax.set_xlabel("epoch")
            ax.set_ylabel("loss (mean over trials)")
            ax.set_yscale("log")
            _legend(ax, fontsize=7, title="recipe (norm)")
    return fig
