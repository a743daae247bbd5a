"""Step-time overhead of reglab's penalties on an MLP 40-256-256-10 (MNIST-1D shape), Adam, batch 100.

Variants, for L1, L2 and ElasticNet:

* ``reglab X (in the loss)``: ``loss = data_loss + penalty(model)``, then ``backward()``;
  autograd differentiates the penalty (selection included in the timing).
* ``reglab X (gradient path, as the Trainer uses)``: ``data_loss.backward()``, then
  ``penalty.add_grad_(model)``, plus ``float(penalty(model))`` once every 35 steps: the value the
  Trainer logs once per epoch for the History (an MNIST-1D epoch is 35 steps of 100), amortized.

plus no penalty, and the naive loop ``1e-4 * sum(p.abs().sum() for p in weights)`` added to the
loss over the same weights. Variants are interleaved within each repeat, in an order rotated each
repeat, so machine noise and warm caches hit them alike; the table reports the median ms/step and
the overhead relative to no penalty. The gradient-path variants are checked against the in-the-loss
ones before timing (float64: L1 and L2 bit for bit, ElasticNet's fused path to a few ulps).

On a loaded machine the step-to-step spread (+-20 %) hides differences of a few percent, so a
second table times the penalty's own work in isolation, many calls per block, interleaved the same
way: ``penalty(model).backward()`` (the in-the-loss extra: graph, backward, accumulation) and
``penalty.add_grad_(model)`` with the amortized value (the Trainer's extra), each as a
percentage of the median no-penalty step measured in the same run.

Usage:
    python benchmarks/penalty_overhead.py                    # full: 40 repeats x 50 steps
    python benchmarks/penalty_overhead.py --steps 2 --repeats 1 --json ''   # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable

import torch
from rich.console import Console
from rich.table import Table
from torch import nn

from reglab.models import MLP
from reglab.penalties import L1, L2, ElasticNet, Penalty
from reglab.selectors import Selector

Step = Callable[[], None]
STEPS_PER_EPOCH = 35  # MNIST-1D: 3,500 training examples in batches of 100
DEFAULT_JSON = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "penalty_overhead.json")


def _penalties() -> dict[str, Penalty]:
    return {"L1": L1(1e-4), "L2": L2(1e-4), "ElasticNet": ElasticNet(l1=1e-4, l2=1e-4)}


def make_steps(
    model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor
) -> dict[str, Step]:
    """One training step per variant, each a closure over the same model, optimizer and batch."""
    weights = [p for _, p in Selector().select(model)]

    def in_loss(penalty: Callable[[], torch.Tensor | float]) -> Step:
        def step() -> None:
            opt.zero_grad(set_to_none=True)
            (nn.functional.cross_entropy(model(x), y) + penalty()).backward()
            opt.step()

        return step

    def gradient_path(penalty: Penalty) -> Step:
        log = _once_per_epoch(penalty, model)

        def step() -> None:
            opt.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            penalty.add_grad_(model)
            opt.step()
            log()

        return step

    steps: dict[str, Step] = {"none": in_loss(lambda: 0.0)}
    for name, penalty in _penalties().items():
        steps[f"reglab {name} (in the loss)"] = in_loss(lambda p=penalty: p(model))
        steps[f"reglab {name} (gradient path, as the Trainer uses)"] = gradient_path(penalty)
    steps["naive L1 loop (in the loss)"] = in_loss(lambda: 1e-4 * sum(p.abs().sum() for p in weights))
    return steps


def _once_per_epoch(penalty: Penalty, model: nn.Module) -> Step:
    """A call that evaluates ``penalty(model)`` every ``STEPS_PER_EPOCH``-th time, as the Trainer logs it."""
    calls = [0]

    def log() -> None:
        calls[0] += 1
        if calls[0] % STEPS_PER_EPOCH == 0:
            with torch.no_grad():
                float(penalty(model))

    return log


def check_gradients() -> None:
    """Refuse to time a gradient path whose gradients differ from autograd's (float64).

    L1 and L2 must match bit for bit; ElasticNet's fused path to a few ulps (see its ``add_grad_``).
    """
    torch.manual_seed(0)
    model = MLP(40, 10, (256, 256)).double()
    x, y = torch.randn(100, 40, dtype=torch.float64), torch.randint(0, 10, (100,))
    for name, penalty in _penalties().items():
        model.zero_grad(set_to_none=True)
        (nn.functional.cross_entropy(model(x), y) + penalty(model)).backward()
        want = [p.grad.clone() for p in model.parameters()]
        model.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        penalty.add_grad_(model)
        ulps = 0 if name != "ElasticNet" else 4
        for p, w in zip(model.parameters(), want):
            bound = ulps * torch.finfo(w.dtype).eps * (w.abs() + 2 * 1e-4 * (1 + p.detach().abs()))
            if not bool(((p.grad - w).abs() <= bound).all()):
                raise SystemExit(f"{name}: add_grad_ differs from autograd; not timing it")


def make_work(model: nn.Module) -> dict[str, Step]:
    """The penalty's own extra work per step, without the rest of the step."""

    def in_loss(penalty: Penalty) -> Step:
        return lambda: penalty(model).backward()

    def gradient_path(penalty: Penalty) -> Step:
        log = _once_per_epoch(penalty, model)

        def work() -> None:
            penalty.add_grad_(model)
            log()

        return work

    work: dict[str, Step] = {}
    for name, penalty in _penalties().items():
        work[f"reglab {name} (in the loss)"] = in_loss(penalty)
        work[f"reglab {name} (gradient path, as the Trainer uses)"] = gradient_path(penalty)
    return work


