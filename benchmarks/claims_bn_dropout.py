"""Claim (g): with BatchNorm, less dropout is needed (test accuracy over dropout rates, with and without BN).

The paper's MLP (40-100-100-10, residual hidden layer) on MNIST-1D, Adam lr 1e-2, batch 100, --epochs
(100), dropout after every hidden activation at each rate, without and with BatchNorm
(``MLP(norm="batch")``: Linear -> BatchNorm -> ReLU -> dropout). Each architecture is one
``reglab.Population`` of rates x seeds members; member (rate, seed) is initialized under
``torch.manual_seed(seed)`` and sees the batch order of ``Trainer(seed=seed)``
(``data_order="per_member"``), so rates are compared paired by seed. Final weights, fixed 1,000-example
test split; the best rate is read from the test means and, as one would choose it, from validation.

Usage:
    python benchmarks/claims_bn_dropout.py                     # full: 3 seeds, 100 epochs
    python benchmarks/claims_bn_dropout.py --smoke             # seconds; writes to a temporary folder
Prints Markdown tables; writes JSON (default benchmarks/results/claims_bn_dropout.json) and
benchmarks/figures/claim_bn_dropout.png. ``--workers`` is unused (the population engine runs one
shard per thread).
"""

from __future__ import annotations

import time

import numpy as np
import torch
from _claims import (
    COLORS,
    fmt_ci,
    md_table,
    mean_ci,
    meta,
    paired_p,
    parse_args,
    pyplot,
    save_figure,
    write_json,
)

from reglab.data import load
from reglab.models import MLP
from reglab.population import Population

NAME = "claims_bn_dropout"
ARCHS = {"none": None, "batchnorm": "batch"}


def train(norm: str | None, rates: list[float], seeds: list[int], epochs: int, splits) -> dict:
    """One population for one architecture: every (rate, seed) member; per-member accuracies."""
    configs = [{"lr": 1e-2, "dropout": p, "seed": s} for p in rates for s in seeds]
    arch = MLP(40, 10, hidden=(100, 100), residual=True, norm=norm)
    pop = Population(arch, configs, optimizer="adam", seed=0, data_order="per_member")
    t0 = time.perf_counter()
    histories = pop.fit(splits.train, splits.val, epochs=epochs, batch_size=100, progress="off")
    seconds = time.perf_counter() - t0
    scores = {split: pop.evaluate(getattr(splits, split)) for split in ("train", "val", "test")}
    members = [
        {"dropout": c.dropout, "seed": c.seed, "diverged": pop.status[k] == "diverged",
         **{f"{split}_{m}": scores[split][k][m] for split in scores for m in ("accuracy", "loss")},
         "val_accuracy_curve": [r.get("val_accuracy") for r in histories[k].rows]}
        for k, c in enumerate(pop.configs)
    ]
    return {"seconds": seconds, "members": members}


def analyse(results: dict, rates: list[float], seeds: list[int]) -> dict:
    def col(arch, rate, key):
        by_seed = {m["seed"]: m[key] for m in results[arch]["members"] if m["dropout"] == rate}
        return [by_seed[s] for s in seeds]

    out = {}
    for arch in ARCHS:
        rows = []
        for p in rates:
            test, base = col(arch, p, "test_accuracy"), col(arch, rates[0], "test_accuracy")
            rows.append({
                "dropout": p,
                "test": mean_ci(test),
                "vs_no_dropout": mean_ci(np.subtract(test, base)),
                "vs_no_dropout_p": paired_p(test, base),
                "val": float(np.mean(col(arch, p, "val_accuracy"))),
                "train": float(np.mean(col(arch, p, "train_accuracy"))),
                "per_seed_test": test,
            })
        out[arch] = {
            "rows": rows,
            "best_rate_by_test": max(rows, key=lambda r: r["test"][0])["dropout"],
            "best_rate_by_val": max(rows, key=lambda r: r["val"])["dropout"],
        }
    out["bn_minus_none"] = [
        {"dropout": p, "diff": mean_ci(np.subtract(col("batchnorm", p, "test_accuracy"),
                                                   col("none", p, "test_accuracy")))}
        for p in rates
    ]
    # How much a rate costs relative to each architecture's own best rate, paired by seed.
    out["drop_from_best"] = {
        arch: {p: mean_ci(np.subtract(col(arch, p, "test_accuracy"),
                                      col(arch, out[arch]["best_rate_by_test"], "test_accuracy")))
               for p in rates}
        for arch in ARCHS
    }
    return out


