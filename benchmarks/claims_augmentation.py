"""Claim (f): augmentation helps most on small data (learning curve with and without it on MNIST-1D).

The paper's MLP (40-100-100-10, residual hidden layer), Adam lr 1e-2, batch 100, trained with reglab's
Trainer on 10 %, 25 %, 50 % and 100 % of the 3,500 MNIST-1D training examples (a stratified subset drawn
per seed), with and without the default study's augmentation (recipe ``augment`` of
reglab/configs/mnist1d.yaml: circular shift <= 4, amplitude 0.8-1.2, Gaussian noise 0.05). Every run
takes the same number of optimizer steps (--steps), so a smaller set is seen for more epochs; the
final weights are scored on the fixed 1,000-example test split. Runs with and without augmentation
share the seed (subset, initialization, batch order), so their difference is paired.

Usage:
    python benchmarks/claims_augmentation.py                   # full: 3 seeds, 2,000 steps per run
    python benchmarks/claims_augmentation.py --smoke           # seconds; writes to a temporary folder
Prints Markdown tables; writes JSON (default benchmarks/results/claims_augmentation.json) and
benchmarks/figures/claim_augmentation.png.
"""

from __future__ import annotations

import math
import time
from functools import lru_cache

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
    run_jobs,
    save_figure,
    write_json,
)
from sklearn.model_selection import train_test_split

from reglab import Study, augment
from reglab.data import load
from reglab.models import MLP
from reglab.train import Trainer

NAME = "claims_augmentation"
BATCH = 100


@lru_cache(maxsize=1)
def splits():
    return load("mnist1d")


def study_augmentation() -> dict:
    """The default study's recipe ``augment``, read from its config (so the two cannot drift apart)."""
    return Study.from_yaml("mnist1d").config.recipes["augment"].augment


def subset(y: torch.Tensor, fraction: float, seed: int) -> np.ndarray:
    """Indices of a stratified ``fraction`` of the training set, drawn with ``seed``."""
    idx = np.arange(len(y))
    if fraction >= 1:
        return idx
    chosen, _ = train_test_split(idx, train_size=fraction, stratify=y.numpy(), random_state=seed)
    return np.sort(chosen)


def train(job: dict) -> dict:
    """One run: ``job`` = {fraction, seed, augment (bool), steps}."""
    data = splits()
    idx = torch.as_tensor(subset(data.train.y, job["fraction"], job["seed"]))
    x, y = data.train.x[idx], data.train.y[idx]
    epochs = math.ceil(job["steps"] / math.ceil(len(x) / BATCH))
    torch.manual_seed(job["seed"])
    model = MLP(40, 10, hidden=(100, 100), residual=True)
    transform = augment.from_config(study_augmentation()) if job["augment"] else None
    trainer = Trainer(model, lr=1e-2, batch_size=BATCH, epochs=epochs, seed=job["seed"], progress="off",
                      augment=transform)
    t0 = time.perf_counter()
    trainer.fit((x, y))
    seconds = time.perf_counter() - t0
    kind = "augment" if job["augment"] else "none"
    return {
        **job,
        "label": f"{100 * job['fraction']:.0f} % seed {job['seed']} {kind}",
        "examples": len(x),
        "epochs": epochs,
        "steps_run": epochs * math.ceil(len(x) / BATCH),
        "train_accuracy": trainer.evaluate((x, y))["accuracy"],
        "val_accuracy": trainer.evaluate(data.val)["accuracy"],
        "test_accuracy": trainer.evaluate(data.test)["accuracy"],
        "test_loss": trainer.evaluate(data.test)["loss"],
        "seconds": seconds,
    }


def analyse(runs: list[dict], fractions: list[float], seeds: list[int]) -> dict:
    def acc(fraction, aug, key="test_accuracy"):
        by_seed = {r["seed"]: r[key] for r in runs if r["fraction"] == fraction and r["augment"] == aug}
        return [by_seed[s] for s in seeds]

    rows = []
    for f in fractions:
        none, aug = acc(f, False), acc(f, True)
        rows.append({
            "fraction": f,
            "examples": next(r["examples"] for r in runs if r["fraction"] == f),
            "steps": next(r["steps_run"] for r in runs if r["fraction"] == f),
            "none": mean_ci(none),
            "augment": mean_ci(aug),
            "gain": mean_ci(np.subtract(aug, none)),
            "gain_p": paired_p(aug, none),
            "train_none": float(np.mean(acc(f, False, "train_accuracy"))),
            "train_augment": float(np.mean(acc(f, True, "train_accuracy"))),
            "per_seed_gain": list(np.subtract(aug, none)),
        })
    # "Most on small data": the gain on the smallest set minus the gain on the full set, paired by seed.
    small, full = fractions[0], fractions[-1]
    gains = {f: np.subtract(acc(f, True), acc(f, False)) for f in (small, full)}
    return {
        "rows": rows,
        "smallest_minus_full_gain": mean_ci(gains[small] - gains[full]),
        "smallest_minus_full_gain_p": paired_p(gains[small], gains[full]),
        "largest_gain_at": max(rows, key=lambda r: r["gain"][0])["fraction"],
    }


