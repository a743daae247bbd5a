"""Shared plumbing of the ``claims_*.py`` benchmarks: arguments, seeds' statistics, worker processes, output.

Each run is seeded and single-threaded (``torch.set_num_threads(1)``), so its numbers do not depend on
``--workers``: the workers only decide how many runs go at once.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats

HERE = Path(__file__).resolve().parent
#: The Okabe-Ito colour-blind-safe palette (as reglab's report).
COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")


def parse_args(name: str, doc: str, add: Callable[[argparse.ArgumentParser], None]) -> argparse.Namespace:
    """Common options (--json, --figures, --smoke, --workers) plus the script's own (``add``).

    With ``--smoke`` and no --json / --figures, outputs go to a temporary folder, never over the
    committed results.
    """
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--json", default=None, help=f"default: benchmarks/results/{name}.json")
    parser.add_argument("--figures", default=None, help="folder for the PNGs; default: benchmarks/figures/")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks the script only")
    parser.add_argument("--workers", type=int, default=2, help="runs trained at once, one process each")
    add(parser)
    args = parser.parse_args()
    if args.workers < 1:
        parser.error(f"--workers must be an integer >= 1; got {args.workers}")
    base = Path(tempfile.gettempdir()) / "reglab-claims-smoke" if args.smoke else None
    args.json = Path(args.json or (base or HERE / "results") / f"{name}.json")
    args.figures = Path(args.figures or (base or HERE) / "figures")
    return args


def parse_parts(
    name: str,
    doc: str,
    parts: str,
    argv: Sequence[str] | None,
    report: Callable[[str, dict, Path], None],
    add: Callable[[argparse.ArgumentParser], None] | None = None,
) -> tuple[argparse.Namespace, set[str], Path, Path] | None:
    """Command line of a script with several claims (``parts``, e.g. ``"ab"``), each reported by ``report``.

    Options: --json, --figures, --smoke (outputs in a fresh temporary folder unless given),
    --only (a subset of the parts), --seeds (default 3; smoke 2), --replot (redraw from --json and
    return None: nothing to train), plus the script's own (``add``). Returns the arguments (``seeds``
    resolved), the parts to run, the JSON path and the figures folder.
    """
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    listed = ",".join(parts)
    add_arg = parser.add_argument
    add_arg("--json", default=None, help=f"default benchmarks/results/{name}.json (smoke: a temporary dir)")
    add_arg("--figures", default=None, help="default benchmarks/figures (smoke: the temporary folder)")
    add_arg("--smoke", action="store_true", help="tiny sizes: checks the script, measures nothing")
    add_arg("--only", default=listed, help=f"comma-separated subset of {listed}")
    add_arg("--seeds", type=int, default=None, help="default 3 (smoke: 2)")
    add_arg("--replot", action="store_true", help="redraw the figures and tables from --json; train nothing")
    if add is not None:
        add(parser)
    args = parser.parse_args(argv)
    only = {c.strip() for c in args.only.split(",") if c.strip()}
    if not only or only - set(parts):
        parser.error(f"--only takes a comma-separated subset of {listed}; got {args.only!r}")
    args.seeds = args.seeds or (2 if args.smoke else 3)
    if args.seeds < 1:
        parser.error(f"--seeds must be at least 1; got {args.seeds}")
    # A smoke run never overwrites the committed results unless told where to write.
    scratch = Path(tempfile.mkdtemp(prefix=f"reglab-{name}-")) if args.smoke else None
    figures = Path(args.figures) if args.figures else (scratch or HERE / "figures")
    figures.mkdir(parents=True, exist_ok=True)
    path = Path(args.json) if args.json else (scratch or HERE / "results") / f"{name}.json"
    if args.replot:
        if not path.is_file():
            parser.error(f"--replot needs an existing --json file; {path} does not exist")
        out = json.loads(path.read_text())
        for key in sorted(only & set(out)):
            report(key, out[key], figures)
        return None
    return args, only, path, figures


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval over seeds; the interval is the mean itself for one value."""
    a = np.asarray(values, dtype=float)
    m = float(a.mean())
    if len(a) < 2:
        return m, m, m
    half = float(stats.t.ppf(0.5 + level / 2, len(a) - 1) * a.std(ddof=1) / math.sqrt(len(a)))
    return m, m - half, m + half


def paired_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided paired t-test p-value of ``a - b`` (NaN with fewer than 2 pairs or no spread)."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if len(d) < 2 or float(d.std(ddof=1)) == 0.0:
        return float("nan")
    return float(stats.ttest_1samp(d, 0.0).pvalue)


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation over seeds (0 for one value)."""
    values = [float(v) for v in values]
    return float(np.mean(values)), (float(np.std(values, ddof=1)) if len(values) > 1 else 0.0)


def fmt(values: Sequence[float], digits: int = 3, scale: float = 1.0) -> str:
    """``0.123 ± 0.004`` (mean ± sd over seeds); ``-`` for no values."""
    if not values:
        return "-"
    m, s = mean_sd([scale * v for v in values])
    return f"{m:.{digits}f} ± {s:.{digits}f}"


def fmt_ci(ci: tuple[float, float, float], scale: float = 100.0, signed: bool = False) -> str:
    """``64.0 [62.1, 65.9]`` (accuracy in points by default)."""
    f = "{:+.1f}" if signed else "{:.1f}"
    m, lo, hi = (scale * v for v in ci)
    return f"{f.format(m)} [{f.format(lo)}, {f.format(hi)}]"


def md_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _single_thread() -> None:
    torch.set_num_threads(1)


def run_jobs(fn: Callable[[dict], dict], jobs: list[dict], workers: int) -> list[dict]:
    """``[fn(job) for job in jobs]``, in order, on ``workers`` spawned single-threaded processes."""
    done: list[dict] = []

    def report(result: dict) -> None:
        done.append(result)
        print(f"  [{len(done)}/{len(jobs)}] {result['label']}  {result['seconds']:.1f} s", flush=True)

    if workers == 1:
        threads = torch.get_num_threads()
        _single_thread()
        try:
            for job in jobs:
                report(fn(job))
        finally:
            torch.set_num_threads(threads)
        return done
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_single_thread) as pool:
        for result in pool.map(fn, jobs):
            report(result)
    return done


def meta(args: argparse.Namespace, started: float, threads: int = 1) -> dict:
    """What a reader needs to rerun and to judge the times: versions, settings, load, wall time."""
    return {
        "command": "python " + " ".join(sys.argv),
        "smoke": args.smoke,
        "workers": args.workers,
        "threads_per_run": threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "wall_s": round(time.perf_counter() - started, 1),
    }


def write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1))
    print(f"wrote {path}")


def pyplot():
    """matplotlib's pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    fig.savefig(path, dpi=120, bbox_inches="tight")
    print(f"wrote {path}")
    return path
