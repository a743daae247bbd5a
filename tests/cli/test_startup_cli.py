"""The `reglab` command starts light (no torch or matplotlib for `--help`, `ls`, `show`, `export`), and
Ctrl-C while it starts ends it with one line and exit 130, never a traceback.

Run in fresh interpreters: what a command imports only shows in a process that has imported nothing yet.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from reglab.study.storage import StudyStorage, default_url

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "matplotlib", "scipy", "sklearn", "pandas", "optuna", "pydantic")
# Python's default SIGINT handler: a process started by a background job inherits SIGINT ignored.
PRELUDE = "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler)\n"


def _python(code: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", PRELUDE + code, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _study(out: Path) -> Path:
    """A finished one-recipe study, written directly (no training)."""
    out.mkdir(parents=True)
    store = StudyStorage(default_url(out))
    store.save_config("light", json.dumps({"name": "light", "dataset": {"name": "digits"}, "seeds": [0],
                                           "validation": {"kind": "holdout"}, "recipes": {"none": {}}}))
    tid = store.start(("final", "none", "{}", 0, -1), epochs_budget=1)
    store.finish(tid, "done", {"test_accuracy": 0.75, "best_epoch": 0}, [{"epoch": 0, "train_loss": 1.0}],
                 duration=0.1)
    ci = {"mean": 0.75, "low": float("nan"), "high": float("nan"), "n": 1}
    store.save_results({"study": "light", "metric": "val_accuracy", "test_metric": "test_accuracy",
                        "baseline": "none", "seeds": [0],
                        "recipes": {"none": {"status": "ok", "best_params": {}, "searched": [], "test": ci,
                                             "path": []}}})
    store.close()
    return out


def test_light_commands_import_no_torch_nor_matplotlib(tmp_path):
    study = _study(tmp_path / "studies" / "light")
    code = (
        "import contextlib, io, json\n"
        "import reglab\n"
        f"bare = sorted(m for m in {HEAVY!r} if m in sys.modules)\n"  # `import reglab` alone
        "from reglab.cli import main\n"
        "codes = []\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        "        main(['--help'])\n"
        "    except SystemExit as e:\n"
        "        codes.append(e.code)\n"
        "    codes += [main(['ls', sys.argv[1]]), main(['show', sys.argv[2], '--paths']),\n"
        "              main(['export', sys.argv[2], '--format', 'json'])]\n"
        f"print(json.dumps([bare, codes, sorted(m for m in {HEAVY!r} if m in sys.modules)]))\n"
    )
    proc = _python(code, str(tmp_path / "studies"), str(study))
    assert proc.returncode == 0, proc.stderr
    bare, codes, loaded = json.loads(proc.stdout)
    assert (bare, codes, loaded) == ([], [0, 0, 0, 0], [])


def test_the_report_command_still_imports_what_it_needs_when_it_runs(tmp_path):
    # The parser no longer imports reglab.report: its modules load in run(), and the command still works.
    study = _study(tmp_path / "s")
    code = "from reglab.cli import main; sys.exit(main(['report', sys.argv[1], '--no-describe']))"
    proc = _python(code, str(study))
    assert proc.returncode == 0 and (study / "report.html").is_file(), proc.stderr


def test_diagnose_task_choices_are_the_diagnosis_tasks():
    from reglab.cli.diagnose import TASKS as CLI_TASKS
    from reglab.report.diagnose import TASKS

    assert CLI_TASKS == TASKS


def test_lazy_public_api_resolves_every_name():
    code = (
        "import reglab, reglab.study\n"
        "assert 'torch' not in sys.modules\n"
        "ns = {}\n"
        "exec('from reglab import *', ns)\n"
        "exec('from reglab.study import *', ns)\n"
        "missing = [n for n in reglab.__all__ + reglab.study.__all__ if n not in ns]\n"
        "undir = [n for n in reglab.__all__ if n not in dir(reglab)]\n"
        "undir += [n for n in reglab.study.__all__ if n not in dir(reglab.study)]\n"
        "from reglab import L2, MLP, Trainer, conventions\n"
        "from reglab.penalties import L2 as L2_\n"
        "from reglab.train import Trainer as T_\n"
        "print(missing, undir, L2 is L2_, Trainer is T_, conventions.__name__, reglab.Study.__module__)\n"
    )
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["[]", "[]", "True", "True", "reglab.conventions", "reglab.study.runner"]
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        import reglab

        reglab.nope  # noqa: B018


# Ctrl-C delivered exactly when a module is about to be imported: a finder sends the process SIGINT as
# the import starts, so the KeyboardInterrupt rises from inside the import machinery, as a real Ctrl-C
# during start-up does, at a moment that does not depend on the machine's speed.
HOOK = """
import os, importlib.abc
class _CtrlC(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == sys.argv[1]:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)
        return None
