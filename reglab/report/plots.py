"""The report's charts, as matplotlib Figures (no pyplot state), encoded as PNG data URIs.

Colours are the Okabe-Ito palette (safe for the common colour-vision deficiencies), and
training vs validation also differ by line style, so no chart relies on colour alone.
Mathtext is off for every user-supplied string: a recipe named ``$x$`` is drawn as typed.

Each function returns ``None`` when the study holds no data for that chart.

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

import matplotlib as mpl
import numpy as np
from matplotlib.figure import Figure

from reglab.report.aggregate import StudyData, mean_curves

__all__ = [
    "OKABE_ITO",
    "to_data_uri",
    "learning_curves",
    "generalization_gap",
    "regularization_paths",
    "weight_histograms",
    "convergence_by_norm",
]

OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#E69F00", "#56B4E9", "#CC79A7", "#F0E442", "#000000")
TRAIN_STYLE = {"color": OKABE_ITO[0], "linestyle": "-", "label": "training loss"}
VAL_STYLE = {"color": OKABE_ITO[1], "linestyle": "--", "label": "validation loss"}
_RC = {"font.size": 9, "axes.grid": True, "grid.alpha": 0.3}


def _plain(*texts) -> None:
    """Draw user strings as typed (no mathtext); tick labels of log axes keep their math."""
    for t in texts:
        t.set_parse_math(False)


def _legend(ax, **kwargs) -> None:
    _plain(*ax.legend(**kwargs).get_texts())


def to_data_uri(fig: Figure, *, dpi: int = 96) -> str:
    """Encode a figure as a ``data:image/png;base64,...`` URI (inline in HTML, no request)."""
    buf = io.BytesIO()
    with mpl.rc_context(_RC):
        fig.savefig(buf, format="png", dpi=dpi)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


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
    curves = mean_curves(data)
    # A recipe whose validation loss is NaN throughout (every run diverged at once) has no best epoch.
    return {
        r: float(g.loc[g["val_loss"].idxmin(), "epoch"])
        for r, g in curves.groupby("recipe")
        if g["val_loss"].notna().any()
    }


def learning_curves(data: StudyData, *, max_recipes: int = 12) -> Figure | None:
    """Training vs validation loss per recipe (mean over trials), the gap shaded, the best epoch marked."""
    curves = mean_curves(data)
    if curves.empty:
        return None
    recipes = [r for r in data.recipes if r in set(curves["recipe"].astype(str))][:max_recipes]
    best = _best_epochs(data)
    with mpl.rc_context(_RC):
        fig, axes = _grid(len(recipes))
        for ax, recipe in zip(axes, recipes):
            c = curves[curves["recipe"].astype(str) == recipe]
            ax.plot(c["epoch"], c["train_loss"], **TRAIN_STYLE)
            ax.plot(c["epoch"], c["val_loss"], **VAL_STYLE)
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
                    label=f"best / stop epoch ({best[recipe]:.0f})",
                )
            _plain(ax.set_title(recipe, fontsize=9))
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
    e = e.assign(gap=e["val_loss"] - e["train_loss"], recipe=e["recipe"].astype(str))
    recipes = [r for r in data.recipes if r in set(e["recipe"])]
    with mpl.rc_context(_RC):
        fig = Figure(figsize=(max(4.0, 0.9 * len(recipes) + 2), 3.0), layout="constrained")
        ax = fig.add_subplot()
        means = [e.loc[e["recipe"] == r, "gap"].mean() for r in recipes]
        x = np.arange(len(recipes))
        ax.bar(x, means, color=OKABE_ITO[4], edgecolor=OKABE_ITO[0])
        for i, r in enumerate(recipes):
            vals = e.loc[e["recipe"] == r, "gap"].to_numpy()
            ax.plot(np.full(len(vals), i), vals, "o", color="black", markersize=3)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(x, recipes, rotation=30, ha="right")
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
    wanted = (data.metric, "val_accuracy", "val_loss", "weight_norm", "zero_fraction")
    panels = [c for c in dict.fromkeys(wanted) if c in j.columns and j[c].notna().any()][:3]
    with mpl.rc_context(_RC):
        fig, axes = _grid(len(panels), w=3.6, h=2.8)
        for ax, col in zip(axes, panels):
            for i, (pen, g) in enumerate(j.groupby(j["penalty"].astype(str), sort=True)):
                m = g.groupby("strength")[col].mean().sort_index()
                ax.plot(m.index, m.values, marker="os^Dv<>p"[i % 8], color=OKABE_ITO[i % 8], label=pen)
            ax.set_xscale("log")
            ax.set_xlabel("strength")
            _plain(ax.set_ylabel(labels.get(col, col)))
            _legend(ax, fontsize=7, title="penalty")
        fig.suptitle("Regularization paths")
    return fig


def weight_histograms(data: StudyData) -> Figure | None:
    """Histograms of final weights per recipe (e.g. none vs L1 vs L2 vs elastic net), shared bins.

    Raw ``data.weights`` are binned here; a study's stored ``data.histograms`` (fixed bins per
    trial) are drawn as stored, on a shared x range.
    """
    if not data.weights:
        return _binned_histograms(data.histograms) if data.histograms else None
    names = list(data.weights)
    allw = np.concatenate([np.ravel(np.asarray(w, dtype=float)) for w in data.weights.values()])
    lim = float(np.quantile(np.abs(allw), 0.995)) or 1.0
    bins = np.linspace(-lim, lim, 61)
    with mpl.rc_context(_RC):
        fig, axes = _grid(len(names), cols=4, w=2.8, h=2.3)
        for i, (ax, name) in enumerate(zip(axes, names)):
            w = np.ravel(np.asarray(data.weights[name], dtype=float))
            ax.hist(np.clip(w, -lim, lim), bins=bins, color=OKABE_ITO[i % 8])
            ax.set_yscale("log")
            _plain(ax.set_title(f"{name}\n{np.mean(w == 0):.0%} exact zeros", fontsize=9))
            ax.set_xlabel("weight")
        fig.suptitle("Final weights")
    return fig


def _binned_histograms(hists: dict) -> Figure:
    names = list(hists)
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
            _plain(ax.set_title(f"{name}\n{share:.0%} exact zeros", fontsize=9))
            ax.set_xlabel("weight")
        fig.suptitle("Final regularized weights (one trial per recipe)")
    return fig


def convergence_by_norm(data: StudyData) -> Figure | None:
    """Mean training and validation loss per epoch with no norm, BatchNorm and LayerNorm."""
    if "norm" not in data.trials.columns:
        return None
    trials = data.trials.assign(norm=data.trials["norm"].fillna("none").astype(str))
    if trials["norm"].nunique() < 2:
        return None
    curves = mean_curves(
        StudyData(data.name, trials, data.epochs, data.results, metric=data.metric), by="norm"
    )
    with mpl.rc_context(_RC):
        fig = Figure(figsize=(7.5, 3.0), layout="constrained")
        axes = fig.subplots(1, 2)
        for i, (norm, c) in enumerate(curves.groupby("norm", sort=True)):
            for ax, col in zip(axes, ("train_loss", "val_loss")):
                ax.plot(
                    c["epoch"],
                    c[col],
                    color=OKABE_ITO[i % 8],
                    linestyle=["-", "--", "-.", ":"][i % 4],
                    label=norm,
                )
        for ax, title in zip(axes, ("training loss", "validation loss")):
            ax.set_title(title)
            ax.set_xlabel("epoch")
            ax.set_yscale("log")
            _legend(ax, fontsize=7, title="norm")
    return fig
