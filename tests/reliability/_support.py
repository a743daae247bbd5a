"""Helpers of the reliability suite: a tiny study config, the CLI in-process, a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import reglab.cli as cli

ROOT = Path(__file__).resolve().parents[2]

# breast_cancer, a 4-unit MLP, 2 epochs: every trial well under a second.
TINY: dict[str, Any] = {
    "name": "tiny",
    "dataset": {"name": "breast_cancer"},
    "model": {"family": "mlp", "hidden": [4]},
    "training": {"epochs": 2, "batch_size": 128, "lr": 0.01},
    "seeds": [0, 1],
    "validation": {"kind": "holdout"},
    "recipes": {"none": {}, "l2": {"l2": {"grid": [1e-3, 1e-1]}}},
}


def write_yaml(path: Path, config: Any) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


def run_cli(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    """``reglab ARGV`` in this process: (exit code, stdout, stderr)."""
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code if isinstance(exc.code, int) else 2
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def python(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (one torch thread), from the repository root."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True,
                          timeout=timeout)
