"""`reglab show / export / ls` on a finished study in a folder the user cannot write (a read-only mount,
an archived or a colleague's study): they read it as it is and change nothing.

A WAL database's reader creates a ``-shm`` file beside it, so SQLite refused such a study with
"attempt to write a readonly database". Root writes anywhere, so as root the commands run as nobody.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from reglab.study.export import export, open_storage
from reglab.study.storage import StudyStorage, default_url

ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534
MAIN = "import sys; from reglab.cli import main; sys.exit(main(sys.argv[1:]))"


def _finished_study(out: Path) -> None:
    out.mkdir()
    store = StudyStorage(default_url(out))  # the writer: WAL mode, as reglab study leaves it
    store.save_config("ro", json.dumps({"name": "ro"}))
    for seed, acc in ((0, 0.75), (1, 0.5)):
        tid = store.start(("final", "none", "{}", seed, -1), epochs_budget=1)
        store.finish(tid, "done", {"test_accuracy": acc}, [{"epoch": 0, "train_loss": 1.0}], duration=0.1)
    store.save_results({"study": "ro", "metric": "val_accuracy", "test_metric": "test_accuracy",
                        "baseline": "none", "seeds": [0, 1], "recipes": {"none": {
                            "status": "ok", "best_params": {}, "searched": [],
                            "test": {"mean": 0.625, "low": 0.0, "high": 1.0, "n": 2}}}})
    store.close()


def _reglab(*args: str, home: Path) -> subprocess.CompletedProcess:
    """``reglab ARGS`` in a fresh interpreter, as a user without write access to the study."""
    # Root writes anywhere: it reads as nobody, who cannot (util-linux's setpriv).
    user = [] if os.geteuid() != 0 else ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}",
                                         "--clear-groups"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(home), "MPLCONFIGDIR": str(home)}
    return subprocess.run([*user, sys.executable, "-c", MAIN, *args], cwd=home, env=env,
                          capture_output=True, text=True, timeout=120)


def _skip_unless_another_user_can_run_reglab(home: Path) -> None:
    try:
        probe = _reglab("--version", home=home)
    except FileNotFoundError:  # no setpriv
        pytest.skip("running as root without setpriv: no user here lacks write access")
    if probe.returncode != 0:
        pytest.skip(f"cannot run reglab as another user here: {probe.stderr.strip()[-200:]}")


@pytest.fixture
def shared_tmp():
    """A folder outside pytest's private tmp_path, so that nobody can reach it; writable back at the end."""
    base = Path(tempfile.mkdtemp(prefix="reglab-ro-"))
    base.chmod(0o755)
    yield base
    for p in [base, *base.rglob("*")]:
        p.chmod(p.stat().st_mode | stat.S_IWUSR)
    subprocess.run(["rm", "-rf", str(base)], check=False)


def test_show_export_and_ls_read_a_study_in_a_folder_they_cannot_write(shared_tmp):
    study = shared_tmp / "studies" / "ro"
    study.parent.mkdir()
    _finished_study(study)
    home = shared_tmp / "home"
    home.mkdir(mode=0o777)
    home.chmod(0o777)
    _skip_unless_another_user_can_run_reglab(home)
    store = open_storage(study)
    try:
        expected = export(store, "csv")
    finally:
        store.close()
    for p in (study, study / "study.db", study.parent):
        p.chmod(0o555 if p.is_dir() else 0o444)
    before = {p.name: p.read_bytes() for p in study.iterdir()}
    assert sorted(before) == ["study.db"]

    exported = _reglab("export", str(study), "--format", "csv", home=home)
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.rstrip("\n") == expected.rstrip("\n") and "0.75" in exported.stdout
    shown = _reglab("show", str(study), home=home)
    assert shown.returncode == 0, shown.stderr
    assert "0.625" in shown.stdout
    listed = _reglab("ls", str(study.parent), home=home)
    assert listed.returncode == 0, listed.stderr
    assert "unreadable" not in listed.stdout and "complete" in listed.stdout
    assert {p.name: p.read_bytes() for p in study.iterdir()} == before  # nothing created or changed


@pytest.mark.parametrize("case", ["new study, folder read-only", "resume, folder read-only",
                                  "resume, database file read-only"])
def test_study_into_a_folder_it_cannot_write_says_which_path_in_one_line(shared_tmp, case):
    """SQLite's "attempt to write a readonly database" (or "unable to open database file") named no path."""
    home = shared_tmp / "home"
    home.mkdir(mode=0o777)
    home.chmod(0o777)
    config = shared_tmp / "tiny.yaml"
    config.write_text("name: tiny\ndataset: {name: breast_cancer}\nmodel: {family: mlp, hidden: [4]}\n"
                      "training: {epochs: 1}\nseeds: [0]\nvalidation: {kind: holdout}\nrecipes: {none: {}}\n")
    config.chmod(0o644)
    study = shared_tmp / "study"
    study.mkdir()
    if case != "new study, folder read-only":
        StudyStorage(default_url(study)).close()  # an empty study database, as a crash right away leaves
        (study / "study.db").chmod(0o666)  # writable by all: only what the case makes read-only is
    if case == "resume, database file read-only":
        study.chmod(0o777)
        (study / "study.db").chmod(0o444)
        expected = (f"reglab study: error: the study database {str(study / 'study.db')!r} is not writable "
                    "(read-only for this user); make it writable or use another study folder\n")
    else:
        study.chmod(0o555)
        expected = (f"reglab study: error: the study folder {str(study)!r} is not writable (the study "
                    "database study.db and its journal are written there); make it writable or use another "
                    "study folder\n")
    before = sorted(p.name for p in study.iterdir())
    _skip_unless_another_user_can_run_reglab(home)
    ran = _reglab("study", str(config), "--out", str(study), "--quiet", "--workers", "1", home=home)
    assert (ran.returncode, ran.stderr) == (2, expected)
    assert sorted(p.name for p in study.iterdir()) == before
