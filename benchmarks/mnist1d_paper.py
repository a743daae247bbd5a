"""MNIST-1D anchors of Greydanus & Kobak (ICML 2024) with reglab's Trainer, plus a basic recipe.

Paper recipe: Adam lr 1e-2, batch 100, about 6000 steps, no weight decay. Paper figures (test accuracy):
logistic regression 32 %, MLP 40-100-100-10 with a residual hidden layer 65-68 % (about 100 % train),
CNN 92-94 %. The "seeds' basic recipe" adds L2 3e-3 in the loss, dropout 0.1 and early stopping
(restore best) to the MLP, once monitoring val_loss (patience 10) and once val_accuracy.

The ``mlp_augment*`` / ``mlp_best_of`` recipes train the same MLP on the same budget with the
winners of the default study (``reglab/configs/mnist1d.yaml``): its augmentation
(``reglab.augment.signal_default()``: circular shift <= 4, amplitude 0.8-1.2, noise 0.05), that plus
LayerNorm, its ``best_of`` (augmentation + LayerNorm + decoupled decay 0.03 + dropout 0.1), and a
stronger shift (<= 10 and <= 20 samples: MNIST-1D's generator translates each digit circularly by up
to two thirds of the signal, so larger shifts stay within its classes).
With ``--reference`` (a JSON holding the ``mlp`` and ``cnn`` rows) the table adds the share of the
MLP -> CNN gap each recipe closes.

Usage:
    python benchmarks/mnist1d_paper.py                      # full run, 3 seeds
    python benchmarks/mnist1d_paper.py --epochs 1 --seeds 1  # smoke run
    python benchmarks/mnist1d_paper.py --recipes mlp_augment,mlp_augment_layernorm,mlp_best_of \
        --out benchmarks/results/mnist1d_best_recipe.json --reference benchmarks/results/mnist1d_paper.json
Writes JSON (default benchmarks/results/mnist1d_paper.json) and prints a table of means over seeds.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from pathlib import Path

import torch

from reglab.augment import AmplitudeScale, Compose, GaussianNoise1d, RandomShift, signal_default
from reglab.callbacks import EarlyStopping
from reglab.data import load
from reglab.models import CNN1D, MLP
from reglab.penalties import L2
from reglab.study.stats import mean_ci, paired_comparison
from reglab.train import Trainer

PAPER = {"logistic": "32", "mlp": "65-68", "cnn": "92-94"}


def _mlp(**slots) -> MLP:
    return MLP(40, 10, hidden=(100, 100), residual=True, **slots)


def _shift(max_shift: int) -> Compose:
    """``signal_default()`` with a larger circular shift."""
    return Compose([RandomShift(max_shift, circular=True), AmplitudeScale(0.8, 1.2), GaussianNoise1d(0.05)])


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
        # The default study's winners (reglab/configs/mnist1d.yaml), on the paper's budget.
        "mlp_augment": (_mlp, {"augment": signal_default()}),
        "mlp_augment_layernorm": (lambda: _mlp(norm="layer"), {"augment": signal_default()}),
        "mlp_best_of": (
            lambda: _mlp(norm="layer", dropout=0.1),
            {"augment": signal_default(), "weight_decay": 0.03, "decoupled": True},
        ),
        "mlp_augment_shift10": (_mlp, {"augment": _shift(10)}),
        "mlp_augment_shift20": (_mlp, {"augment": _shift(20)}),
        "mlp_augment_shift20_layernorm": (lambda: _mlp(norm="layer"), {"augment": _shift(20)}),
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


GROUPS = {
    "paper": ["logistic", "mlp", "cnn", "mlp_l2_dropout_es_loss", "mlp_l2_dropout_es_acc"],
    "best": ["mlp_augment", "mlp_augment_layernorm", "mlp_best_of", "mlp_augment_shift10",
             "mlp_augment_shift20", "mlp_augment_shift20_layernorm"],
}


def _means(results: list[dict]) -> dict[str, dict[int, float]]:
    """recipe -> {seed: test accuracy}."""
    out: dict[str, dict[int, float]] = {}
    for r in results:
        out.setdefault(r["recipe"], {})[r["seed"]] = r["test_accuracy"]
    return out


def gap_closed(results: list[dict], reference: list[dict]) -> dict[str, dict]:
    """Per recipe: test accuracy mean [95 % CI], paired difference with the plain MLP (same seeds),
    and the share of the MLP -> CNN gap closed (means over seeds)."""
    ref = _means(reference)
    mlp, cnn = ref["mlp"], ref["cnn"]
    gap = statistics.mean(cnn.values()) - statistics.mean(mlp.values())
    out = {}
    for name, by_seed in _means(results).items():
        if name in ("mlp", "cnn"):
            continue
        out[name] = {
            "test": mean_ci(list(by_seed.values())),
            "vs_mlp": paired_comparison(by_seed, mlp),
            "gap_closed": (statistics.mean(by_seed.values()) - statistics.mean(mlp.values())) / gap,
        }
    return {"mlp": mean_ci(list(mlp.values())), "cnn": mean_ci(list(cnn.values())), "recipes": out}


def table(results: list[dict], gaps: dict | None = None) -> str:
    head = f"{'recipe':<30}{'test %':>14}{'train %':>10}{'epochs':>8}{'s/run':>8}{'paper %':>9}"
    lines = [head + (f"{'vs MLP (pts)':>24}{'gap closed':>12}" if gaps else "")]
    for name in dict.fromkeys(r["recipe"] for r in results):
        rows = [r for r in results if r["recipe"] == name]
        test = [100 * r["test_accuracy"] for r in rows]
        sd = statistics.stdev(test) if len(test) > 1 else 0.0
        line = (
            f"{name:<30}{statistics.mean(test):>8.1f} ± {sd:<3.1f}"
            f"{100 * statistics.mean(r['train_accuracy'] for r in rows):>10.1f}"
            f"{statistics.mean(r['epochs_run'] for r in rows):>8.0f}"
            f"{statistics.mean(r['seconds'] for r in rows):>8.1f}{PAPER.get(name, '-'):>9}"
        )
        g = (gaps or {}).get("recipes", {}).get(name)
        if g:
            d = g["vs_mlp"]
            diff = f"{100 * d['diff']:+.1f} [{100 * d['low']:+.1f}, {100 * d['high']:+.1f}]"
            line += f"{diff:>24}{100 * g['gap_closed']:>11.0f}%"
        lines.append(line)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=None, help="default: 6000 steps of batch 100")
    parser.add_argument(
        "--recipes",
        default="paper",
        help=f"comma-separated names or groups ({', '.join(f'{k}: {v}' for k, v in GROUPS.items())}; "
        f"others: {', '.join(n for n in recipes() if not any(n in g for g in GROUPS.values()))})",
    )
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "mnist1d_paper.json"))
    parser.add_argument(
        "--reference", default=None, help="a results JSON with the mlp and cnn rows: report the gap closed"
    )
    args = parser.parse_args()
    names = [n for part in args.recipes.split(",") for n in GROUPS.get(part, [part])]
    unknown = [n for n in names if n not in recipes()]
    if unknown:
        parser.error(f"unknown recipe {unknown[0]!r}; allowed: {', '.join([*GROUPS, *recipes()])}")
    splits = load("mnist1d")
    epochs = args.epochs or math.ceil(6000 / math.ceil(len(splits.train.x) / 100))
    results = []
    for name in names:
        for seed in range(args.seeds):
            results.append(run(name, seed, epochs, splits))
            print(f"{name} seed {seed}: test {100 * results[-1]['test_accuracy']:.1f} %", flush=True)
    gaps = None
    if args.reference:
        reference = json.loads(Path(args.reference).read_text())["results"]
        gaps = gap_closed(results + [r for r in reference if r["recipe"] in ("mlp", "cnn")], reference)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "epochs": epochs,
        "seeds": args.seeds,
        "recipes": names,
        "reference": args.reference,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "load_average": os.getloadavg(),
    }
    out.write_text(json.dumps({"meta": meta, "results": results, "gap": gaps}, indent=1))
    print(table(results, gaps))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
