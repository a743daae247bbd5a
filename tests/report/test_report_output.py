"""What the report's tables say in the edge cases a user meets, and which files it may overwrite."""

from __future__ import annotations

import pandas as pd
import pytest

from reglab.errors import UserError
from reglab.report.aggregate import StudyData
from reglab.report.html import render_html, write_report
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


@pytest.mark.parametrize("taken", ["r.html", "r.md"])
def test_a_file_that_is_not_a_report_is_not_overwritten(tmp_path, taken):
    """--out README.html replaced README.md with the summary."""
    data = _data({("none", 0, -1): 0.6})
    (tmp_path / taken).write_text("my own notes\n")
    with pytest.raises(UserError, match=rf"'.*{taken}' exists and is not a reglab report, so it is left"):
        write_report(data, tmp_path / "r.html")
    assert (tmp_path / taken).read_text() == "my own notes\n"
    assert [p.name for p in tmp_path.iterdir()] == [taken]


def test_an_earlier_report_or_an_empty_file_is_replaced(tmp_path):
    first = _data({("none", 0, -1): 0.6})
    write_report(first, tmp_path / "r.html")
    second = _data({("l2", 0, -1): 0.9})
    html, md = write_report(second, tmp_path / "r.html")
    assert "| 1 | l2 |" in md.read_text() and "<td>l2</td>" in html.read_text()
    (tmp_path / "e.html").write_text("")
    write_report(second, tmp_path / "e.html")
    assert (tmp_path / "e.md").read_text().startswith("# Study report: s")


def test_an_interval_clipped_to_the_metrics_range_is_shown_as_it_is():
    """A clipped interval's half-width was shown as mean ± (high - low) / 2: '0.95 ± 0.34', i.e. [0.61, 1.29].

    l2 (0.9, 1.0): 0.95 -+ tan(0.475 pi) * 0.05 = [0.3147, 1.585], clipped to [0.3147, 1]; a loss is
    clipped only at 0.
    """
    data = _data({("none", 0, -1): 0.6, ("l2", 0, -1): 0.9, ("none", 1, -1): 0.7, ("l2", 1, -1): 1.0})
    rows = {r["recipe"]: r for r in ranking_rows(data)}
    assert (rows["l2"]["mean"], rows["l2"]["ci"]) == ("0.95 -0.64/+0.05", "[0.3147, 1]")
    loss = _data({("a", 0, -1): 0.1, ("a", 1, -1): 0.5, ("b", 0, -1): 0.29, ("b", 1, -1): 0.31},
                 metric="test_loss", higher_is_better=False)
    rows = {r["recipe"]: r for r in ranking_rows(loss)}
    # a: 0.3 -+ 12.706 * 0.2 = [-2.241, 2.841] -> [0, 2.841]; b: 0.3 -+ 0.127, inside the range: symmetric.
    assert (rows["a"]["mean"], rows["a"]["ci"]) == ("0.3 -0.3/+2.5", "[0, 2.841]")
    assert (rows["b"]["mean"], rows["b"]["ci"]) == ("0.3 ± 0.13", "[0.1729, 0.4271]")


def test_the_diagnosis_of_early_stopped_trials_uses_the_epochs_all_of_them_reached():
    """Three trials that each over-fit and stop 2 epochs after their best (later ones lower): past the first
    stop the mean was over the trials left, fell where one dropped out, and read 'under-fitting'."""
    import numpy as np

    from reglab.report.diagnose import diagnose
    from reglab.report.summary import recipe_diagnoses

    rows = []
    for tid, (best, floor) in enumerate([(5, 0.20), (9, 0.17), (12, 0.15)]):
        e = np.arange(best + 3)
        val = floor + 0.4 * np.exp(-e / 1.5) + 0.003 * np.maximum(e - best, 0) ** 2
        rows += [{"trial_id": tid, "epoch": int(i), "train_loss": t, "val_loss": v}
                 for i, t, v in zip(e, 1.2 * np.exp(-e / 1.5) + 0.01, val)]
    epochs = pd.DataFrame(rows)
    trials = pd.DataFrame({"trial_id": [0, 1, 2], "recipe": "es", "seed": [0, 1, 2]})
    data = StudyData("s", trials, epochs, pd.DataFrame({"trial_id": [0, 1, 2], "test_accuracy": 0.9}))
    # The reference: each trial alone, and the mean over epochs 0..7 (the first trial's last), by hand.
    assert {diagnose(g).verdict for _, g in epochs.groupby("trial_id")} == {"overfit"}
    common = epochs[epochs["epoch"] <= 7].groupby("epoch", as_index=False)[["train_loss", "val_loss"]].mean()
    assert diagnose(common).label == "over-fitting"
    assert recipe_diagnoses(data) == {"es": "over-fitting"}
    assert "mean curves, over the epochs all its trials reached" in " ".join(render_html(data).split())
    # A recipe whose trials share fewer than 5 epochs has no diagnosis rather than one of the survivors'.
    short = epochs[~((epochs["trial_id"] == 0) & (epochs["epoch"] > 3))]
    assert recipe_diagnoses(StudyData("s", trials, short, data.results)) == {"es": "-"}
