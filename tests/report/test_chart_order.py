"""The report's charts list recipes in the ranking's order (best mean first), as its tables do.

They listed them in first-appearance order; the learning-curves grid (12 panels at most) then dropped
whatever came after the 12th recipe, the baseline and the best included.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from reglab.report import plots
from reglab.report.aggregate import StudyData, recipe_order
from reglab.report.html import render_html
from reglab.report.summary import ranking_rows


def _study(means: dict[str, float], *, seeds: int = 2, metric: str = "test_accuracy", **kw) -> StudyData:
    """Recipes in the dict's order (first appearance), each with ``seeds`` trials around its mean."""
    trials, epochs, results, hists = [], [], [], {}
    for tid, (recipe, seed) in enumerate((r, s) for r in means for s in range(seeds)):
        trials.append({"trial_id": tid, "recipe": recipe, "seed": seed})
        epochs += [{"trial_id": tid, "epoch": e, "train_loss": 1.0 / (e + 1), "val_loss": 1.2 / (e + 1)}
                   for e in range(3)]
        results.append({"trial_id": tid, metric: means[recipe] + (0.01 if seed else -0.01)})
        hists[recipe] = {"edges": [-1.0, 0.0, 1.0], "counts": [1, 2], "zeros": 0, "total": 3}
    return StudyData("s", pd.DataFrame(trials), pd.DataFrame(epochs), pd.DataFrame(results), metric=metric,
                     histograms=hists, **kw)


def _titles(fig) -> list[str]:
    return [ax.get_title().split("\n")[0] for ax in fig.axes if ax.get_visible()]


MEANS = {"none": 0.70, "zeta": 0.80, "alpha": 0.60, "mid": 0.75}


@pytest.mark.parametrize(("higher", "expected"), [
    (True, ["zeta", "mid", "none", "alpha"]),   # accuracy: 0.80 > 0.75 > 0.70 > 0.60
    (False, ["alpha", "none", "mid", "zeta"]),  # an error (mse): the lowest first
])
def test_every_chart_lists_recipes_in_the_ranking_order(higher, expected):
    metric = "test_accuracy" if higher else "test_mse"
    data = _study(MEANS, metric=metric, higher_is_better=higher, baseline="none")
    labels = [f"{i}. {name}" for i, name in enumerate(expected, 1)]
    assert recipe_order(data) == expected
    assert [r["recipe"] for r in ranking_rows(data)] == expected
    assert _titles(plots.learning_curves(data)) == labels
    assert [t.get_text() for t in plots.generalization_gap(data).axes[0].get_xticklabels()] == labels
    assert _titles(plots.weight_histograms(data)) == labels


def test_raw_weights_put_recipes_in_ranking_order_and_other_names_after():
    data = _study(MEANS)
    data.weights = {"L1 example": np.zeros(5), "alpha": np.ones(5), "zeta": np.ones(5)}
    assert _titles(plots.weight_histograms(data)) == ["1. zeta", "4. alpha", "L1 example"]


def test_learning_curves_keep_the_best_and_the_baseline_of_16_recipes():
    # Recipes appear r15 ... r01 (worst first) and the baseline last; means: r01 best, none worst.
    means = {f"r{i:02d}": 0.9 - 0.01 * i for i in range(15, 0, -1)} | {"none": 0.5}
    data = _study(means, baseline="none")
    shown, left_out = plots.curve_recipes(data)
    best = [f"r{i:02d}" for i in range(1, 16)]
    assert shown == best[:11] + ["none"] and left_out == best[11:]
    assert _titles(plots.learning_curves(data)) == [f"{i}. r{i:02d}" for i in range(1, 12)] + ["16. none"]
    html = render_html(data)
    assert ("12 of 16 recipes drawn: the best 11 and the baseline none; not drawn: r12, r13, r14, r15."
            in html)


def test_learning_curves_of_16_recipes_with_the_baseline_among_the_best_12():
    means = {f"r{i:02d}": 0.9 - 0.01 * i for i in range(16)}
    data = _study(means, baseline="r03")
    shown, left_out = plots.curve_recipes(data)
    assert shown == [f"r{i:02d}" for i in range(12)] and left_out == ["r12", "r13", "r14", "r15"]
    assert "12 of 16 recipes drawn: the best 12; not drawn: r12, r13, r14, r15." in render_html(data)


def test_a_study_within_the_cap_says_nothing_about_left_out_recipes():
    assert "recipes drawn" not in render_html(_study(MEANS, baseline="none"))


def test_long_and_unicode_names_are_drawn_whole_and_quietly():
    """A 100-character name collapsed the gap chart (matplotlib warned) and ran over the next panel;
    a character the font lacks warned once per chart on the terminal."""
    long = "x" * 100
    data = _study({long: 0.8, "正则 λ": 0.7, "none": 0.6}, baseline="none")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for make in (plots.learning_curves, plots.generalization_gap, plots.weight_histograms):
            plots.to_data_uri(make(data))
    assert _titles(plots.learning_curves(data)) == ["1. " + "x" * 27 + "\u2026", "2. 正则 λ", "3. none"]
    assert long in render_html(data)  # the tables keep the whole name


def test_paths_show_one_score_then_weight_norm_and_zeros_in_ranking_order():
    """val_loss beside val_accuracy used to push the exact-zero fraction (what L1 is about) out."""
    data = _study({"none": 0.6, "l1": 0.7, "l2": 0.8})
    rows = [{"penalty": f"{r} ({r})", "recipe": r, "strength": s, "val_accuracy": 0.5, "val_loss": 1.0,
             "weight_norm": 1.0, "zero_fraction": 0.1} for r in ("l1", "l2") for s in (1e-3, 1e-2)]
    data.paths = pd.DataFrame(rows)
    fig = plots.regularization_paths(data)
    assert [ax.get_ylabel() for ax in fig.axes] == ["val_accuracy (higher is better)", "weight norm (L2)",
                                                    "exact-zero fraction"]
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["l2 (l2)", "l1 (l1)"]
    data.paths = data.paths.rename(columns={"val_accuracy": "val_mse"})
    data.results = data.results.rename(columns={"test_accuracy": "test_mse"})
    data.metric, data.higher_is_better = "test_mse", False
    fig = plots.regularization_paths(data)
    assert fig.axes[0].get_ylabel() == "val_mse (lower is better)"  # the selection metric, not val_loss
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["l1 (l1)", "l2 (l2)"]


def test_an_infinite_loss_is_a_gap_in_the_charts_not_a_warning():
    """A final trial whose validation loss was inf at its last epoch: numpy warned from inside matplotlib
    on the user's terminal, and the gap chart's bar was infinite."""
    data = _study({"none": 0.6, "l2": 0.7})
    data.epochs.loc[data.epochs.index[-1], "val_loss"] = float("inf")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for make in (plots.learning_curves, plots.generalization_gap):
            plots.to_data_uri(make(data))
    heights = [bar.get_height() for bar in plots.generalization_gap(data).axes[0].patches]
    # Last epoch: val 1.2 / 3, train 1 / 3; l2 (ranked first) has seed 0's gap alone, not inf.
    assert heights == [pytest.approx(0.2 / 3)] * 2
