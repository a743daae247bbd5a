"""Srivastava et al. (JMLR 2014) Table 9 on MNIST-1D: L2 vs max-norm vs dropout + L2 vs dropout + max-norm.

The paper trains one fixed network on MNIST with each regularizer (strengths tuned on validation)
and finds, by test error: dropout + max-norm < dropout + L2 < max-norm < L2. Here: one fixed MLP
40-256-256-10 (ReLU, no residual) on MNIST-1D (3,500 train / 500 validation / 1,000 test),
Adam lr 3e-3, batch 100, a fixed number of epochs (no early stopping), every member trained at
once by ``reglab.population.Population`` (per-member ``l2``, ``max_norm``, ``dropout``, ``seed``;
each seed sets the member's initialization and batch order, so configurations are paired by seed).

Selection: for each method, the grid point (L2 strength, max-norm radius) with the highest
final-epoch validation accuracy averaged over the seeds; its members' test accuracies give the
mean and 95 % t-interval over seeds, and paired differences between methods (by seed).
Dropout uses the paper's hidden-unit rate 0.5 (the population applies it after every hidden
activation; the paper also drops 20 % of the inputs, which this engine does not express).

Usage:
    python benchmarks/dropout_table9.py --json benchmarks/results/dropout_table9.json
    python benchmarks/dropout_table9.py --smoke --json /tmp/table9.json   # tiny sizes: checks the script
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from reglab.data import load
from reglab.models import MLP
from reglab.population import Population
from reglab.study.stats import mean_ci, paired_comparison

L2_GRID = [3e-4, 1e-3, 3e-3]  # Keras convention: l2 * sum(w^2) added to the mean loss
MAX_NORM_GRID = [1.0, 2.0, 4.0]  # radius of each unit's incoming weight vector
DROPOUT = 0.5
PAPER_ORDER = ["dropout + max-norm", "dropout + L2", "max-norm", "L2"]  # best first (Table 9)


def methods(l2_grid: list[float], max_norm_grid: list[float]) -> dict[str, list[dict]]:
    """method -> its grid of member configs (without seed)."""
    return {
        "none": [{}],
        "L2": [{"l2": v} for v in l2_grid],
        "max-norm": [{"max_norm": v} for v in max_norm_grid],
        "dropout + L2": [{"dropout": DROPOUT, "l2": v} for v in l2_grid],
        "dropout + max-norm": [{"dropout": DROPOUT, "max_norm": v} for v in max_norm_grid],
    }


def strength(config: dict) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in config.items() if k != "dropout") or "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes (checks the script, measures nothing)")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--lr", type=float, default=3e-3)
    args = parser.parse_args()
    if args.smoke:
        args.epochs, args.seeds, args.width = 1, 2, 16
    grids = methods(L2_GRID[:1], MAX_NORM_GRID[:1]) if args.smoke else methods(L2_GRID, MAX_NORM_GRID)
    splits = load("mnist1d")
    seeds = list(range(args.seeds))
    members = [(name, i, seed) for name, grid in grids.items() for i in range(len(grid)) for seed in seeds]
    configs = [{"lr": args.lr, "seed": seed, **grids[name][i]} for name, i, seed in members]
    pop = Population(MLP(40, 10, hidden=(args.width, args.width)), configs, data_order="per_member")
    load_start = os.getloadavg()
    t0 = time.perf_counter()
    histories = pop.fit(splits.train, splits.val, epochs=args.epochs, batch_size=100, progress="off")
    seconds = time.perf_counter() - t0
    test = [r["accuracy"] for r in pop.evaluate(splits.test)]
    rows = [
        {"method": name, "config": grids[name][i], "seed": seed, "val_accuracy": h.rows[-1]["val_accuracy"],
         "train_accuracy": h.rows[-1]["train_accuracy"], "test_accuracy": t}
        for (name, i, seed), h, t in zip(members, histories, test)
    ]

    summary = {}
    for name, grid in grids.items():
        val = [statistics.mean(r["val_accuracy"] for r in rows if r["method"] == name and r["config"] == c)
               for c in grid]
        best = grid[max(range(len(grid)), key=val.__getitem__)]  # ties: the first grid point
        chosen = [r for r in rows if r["method"] == name and r["config"] == best]
        summary[name] = {
            "chosen": best,
            "val_by_grid_point": [{"config": c, "val_accuracy": v} for c, v in zip(grid, val)],
            "val": mean_ci([r["val_accuracy"] for r in chosen]),
            "test": mean_ci([r["test_accuracy"] for r in chosen]),
            "train": statistics.mean(r["train_accuracy"] for r in chosen),
            "test_by_seed": {r["seed"]: r["test_accuracy"] for r in chosen},
        }
    ranked = sorted((m for m in summary if m != "none"), key=lambda m: -summary[m]["test"]["mean"])
    pairs = {f"{a} - {b}": paired_comparison(summary[a]["test_by_seed"], summary[b]["test_by_seed"])
             for a, b in zip(PAPER_ORDER, PAPER_ORDER[1:])}

    print(f"MLP 40-{args.width}-{args.width}-10, Adam lr {args.lr:g}, batch 100, {args.epochs} epochs, "
          f"{len(seeds)} seeds, {len(configs)} members in {seconds:.0f} s (load average {load_start[0]:.1f})")
    print(f"{'method':<20}{'chosen':<14}{'val %':>8}{'test % [95 % CI]':>22}"
          f"{'test error %':>14}{'train %':>9}")
    for name, s in summary.items():
        t = s["test"]
        ci = f"{100 * t['mean']:.1f} [{100 * t['low']:.1f}, {100 * t['high']:.1f}]"
        print(f"{name:<20}{strength(s['chosen']):<14}{100 * s['val']['mean']:>8.1f}{ci:>22}"
              f"{100 * (1 - t['mean']):>14.1f}{100 * s['train']:>9.1f}")
    print("paired test differences (by seed), the paper's order:")
    for label, d in pairs.items():
        print(f"  {label:<38}{100 * d['diff']:+.1f} [{100 * d['low']:+.1f}, {100 * d['high']:+.1f}] "
              f"p={d['p']:.2g}")
    holds = ranked == PAPER_ORDER
    print(f"ordering here (best first): {' > '.join(ranked)}; paper's ordering holds: {holds}")
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        meta = {"width": args.width, "epochs": args.epochs, "lr": args.lr, "batch_size": 100,
                "seeds": seeds, "dropout": DROPOUT, "l2_grid": L2_GRID, "max_norm_grid": MAX_NORM_GRID,
                "members": len(configs), "seconds": seconds, "load_average_at_start": load_start,
                "torch": torch.__version__, "threads": torch.get_num_threads(), "smoke": args.smoke}
        out.write_text(json.dumps({"meta": meta, "summary": summary, "paired": pairs, "ranking": ranked,
                                   "paper_order": PAPER_ORDER, "paper_order_holds": holds, "members": rows},
                                  indent=1))
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
