"""MNIST-1D anchors of Greydanus & Kobak (ICML 2024) with reglab's Trainer, plus a basic recipe.

Paper recipe: Adam lr 1e-2, batch 100, about 6000 steps, no weight decay. Paper figures (test accuracy):
logistic regression 32 %, MLP 40-100-100-10 with a residual hidden layer 65-68 % (about 100 % train),
CNN 92-94 %. The "seeds' basic recipe" adds L2 3e-3 in the loss, dropout 0.1 and early stopping
(restore best) to the MLP, once monitoring val_loss (patience 10) and once val_accuracy.

Usage:
    python benchmarks/mnist1d_paper.py                      # full run, 3 seeds
    python benchmarks/mnist1d_paper.py --epochs 1 --seeds 1  # smoke run
Writes JSON (default benchmarks/results/mnist1d_paper.json) and prints a table of means over seeds.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import torch

from reglab.callbacks import EarlyStopping
from reglab.data import load
from reglab.models import CNN1D, MLP
from reglab.penalties import L2
from reglab.train import Trainer

PAPER = {"logistic": "32", "mlp": "65-68", "cnn": "92-94"}


def recipes():
    """name -> (model factory, extra Trainer keywords)."""
    return {
        "logistic": (lambda: MLP(40, 10, hidden=()), {}),
        "mlp": (lambda: MLP(40, 10, hidden=(100, 100), residual=True), {}),
        "cnn": (lambda: CNN1D(40, 10), {}),
        "mlp_l2_dropout_es_loss": (
            lambda: MLP(40, 10, hidden=(100, 100), residual=True, dropout=0.1),
            {
                "penalty": L2(3e-3),
                "callbacks": [EarlyStopping("val_loss", patience=10, restore_best_weights=True)],
            },
        ),
        "mlp_l2_dropout_es_acc": (
            lambda: MLP(40, 10, hidden=(100, 100), residual=True, dropout=0.1),
            {
                "penalty": L2(3e-3),
                # Validation accuracy on 500 examples is noisy: a short patience stops long before it peaks.
                "callbacks": [EarlyStopping("val_accuracy", patience=50, restore_best_weights=True)],
            },
        ),
    }


def run(name: str, seed: int, epochs: int, splits) -> dict:
    build, extra = recipes()[name]
    torch.manual_seed(seed)
    model = build()
    trainer = Trainer(model, lr=1e-2, batch_size=100, epochs=epochs, seed=seed, progress="off", **extra)
    t0 = time.perf_counter()
    history = trainer.fit(splits.train, splits.val, test=splits.test)
    seconds = time.perf_counter() - t0
    return {
        "recipe": name,
        "seed": seed,
        "epochs_run": len(history),
        "steps": len(history) * math.ceil(len(splits.train.x) / 100),
        "train_accuracy": trainer.evaluate(splits.train)["accuracy"],
        "val_accuracy": trainer.evaluate(splits.val)["accuracy"],
        "test_accuracy": history.test["accuracy"],
        "stop_reason": history.stop_reason,
        "seconds": seconds,
    }


def table(results: list[dict]) -> str:
    lines = [f"{'recipe':<26}{'test %':>14}{'train %':>10}{'epochs':>8}{'s/run':>8}{'paper %':>9}"]
    for name in dict.fromkeys(r["recipe"] for r in results):
        rows = [r for r in results if r["recipe"] == name]
        test = [100 * r["test_accuracy"] for r in rows]
        sd = statistics.stdev(test) if len(test) > 1 else 0.0
        lines.append(
            f"{name:<26}{statistics.mean(test):>8.1f} ± {sd:<3.1f}"
            f"{100 * statistics.mean(r['train_accuracy'] for r in rows):>10.1f}"
            f"{statistics.mean(r['epochs_run'] for r in rows):>8.0f}"
            f"{statistics.mean(r['seconds'] for r in rows):>8.1f}{PAPER.get(name, '-'):>9}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=None, help="default: 6000 steps of batch 100")
    parser.add_argument("--recipes", default=",".join(recipes()), help="comma-separated subset")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "mnist1d_paper.json"))
    args = parser.parse_args()
    splits = load("mnist1d")
    epochs = args.epochs or math.ceil(6000 / math.ceil(len(splits.train.x) / 100))
    results = []
    for name in args.recipes.split(","):
        for seed in range(args.seeds):
            results.append(run(name, seed, epochs, splits))
            print(f"{name} seed {seed}: test {100 * results[-1]['test_accuracy']:.1f} %", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "epochs": epochs,
        "seeds": args.seeds,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    out.write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    print(table(results))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
