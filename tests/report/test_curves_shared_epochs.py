"""The report's mean curves stop at the last epoch every trial reached (no survivors' mean after a stop)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from reglab.report import plots
from reglab.report.aggregate import StudyData, shared_mean_curves
from reglab.report.html import render_html


def _study() -> StudyData:
    """Recipe 'es': three trials ending at epochs 3, 5 and 8 (early stops), losses chosen by hand so that
    the later the stop, the lower the loss: past epoch 3 a survivors' mean drops where a trial leaves.
    Recipe 'bn' (BatchNorm): two trials, ending at epochs 8 and 4."""
    rows = []
    trials = []
    for tid, (recipe, last, level, norm) in enumerate([
        ("es", 3, 3.0, "none"), ("es", 5, 2.0, "none"), ("es", 8, 1.0, "none"),
        ("bn", 8, 1.0, "batch"), ("bn", 4, 2.0, "batch"),
    ]):
        trials.append({"trial_id": tid, "recipe": recipe, "seed": tid, "norm": norm})
        rows += [{"trial_id": tid, "epoch": e, "train_loss": level - 0.1 * e,
                  "val_loss": level + 0.5 - 0.05 * e} for e in range(last + 1)]
    results = pd.DataFrame({"trial_id": range(5), "test_accuracy": [0.8, 0.8, 0.8, 0.7, 0.7]})
    return StudyData("s", pd.DataFrame(trials), pd.DataFrame(rows), results, baseline="es")


def test_shared_mean_curves_end_at_the_first_stop():
    c = shared_mean_curves(_study())
    es = c[c["recipe"] == "es"]
    assert es["epoch"].tolist() == [0, 1, 2, 3] and es["trials"].tolist() == [3, 3, 3, 3]
    # By hand: mean level (3 + 2 + 1) / 3 = 2, minus 0.1 per epoch.
    np.testing.assert_allclose(es["train_loss"], [2.0, 1.9, 1.8, 1.7], rtol=1e-12)
    np.testing.assert_allclose(es["val_loss"], [2.5, 2.45, 2.4, 2.35], rtol=1e-12)
    assert c.loc[c["recipe"] == "bn", "epoch"].tolist() == [0, 1, 2, 3, 4]


def test_learning_curves_draw_the_mean_over_shared_epochs_and_each_trial_to_its_stop():
    data = _study()
    fig = plots.learning_curves(data)
    ax = next(a for a in fig.axes if a.get_title().endswith(". es"))
    lines = {line.get_label(): line for line in ax.get_lines()}
    train, val = lines["training loss (mean of 3)"], lines["validation loss (mean of 3)"]
    assert list(train.get_xdata()) == [0, 1, 2, 3]  # a survivors' mean went on to epoch 8
    np.testing.assert_allclose(train.get_ydata(), [2.0, 1.9, 1.8, 1.7], rtol=1e-12)
    np.testing.assert_allclose(val.get_ydata(), [2.5, 2.45, 2.4, 2.35], rtol=1e-12)
    # Each trial on its own, faint, to its last epoch: 3 training and 3 validation lines.
    faint = [line for line in ax.get_lines() if line.get_alpha() is not None and line.get_alpha() < 1]
    assert sorted(int(max(line.get_xdata())) for line in faint) == [3, 3, 5, 5, 8, 8]
    assert "one trial (to its stop)" in [t.get_text() for t in ax.get_legend().get_texts()]
    caption = " ".join(render_html(data).split())
    assert "drawn over the epochs all of them reached" in caption and "thin faint lines" in caption


def test_trials_that_end_together_have_no_single_trial_lines():
    data = _study()
    same = data.epochs[data.epochs["epoch"] <= 3]
    fig = plots.learning_curves(StudyData("s", data.trials, same, data.results, baseline="es"))
    for ax in fig.axes:
        assert all(line.get_alpha() is None for line in ax.get_lines())


def test_the_normalization_chart_ends_each_line_at_its_shared_epochs():
    data = _study()
    fig = plots.convergence_by_norm(data)
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    es = next(v for k, v in lines.items() if "es" in k)
    bn = next(v for k, v in lines.items() if "bn" in k)
    assert list(es.get_xdata()) == [0, 1, 2, 3] and list(bn.get_xdata()) == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(bn.get_ydata(), [1.5 - 0.1 * e for e in range(5)], rtol=1e-12)


def test_the_best_epoch_label_says_the_mean_the_line_marks():
    """Best epochs 3 and 4 average to 3.5: the label said 4 (rounded half to even) beside a line at 3.5."""
    data = _study()
    data.results = data.results.assign(best_epoch=[3, 4, 4, 2, 3])
    ax = next(a for a in plots.learning_curves(data).axes if a.get_title().endswith(". bn"))
    marker = next(line for line in ax.get_lines() if line.get_label().startswith("best / stop epoch"))
    assert marker.get_label() == "best / stop epoch (2.5)" and list(marker.get_xdata()) == [2.5, 2.5]
