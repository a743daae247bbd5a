"""Step-time overhead of reglab's penalties on an MLP 40-256-256-10 (MNIST-1D shape), Adam, batch 100.

Variants: no penalty; reglab L1, L2, ElasticNet (``penalty(model)`` added to the loss, selection
included in the timing); and the naive per-parameter loop ``sum(p.abs().sum() for p in params)``
over the same weights. Variants are interleaved within each repeat so that machine noise hits
them alike; the table reports the median ms/step and the overhead relative to no penalty.

Usage:
    python benchmarks/penalty_overhead.py --steps 50 --repeats 15 --json results.json
    python benchmarks/penalty_overhead.py --steps 2 --repeats 1   # smoke run
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable

import torch
from rich.console import Console
from rich.table import Table
from torch import nn

from reglab.models import MLP
from reglab.penalties import L1, L2, ElasticNet
from reglab.selectors import Selector


def make_variants(model: nn.Module) -> dict[str, Callable[[], torch.Tensor | float]]:
    weights = [p for _, p in Selector().select(model)]
    l1, l2, enet = L1(1e-4), L2(1e-4), ElasticNet(l1=1e-4, l2=1e-4)
    return {
        "none": lambda: 0.0,
        "reglab L1": lambda: l1(model),
        "reglab L2": lambda: l2(model),
        "reglab ElasticNet": lambda: enet(model),
        "naive L1 loop": lambda: 1e-4 * sum(p.abs().sum() for p in weights),
    }


def run(steps: int, repeats: int, seed: int) -> dict[str, list[float]]:
    torch.manual_seed(seed)
    model = MLP(40, 10, (256, 256))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(100, 40, generator=g), torch.randint(0, 10, (100,), generator=g)
    variants = make_variants(model)

    def step(penalty: Callable[[], torch.Tensor | float]) -> None:
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), y) + penalty()
        loss.backward()
        opt.step()

    for penalty in variants.values():  # warm-up: allocator, Adam state
        for _ in range(3):
            step(penalty)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, penalty in variants.items():
            start = time.perf_counter()
            for _ in range(steps):
                step(penalty)
            times[name].append((time.perf_counter() - start) / steps * 1e3)
    return times


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50, help="steps per timed block")
    parser.add_argument("--repeats", type=int, default=15, help="interleaved repeats per variant")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    times = run(args.steps, args.repeats, args.seed)
    base = statistics.median(times["none"])
    rows = {
        name: {"median_ms": statistics.median(t), "overhead_pct": 100 * (statistics.median(t) / base - 1)}
        for name, t in times.items()
    }
    table = Table(title=f"MLP 40-256-256-10, Adam, batch 100 ({args.repeats} x {args.steps} steps)")
    for col in ("variant", "median ms/step", "overhead"):
        table.add_column(col, justify="left" if col == "variant" else "right")
    for name, row in rows.items():
        table.add_row(name, f"{row['median_ms']:.3f}", f"{row['overhead_pct']:+.1f} %")
    Console().print(table)
    result = {
        "benchmark": "penalty_overhead",
        "config": vars(args),
        "torch": torch.__version__,
        "machine": platform.platform(),
        "results": rows,
        "raw_ms": times,
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