sys.meta_path.insert(0, _CtrlC())
from reglab.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "tiny.yaml"
    path.write_text(yaml.safe_dump({
        "name": "tiny", "dataset": {"name": "breast_cancer"}, "model": {"family": "mlp", "hidden": [4]},
        "training": {"epochs": 400, "batch_size": 128, "lr": 0.01}, "seeds": [0, 1],
        "validation": {"kind": "holdout"}, "recipes": {"none": {}, "l2": {"l2": 1e-3}}}))
    return path


@pytest.mark.parametrize("module, command", [
    ("reglab.cli.demo", "study"),  # while the parser is built
    ("rich", "study"),
    ("reglab.study.runner", "study"),
    ("torch", "study"),
    ("scipy", "study"),
    ("sklearn", "study"),
    ("pydantic", "study"),
    ("optuna", "study"),
    ("sqlalchemy", "ls"),
    ("matplotlib", "report"),
])
def test_ctrl_c_while_a_command_imports_its_modules_is_one_line_and_exit_130(tmp_path, tiny_config,
                                                                             module, command):
    argv = {"study": ["study", str(tiny_config), "--out", str(tmp_path / "s"), "--quiet", "--workers", "1"],
            "ls": ["ls", str(tmp_path)],
            "report": ["report", str(_study(tmp_path / "r")), "--no-describe"]}[command]
    proc = _python(HOOK, module, *argv)
    assert proc.returncode == 130, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1, proc.stderr
    # While the parser is built: "reglab: interrupted"; once the command runs, its own line (a study's says
    # what it kept, ls and report only that they stopped).
    expected = {"study": r"reglab(: interrupted| study: interrupted; finished (results|trials) are kept.*)",
                "ls": r"reglab ls: interrupted", "report": r"reglab report: interrupted"}[command]
    assert re.fullmatch(expected + "\n", proc.stderr), proc.stderr


def test_ctrl_c_at_a_few_moments_of_python_m_reglab_study(tmp_path, tiny_config):
    """A real Ctrl-C to `python -m reglab study`, from its first fraction of a second to its first trials."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    for i, delay in enumerate((0.1, 0.3, 0.5, 0.8, 1.2, 1.8, 3.0)):
        out = tmp_path / f"s{i}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "reglab", "study", str(tiny_config), "--out", str(out), "--quiet",
             "--workers", "1"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        # 400 epochs: not finished after 3 s. -SIGINT was seen (the one line printed, then the process ended
        # by SIGINT: CPython re-sends it at exit when it recorded a KeyboardInterrupt as unhandled); a shell
        # reads 130 for both.
        assert proc.returncode in (130, -signal.SIGINT), (delay, err)
        assert "Traceback" not in err and len(err.splitlines()) == 1, (delay, err)


@pytest.mark.parametrize("handler", ["reglab", "python"])
def test_ctrl_c_inside_an_import_that_a_library_swallows_still_ends_the_command(tmp_path, handler):
    """A library that imports inside `try: ... except BaseException` swallowed the KeyboardInterrupt of a
    Ctrl-C during its import: the command ran on to its end (seen: exit 0, no line). reglab's handler ends
    the process in the import itself."""
    (tmp_path / "lib_that_swallows.py").write_text(
        "try:\n    import lib_inner\nexcept BaseException:\n    pass\nprint('ran on')\n")
    (tmp_path / "lib_inner.py").write_text(
        "import os, signal, time\nos.kill(os.getpid(), signal.SIGINT)\ntime.sleep(0.5)\n")
    install = ("import reglab.cli as c; signal.signal(signal.SIGINT, c._on_sigint)\n" if handler == "reglab"
               else "")
    proc = _python(f"sys.path.insert(0, {str(tmp_path)!r})\n{install}import lib_that_swallows\n")
    if handler == "python":  # what happened before: the Ctrl-C is lost
        assert (proc.returncode, proc.stdout) == (0, "ran on\n")
    else:
        assert (proc.returncode, proc.stdout, proc.stderr) == (130, "", "reglab: interrupted\n")
    code = ("import reglab.cli as c\ntry:\n    c._on_sigint(signal.SIGINT, sys._getframe())\n"
            "except KeyboardInterrupt:\n    print('raised')\n")
    assert _python(code).stdout == "raised\n"  # outside an import: Python's own KeyboardInterrupt
