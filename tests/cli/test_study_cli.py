"""`reglab study / ls / show / export` through the CLI frame, and the kill -9 acceptance test."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import reglab.cli as cli
from reglab.study import Study

MINE = ("study", "ls", "show", "export")

TINY = {
    "name": "tiny",
    "dataset": {"name": "breast_cancer"},
    "model": {"family": "mlp", "hidden": [4]},
    "training": {"epochs": 2, "batch_size": 128, "lr": 0.01},
    "seeds": [0, 1],
    "validation": {"kind": "kfold", "folds": 2},
    "recipes": {"none": {}, "l2": {"l2": {"grid": [1e-3, 1e-1]}}, "absurd_lr": {"lr": 1e8}},
}


@pytest.fixture(autouse=True)
def _only_mine(monkeypatch):
    # Other subcommands are built by other engineers: test these through the frame alone.
    monkeypatch.setattr(cli, "COMMANDS", MINE)


def write(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


def test_user_mistakes_are_one_line_and_exit_2(tmp_path, capsys):
    assert cli.main(["study", "mnist1dd"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Did you mean 'mnist1d'?" in err and err.startswith("reglab study: error:")
    bad = write(tmp_path / "bad.yaml", {**TINY, "recipes": {"none": {}, "l1": {"l1": 1e-3, "prox": True}}})
    assert cli.main(["study", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "unknown key 'recipes.l1.prox'. Did you mean 'proximal'?" in err
    ok = write(tmp_path / "ok.yaml", TINY)
    assert cli.main(["study", str(ok), "--out", str(tmp_path / "o2"), "--address", "127.0.0.1:1"]) == 2
    assert "--address is for the ray backend" in capsys.readouterr().err
    assert not (tmp_path / "o2").exists()  # refused before anything was written
    assert cli.main(["show", str(tmp_path / "nothing")]) == 2
    assert "no study at" in capsys.readouterr().err


def test_study_ls_show_export(tmp_path, capsys):
    cfg = write(tmp_path / "tiny.yaml", TINY)
    out = tmp_path / "studies" / "tiny"
    assert cli.main(["study", str(cfg), "--out", str(out), "--quiet", "--workers", "1"]) == 0
    text = capsys.readouterr().out
    assert "study tiny" in text and "absurd_lr" in text and "no candidate finished (diverged)" in text
    assert cli.main(["ls", str(tmp_path / "studies")]) == 0
    listing = capsys.readouterr().out
    assert "tiny" in listing and "complete" in listing
    assert cli.main(["show", str(out), "--paths"]) == 0
    shown = capsys.readouterr().out
    assert "path of l2" in shown and "trials: 4 diverged, 16 done" in shown
    assert cli.main(["export", str(out), "--format", "json", "--out", str(tmp_path / "t.json")]) == 0
    rows = json.loads((tmp_path / "t.json").read_text())
    assert len(rows) == 4 * 2 * 2 + 2 * 2  # cv: 4 candidates x 2 seeds x 2 folds; final: 2 recipes x 2 seeds
    keys = [(r["phase"], r["recipe"], r["params"], r["seed"], r["fold"]) for r in rows]
    order = {"cv": 0, "final": 1}
    assert keys == sorted(keys, key=lambda k: (order[k[0]], *k[1:]))
    assert {r["status"] for r in rows if r["recipe"] == "absurd_lr"} == {"diverged"}
    assert cli.main(["export", str(out / "study.db"), "--format", "csv"]) == 0
    csv_lines = capsys.readouterr().out.strip().splitlines()
    assert csv_lines[0].startswith("phase,recipe,params,seed,fold,status,")
    assert len(csv_lines) == len(rows) + 1


def test_ls_and_show_tell_an_interrupted_trial_from_a_running_one(tmp_path, capsys):
    """After a Ctrl-C, ls and show said 'running' for trials no process runs (they rerun on resume)."""
    from reglab.study.storage import StudyStorage, default_url

    cfg = write(tmp_path / "tiny.yaml", TINY)
    out = tmp_path / "studies" / "tiny"
    assert cli.main(["study", str(cfg), "--out", str(out), "--quiet", "--workers", "1"]) == 0
    capsys.readouterr()
    with sqlite3.connect(out / "study.db") as con:  # as a process killed mid-trial leaves it
        con.execute("UPDATE trials SET status = 'running' WHERE id IN (1, 2)")
    assert cli.main(["show", str(out)]) == 0
    assert "trials: 2 diverged, 16 done, 2 interrupted" in capsys.readouterr().out
    assert cli.main(["ls", str(tmp_path / "studies")]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "tiny" in line)
    assert [c.strip() for c in row.strip("│ ").split("│")][5:7] == ["0", "2"]  # running, interrupted
    store = StudyStorage(default_url(out))  # a live process (this one) takes trial 1 over
    try:
        key = next((t["phase"], t["recipe"], t["params_json"], t["seed"], t["fold"])
                   for t in store.trials() if t["id"] == 1)
        store.start(key, epochs_budget=1)
        assert cli.main(["show", str(out)]) == 0
        assert "trials: 2 diverged, 16 done, 1 interrupted, 1 running" in capsys.readouterr().out
    finally:
        store.close()


def _cli_process(config: Path, out: Path, workers: int = 1, own_group: bool = False,
                 sigint: str = "default_int_handler") -> subprocess.Popen:
    # SIGINT gets Python's default handler back: a process started in the background by a non-interactive
    # shell (as CI may run us) inherits SIGINT ignored, and Ctrl-C would never reach the study.
    # sigint="SIG_IGN" runs the study as such a background job.
    code = (f"import signal, sys, reglab.cli as c; signal.signal(signal.SIGINT, signal.{sigint}); "
            "c.COMMANDS = ('study',); a = sys.argv; "
            "sys.exit(c.main(['study', a[1], '--out', a[2], '--quiet', '--workers', a[3]]))")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    # own_group: its own process group, as a terminal's, so a Ctrl-C reaches the driver and its pool alike.
    return subprocess.Popen([sys.executable, "-c", code, str(config), str(out), str(workers)], env=env,
                            start_new_session=own_group, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_kill_9_at_random_moments_then_resume_equals_an_uninterrupted_run(tmp_path):
    config = {**TINY, "training": {"epochs": 6, "batch_size": 32, "lr": 0.01},
              "recipes": {"none": {}, "l2": {"l2": {"grid": [1e-3, 1e-1]}}, "absurd_lr": {"lr": 1e8},
                          "es": {"early_stopping": {"patience": 2}, "dropout": 0.2}}}
    path = write(tmp_path / "kill.yaml", config)
    out, db = tmp_path / "killed", tmp_path / "killed" / "study.db"
    rng = random.Random(1234)
    kills = 0
    for _ in range(8):
        proc = _cli_process(path, out)
        deadline = time.monotonic() + 60
        while not db.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.05, 0.6))
        if proc.poll() is not None:
            break  # finished on its own before the kill
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
        con = sqlite3.connect(db)
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        con.close()
        if kills == 5:
            break
    assert kills >= 5
    proc = _cli_process(path, out)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    ref = tmp_path / "ref"
    Study(config).run(out=ref, progress=False)
    from reglab.study.export import export, open_storage

    killed, clean = open_storage(out), open_storage(ref)
    assert export(killed, "csv") == export(clean, "csv")
    assert killed.integrity_check() == "ok"
    # No finished trial was repeated: every stored trial finished once; reruns only for interrupted ones.
    assert len(killed.trials()) == len(clean.trials())
    killed.close()
    clean.close()


def test_ctrl_c_keeps_finished_trials_and_says_how_to_resume(tmp_path):
    # Long trials (about 10 s each), interrupted once the first has finished: however fast the machine,
    # Ctrl-C lands mid-study.
    config = {**TINY, "training": {"epochs": 400, "batch_size": 16, "lr": 0.01},
              "validation": {"kind": "holdout"}, "population": False}
    path = write(tmp_path / "c.yaml", config)
    out = tmp_path / "c"
    proc = _cli_process(path, out)

    def finished() -> int:
        try:
            con = sqlite3.connect(out / "study.db", timeout=5)
            try:
                done = "SELECT COUNT(*) FROM trials WHERE status IN ('done', 'diverged', 'failed')"
                return con.execute(done).fetchone()[0]
            finally:
                con.close()
        except sqlite3.Error:  # not created yet
            return 0

    deadline = time.monotonic() + 120
    while finished() == 0 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    seen = finished()
    assert seen > 0 and proc.poll() is None, "the study should still run after its first trial"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    message = err.decode()
    assert f"interrupted; finished trials are kept in {out}" in message and "again to resume" in message
    con = sqlite3.connect(out / "study.db")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    assert finished() >= seen  # nothing finished was lost


def test_study_ends_with_the_verdict_line_computed_from_the_stored_trials(tmp_path, capsys):
    """The verdict's numbers against scipy on the exported per-seed test accuracies (paired by seed)."""
    import math

    import numpy as np
    from scipy import stats

    config = {**TINY, "seeds": [0, 1, 2], "training": {"epochs": 3, "batch_size": 64, "lr": 0.01},
              "recipes": {"none": {}, "l2": {"l2": {"grid": [1e-3, 1e-1]}}, "dropout": {"dropout": 0.5}}}
    out = tmp_path / "v"
    assert cli.main(["study", str(write(tmp_path / "v.yaml", config)), "--out", str(out), "--quiet",
                     "--workers", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == f"study stored in {out}"
    verdict = lines[-2]
    from reglab.study.export import export, open_storage

    store = open_storage(out)
    rows = json.loads(export(store, "json"))
    store.close()
    test = {}
    for r in rows:
        if r["phase"] == "final":
            test.setdefault(r["recipe"], {})[r["seed"]] = r["test_accuracy"]
    means = {name: np.mean(list(by_seed.values())) for name, by_seed in test.items() if name != "none"}
    best = verdict.split(" ")[2]
    assert means[best] == max(means.values())  # ties: the verdict names one of the best
    a = np.array([test[best][s] for s in (0, 1, 2)])
    b = np.array([test["none"][s] for s in (0, 1, 2)])
    d = a - b
    half = stats.t.ppf(0.975, 2) * d.std(ddof=1) / math.sqrt(3)
    assert verdict.startswith(f"best recipe: {best} (")
    assert f"test_accuracy {a.mean():.3f} [" in verdict and f"vs none {b.mean():.3f} [" in verdict
    if d.std(ddof=1) > 0:
        p = stats.ttest_rel(a, b).pvalue
        low, high = d.mean() - half, d.mean() + half
        assert f"difference {d.mean():+.3f} [{low:+.3f}, {high:+.3f}], p = {p:.2g}" in verdict
        excludes = low > 0 or high < 0
        assert verdict.endswith("than none (CI excludes 0)" if excludes else "from none (CI includes 0)")
    assert "(paired by seed, 3 pairs)" in verdict


def test_recipe_names_with_rich_markup_are_shown_as_written(tmp_path, capsys):
    """'[/]' raised rich's MarkupError after the study had run; '[red]x' was shown as a red 'x'."""
    config = {**TINY, "seeds": [0], "validation": {"kind": "holdout"}, "baseline": "[red]x",
              "training": {**TINY["training"], "epochs": 1}, "recipes": {"[red]x": {}, "[/]": {"l2": 1e-3}}}
    out = tmp_path / "st"
    path = write(tmp_path / "c.yaml", config)
    assert cli.main(["study", str(path), "--out", str(out), "--workers", "1"]) == 0
    text = capsys.readouterr().out
    assert "[red]x" in text and "[/]" in text
    assert cli.main(["show", str(out)]) == 0
    text = capsys.readouterr().out
    assert "[red]x" in text and "[/]" in text


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _pool_study(tmp_path: Path, epochs: int, sigint: str = "default_int_handler"
                ) -> tuple[subprocess.Popen, Path]:
    """A 2-worker study in its own process group (as a terminal runs it), once its database exists."""
    config = {**TINY, "training": {"epochs": epochs, "batch_size": 16, "lr": 0.01},
              "validation": {"kind": "holdout"}, "population": False}
    out = tmp_path / "p"
    proc = _cli_process(write(tmp_path / "p.yaml", config), out, workers=2, own_group=True, sigint=sigint)
    deadline = time.monotonic() + 120
    while not (out / "study.db").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    return proc, out


@pytest.mark.parametrize("how", ["ctrl-c", "kill -9"])
def test_a_pool_study_leaves_no_worker_behind_and_no_traceback(tmp_path, how):
    """Ctrl-C printed a KeyboardInterrupt traceback per pool worker; after kill -9 of the driver its
    workers trained on forever, orphaned."""
    proc, _ = _pool_study(tmp_path, epochs=400)
    time.sleep(3)  # the workers have started their first trials
    assert proc.poll() is None
    if how == "ctrl-c":
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130 and "Traceback" not in err.decode(), err.decode()
    else:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 15
    while _group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    alive = _group_alive(proc.pid)
    if alive:
        os.killpg(proc.pid, signal.SIGKILL)
    assert not alive, "pool workers outlived the driver"


def test_ctrl_c_while_pool_workers_start_ends_the_study_at_once(tmp_path):
    """Workers still starting could not be interrupted (so that none prints a traceback), and the driver
    waited for their whole groups before exiting (10 s and more; a second Ctrl-C hung in the exit
    handler). They are now ended at once: only the driver writes results."""
    proc, _ = _pool_study(tmp_path, epochs=20000)
    assert proc.poll() is None
    os.killpg(proc.pid, signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=60)  # the groups themselves run for many minutes
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130 and "Traceback" not in err.decode(), err.decode()


def test_a_background_study_that_ignores_ctrl_c_keeps_its_workers_alive(tmp_path):
    """A driver started with SIGINT ignored (a script's `&` job) gave its workers a handler that ended
    them on SIGINT: the pool broke under the driver, which died with a BrokenProcessPool traceback."""
    proc, _ = _pool_study(tmp_path, epochs=60, sigint="SIG_IGN")
    time.sleep(3)  # the workers have started and train
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0 and "Traceback" not in err.decode(), err.decode()
