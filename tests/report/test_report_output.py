"""What the report's tables say in the edge cases a user meets."""

from __future__ import annotations

import pandas as pd

from reglab.report.aggregate import StudyData
from reglab.report.html import render_html
from reglab.report.summary import markdown_summary, ranking_rows


def _data(acc: dict[tuple[str, int, int], float], **kw) -> StudyData:
    """``acc``: (recipe, seed, fold) -> metric, one trial each."""
    rows = [{"trial_id": i, "recipe": r, "seed": s, "fold": f} for i, (r, s, f) in enumerate(acc)]
    trials = pd.DataFrame(rows)
    epochs = pd.DataFrame({"trial_id": range(len(acc)), "epoch": 0, "train_loss": 1.0, "val_loss": 1.0})
    metric = kw.pop("metric", "test_accuracy")
    results = pd.DataFrame({"trial_id": range(len(acc)), metric: list(acc.values())})
    return StudyData("s", trials, epochs, results, metric=metric, **kw)


def test_one_seed_shows_the_mean_alone_and_no_interval():
    """It showed '0.6194 ± -' and '[-, -]'; a difference without spread '0 [-, -] (p=-, 1 pairs)'."""
    rows = ranking_rows(_data({("none", 0, -1): 0.6, ("l2", 0, -1): 0.7}, baseline="none"))
    assert [(r["recipe"], r["mean"], r["ci"], r["diff"]) for r in rows] == [
        ("l2", "0.7", "-", "0.1 (p=-, 1 pair)"), ("none", "0.6", "-", "baseline")]


def test_final_trials_pair_by_seed_alone():
    """Final trials all have fold -1: the note said 'same seed and fold' for them."""
    finals = _data({("none", 0, -1): 0.6, ("l2", 0, -1): 0.7, ("none", 1, -1): 0.5, ("l2", 1, -1): 0.8},
                   baseline="none")
    assert "(same seed) with its interval" in render_html(finals)
    folds = _data({("none", 0, 0): 0.6, ("l2", 0, 0): 0.7, ("none", 0, 1): 0.5, ("l2", 0, 1): 0.8},
                  baseline="none")
    assert "(same seed and fold) with its interval" in render_html(folds)


def test_markdown_says_which_direction_is_better():
    data = _data({("none", 0, -1): 0.6, ("l2", 0, -1): 0.4}, metric="test_mse", higher_is_better=False)
    md = markdown_summary(data)
    assert "Ranking by **test_mse** (lower is better; best first;" in md
    assert md.index("| 1 | l2 |") < md.index("| 2 | none |")
