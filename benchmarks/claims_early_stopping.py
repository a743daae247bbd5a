"""Claim (e): early stopping prevents the validation loss from rising; epochs saved and accuracy kept.

The paper's MLP (40-100-100-10, residual hidden layer, no regularization) on MNIST-1D, Adam lr 1e-2,
batch 100, trained for --epochs (150) with reglab's Trainer to the end, recording the test accuracy
after every epoch (to know the best epoch in hindsight). Each early-stopping rule (monitor val_loss
or val_accuracy, each patience, best weights restored) is then read off every seed's full run by
feeding its History to ``EarlyStopping.update``: with the same seed a stopped run is the full run's
prefix. On the first --es-seeds seeds every rule is also trained for real, and the script checks that
the real run stops at the same epoch with the same test accuracy and validation loss.

Usage:
    python benchmarks/claims_early_stopping.py                 # full: 5 seeds, 150 epochs, patience 5-50
    python benchmarks/claims_early_stopping.py --smoke         # seconds; writes to a temporary folder
Prints Markdown tables; writes JSON (default benchmarks/results/claims_early_stopping.json) and
benchmarks/figures/claim_early_stopping.png.
"""

from __future__ import annotations

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

from reglab.callbacks import Callback, EarlyStopping
from reglab.data import load
from reglab.models import MLP
from reglab.train import Trainer

NAME = "claims_early_stopping"
MONITORS = ("val_loss", "val_accuracy")


@lru_cache(maxsize=1)
def splits():
    return load("mnist1d")


class TestCurve(Callback):
    """Evaluates the test split after every epoch (eval mode; draws no random numbers)."""

    def __init__(self, test):
        self.test, self.rows = test, []

    def on_epoch_end(self, trainer, epoch, logs):
        self.rows.append(trainer.evaluate(self.test))


def train(job: dict) -> dict:
    """One run: ``job`` = {seed, epochs, monitor (None: no early stopping), patience}."""
    data = splits()
    torch.manual_seed(job["seed"])
    model = MLP(40, 10, hidden=(100, 100), residual=True)
    curve = TestCurve(data.test)
    callbacks = [curve] if job["monitor"] is None else [
        EarlyStopping(job["monitor"], patience=job["patience"], restore_best_weights=True)
    ]
    trainer = Trainer(model, lr=1e-2, batch_size=100, epochs=job["epochs"], seed=job["seed"],
                      progress="off", callbacks=callbacks)
    t0 = time.perf_counter()
    history = trainer.fit(data.train, data.val)
    seconds = time.perf_counter() - t0
    label = "full run" if job["monitor"] is None else f"{job['monitor']} patience {job['patience']}"
    return {
        **job,
        "label": f"seed {job['seed']} {label}",
        "epochs_run": len(history),
        "stop_reason": history.stop_reason,
        "history": {c: [r[c] for r in history.rows] for c in ("train_loss", "val_loss", "val_accuracy")},
        "test_curve": [r["accuracy"] for r in curve.rows],
        "test_loss_curve": [r["loss"] for r in curve.rows],
        "final": {split: trainer.evaluate(getattr(data, split)) for split in ("train", "val", "test")},
        "seconds": seconds,
    }


def replay(full: dict, monitor: str, patience: int) -> dict:
    """EarlyStopping's decision on the full run's History: stop, best epoch, what the kept weights score.

    With the same seed a stopped run is the full run's prefix, so this equals running it (checked
    against the real runs of ``--es-seeds``).
    """
    es = EarlyStopping(monitor, patience=patience, restore_best_weights=True)
    values = full["history"][monitor]
    stopped_at = len(values) - 1
    for epoch, value in enumerate(values):
        if es.update(value, epoch):
            stopped_at = epoch
            break
    return {"epochs_run": stopped_at + 1, "best_epoch": es.best_epoch,
            "test_accuracy": full["test_curve"][es.best_epoch],
            "val_loss": full["history"]["val_loss"][es.best_epoch]}