def tables(result: dict, rates: list[float], seeds: int, epochs: int) -> str:
    rows = []
    for i, p in enumerate(rates):
        n, b = result["none"]["rows"][i], result["batchnorm"]["rows"][i]
        rows.append([
            f"{p:g}", fmt_ci(n["test"]), fmt_ci(n["vs_no_dropout"], signed=True), f"{100 * n['train']:.1f}",
            fmt_ci(b["test"]), fmt_ci(b["vs_no_dropout"], signed=True), f"{100 * b['train']:.1f}",
            fmt_ci(result["bn_minus_none"][i]["diff"], signed=True),
        ])
    t = md_table(["dropout", "test % no norm", "vs dropout 0", "train %", "test % BatchNorm", "vs dropout 0",
                  "train %", "BN - no norm"], rows)
    best = ", ".join(
        f"{arch}: {result[arch]['best_rate_by_test']:g} by test, {result[arch]['best_rate_by_val']:g} by "
        "validation" for arch in ARCHS
    )
    return (f"Test accuracy after {epochs} epochs, mean [95 % CI] over {seeds} seeds (differences paired by "
            f"seed, in points):\n\n{t}\n\nBest dropout rate (highest mean): {best}.")


def figure(result: dict, rates: list[float], seeds: int, folder) -> None:
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    x = np.asarray(rates)
    for (arch, label), c, m in zip((("none", "no normalization"), ("batchnorm", "BatchNorm")), COLORS, "os"):
        rows = result[arch]["rows"]
        mean = np.array([100 * r["test"][0] for r in rows])
        ax1.plot(x, mean, m + "-", color=c, label=label)
        ax1.fill_between(x, [100 * r["test"][1] for r in rows], [100 * r["test"][2] for r in rows],
                         color=c, alpha=0.2)
        best = rates.index(result[arch]["best_rate_by_test"])
        ax1.plot(x[best], mean[best], "*", color=c, ms=16, mec="k")
        ax2.plot(x, [100 * r["train"] - 100 * r["test"][0] for r in rows], m + "-", color=c, label=label)
    ax1.set(xlabel="dropout rate", ylabel="test accuracy (%)",
            title=f"Test accuracy (mean, 95 % CI over {seeds} seeds; star: best rate)")
    ax2.set(xlabel="dropout rate", ylabel="train - test accuracy (points)", title="Generalization gap")
    for ax in (ax1, ax2):
        ax.set_xticks(x)
        ax.legend(fontsize=8)
    fig.suptitle("BatchNorm x dropout, MLP 40-100-100-10 on MNIST-1D", fontsize=11)
    save_figure(fig, folder, "claim_bn_dropout.png")


def main() -> None:
    def add(p):
        p.add_argument("--seeds", type=int, default=3)
        p.add_argument("--epochs", type=int, default=100)
        p.add_argument("--rates", default="0,0.1,0.2,0.3,0.5", help="comma-separated, ascending, from 0")

    args = parse_args(NAME, __doc__, add)
    if args.smoke:
        args.seeds, args.epochs, args.rates = 2, 2, "0,0.5"
    started = time.perf_counter()
    rates = sorted(float(r) for r in args.rates.split(","))
    seeds = list(range(args.seeds))
    splits = load("mnist1d")
    results = {}
    for arch, norm in ARCHS.items():
        results[arch] = train(norm, rates, seeds, args.epochs, splits)
        print(f"  {arch}: {len(rates) * len(seeds)} members, {results[arch]['seconds']:.1f} s", flush=True)
    result = analyse(results, rates, seeds)
    text = tables(result, rates, args.seeds, args.epochs)
    print(text)
    figure(result, rates, args.seeds, args.figures)
    info = meta(args, started, threads=torch.get_num_threads())
    info.update(epochs=args.epochs, seeds=args.seeds, rates=rates,
                recipe="MLP 40-100-100-10 residual, Adam lr 1e-2, batch 100, final weights, "
                "Population(data_order='per_member')")
    write_json(args.json, {"meta": info, "result": result, "members": results, "tables": text})


if __name__ == "__main__":
    main()
