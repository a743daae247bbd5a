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


@pytest.mark.parametrize("given", [True, False])
def test_a_folder_holding_another_study_is_refused_with_an_option_demo_has(tmp_path, capsys, monkeypatch,
                                                                             given):
    """The line said "Use another --out directory (or --storage)": `reglab demo` has no --storage."""
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "mine" if given else tmp_path / "studies" / "demo-quick"
    out.mkdir(parents=True)
    store = StudyStorage(default_url(out))
    store.save_config("my-study", '{"name": "my-study"}')
    store.close()
    argv = ["demo", "--quick", "--quiet", "--workers", "1"] + (["--out", str(out)] if given else [])
    assert main(argv) == 2
    where = f"--out {str(out)!r}" if given else "the default study folder 'studies/demo-quick'"
    assert capsys.readouterr().err == (f"reglab demo: error: {where} holds another study ('my-study'), not "
                                       "this demo; give the demo a folder of its own with --out DIR\n")
    store = StudyStorage(default_url(out))
    assert store.trials() == [] and store.load_config() == '{"name": "my-study"}'  # left as it was
    store.close()