def analyse(runs: list[dict], epochs: int, patiences: list[int]) -> dict:
    seeds = sorted({r["seed"] for r in runs})
    full = {r["seed"]: r for r in runs if r["monitor"] is None}
    per_seed = []
    for s in seeds:
        h, tc = full[s]["history"], full[s]["test_curve"]
        best_loss_epoch = int(np.argmin(h["val_loss"]))
        per_seed.append({
            "seed": s,
            "min_val_loss_epoch": best_loss_epoch,
            "min_val_loss": h["val_loss"][best_loss_epoch],
            "final_val_loss": h["val_loss"][-1],
            "max_val_accuracy_epoch": int(np.argmax(h["val_accuracy"])),
            "final_test_accuracy": full[s]["final"]["test"]["accuracy"],
            "hindsight_epoch": int(np.argmax(tc)),
            "hindsight_test_accuracy": float(max(tc)),
        })
    full_test = [p["final_test_accuracy"] for p in per_seed]
    hind = [p["hindsight_test_accuracy"] for p in per_seed]
    rules = []
    for monitor in MONITORS:
        for patience in patiences:
            rep = [replay(full[s], monitor, patience) for s in seeds]
            test = [r["test_accuracy"] for r in rep]
            real = [r for r in runs if r["monitor"] == monitor and r["patience"] == patience]
            # Bit-for-bit: same epochs, the same test accuracy and validation loss of the kept weights.
            checks = [
                r["epochs_run"] == rep[seeds.index(r["seed"])]["epochs_run"]
                and r["final"]["test"]["accuracy"] == rep[seeds.index(r["seed"])]["test_accuracy"]
                and abs(r["final"]["val"]["loss"] - rep[seeds.index(r["seed"])]["val_loss"]) < 1e-9
                for r in real
            ]
            rules.append({
                "monitor": monitor,
                "patience": patience,
                "epochs_run": [r["epochs_run"] for r in rep],
                "best_epoch": [r["best_epoch"] for r in rep],
                "epochs_saved_fraction": mean_ci([1 - r["epochs_run"] / epochs for r in rep]),
                "test_accuracy": mean_ci(test),
                "vs_full_run": mean_ci(np.subtract(test, full_test)),
                "vs_full_run_p": paired_p(test, full_test),
                "vs_hindsight": mean_ci(np.subtract(test, hind)),
                "val_loss_kept": mean_ci([r["val_loss"] for r in rep]),
                "real_runs": len(real),
                "replay_matches": all(checks),
            })
    return {"seeds": seeds, "full_runs": per_seed, "rules": rules}


def tables(result: dict, epochs: int) -> str:
    fr = result["full_runs"]
    rise = [p["final_val_loss"] / p["min_val_loss"] - 1 for p in fr]
    t1 = md_table(
        ["seed", "val loss min (epoch)", f"val loss at epoch {epochs}", "rise", "best val acc epoch",
         f"test % at epoch {epochs}", "test % best in hindsight (epoch)"],
        [[p["seed"], f"{p['min_val_loss']:.3f} ({p['min_val_loss_epoch'] + 1})", f"{p['final_val_loss']:.3f}",
          f"{100 * r:+.0f} %", p["max_val_accuracy_epoch"] + 1, f"{100 * p['final_test_accuracy']:.1f}",
          f"{100 * p['hindsight_test_accuracy']:.1f} ({p['hindsight_epoch'] + 1})"]
         for p, r in zip(fr, rise)],
    )
    full_test = mean_ci([p["final_test_accuracy"] for p in fr])
    hind = mean_ci([p["hindsight_test_accuracy"] for p in fr])
    t2 = md_table(
        ["rule (restore best)", "stopped after (epochs, per seed)", "epochs saved", "test %", "vs full run",
         "p", "vs best in hindsight", "val loss kept", "real runs = replay"],
        [[f"{r['monitor']}, patience {r['patience']}", ", ".join(map(str, r["epochs_run"])),
          fmt_ci(r["epochs_saved_fraction"]) + " %", fmt_ci(r["test_accuracy"]),
          fmt_ci(r["vs_full_run"], signed=True), f"{r['vs_full_run_p']:.2g}",
          fmt_ci(r["vs_hindsight"], signed=True), f"{r['val_loss_kept'][0]:.3f}",
          f"{r['real_runs']} of {len(r['epochs_run'])}: " + ("yes" if r["replay_matches"] else "NO")]
         for r in result["rules"]]
        + [[f"none ({epochs} epochs)", epochs, "0 %", fmt_ci(full_test), "", "",
            fmt_ci(mean_ci(np.subtract([p["final_test_accuracy"] for p in fr],
                                       [p["hindsight_test_accuracy"] for p in fr])), signed=True),
            f"{np.mean([p['final_val_loss'] for p in fr]):.3f}", ""]],
    )
    return (f"Full runs ({epochs} epochs, no early stopping), per seed; epochs counted from 1:\n\n{t1}\n\n"
            f"Early stopping, mean [95 % CI] over seeds (test accuracy in points; best in hindsight "
            f"{fmt_ci(hind)}):\n\n{t2}")


