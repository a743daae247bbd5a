"""benchmarks/peers.py without its optional skorch: a one-line error, no traceback."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(importlib.util.find_spec("skorch") is not None, reason="skorch is installed")
def test_peers_without_skorch_says_how_to_install_it(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "peers.py"), "--smoke", "--json",
                           str(tmp_path / "p.json")], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip() == "peers.py: needs skorch (the `bench` extra): pip install -e '.[bench]'"
