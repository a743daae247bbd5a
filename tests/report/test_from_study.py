"""load_study: a real StudyStorage (SQLite) filled by hand, read back into StudyData and a report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reglab.errors import UserError
from reglab.report.aggregate import ranking
from reglab.report.from_study import load_study
from reglab.report.html import write_report
from reglab.report.summary import ranking_rows
from reglab.study.schema import StudyConfig
from reglab.study.storage import StudyStorage, default_url

TEST_ACC = {("none", 0): 0.80, ("none", 1): 0.82, ("l2", 0): 0.85, ("l2", 1): 0.88}


@pytest.fixture
def study_dir(tmp_path):
    cfg = StudyConfig.model_validate({
        "name": "tiny", "dataset": {"name": "digits"}, "seeds": [0, 1],
        "recipes": {"none": {}, "l2": {"l2": {"grid": [1e-4, 1e-3]}}},
    })
    store = StudyStorage(default_url(tmp_path))
    store.save_config("tiny", cfg.canonical_json())
    for (recipe, seed), acc in TEST_ACC.items():
        params = {"l2": 1e-3} if recipe == "l2" else {}
        tid = store.start(("final", recipe, json.dumps(params, sort_keys=True), seed, -1), epochs_budget=6)
        rows = [{"epoch": e, "train_loss": 2.0 / (e + 1), "val_loss": 2.2 / (e + 1) + 0.01 * e,
                 "train_accuracy": 0.5, "val_accuracy": 0.5} for e in range(6)]
        store.finish(tid, "done", {"test_accuracy": acc, "val_accuracy": acc - 0.01, "best_epoch": 4,
                                   "weight_norm": 3.0, "zero_fraction": 0.0}, rows, duration=0.1)
    for strength, val in ((1e-4, 0.84), (1e-3, 0.87)):
        for seed in (0, 1):
            tid = store.start(("cv", "l2", json.dumps({"l2": strength}), seed, 0), epochs_budget=6)
            store.finish(tid, "done", {"val_accuracy": val, "weight_norm": 1 / strength ** 0.1,
                                       "zero_fraction": 0.0}, [], duration=0.1)
    store.save_results({
        "study": "tiny", "metric": "val_accuracy", "test_metric": "test_accuracy", "baseline": "none",
        "seeds": [0, 1], "recipes": {
            "none": {"searched": [], "best_params": {}},
            "l2": {"searched": ["l2"], "best_params": {"l2": 1e-3}},
        },
    })
    store.close()
    return tmp_path


def test_storage_becomes_study_data(study_dir):
    data = load_study(study_dir)
    assert data.metric == "test_accuracy" and data.baseline == "none" and data.higher_is_better
    r = ranking(data).set_index("recipe")
    assert r.loc["l2", "mean"] == pytest.approx((0.85 + 0.88) / 2)
    assert r.loc["l2", "diff"] == pytest.approx(((0.85 - 0.80) + (0.88 - 0.82)) / 2)
    assert r.loc["l2", "pairs"] == 2
    assert len(data.epochs) == 4 * 6 and set(data.trials["norm"]) == {"none"}
    paths = data.paths.groupby("strength")["val_accuracy"].mean()
    np.testing.assert_allclose(paths.loc[[1e-4, 1e-3]], [0.84, 0.87])
    # MLP 64-100-100-10 on digits: L2 selects the three weight matrices, not biases.
    sel = data.selection.set_index("recipe")
    assert sel.loc["l2", "tensors"] == 3 and sel.loc["l2", "parameters"] == 64 * 100 + 100 * 100 + 100 * 10
    assert "hidden.0.linear.weight" in sel.loc["l2", "names"] and "bias" not in sel.loc["l2", "names"]
    assert sel.loc["none", "tensors"] == 0
    assert data.config["name"] == "tiny" and "torch" in data.versions


def test_report_from_storage(study_dir):
    html_path, md_path = write_report(load_study(study_dir, describe=False), study_dir / "report.html")
    page = html_path.read_text()
    assert page.count('<img class="chart"') == 3  # curves, gap, paths (no weights, one norm)
    assert "Weight histograms: the study holds no data for it." in page
    assert "| 1 | l2 | 2 |" in md_path.read_text()


def test_unfinished_or_missing_study(tmp_path):
    with pytest.raises(UserError, match="no study at"):
        load_study(tmp_path / "nope")
    store = StudyStorage(default_url(tmp_path))
    store.save_config("x", "{}")
    store.close()
    with pytest.raises(UserError, match="has no results yet; finish it with `reglab study"):
        load_study(tmp_path)


def test_report_draws_stored_histograms_and_recorded_versions(study_dir):
    """Histograms stored with the final trials appear in the report (lowest seed per recipe); the
    versions shown are the ones the study recorded, not the renderer's."""
    store = StudyStorage(default_url(study_dir))
    finals = store.trials(phase="final")
    edges = list(np.linspace(-1, 1, 82))
    for t in finals:
        counts = [0] * 81
        counts[40] = 7 if t["recipe"] == "l2" else 1
        counts[0] = t["seed"] + 1
        store.finish(t["id"], "done", t["metrics"], store.epochs(t["id"]), duration=0.1,
                     histogram={"edges": edges, "counts": counts, "zeros": counts[40], "total": sum(counts)})
    summary = store.load_results() | {"versions": {"torch": "0.0-recorded", "python": "3.0"}}
    store.save_results(summary)
    store.close()
    data = load_study(study_dir, describe=False)
    assert data.versions == {"torch": "0.0-recorded", "python": "3.0"}
    assert set(data.histograms) == {"none", "l2"} and data.histograms["l2"]["seed"] == 0
    assert data.histograms["l2"]["counts"][0] == 1 and data.histograms["l2"]["zeros"] == 7
    html_path, md_path = write_report(data, study_dir / "report.html")
    page = html_path.read_text()
    assert page.count('<img class="chart"') == 4 and "Weight histograms: the study holds" not in page
    assert "0.0-recorded" in page and "torch 0.0-recorded" in md_path.read_text()


