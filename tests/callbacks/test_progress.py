"""ProgressBar: plain lines off a terminal, a rich bar on one, nothing when off."""

import io
import subprocess
import sys

import torch

from reglab.callbacks import ProgressBar
from reglab.callbacks.progress import format_metrics
from reglab.models import MLP
from reglab.train import Trainer


def _fit(progress, callbacks=()):
    torch.manual_seed(0)
    x, y = torch.randn(20, 3), torch.randint(0, 2, (20,))
    Trainer(MLP(3, 2, hidden=()), epochs=2, progress=progress, callbacks=list(callbacks)).fit((x, y), (x, y))


def test_plain_prints_one_line_per_epoch():
    out = io.StringIO()
    _fit("off", [ProgressBar("plain", file=out)])
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch 1/2  train_loss ") and "val_accuracy" in lines[1]


def test_auto_is_plain_off_a_terminal_and_rich_draws_a_bar():
    out = io.StringIO()
    _fit("off", [ProgressBar("auto", file=out)])
    assert out.getvalue().count("\n") == 2
    out = io.StringIO()
    _fit("off", [ProgressBar("rich", file=out)])
    assert "\x1b[" in out.getvalue() and "2/2" in out.getvalue()


def test_off_is_silent(capsys):
    _fit("off")
    assert capsys.readouterr().out == ""
    _fit("plain")
    assert capsys.readouterr().out.count("epoch ") == 2


def test_format_metrics_skips_nan_and_unlisted():
    assert format_metrics({"train_loss": 0.25, "val_loss": float("nan"), "time": 3}) == "train_loss 0.25"


def test_file_must_be_writable():
    import pytest

    from reglab._validation import InvalidParameterError

    with pytest.raises(InvalidParameterError, match=r"'file' parameter of ProgressBar must be None"):
        ProgressBar("plain", file="out.txt")


def test_importing_reglab_and_showing_progress_leave_pythons_random_state_alone():
    # rich.style draws from Python's global `random` when imported; reglab imports rich lazily, keeping it.
    code = (
        "import random; random.seed(0); a = random.getstate(); import reglab; assert random.getstate() == a; "
        "import torch; from reglab import Trainer, MLP; "
        "x, y = torch.randn(4, 2), torch.tensor([0, 1, 0, 1]); "
        "Trainer(MLP(2, 2, hidden=(2,)), epochs=1, progress='plain').fit((x, y)); "
        "assert random.getstate() == a, 'random state changed'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_plain_lines_name_the_restart_only_when_there_are_several():
    torch.manual_seed(0)
    x, y = torch.randn(20, 3), torch.randint(0, 2, (20,))
    out = io.StringIO()
    Trainer(MLP(3, 2, hidden=()), epochs=2, restarts=3, progress="off",
            callbacks=[ProgressBar("plain", file=out)]).fit((x, y), (x, y))
    heads = [line.split("  train_loss")[0] for line in out.getvalue().splitlines()]
    assert heads == [f"restart {r}/3  epoch {e}/2" for r in (1, 2, 3) for e in (1, 2)]
    out = io.StringIO()
    Trainer(MLP(3, 2, hidden=()), epochs=2, restarts=1, progress="off",
            callbacks=[ProgressBar("plain", file=out)]).fit((x, y), (x, y))
    heads = [line.split("  train_loss")[0] for line in out.getvalue().splitlines()]
    assert heads == ["epoch 1/2", "epoch 2/2"]
