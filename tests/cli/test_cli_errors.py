"""User mistakes found by fuzzing the CLI: one line on stderr, exit code 2, no traceback, no file changed.

Each test drives the real frame (``reglab.cli.main``) and checks the exit code, the one line and that
the files involved are left as they were.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

import pytest
import yaml

import reglab.cli as cli
from reglab.study.storage import StudyStorage, default_url

MINE = ("demo", "report", "study", "ls", "show", "export")

TINY = {
    "name": "tiny",
    "dataset": {"name": "breast_cancer"},
    "model": {"family": "mlp", "hidden": [4]},
    "training": {"epochs": 1, "batch_size": 128, "lr": 0.01},
    "seeds": [0],
    "validation": {"kind": "holdout"},
    "recipes": {"none": {}, "l2": {"l2": 1e-3}},
}


@pytest.fixture(autouse=True)
def _only_mine(monkeypatch):
    # Other subcommands are built by other engineers: test these through the frame alone.
    monkeypatch.setattr(cli, "COMMANDS", MINE)


def one_line_error(capsys, command: str) -> str:
    """The stderr of a failed command: exactly one line "reglab CMD: error: ...", no traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    assert err.startswith(f"reglab {command}: error: ") and err.count("\n") == 1, err
    return err.strip()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def foreign_db(path: Path) -> Path:
    """Another program's SQLite database (rollback journal, one table)."""
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE people (name TEXT)")
    con.execute("INSERT INTO people VALUES ('ada')")
    con.commit()
    con.close()
    return path


@pytest.fixture
def study_dir(tmp_path) -> Path:
    """A finished-looking reglab study (no training): its study.db."""
    out = tmp_path / "st"
    out.mkdir()
    store = StudyStorage(default_url(out))
    store.save_config("mini", '{"name": "mini"}')
    tid = store.start(("final", "none", "{}", 0, -1), epochs_budget=1)
    store.finish(tid, "done", {"test_accuracy": 0.5}, [{"epoch": 0, "train_loss": 1.0}], duration=0.1)
    store.close()
    return out


# -- 1. a config file that is not UTF-8 text ------------------------------------------------------
def test_config_that_is_not_utf8_names_the_file(tmp_path, capsys):
    cfg = tmp_path / "binary.yaml"
    cfg.write_bytes(b"\xff\xfe\x00bad: [\x80\x81]\n")
    assert cli.main(["study", str(cfg), "--out", str(tmp_path / "o")]) == 2
    err = one_line_error(capsys, "study")
    assert f"{cfg}: line 1 is not UTF-8 text (byte 0xff at offset 0)" in err
    assert not (tmp_path / "o").exists()


# -- 2. --out is a file ---------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["study", "demo"])
def test_out_that_is_a_file_is_refused_and_left_alone(tmp_path, capsys, command):
    afile = tmp_path / "afile"
    afile.write_text("keep me\n")
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    argv = ["study", str(cfg)] if command == "study" else ["demo", "--quick"]
    assert cli.main([*argv, "--out", str(afile), "--quiet"]) == 2
    err = one_line_error(capsys, command)
    assert f"--out '{afile}' is a file; give a folder" in err
    assert afile.read_text() == "keep me\n"
    assert cli.main([*argv, "--out", str(afile / "sub"), "--quiet"]) == 2
    assert f"the study folder cannot be created ('{afile}' is a file)" in one_line_error(capsys, command)


# -- 3. storage that cannot be opened ------------------------------------------------------------
def test_storage_that_cannot_be_opened_is_one_line(tmp_path, capsys):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    out = str(tmp_path / "o")
    assert cli.main(["study", str(cfg), "--out", out, "--storage", "sqlite:////proc/nonexistent/x.db"]) == 2
    err = one_line_error(capsys, "study")
    assert "cannot open storage 'sqlite:////proc/nonexistent/x.db': unable to open database file" in err


def test_unreachable_server_masks_the_password(tmp_path, capsys):
    pytest.importorskip("psycopg")
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    url = "postgresql+psycopg://me:s3cret@127.0.0.1:1/db?connect_timeout=5"
    assert cli.main(["study", str(cfg), "--out", str(tmp_path / "o"), "--storage", url]) == 2
    err = one_line_error(capsys, "study")
    assert "cannot open storage 'postgresql+psycopg://me:***@127.0.0.1:1/db" in err and "s3cret" not in err


# -- 5. every trial failed ------------------------------------------------------------------------
def test_a_study_whose_trials_all_failed_exits_1_with_the_first_error(tmp_path, capsys, monkeypatch):
    import reglab.study.backends as backends
    from reglab.study.execute import TrialOutcome

    def boom(config, group):
        return [TrialOutcome(s, "failed", {}, [], 0.0, f"RuntimeError: boom in {s.recipe}") for s in group]

    monkeypatch.setattr(backends, "run_group", boom)
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "o"
    assert cli.main(["study", str(cfg), "--out", str(out), "--quiet", "--workers", "1"]) == 1
    err = one_line_error(capsys, "study")
    assert err.startswith("reglab study: error: every trial failed (2 trials); first error: "
                          "RuntimeError: boom in ")
    store = StudyStorage(default_url(out), readonly=True)  # the failed trials and the summary are kept
    assert [t["status"] for t in store.trials()] == ["failed", "failed"] and store.load_results() is not None
    store.close()


