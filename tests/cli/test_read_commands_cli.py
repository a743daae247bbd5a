"""`reglab show / export / report` as a user meets them: wrong folders, an unfinished study, one recipe,
files next to the report, exports re-read with pandas."""

from __future__ import annotations

import io
import json
import math

import pandas as pd
import pytest

import reglab.cli as cli
from reglab.study.storage import StudyStorage, default_url


@pytest.fixture(autouse=True)
def _only_these(monkeypatch):
    monkeypatch.setattr(cli, "COMMANDS", ("report", "show", "export", "ls"))


def _study(out, *, recipes=("none",), finish=True):
    """A study (no training) with one done and one diverged final trial per recipe... and its summary."""
    out.mkdir(parents=True)
    store = StudyStorage(default_url(out))
    config = {"name": "mini", "dataset": {"name": "digits"}, "seeds": [0, 1],
              "validation": {"kind": "holdout"}, "recipes": {r: {} for r in recipes}}
    store.save_config("mini", json.dumps(config))
    for r in recipes:
        tid = store.start(("final", r, "{}", 0, -1), epochs_budget=2)
        rows = [{"epoch": 0, "train_loss": 1.0, "val_loss": 1.1}, {"epoch": 1, "train_loss": 0.5,
                                                                   "val_loss": float("inf")}]
        store.finish(tid, "done", {"test_accuracy": 0.75, "best_epoch": 0}, rows, duration=0.1)
        tid = store.start(("final", r, "{}", 1, -1), epochs_budget=2)
        store.finish(tid, "diverged", {"diverged_epoch": 1}, [], duration=0.1)
    if finish:
        store.save_results({"study": "mini", "metric": "val_accuracy", "test_metric": "test_accuracy",
                            "baseline": recipes[0], "seeds": [0, 1],
                            "recipes": {r: {"status": "ok", "best_params": {}, "searched": [],
                                            "test": {"mean": 0.75, "low": math.nan, "high": math.nan, "n": 1},
                                            "path": []} for r in recipes}})
    store.close()
    return out


def _one_line(capsys, command):
    err = capsys.readouterr().err
    assert err.startswith(f"reglab {command}: error: ") and err.count("\n") == 1 and "Traceback" not in err
    return err


def test_one_recipe_is_singular(tmp_path, capsys):
    """`reglab show` said '1 recipes'."""
    assert cli.main(["show", str(_study(tmp_path / "s"))]) == 0
    assert "model None, 1 recipe, seeds [0, 1], hold-out validation" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["show", "export", "report"])
def test_the_folder_above_the_studies_points_to_ls(tmp_path, capsys, command):
    _study(tmp_path / "runs" / "s")
    assert cli.main([command, str(tmp_path / "runs")]) == 2
    err = _one_line(capsys, command)
    assert f"no study at '{tmp_path / 'runs'}': the folder holds no study.db" in err
    assert f"(reglab ls {tmp_path / 'runs'} lists the studies under a folder)" in err


def test_an_unfinished_study_names_its_own_out_folder(tmp_path, capsys):
    out = _study(tmp_path / "s", finish=False)
    assert cli.main(["report", str(out)]) == 2
    assert f"finish it with `reglab study CONFIG --out {out}`" in _one_line(capsys, "report")


def test_report_never_overwrites_a_file_it_did_not_write(tmp_path, capsys, monkeypatch):
    """`--out README.html` wrote the Markdown summary over README.md."""
    out = _study(tmp_path / "s")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "README.md").write_text("# my project\n")
    assert cli.main(["report", str(out), "--no-describe", "--out", "README.html"]) == 2
    err = _one_line(capsys, "report")
    assert "'README.md' exists and is not a reglab report, so it is left as it is" in err
    assert (tmp_path / "README.md").read_text() == "# my project\n"
    assert not (tmp_path / "README.html").exists()
    for _ in range(2):  # its own report is rewritten
        assert cli.main(["report", str(out), "--no-describe", "--out", "r/report.html"]) == 0
    assert capsys.readouterr().out.count("wrote r/report.html and r/report.md") == 2


def test_export_into_a_new_folder_reads_back_with_pandas(tmp_path, capsys):
    out = _study(tmp_path / "s", recipes=("none", "l2"))
    target = tmp_path / "new" / "deeper" / "t.csv"
    assert cli.main(["export", str(out), "--out", str(target)]) == 0
    trials = pd.read_csv(target)
    assert list(trials.columns[:6]) == ["phase", "recipe", "params", "seed", "fold", "status"]
    assert trials[["recipe", "seed", "status"]].values.tolist() == [
        ["l2", 0, "done"], ["l2", 1, "diverged"], ["none", 0, "done"], ["none", 1, "diverged"]]
    assert trials["seed"].dtype == "int64" and trials["test_accuracy"].dtype == "float64"
    accuracy = trials["test_accuracy"]
    assert accuracy[::2].tolist() == [0.75, 0.75] and accuracy[1::2].isna().all()
    assert cli.main(["export", str(out), "--epochs"]) == 0  # to standard output
    epochs = pd.read_csv(io.StringIO(capsys.readouterr().out))
    # The diverged trials stored no epochs; inf is an empty cell, read back as NaN.
    assert epochs[["recipe", "seed", "epoch"]].values.tolist() == [["l2", 0, 0], ["l2", 0, 1], ["none", 0, 0],
                                                                   ["none", 0, 1]]
    assert epochs["val_loss"][::2].tolist() == [1.1, 1.1] and epochs["val_loss"][1::2].isna().all()
    assert cli.main(["export", str(out), "--format", "json", "--epochs"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["val_loss"] for r in rows] == [1.1, None, 1.1, None]  # inf: null (strict JSON)


def test_export_says_what_fold_minus_1_is_and_the_rows_agree(tmp_path, capsys):
    """Rows with fold -1 were undocumented: they are the final trials, the only ones scored on test."""
    from reglab.study import Study

    config = {"name": "folds", "dataset": {"name": "breast_cancer"}, "model": {"hidden": [4]},
              "training": {"epochs": 2, "batch_size": 128}, "seeds": [0, 1],
              "validation": {"kind": "kfold", "folds": 2}, "budget": {"halving": True, "eta": 2},
              "recipes": {"none": {}, "l2": {"l2": {"grid": [1e-3, 1e-1]}}}}
    Study(config).run(out=tmp_path / "s", progress=False)
    assert cli.main(["export", str(tmp_path / "s")]) == 0
    rows = pd.read_csv(io.StringIO(capsys.readouterr().out))
    folds = {phase: sorted(set(group["fold"])) for phase, group in rows.groupby("phase")}
    assert folds == {"rung0": [0], "cv": [0, 1], "final": [-1]}
    tested = rows["test_accuracy"].notna()
    assert (tested == (rows["fold"] == -1)).all() and tested.sum() == 2 * 2  # 2 recipes x 2 seeds
    with pytest.raises(SystemExit) as exit_:
        cli.main(["export", "--help"])
    assert exit_.value.code == 0
    helped = " ".join(capsys.readouterr().out.split())
    assert ("fold is a selection trial's validation fold (0 .. k-1 with kfold, 0 with holdout); -1 marks a "
            "final trial: refit on the training split and the only one scored on the test split") in helped
