"""``reglab demo --quick`` end to end: report and summary written, verdict line printed, rerun resumes."""

from __future__ import annotations

import pytest

from reglab.cli import main
from reglab.study.storage import StudyStorage, default_url


@pytest.mark.slow
def test_quick_demo_writes_the_report_and_resumes(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out), "--quiet", "--workers", "1"]) == 0
    text = capsys.readouterr().out
    assert (out / "report.html").is_file() and (out / "report.md").is_file()
    line = next(x for x in text.splitlines() if x.startswith("best recipe: "))
    assert " vs none " in line and "test_accuracy" in line and "p = " in line and "paired by seed" in line
    store = StudyStorage(default_url(out))
    before = [(t["id"], t["status"], t["finished"]) for t in store.trials()]
    store.close()
    assert before and all(s == "done" for _, s, _ in before)
    assert main(["demo", "--quick", "--out", str(out), "--quiet", "--workers", "1"]) == 0
    store = StudyStorage(default_url(out))
    after = [(t["id"], t["status"], t["finished"]) for t in store.trials()]
    store.close()
    assert after == before  # no new trial, none rerun
    assert line in capsys.readouterr().out  # same results, same answer



@pytest.mark.parametrize("value", ["0", "-3", "two"])
def test_a_bad_workers_count_is_one_line_naming_the_option(tmp_path, capsys, value):
    """`--workers 0` reached the backend after the banner: 'The 'workers' parameter of LocalBackend ...'."""
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--quick", "--out", str(tmp_path / "d"), "--workers", value])
    out, err = capsys.readouterr()
    assert exc.value.code == 2 and out == ""
    assert err == f"reglab demo: error: argument --workers: must be an int >= 1, got {value!r} " \
                  "(see reglab demo --help)\n"
    assert not (tmp_path / "d").exists()
