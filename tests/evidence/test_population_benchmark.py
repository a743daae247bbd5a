"""benchmarks/population.py refuses a bad --device with one line naming the value, before any training."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "population.py"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "device,message",
    [
        ("gpu", "--device: 'gpu' is not a torch device; use cpu or cuda"),
        ("meta", "--device: 'meta' is not supported; use cpu or cuda"),
        pytest.param(
            "cuda",
            "--device cuda: no CUDA device is available here",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present"),
        ),
    ],
)
def test_bad_device_is_one_line_and_no_traceback(device, message):
    result = run("--members", "2", "--epochs", "1", "--width", "8", "--device", device)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"population.py: error: {message}"
