"""benchmarks/population.py: a bad --device is one line naming the value; a tiny run writes its JSON."""

from __future__ import annotations

import json
import math
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


def test_smoke_run_writes_the_documented_json(tmp_path):
    """A tiny run of all three ways: the issue's keys, consistent with each other and the FLOP count."""
    out = tmp_path / "pop.json"
    result = run("--members", "2", "--epochs", "1", "--width", "8", "--json", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(out.read_text())
    keys = ("sequential_wall_s", "two_processes_wall_s", "population_wall_s", "speedup_vs_sequential",
            "speedup_vs_two_processes", "fraction_of_peak", "sustained_matmul_gflops",
            "fraction_of_sustained")
    for key in keys:
        assert isinstance(data[key], float) and data[key] > 0, key
    assert data["member_steps"] == 2 * 35  # 3,500 MNIST-1D examples, batch 100, one epoch, 2 members
    assert data["flops"] == 6 * (40 * 8 + 8 * 8 + 10 * 8) * 3500 * 1 * 2
    assert math.isclose(data["speedup_vs_sequential"], data["sequential_wall_s"] / data["population_wall_s"])
    two = data["two_processes_wall_s"]
    assert math.isclose(data["speedup_vs_two_processes"], two / data["population_wall_s"])
    rate = data["flops"] / data["population_wall_s"] / 1e9
    assert math.isclose(data["fraction_of_peak"], rate / data["matmul_peak_gflops"])
    assert math.isclose(data["fraction_of_sustained"], rate / data["sustained_matmul_gflops"])
    assert "speedup vs sequential" in result.stdout