def run(steps: int, repeats: int, seed: int) -> dict[str, list[float]]:
    torch.manual_seed(seed)
    model = MLP(40, 10, (256, 256))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(100, 40, generator=g), torch.randint(0, 10, (100,), generator=g)
    variants = make_steps(model, opt, x, y)
    variants.update({f"work: {k}": v for k, v in make_work(model).items()})
    names = list(variants)
    for step in variants.values():  # warm-up: allocator, Adam state, selection caches
        for _ in range(3):
            step()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            step = variants[name]
            calls = steps * 10 if name.startswith("work: ") else steps  # tiny: more calls per block
            start = time.perf_counter()
            for _ in range(calls):
                step()
            times[name].append((time.perf_counter() - start) / calls * 1e3)
    return times


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50, help="steps per timed block")
    parser.add_argument("--repeats", type=int, default=40, help="interleaved repeats per variant")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=DEFAULT_JSON, help="write the results here ('' for none)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    check_gradients()
    times = run(args.steps, args.repeats, args.seed)
    base = statistics.median(times["none"])
    rows = {
        name: {"median_ms": statistics.median(t), "overhead_pct": 100 * (statistics.median(t) / base - 1)}
        for name, t in times.items()
        if not name.startswith("work: ")
    }
    work = {
        name[len("work: ") :]: {
            "median_ms": statistics.median(t),
            "pct_of_step": 100 * statistics.median(t) / base,
        }
        for name, t in times.items()
        if name.startswith("work: ")
    }
    table = Table(title=f"MLP 40-256-256-10, Adam, batch 100 ({args.repeats} x {args.steps} steps, medians)")
    for col in ("variant", "median ms/step", "overhead"):
        table.add_column(col, justify="left" if col == "variant" else "right")
    for name, row in rows.items():
        table.add_row(name, f"{row['median_ms']:.3f}", f"{row['overhead_pct']:+.1f} %")
    console = Console()
    console.print(table)
    table = Table(title="The penalty's own work per step, in isolation (% of the no-penalty step)")
    for col in ("variant", "median ms", "% of step"):
        table.add_column(col, justify="left" if col == "variant" else "right")
    for name, row in work.items():
        table.add_row(name, f"{row['median_ms']:.3f}", f"{row['pct_of_step']:.1f} %")
    console.print(table)
    result = {
        "benchmark": "penalty_overhead",
        "config": vars(args),
        "torch": torch.__version__,
        "machine": platform.platform(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "results": rows,
        "work_alone": work,
        "raw_ms": times,
    }
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