# -- 7. read-only commands never create or alter a database -------------------------------------
@pytest.mark.parametrize("command", ["show", "export", "report"])
def test_read_only_commands_refuse_what_is_not_a_study_and_change_nothing(tmp_path, capsys, command):
    empty = tmp_path / "afile"
    empty.touch()
    fake = tmp_path / "fake.db"
    fake.write_bytes(b"garbage")
    other = foreign_db(tmp_path / "other.db")
    before = {p: digest(p) for p in (empty, fake, other)}
    cases = {empty: "is not a reglab study (an empty file)", fake: "is not a reglab study (not an SQLite",
             other: "is not a reglab study (its tables: people)"}
    for path, message in cases.items():
        assert cli.main([command, str(path)]) == 2
        assert f"'{path}' {message}" in one_line_error(capsys, command)
    assert {p: digest(p) for p in before} == before
    # no -wal or -shm file, no report
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "fake.db", "other.db"]
    assert cli.main([command, f"sqlite:///{tmp_path / 'missing.db'}"]) == 2
    assert "no such file" in one_line_error(capsys, command)
    assert not (tmp_path / "missing.db").exists()


def test_study_writes_beside_other_tables_but_refuses_tables_of_its_names(tmp_path, capsys):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    clashing = tmp_path / "clash.db"
    con = sqlite3.connect(clashing)
    con.execute("CREATE TABLE trials (id INTEGER)")  # another program's table of the same name
    con.commit()
    con.close()
    before = digest(clashing)
    argv = ["study", str(cfg), "--out", str(tmp_path / "o"), "--quiet", "--workers", "1"]
    assert cli.main([*argv, "--storage", f"sqlite:///{clashing}"]) == 2
    err = one_line_error(capsys, "study")
    assert f"'{clashing}' is not a reglab study but has tables of reglab's names (trials)" in err
    assert digest(clashing) == before
    con = sqlite3.connect(clashing)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # not switched to WAL
    con.close()
    other = foreign_db(tmp_path / "other.db")  # shared with another program, as Optuna allows
    assert cli.main([*argv, "--storage", f"sqlite:///{other}"]) == 0
    con = sqlite3.connect(other)
    assert con.execute("SELECT name FROM people").fetchall() == [("ada",)]
    assert con.execute("SELECT COUNT(*) FROM trials").fetchone()[0] > 0
    con.close()


