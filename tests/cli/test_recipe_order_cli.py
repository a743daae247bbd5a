"""`reglab study`'s table, `reglab show` and `reglab report` list a study's recipes in one order.

They differed: the end-of-run table in config order, `reglab show` by name (the stored summary's
keys are sorted) and the report's ranking by the test mean.
"""

from __future__ import annotations

import re

import pytest
import yaml

import reglab.cli as cli
from reglab.study.export import open_storage

CONFIG = {
    "name": "order",
    "dataset": {"name": "breast_cancer"},
    "model": {"family": "mlp", "hidden": [4]},
    "training": {"epochs": 3, "batch_size": 128, "lr": 0.01},
    "seeds": [0, 1],
    "validation": {"kind": "holdout"},
    # Config order, name order and the ranking all differ: fast_lr learns most in 3 epochs, the heavy
    # penalties keep the model near a constant, absurd_lr diverges (no result).
    "recipes": {"none": {}, "l2": {"l2": 0.3}, "absurd_lr": {"lr": 1e8}, "fast_lr": {"lr": 0.1},
                "a_l2": {"l2": 1.0}},
}


@pytest.fixture(autouse=True)
def _only_these(monkeypatch):
    monkeypatch.setattr(cli, "COMMANDS", ("study", "show", "report"))


def _table_recipes(text: str) -> list[str]:
    """The first column of a rich results table."""
    return [m[1] for m in re.finditer(r"^│ (\S+) +│", text, flags=re.MULTILINE)]


def test_study_show_and_report_list_recipes_in_one_order(tmp_path, capsys):
    config = tmp_path / "order.yaml"
    config.write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    out = tmp_path / "study"
    assert cli.main(["study", str(config), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    study = _table_recipes(capsys.readouterr().out)
    assert cli.main(["show", str(out)]) == 0
    show = _table_recipes(capsys.readouterr().out)
    assert cli.main(["report", str(out), "--no-describe"]) == 0
    capsys.readouterr()
    html = (out / "report.html").read_text()
    report = re.findall(r"<tr><td>(?:\d+|-)</td><td>([^<]+)</td>", html)
    markdown = re.findall(r"^\| (?:\d+|-) \| (\S+) \|", (out / "report.md").read_text(), flags=re.MULTILINE)

    store = open_storage(out)
    summary = store.load_results()
    store.close()
    tested = {n: r["test"]["mean"] for n, r in summary["recipes"].items() if r["status"] == "ok"}
    # The documented order, by hand: best test mean first, equal means by name, recipes without a result last.
    expected = sorted(tested, key=lambda n: (-tested[n], n)) + sorted(set(CONFIG["recipes"]) - set(tested))
    assert expected[0] == "fast_lr" and expected[-1] == "absurd_lr"
    assert expected not in (list(CONFIG["recipes"]), sorted(CONFIG["recipes"]))
    assert study == show == expected
    # The report ranks the finished recipes and lists absurd_lr last, unranked, as show does (it left it out).
    assert report == markdown == expected
    row = "<td>-</td><td>absurd_lr</td><td>0</td><td>no result: no candidate finished (diverged)</td>"
    assert row in html
