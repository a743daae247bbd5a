"""The HTML page and Markdown summary as text: self-contained, escaped, sections present or noted."""

from __future__ import annotations

import base64
import hashlib
import html
import re

import numpy as np
import pandas as pd
import pytest

from reglab.report import plots
from reglab.report.aggregate import StudyData
from reglab.report.html import render_html
from reglab.report.summary import markdown_summary

from ._synthetic import XSS, synthetic_study


@pytest.fixture(scope="module")
def page():
    return render_html(synthetic_study(seeds=2, epochs=12))


def test_self_contained(page):
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    assert page.count('src="data:image/png;base64,') == 5
    assert "<link" not in page and "@import" not in page


def test_user_strings_are_escaped(page):
    assert XSS not in page  # neither in the ranking, the selection table, the charts' alt text nor config
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 3
    assert page.count("<script>") == 1


def test_csp_hash_matches_the_one_script(page):
    script = re.search(r"<script>(.*?)</script>", page, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in page and "default-src 'none'" in page


def test_markdown_escapes_html_and_pipes():
    data = synthetic_study(seeds=2, epochs=8)
    data.trials.loc[data.trials["recipe"] == "none", "recipe"] = "a|b"
    data.baseline = "a|b"
    data.config["note"] = "``` <b>x</b>"
    md = markdown_summary(data)
    outside, fenced = md.split("````json")
    assert "&lt;script&gt;" in outside and XSS not in outside
    assert fenced.rstrip().endswith("````") and "``` <b>x</b>" in fenced
    assert "a\\|b" in md and "| a|b |" not in md


def test_missing_data_leaves_charts_out():
    t = pd.DataFrame({"trial_id": [0, 1], "recipe": ["none", "l2"], "seed": [0, 0]})
    e = pd.DataFrame({"trial_id": [0, 1], "epoch": [0, 0], "train_loss": [1.0, 1.0], "val_loss": [1.0, 1.1]})
    r = pd.DataFrame({"trial_id": [0, 1], "test_accuracy": [0.6, 0.7]})
    d = StudyData("s", t, e, r)
    assert plots.regularization_paths(d) is None and plots.weight_histograms(d) is None
    assert plots.convergence_by_norm(d) is None
    html = render_html(d)
    assert "Regularization paths: the study holds no data for it." in html
    assert "The study did not record which tensors were regularized." in html


def test_mathtext_is_off_for_recipe_names():
    # A name with dollars would raise or render as math if mathtext parsed it.
    t = pd.DataFrame({"trial_id": [0], "recipe": ["cost $5 a_b^c$"], "seed": [0]})
    e = pd.DataFrame({"trial_id": [0] * 3, "epoch": [0, 1, 2], "train_loss": [1, 0.5, 0.4],
                      "val_loss": [1, 0.6, 0.5]})
    fig = plots.learning_curves(StudyData("s", t, e, pd.DataFrame({"trial_id": [0], "test_accuracy": [1.0]})))
    title = fig.axes[0].get_title()
    assert title == "1. cost $5 a_b^c$" and not fig.axes[0].title.get_parse_math()
    assert plots.to_data_uri(fig).startswith("data:image/png;base64,")


def test_a_recipe_whose_validation_loss_is_nan_throughout_still_reports():
    """Every run of 'l2' diverged at once: no best epoch to mark, its curve and the others still drawn."""
    t = pd.DataFrame({"trial_id": [0, 1], "recipe": ["none", "l2"], "seed": [0, 0]})
    e = pd.DataFrame({"trial_id": [0, 0, 1, 1], "epoch": [0, 1, 0, 1], "train_loss": [1.0, 0.8, 1.0, 0.9],
                      "val_loss": [1.0, 0.9, float("nan"), float("nan")]})
    r = pd.DataFrame({"trial_id": [0, 1], "test_accuracy": [0.6, 0.5]})
    d = StudyData("s", t, e, r)
    assert plots._best_epochs(d) == {"none": 1.0}
    assert plots.learning_curves(d) is not None
    assert "<svg" in render_html(d) or "data:image" in render_html(d)


def test_the_normalization_chart_compares_the_baseline_with_each_norm_recipe():
    """The 'none' line averaged every recipe without a norm layer (L1, L2 whose penalty raises the training
    loss, dropout), so BatchNorm was compared with a mix of regularizers, not with the same net without it."""
    data = synthetic_study(seeds=2, epochs=12, evil_name=False)
    fig = plots.convergence_by_norm(data)
    train_ax, val_ax = fig.axes
    lines = {line.get_label(): line for line in train_ax.get_lines()}
    rank = plots.recipe_labels(data)  # "<rank>. <name>", ranking order
    norm = {"batchnorm": "batch", "layernorm": "layer"}
    base = f"{rank['none']} (no norm)"
    assert list(lines) == [base] + [f"{label} ({norm[r]})" for r, label in rank.items() if r in norm]
    assert [ax.get_ylabel() for ax in fig.axes] == ["loss (mean over trials)"] * 2
    joined = data.epochs.merge(data.trials, on="trial_id")
    by_hand = joined[joined["recipe"] == "none"].groupby("epoch")["train_loss"].mean().to_numpy()
    np.testing.assert_allclose(lines[base].get_ydata(), by_hand, rtol=1e-12)
    mixed = joined[joined["norm"] == "none"].groupby("epoch")["train_loss"].mean().to_numpy()
    assert mixed[-1] > 1.1 * by_hand[-1]  # what the old line drew: the penalties' share, not convergence
    bn = joined[joined["recipe"] == "batchnorm"].groupby("epoch")["val_loss"].mean().to_numpy()
    bn_line = next(line for line in val_ax.get_lines() if line.get_label().endswith("batchnorm (batch)"))
    np.testing.assert_allclose(bn_line.get_ydata(), bn, rtol=1e-12)
    # Without a baseline, the line without a norm layer says how many recipes it averages.
    data.baseline = None
    assert list(plots.norm_lines(data))[0] == "no norm (mean of 8 recipes)"


@pytest.mark.parametrize(("metric", "higher", "note"), [
    ("test_accuracy", True, "clipped to test_accuracy's range [0, 1]"),
    ("test_mse", False, "clipped to test_mse's range ≥ 0"),
    ("test_r2", True, "not clipped (test_r2 has no bounded range)"),
])
def test_the_ranking_note_states_the_studys_own_metric_range(metric, higher, note):
    """A regression report ranked by test_mse said its intervals were clipped to "an accuracy's [0, 1], a
    loss's >= 0", naming neither its metric nor the range its intervals were clipped to."""
    t = pd.DataFrame({"trial_id": [0, 1], "recipe": ["none", "l2"], "seed": [0, 0]})
    e = pd.DataFrame({"trial_id": [0, 1], "epoch": [0, 0], "train_loss": [1.0, 1.0], "val_loss": [1.0, 1.1]})
    r = pd.DataFrame({"trial_id": [0, 1], metric: [0.6, 0.7]})
    page = html.unescape(render_html(StudyData("s", t, e, r, metric=metric, higher_is_better=higher)))
    assert note in page and "an accuracy's [0, 1], a loss's" not in page