def test_version_1_database_is_upgraded_and_newer_ones_refused(study_dir):
    """A database from before the histograms table opens (upgraded in place); an unknown version fails."""
    import sqlalchemy as sa

    url = default_url(study_dir)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE histograms"))
        conn.execute(sa.text("UPDATE schema_version SET version = 1"))
    store = StudyStorage(url)
    assert store.histograms() == {} and len(store.trials()) == 8
    store.close()
    with engine.begin() as conn:
        assert conn.execute(sa.text("SELECT version FROM schema_version")).scalar() == 2
        conn.execute(sa.text("UPDATE schema_version SET version = 99"))
    engine.dispose()
    with pytest.raises(UserError, match="has schema version 99; this reglab reads version 2"):
        StudyStorage(url)


def _add_unfinished_recipes(study_dir):
    """'boom': every candidate diverged (no final trial); 'late': a candidate chosen, its finals diverged."""
    store = StudyStorage(default_url(study_dir))
    for seed in (0, 1):
        tid = store.start(("cv", "boom", '{"lr":1000.0}', seed, 0), epochs_budget=6)
        store.finish(tid, "diverged", {"diverged_epoch": 0}, [], duration=0.1)
        tid = store.start(("final", "late", '{"lr":0.5}', seed, -1), epochs_budget=6)
        store.finish(tid, "failed" if seed else "diverged", {"reason": "x"}, [], duration=0.1)
    summary = store.load_results()
    summary["recipes"] |= {"boom": {"searched": [], "best_params": None, "status": "diverged"},
                           "late": {"searched": [], "best_params": {"lr": 0.5}, "status": "ok"}}
    store.save_results(summary)
    store.close()


def test_recipes_without_a_finished_final_trial_are_listed_last_with_the_reason(study_dir):
    """The report left them out while `reglab show` lists them as "no candidate finished"."""
    _add_unfinished_recipes(study_dir)
    data = load_study(study_dir, describe=False)
    assert data.recipes == ["none", "l2"]
    assert data.unfinished == {"boom": "no candidate finished (diverged)",
                               "late": "no final trial finished (1 diverged, 1 failed)"}
    assert ranking(data)["recipe"].tolist() == ["l2", "none", "boom", "late"]
    html_path, md_path = write_report(data, study_dir / "report.html")
    md = md_path.read_text()
    assert "| - | boom | 0 | no result: no candidate finished (diverged) | - | - | - |" in md
    assert "| - | late | 0 | no result: no final trial finished (1 diverged, 1 failed) | - | - | - |" in md
    rows = [md.index(row) for row in ("| 1 | l2 |", "| 2 | none |", "| - | boom |", "| - | late |")]
    assert rows == sorted(rows)
    page = html_path.read_text()
    assert "<td>-</td><td>boom</td><td>0</td><td>no result: no candidate finished (diverged)</td>" in page
    assert "listed last, without a rank" in page


def test_a_baseline_without_a_result_is_listed_and_said(study_dir):
    _add_unfinished_recipes(study_dir)
    store = StudyStorage(default_url(study_dir))
    store.save_results(store.load_results() | {"baseline": "boom"})
    store.close()
    data = load_study(study_dir, describe=False)
    assert data.baseline == "boom"
    rows = {r["recipe"]: r for r in ranking_rows(data)}
    assert rows["boom"]["diff"] == "baseline" and rows["l2"]["diff"] == "-"
    page = write_report(data, study_dir / "report.html")[0].read_text()
    assert "The baseline has no result, so no recipe has a Δ." in page


def test_a_study_where_every_recipe_diverged_says_why_and_not_to_rerun(tmp_path):
    """It said 'no finished final trials to report; rerun `reglab study`', which ends the same way."""
    store = StudyStorage(default_url(tmp_path))
    store.save_config("x", "{}")
    for recipe in ("none", "l2"):
        tid = store.start(("cv", recipe, "{}", 0, 0), epochs_budget=2)
        store.finish(tid, "diverged", {"diverged_epoch": 0}, [], duration=0.1)
    store.save_results({"study": "x", "metric": "val_accuracy", "test_metric": "test_accuracy",
                        "baseline": "none", "recipes": {r: {"status": "diverged", "best_params": None}
                                                        for r in ("l2", "none")}})
    store.close()
    why = r"\(l2: no candidate finished \(diverged\); none: no candidate finished \(diverged\)\)"
    with pytest.raises(UserError, match=rf"no recipe has a finished final trial {why}; rerunning it ends"):
        load_study(tmp_path)