def tables(result: dict, seeds: int) -> str:
    t = md_table(
        ["training data", "examples", "steps", "test % none", "test % augment", "gain (points)", "p",
         "train % none / augment"],
        [[f"{100 * r['fraction']:.0f} %", r["examples"], r["steps"], fmt_ci(r["none"]), fmt_ci(r["augment"]),
          f"**{fmt_ci(r['gain'], signed=True)}**", f"{r['gain_p']:.2g}",
          f"{100 * r['train_none']:.1f} / {100 * r['train_augment']:.1f}"] for r in result["rows"]],
    )
    small, full = result["rows"][0]["fraction"], result["rows"][-1]["fraction"]
    return (f"Test accuracy, mean [95 % CI] over {seeds} seeds; gain = augment - none, paired by seed:"
            f"\n\n{t}\n\n"
            f"Gain at {100 * small:.0f} % minus gain at {100 * full:.0f} %: "
            f"{fmt_ci(result['smallest_minus_full_gain'], signed=True)} points "
            f"(paired p = {result['smallest_minus_full_gain_p']:.2g}); largest mean gain at "
            f"{100 * result['largest_gain_at']:.0f} % of the data.")


def figure(result: dict, seeds: int, folder) -> None:
    plt = pyplot()
    rows = result["rows"]
    n = np.array([r["examples"] for r in rows])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for key, label, c, m in (("none", "no augmentation", COLORS[0], "o"),
                             ("augment", "augmentation (shift, amplitude, noise)", COLORS[1], "s")):
        mean = np.array([100 * r[key][0] for r in rows])
        lo = np.array([100 * r[key][1] for r in rows])
        hi = np.array([100 * r[key][2] for r in rows])
        ax1.plot(n, mean, m + "-", color=c, label=label)
        ax1.fill_between(n, lo, hi, color=c, alpha=0.2)
    gain = np.array([[100 * v for v in r["gain"]] for r in rows])
    ax2.errorbar(n, gain[:, 0], yerr=[gain[:, 0] - gain[:, 1], gain[:, 2] - gain[:, 0]], fmt="s-",
                 color=COLORS[1], capsize=4, label="mean gain, 95 % CI")
    for i, r in enumerate(rows):
        ax2.plot([n[i]] * len(r["per_seed_gain"]), 100 * np.asarray(r["per_seed_gain"]), ".", color="0.5")
    ax2.axhline(0, color="k", lw=0.8)
    ticks = [f"{r['examples']}\n({100 * r['fraction']:.0f} %)" for r in rows]
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.set_xticks(n, ticks)
        ax.minorticks_off()
        ax.set_xlabel("training examples")
    ax1.set(ylabel="test accuracy (%)", title=f"Learning curve (mean, 95 % CI over {seeds} seeds)")
    ax2.set(ylabel="gain from augmentation (points)", title="Gain, paired by seed (grey: each seed)")
    ax1.legend(fontsize=8)
    ax2.legend(fontsize=8)
    fig.suptitle("Augmentation vs training-set size, MLP 40-100-100-10 on MNIST-1D", fontsize=11)
    save_figure(fig, folder, "claim_augmentation.png")


def main() -> None:
    def add(p):
        p.add_argument("--seeds", type=int, default=3)
        p.add_argument("--steps", type=int, default=2000, help="optimizer steps per run (batch 100)")
        p.add_argument("--fractions", default="0.1,0.25,0.5,1.0", help="comma-separated, ascending")

    args = parse_args(NAME, __doc__, add)
    if args.smoke:
        args.seeds, args.steps, args.fractions = 2, 8, "0.1,1.0"
    started = time.perf_counter()
    fractions = sorted(float(f) for f in args.fractions.split(","))
    seeds = list(range(args.seeds))
    jobs = [{"fraction": f, "seed": s, "augment": a, "steps": args.steps}
            for f in fractions for s in seeds for a in (False, True)]
    runs = run_jobs(train, jobs, args.workers)
    result = analyse(runs, fractions, seeds)
    text = tables(result, args.seeds)
    print(text)
    figure(result, args.seeds, args.figures)
    write_json(args.json, {"meta": {**meta(args, started), "steps": args.steps, "seeds": args.seeds,
                                    "fractions": fractions, "augmentation": study_augmentation(),
                                    "recipe": "MLP 40-100-100-10 residual, Adam lr 1e-2, batch 100, "
                                    "final weights"},
                           "result": result, "runs": runs, "tables": text})


if __name__ == "__main__":
    main()
