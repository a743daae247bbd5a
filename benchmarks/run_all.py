"""Run reglab's benchmark set one after another (``make bench``): about 20-30 minutes on 2 CPU cores.

Each benchmark runs in its own process (so one's threads, caches and failures do not touch the next),
writes its JSON under the results directory, and its printed table is saved next to it as ``.txt``.
A summary with each command, its wall time and exit status goes to ``run_all.json``. The wall time
of ``reglab demo`` (the README's first command, run in a fresh temporary study directory so nothing
is resumed) is measured the same way. The commands are listed in ``benchmarks/RESULTS.md``.

Usage:
    python benchmarks/run_all.py                   # the full set, into benchmarks/results/
    python benchmarks/run_all.py --only sklearn_reproduction,demo_quick
    python benchmarks/run_all.py --smoke --out /tmp/bench   # tiny sizes: checks the harness only
    python benchmarks/run_all.py --list            # print the commands, run nothing
    python benchmarks/run_all.py --all             # also the extended evidence (13-35 more minutes)
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results"


@dataclass(frozen=True)
class Bench:
    """One benchmark: ``name``, its command (``{out}`` is the results directory), and its smoke version."""

    name: str
    argv: tuple[str, ...]
    smoke: tuple[str, ...]
    minutes: float  # expected wall time of the full version on a quiet 2-core machine
    extended: bool = False  # only with --all: together the set would pass the 30-minute budget


def _script(name: str) -> str:
    return str(HERE / name)


def benchmarks() -> list[Bench]:
    """The set that fits about 30 minutes on 2 cores, in the order it runs (cheapest evidence first)."""
    py, reglab = sys.executable, str(Path(sys.executable).with_name("reglab"))
    pop = _script("population.py")
    return [
        Bench("sklearn_reproduction",
              (py, _script("sklearn_reproduction.py"), "--json", "{out}/sklearn_reproduction.json"),
              (py, _script("sklearn_reproduction.py"), "--alphas", "5",
               "--json", "{out}/sklearn_reproduction.json"),
              1.5),
        Bench("penalty_overhead",
              (py, _script("penalty_overhead.py"), "--steps", "50", "--repeats", "15",
               "--json", "{out}/penalty_overhead.json"),
              (py, _script("penalty_overhead.py"), "--steps", "2", "--repeats", "1",
               "--json", "{out}/penalty_overhead.json"),
              1.0),
        Bench("population_k32_w256_e20",
              (py, pop, "--members", "32", "--epochs", "20", "--width", "256",
               "--json", "{out}/population_k32_w256_e20.json"),
              (py, pop, "--members", "2", "--epochs", "1", "--width", "16",
               "--json", "{out}/population_k32_w256_e20.json"),
              4.0),
        # The targets' two stress points, at sizes that fit the budget: many members, wide members.
        Bench("population_k128_w256_e3",
              (py, pop, "--members", "128", "--epochs", "3", "--width", "256",
               "--json", "{out}/population_k128_w256_e3.json"),
              (py, pop, "--members", "4", "--epochs", "1", "--width", "16",
               "--json", "{out}/population_k128_w256_e3.json"),
              4.0),
        Bench("population_k8_w1024_e5",
              (py, pop, "--members", "8", "--epochs", "5", "--width", "1024",
               "--json", "{out}/population_k8_w1024_e5.json"),
              (py, pop, "--members", "2", "--epochs", "1", "--width", "32",
               "--json", "{out}/population_k8_w1024_e5.json"),
              4.0),
        Bench("mnist1d_paper",
              (py, _script("mnist1d_paper.py"), "--seeds", "3", "--out", "{out}/mnist1d_paper.json"),
              (py, _script("mnist1d_paper.py"), "--seeds", "1", "--epochs", "1", "--out",
               "{out}/mnist1d_paper.json"),
              6.0),
        Bench("demo_quick", (reglab, "demo", "--quick", "--quiet", "--out", "{tmp}/demo-quick"),
              (reglab, "demo", "--quick", "--quiet", "--out", "{tmp}/demo-quick"), 1.0),
        Bench("demo", (reglab, "demo", "--quiet", "--out", "{tmp}/demo"),
              (reglab, "demo", "--help"), 3.0),  # smoke: the full demo has no smaller size
        *_claims(py, ("claims_weights", 1.5, False), ("claims_dropout_bn", 3.0, False),
                 ("claims_early_stopping", 3.0, True), ("claims_augmentation", 2.5, True),
                 ("claims_bn_dropout", 3.0, True)),
        Bench("mnist1d_best_recipe",
              (py, _script("mnist1d_paper.py"), "--recipes", "best", "--seeds", "3",
               "--out", "{out}/mnist1d_best_recipe.json",
               "--reference", str(DEFAULT_OUT / "mnist1d_paper.json")),
              (py, _script("mnist1d_paper.py"), "--recipes", "best", "--seeds", "1", "--epochs", "1",
               "--out", "{out}/mnist1d_best_recipe.json"),
              12.0, extended=True),
        Bench("dropout_table9",
              (py, _script("dropout_table9.py"), "--json", "{out}/dropout_table9.json"),
              (py, _script("dropout_table9.py"), "--smoke", "--json", "{out}/dropout_table9.json"),
              7.0, extended=True),
        Bench("peers",  # needs the `bench` extra (skorch); `make bench` installs it
              (py, _script("peers.py"), "--json", "{out}/peers.json"),
              (py, _script("peers.py"), "--smoke", "--json", "{out}/peers.json"),
              4.5, extended=True),
    ]


def _claims(py: str, *specs: tuple[str, float, bool]) -> list[Bench]:
    """The seeds'-claims scripts share one command line: ``--json``, ``--figures``, ``--smoke``."""
    out = []
    for name, minutes, extended in specs:
        argv = (py, _script(f"{name}.py"), "--json", f"{{out}}/{name}.json", "--figures", "{figures}")
        out.append(Bench(name, argv, (*argv, "--smoke"), minutes, extended=extended))
    return out