# -- 8. ls lists what it can --------------------------------------------------------------------
def test_ls_flags_an_unreadable_study_and_lists_the_others(study_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "study.db").write_bytes(b"not a database")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "study.db").touch()
    assert cli.main(["ls", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "mini" in out and str(study_dir) in out
    assert "unreadable: " in out and str(tmp_path / "broken") in out
    assert (tmp_path / "empty" / "study.db").stat().st_size == 0  # not turned into a database


def test_ls_on_a_folder_it_cannot_read_is_one_line(tmp_path, capsys, monkeypatch):
    def denied(self, pattern):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "glob", denied)
    assert cli.main(["ls", str(tmp_path)]) == 2
    err = one_line_error(capsys, "ls")
    assert f"cannot list the studies under '{tmp_path}': {tmp_path}: Permission denied" in err


# -- 9, 10. output paths ------------------------------------------------------------------------
def test_export_out_that_is_a_directory_or_cannot_be_created(study_dir, tmp_path, capsys):
    assert cli.main(["export", str(study_dir), "--out", str(tmp_path)]) == 2
    assert f"--out '{tmp_path}' is a directory; give a file name" in one_line_error(capsys, "export")
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert cli.main(["export", str(study_dir), "--out", str(afile / "t.csv")]) == 2
    assert f"cannot be created: '{afile}' is a file, not a folder" in one_line_error(capsys, "export")
    assert cli.main(["export", str(study_dir), "--out", "/proc/nonexistent/t.csv"]) == 2
    err = one_line_error(capsys, "export")
    assert "--out '/proc/nonexistent/t.csv' cannot be created: its folder '/proc/nonexistent'" in err
    assert cli.main(["export", str(study_dir), "--out", str(tmp_path / "new" / "t.csv")]) == 0
    assert (tmp_path / "new" / "t.csv").read_text().startswith("phase,recipe,")


def test_report_out_that_cannot_be_created(study_dir, tmp_path, capsys):
    store = StudyStorage(default_url(study_dir))
    store.save_results({"study": "mini", "metric": "val_accuracy", "test_metric": "test_accuracy",
                        "baseline": "none", "recipes": {}})
    store.close()
    assert cli.main(["report", str(study_dir), "--no-describe", "--out", "/proc/nonexistent/r.html"]) == 2
    err = one_line_error(capsys, "report")
    assert "cannot be created: its folder '/proc/nonexistent' cannot be made (No such file" in err
    assert cli.main(["report", str(study_dir), "--no-describe", "--out", str(tmp_path)]) == 2
    assert "is a directory; give a file name" in one_line_error(capsys, "report")


def test_study_out_that_cannot_be_created(tmp_path, capsys):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    assert cli.main(["study", str(cfg), "--out", "/proc/nonexistent/o", "--quiet"]) == 2
    err = one_line_error(capsys, "study")
    assert "study folder '/proc/nonexistent/o' (out) cannot be created: '/proc/nonexistent': No such" in err


# -- 11. the frame's safety net -----------------------------------------------------------------
@pytest.mark.parametrize("exc", [
    PermissionError(13, "Permission denied", "/some/where"),
    IsADirectoryError(21, "Is a directory", "/some/where"),
    NotADirectoryError(20, "Not a directory", "/some/where"),
    FileExistsError(17, "File exists", "/some/where"),
    OSError(5, "Input/output error", "/some/where"),
])
def test_os_errors_about_a_path_are_one_line(monkeypatch, capsys, exc):
    import reglab.cli.show as show

    def fail(args):
        raise exc

    monkeypatch.setattr(show, "run", fail)
    assert cli.main(["show", "x"]) == 2
    assert one_line_error(capsys, "show") == f"reglab show: error: /some/where: {exc.strerror}"


@pytest.mark.parametrize("exc", [TypeError("bug"), AttributeError("bug"), OSError("no path")])
def test_programming_errors_keep_their_traceback(monkeypatch, exc):
    import reglab.cli.show as show

    def fail(args):
        raise exc

    monkeypatch.setattr(show, "run", fail)
    with pytest.raises(type(exc)):
        cli.main(["show", "x"])


def test_a_corrupt_study_database_is_one_line(study_dir, capsys):
    db = study_dir / "study.db"
    data = bytearray(db.read_bytes())
    data[4096:] = b"\xff" * (len(data) - 4096)  # keep the header, damage every other page
    db.write_bytes(bytes(data))
    for command in ("show", "export", "report"):
        assert cli.main([command, str(study_dir)]) == 2
        line = one_line_error(capsys, command)
        assert "database disk image is malformed" in line
        assert str(study_dir) in line
    assert os.path.getsize(db) == len(data)


def test_a_database_damaged_past_its_opening_pages_is_one_line_naming_it(study_dir, capsys):
    """Damage that SQLite meets only when a command reads on said 'the study database cannot be read:
    database disk image is malformed', naming no file."""
    db = study_dir / "study.db"
    data = bytearray(db.read_bytes())
    named = 0
    for page in range(2, len(data) // 4096):  # the damaged page the opening reads skip
        bad = bytearray(data)
        bad[page * 4096:(page + 1) * 4096] = b"\xff" * 4096
        db.write_bytes(bytes(bad))
        for command in ("show", "export"):
            if cli.main([command, str(study_dir)]) == 2:
                line = one_line_error(capsys, command)
                if "cannot be read" in line:
                    assert f"the study database at {str(study_dir)!r} cannot be read" in line
                    named += 1
            capsys.readouterr()
    db.write_bytes(bytes(data))
    assert named  # some damaged page reached the "cannot be read" line


@pytest.mark.parametrize(
    "argv,message",
    [
        (["study", "x.yaml", "--workers", "abc"],
         "reglab study: error: argument --workers: must be an int >= 1, got 'abc' (see reglab study --help)"),
        # It named LocalBackend's 'workers' parameter, which the user never saw.
        (["study", "x.yaml", "--workers", "0"],
         "reglab study: error: argument --workers: must be an int >= 1, got '0' (see reglab study --help)"),
        (["export", "s", "--format", "xml"], "reglab export: error: argument --format: invalid choice: 'xml' "
         "(choose from 'csv', 'json') (see reglab export --help)"),
        (["study"], "reglab study: error: the following arguments are required: CONFIG "
         "(see reglab study --help)"),
        # An unknown option after a subcommand points to that subcommand's help (reglab --help lacks it).
        (["study", "x.yaml", "--bogus"], "reglab study: error: unrecognized arguments: --bogus "
         "(see reglab study --help)"),
        (["export", "s", "--bogus", "1", "extra"], "reglab export: error: unrecognized arguments: --bogus 1 "
         "extra (see reglab export --help)"),
        (["--bogus", "study", "x.yaml"],
         "reglab: error: unrecognized arguments: --bogus (see reglab --help)"),
    ],
)
def test_argparse_mistakes_are_one_line_with_exit_2(argv, message, capsys, monkeypatch):
    monkeypatch.setattr(cli, "COMMANDS", ("study", "export"))
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert capsys.readouterr().err == message + "\n"  # no usage block before it


def test_ls_on_a_file_says_it_is_a_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "COMMANDS", ("ls",))
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert cli.main(["ls", str(afile)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "is a file, not a folder" in err
    assert cli.main(["ls", str(tmp_path / "missing")]) == 2
    assert "no folder" in capsys.readouterr().err