def figure(runs: list[dict], result: dict, folder) -> None:
    plt = pyplot()
    seed = result["seeds"][0]
    full = next(r for r in runs if r["monitor"] is None and r["seed"] == seed)
    epochs = np.arange(1, len(full["history"]["val_loss"]) + 1)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for r in runs:  # other seeds, faint, for the spread
        if r["monitor"] is None and r["seed"] != seed:
            ax1.plot(epochs, r["history"]["val_loss"], color="0.8", lw=0.8)
            ax2.plot(epochs, 100 * np.asarray(r["test_curve"]), color="0.8", lw=0.8)
    ax1.plot(epochs, full["history"]["val_loss"], color="k", lw=1.5, label=f"validation loss, seed {seed}")
    ax1.plot(epochs, full["history"]["train_loss"], color="k", lw=1, ls=":", label="training loss")
    ax2.plot(epochs, 100 * np.asarray(full["test_curve"]), color="k", lw=1.2,
             label=f"test accuracy, seed {seed}")
    markers = {"val_loss": "o", "val_accuracy": "s"}
    patiences = sorted({r["patience"] for r in result["rules"]})
    for monitor in MONITORS:
        for patience in patiences:
            r = replay(full, monitor, patience)
            stop, best = r["epochs_run"], r["best_epoch"]
            c, m = COLORS[patiences.index(patience) % len(COLORS)], markers[monitor]
            label = f"{monitor}, patience {patience}"
            ax1.plot(stop, full["history"]["val_loss"][stop - 1], m, color=c, ms=8, label=f"stop: {label}")
            ax1.plot(best + 1, full["history"]["val_loss"][best], m, mfc="none", mec=c, ms=11)
            ax2.plot(best + 1, 100 * full["test_curve"][best], m, color=c, ms=8, label=f"kept: {label}")
    ax1.set(xlabel="epoch", ylabel="cross-entropy (log scale)", yscale="log",
            title="Validation loss: filled = stop, hollow = weights restored")
    ax1.yaxis.set_major_formatter(plt.FormatStrFormatter("%g"))
    ax1.yaxis.set_minor_formatter(plt.NullFormatter())
    ax2.set(xlabel="epoch", ylabel="test accuracy (%)",
            title="Test accuracy of the weights each rule keeps (markers may coincide)")
    ax1.legend(fontsize=7, ncol=2)
    ax2.legend(fontsize=7, ncol=2, loc="lower right")
    fig.suptitle("Early stopping, MLP 40-100-100-10 on MNIST-1D (grey: other seeds)", fontsize=11)
    fig.tight_layout()
    save_figure(fig, folder, "claim_early_stopping.png")


def main() -> None:
    def add(p):
        p.add_argument("--seeds", type=int, default=5)
        p.add_argument("--epochs", type=int, default=150)
        p.add_argument("--patiences", default="5,10,20,50", help="comma-separated")
        p.add_argument("--es-seeds", type=int, default=1,
                       help="train every rule for real on the first N seeds (the others are replayed)")

    args = parse_args(NAME, __doc__, add)
    if args.smoke:
        args.seeds, args.epochs, args.patiences, args.es_seeds = 2, 4, "1,2", 2
    started = time.perf_counter()
    patiences = [int(p) for p in args.patiences.split(",")]
    jobs = []
    for seed in range(args.seeds):
        jobs.append({"seed": seed, "epochs": args.epochs, "monitor": None, "patience": None})
        if seed < args.es_seeds:
            jobs += [{"seed": seed, "epochs": args.epochs, "monitor": m, "patience": p}
                     for m in MONITORS for p in patiences]
    jobs.sort(key=lambda j: j["monitor"] is not None)  # the long runs first: better packing
    runs = run_jobs(train, jobs, args.workers)
    result = analyse(runs, args.epochs, patiences)
    text = tables(result, args.epochs)
    print(text)
    figure(runs, result, args.figures)
    info = meta(args, started)
    info.update(epochs=args.epochs, seeds=args.seeds, patiences=patiences, es_seeds=args.es_seeds,
                recipe="MLP 40-100-100-10 residual, Adam lr 1e-2, batch 100, no regularization; "
                "EarlyStopping restores the best weights")
    write_json(args.json, {"meta": info, "result": result, "runs": runs, "tables": text})


if __name__ == "__main__":
    main()
