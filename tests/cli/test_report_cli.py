"""`reglab report` through the real CLI frame: writes HTML + Markdown; bad input exits 2 with one line."""

from __future__ import annotations

import json

import pytest

import reglab.cli as cli
from reglab.study.storage import StudyStorage, default_url


@pytest.fixture(autouse=True)
def _only_report(monkeypatch):
    monkeypatch.setattr(cli, "COMMANDS", ("report",))


@pytest.fixture
def study_dir(tmp_path):
    store = StudyStorage(default_url(tmp_path))
    store.save_config("mini", json.dumps({"name": "mini"}))
    for recipe, accs in (("none", (0.7, 0.72)), ("dropout", (0.75, 0.74))):
        for seed, acc in enumerate(accs):
            tid = store.start(("final", recipe, "{}", seed, -1), epochs_budget=5)
            rows = [{"epoch": e, "train_loss": 1 / (e + 1), "val_loss": 1.1 / (e + 1)} for e in range(5)]
            store.finish(tid, "done", {"test_accuracy": acc}, rows, duration=0.1)
    store.save_results({"study": "mini", "metric": "val_accuracy", "test_metric": "test_accuracy",
                        "baseline": "none", "recipes": {}})
    store.close()
    return tmp_path


def test_writes_html_and_markdown(study_dir, capsys):
    assert cli.main(["report", str(study_dir), "--no-describe"]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {study_dir / 'report.html'} and ")
    md = (study_dir / "report.md").read_text()
    assert "| 1 | dropout | 2 | 0.745 ± " in md
    html = (study_dir / "report.html").read_text()
    assert "<!DOCTYPE html>" in html and "http://" not in html and "https://" not in html


@pytest.mark.parametrize(
    ("make_argv", "message"),
    [
        (lambda d: ["report", str(d / "missing")], "no study at"),
        (lambda d: ["report", str(d), "--no-describe", "--out", str(d / "r.txt")], "must end in .html"),
        (lambda d: ["report", str(d), "--no-describe", "--out", str(d / "study.db" / "r.html")],
         "/study.db/r.html' cannot be created: '"),
    ],
)
def test_user_errors_exit_2_with_one_line(study_dir, capsys, make_argv, message):
    assert cli.main(make_argv(study_dir)) == 2
    err = capsys.readouterr().err
    assert err.startswith("reglab report: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_unfinished_study_exits_2(tmp_path, capsys):
    store = StudyStorage(default_url(tmp_path))
    store.save_config("x", "{}")
    store.close()
    assert cli.main(["report", str(tmp_path)]) == 2
    assert "has no results yet" in capsys.readouterr().err