def run_one(bench: Bench, out: Path, *, smoke: bool) -> dict:
    """Run ``bench`` in a subprocess; save its output as ``<name>.txt``; return what happened."""
    with tempfile.TemporaryDirectory(prefix=f"reglab-bench-{bench.name}-") as tmp:
        # Figures of the default run land beside RESULTS.md (which shows them); elsewhere under DIR.
        figures = HERE / "figures" if out == DEFAULT_OUT else out / "figures"
        argv = [a.format(out=out, tmp=tmp, figures=figures) for a in (bench.smoke if smoke else bench.argv)]
        print(f"\n=== {bench.name}: {' '.join(argv)}", flush=True)
        start = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=HERE.parent)
        wall = time.perf_counter() - start
    text = proc.stdout + (f"\n--- stderr ---\n{proc.stderr}" if proc.returncode else "")
    (out / f"{bench.name}.txt").write_text(text)
    print(proc.stdout.rstrip())
    if proc.returncode:
        print(f"!!! {bench.name} exited with {proc.returncode}; last lines of stderr:\n"
              + "\n".join(proc.stderr.strip().splitlines()[-5:]), flush=True)
    json_args = [a for a in argv if a.endswith(".json")]
    return {
        "name": bench.name,
        "command": " ".join(argv),
        "wall_s": round(wall, 2),
        "returncode": proc.returncode,
        "json": json_args[0] if json_args else None,
        "table": str(out / f"{bench.name}.txt"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="results directory")
    parser.add_argument("--only", default=None, help="comma-separated names (see --list)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: check that every script runs")
    parser.add_argument("--list", action="store_true", help="print the benchmarks and their commands")
    parser.add_argument("--all", action="store_true",
                        help="also the extended evidence (13-35 more minutes, by CPU): see RESULTS.md")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    todo = benchmarks()
    names = [b.name for b in todo]
    if not (args.all or args.only):
        todo = [b for b in todo if not b.extended]
    if args.only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in wanted if n not in names]
        if unknown:
            parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(names)}")
        todo = [b for b in todo if b.name in wanted]
    if args.list:
        for b in todo:
            tag = " [--all]" if b.extended else ""
            print(f"{b.name} (~{b.minutes:g} min){tag}: {' '.join(b.argv)}")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    print(f"{len(todo)} benchmarks, about {sum(b.minutes for b in todo):g} minutes on a quiet 2-core machine"
          + (" (smoke sizes: much less)" if args.smoke else ""))
    runs = [run_one(b, out, smoke=args.smoke) for b in todo]
    summary = {
        "smoke": args.smoke,
        "runs": runs,
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
    }
    summary_path = out / ("run_all_smoke.json" if args.smoke else "run_all.json")
    summary_path.write_text(json.dumps(summary, indent=2))
    print(f"\n{'benchmark':<28}{'wall s':>9}  status  table / JSON")
    for r in runs:
        status = "ok" if r["returncode"] == 0 else f"rc={r['returncode']}"
        where = r["table"] + (f" / {r['json']}" if r["json"] else "")
        print(f"{r['name']:<28}{r['wall_s']:>9.1f}  {status:<6}  {where}")
    print(f"summary (commands, wall times, exit codes): {summary_path}")
    return 0 if all(r["returncode"] == 0 for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
