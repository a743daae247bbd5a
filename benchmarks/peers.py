"""Peers side by side: reglab's study vs skorch + scikit-learn's GridSearchCV vs a plain PyTorch loop.

One run, the same job three ways: the weight decay x dropout grid of the default study's MLP
(MNIST-1D, 40-100-100-10 with a residual hidden layer), every configuration trained on 3 seeds,
chosen by mean hold-out validation accuracy over the seeds (the fixed 500-example validation
split; no early stopping), and the chosen configuration's models scored once on the test split.
Same data, epochs, batch size, optimizer (Adam, coupled weight decay on the weights only, not
the biases), initialization (each model is built under ``torch.manual_seed(seed)``):

* **reglab**: ``reglab.Study`` with one grid recipe; its trials run as stacked models through the
  population engine, ``--workers`` processes with one torch thread each (the study's default).
* **skorch**: ``NeuralNetClassifier`` in ``GridSearchCV`` (``PredefinedSplit`` = the same hold-out,
  the seed a grid parameter, ``n_jobs=--workers``: joblib gives each worker one thread), then the
  chosen configuration refit on the training split for each seed (GridSearchCV's own refit would
  train on train + validation) and scored on the test split.
* **plain**: one process, a hand-written loop over configurations x seeds (torch's default
  threads), the models kept in memory; the chosen ones scored on the test split.

Usage:
    python benchmarks/peers.py --json benchmarks/results/peers.json
    python benchmarks/peers.py --smoke --json /tmp/peers.json      # tiny sizes: checks the script
Prints a table (wall time, ratios, chosen configuration, test accuracy; validation accuracy per
configuration for each method) and writes JSON.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import sklearn
import torch
import torch.nn.functional as F
from sklearn.model_selection import GridSearchCV, PredefinedSplit
from torch import nn

import reglab
from reglab import Study
from reglab.data import load
from reglab.models import MLP
from reglab.study.export import open_storage, trial_rows
from reglab.study.stats import mean_ci

HIDDEN = (100, 100)
FULL = {"epochs": 25, "seeds": [0, 1, 2], "weight_decay": [0.0, 1e-4, 1e-3, 1e-2], "dropout": [0.0, 0.1, 0.3]}
SMOKE = {"epochs": 1, "seeds": [0, 1], "weight_decay": [0.0, 1e-3], "dropout": [0.0, 0.1]}
LR, BATCH = 1e-2, 100


def build(seed: int, dropout: float) -> MLP:
    """The MLP every method trains, initialized from ``seed`` (as the study's trials are)."""
    torch.manual_seed(seed)
    return MLP(40, 10, hidden=HIDDEN, residual=True, dropout=dropout)


class SeededMLP(MLP):
    """``build(seed, dropout)`` as a module class, so that skorch's grid can set the seed."""

    def __init__(self, seed: int = 0, dropout: float = 0.0):
        torch.manual_seed(seed)
        super().__init__(40, 10, hidden=HIDDEN, residual=True, dropout=dropout)


@torch.no_grad()
def accuracy(model: nn.Module, split) -> float:
    model.eval()
    return float((model(split.x).argmax(1) == split.y).float().mean())


def choose(val: dict[tuple[float, float], list[float]]) -> tuple[float, float]:
    """The configuration with the highest mean validation accuracy (ties: the first in grid order)."""
    return max(val, key=lambda c: statistics.mean(val[c]))


# -- the three methods -------------------------------------------------------------------------------


def run_reglab(sizes: dict, workers: int) -> dict:
    config = {
        "name": "peers",
        "dataset": {"name": "mnist1d"},
        "model": {"family": "mlp", "hidden": list(HIDDEN), "residual": True},
        "training": {"epochs": sizes["epochs"], "batch_size": BATCH, "optimizer": "adam", "lr": LR},
        "seeds": sizes["seeds"],
        "validation": {"kind": "holdout"},
        "search": {"method": "grid", "metric": "val_accuracy"},
        "baseline": "grid",
        "recipes": {"grid": {"weight_decay": {"grid": sizes["weight_decay"]},
                             "dropout": {"grid": sizes["dropout"]}}},
    }
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        summary = Study(config).run(out=out, workers=workers, progress=False)
        seconds = time.perf_counter() - t0
        rows = trial_rows(open_storage(out))
    val: dict[tuple[float, float], list[float]] = {}
    test = []
    for r in rows:
        params = json.loads(r["params"])
        key = (params["weight_decay"], params["dropout"])
        if r["phase"] == "cv":
            val.setdefault(key, []).append(r["val_accuracy"])
        elif r["phase"] == "final":
            test.append(r["test_accuracy"])
    best = summary["recipes"]["grid"]["best_params"]
    return {"seconds": seconds, "val": val, "chosen": (best["weight_decay"], best["dropout"]), "test": test}


def run_skorch(sizes: dict, workers: int, splits) -> dict:
    from skorch import NeuralNetClassifier

    def net(**params):
        return NeuralNetClassifier(
            SeededMLP,
            criterion=nn.CrossEntropyLoss,
            optimizer=torch.optim.Adam,
            lr=LR,
            # decay on the weights only, as reglab's weight_decay (biases get none)
            optimizer__param_groups=[("*.bias", {"weight_decay": 0.0})],
            batch_size=BATCH,
            max_epochs=sizes["epochs"],
            train_split=None,  # GridSearchCV holds out the validation split
            iterator_train__shuffle=True,
            verbose=0,
            **params,
        )

    x = torch.cat([splits.train.x, splits.val.x]).numpy()
    y = torch.cat([splits.train.y, splits.val.y]).numpy()
    fold = np.r_[np.full(len(splits.train.x), -1), np.zeros(len(splits.val.x), dtype=int)]
    grid = {"optimizer__weight_decay": sizes["weight_decay"], "module__dropout": sizes["dropout"],
            "module__seed": sizes["seeds"]}
    t0 = time.perf_counter()
    search = GridSearchCV(net(), grid, cv=PredefinedSplit(fold), scoring="accuracy", refit=False,
                          n_jobs=workers, error_score="raise")
    search.fit(x, y)
    val: dict[tuple[float, float], list[float]] = {}
    for params, score in zip(search.cv_results_["params"], search.cv_results_["split0_test_score"]):
        key = (params["optimizer__weight_decay"], params["module__dropout"])
        val.setdefault(key, []).append(float(score))
    val = {c: val[c] for c in itertools.product(sizes["weight_decay"], sizes["dropout"])}
    wd, dropout = choose(val)
    test = []
    for seed in sizes["seeds"]:
        model = net(optimizer__weight_decay=wd, module__dropout=dropout, module__seed=seed)
        model.fit(splits.train.x.numpy(), splits.train.y.numpy())
        test.append(float(model.score(splits.test.x.numpy(), splits.test.y.numpy())))
    return {"seconds": time.perf_counter() - t0, "val": val, "chosen": (wd, dropout), "test": test}


def fit_plain(seed: int, wd: float, dropout: float, train, epochs: int) -> MLP:
    """The loop a PyTorch user writes; batch order from ``torch.Generator().manual_seed(seed)``."""
    model = build(seed, dropout)
    decay = [p for p in model.parameters() if p.ndim >= 2]
    rest = [p for p in model.parameters() if p.ndim < 2]
    opt = torch.optim.Adam([{"params": decay, "weight_decay": wd}, {"params": rest, "weight_decay": 0.0}],
                           lr=LR)
    order = torch.Generator().manual_seed(seed)
    n = len(train.x)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=order)
        for s in range(0, n, BATCH):
            idx = perm[s : s + BATCH]
            loss = F.cross_entropy(model(train.x[idx]), train.y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model


def run_plain(sizes: dict, splits) -> dict:
    t0 = time.perf_counter()
    val: dict[tuple[float, float], list[float]] = {}
    models = {}
    for wd, dropout in itertools.product(sizes["weight_decay"], sizes["dropout"]):
        for seed in sizes["seeds"]:
            model = fit_plain(seed, wd, dropout, splits.train, sizes["epochs"])
            val.setdefault((wd, dropout), []).append(accuracy(model, splits.val))
            models[wd, dropout, seed] = model
    chosen = choose(val)
    test = [accuracy(models[(*chosen, seed)], splits.test) for seed in sizes["seeds"]]
    return {"seconds": time.perf_counter() - t0, "val": val, "chosen": chosen, "test": test}


# -- report ------------------------------------------------------------------------------------------


def _pct(ci: dict) -> str:
    return f"{100 * ci['mean']:.1f} [{100 * ci['low']:.1f}, {100 * ci['high']:.1f}]"


def table(results: dict[str, dict], sizes: dict) -> str:
    base = results["reglab"]["seconds"]
    lines = [f"{'method':<8}{'wall s':>9}{'vs reglab':>11}   "
             f"{'chosen (wd, dropout)':<22}{'test % [95 % CI]':>20}"]
    for name, r in results.items():
        lines.append(f"{name:<8}{r['seconds']:>9.1f}{r['seconds'] / base:>10.2f}x   "
                     f"{str(tuple(r['chosen'])):<22}{_pct(mean_ci(r['test'])):>20}")
    lines += ["", "validation accuracy %, mean over seeds:",
              f"{'wd':>8}{'dropout':>9}" + "".join(f"{n:>10}" for n in results)]
    for c in itertools.product(sizes["weight_decay"], sizes["dropout"]):
        lines.append(f"{c[0]:>8g}{c[1]:>9g}"
                     + "".join(f"{100 * statistics.mean(r['val'][c]):>10.1f}" for r in results.values()))
    return "\n".join(lines)


def agreement(results: dict[str, dict], sizes: dict) -> dict:
    """Largest per-seed validation difference to reglab, without dropout (same draws: should be ~0)
    and with dropout (different random masks: noise), in accuracy points."""
    out = {}
    for name in ("skorch", "plain"):
        for label, rates in (("no_dropout", [0.0]), ("dropout", [d for d in sizes["dropout"] if d > 0])):
            diffs = [abs(a - b) for c in itertools.product(sizes["weight_decay"], rates)
                     for a, b in zip(results[name]["val"][c], results["reglab"]["val"][c])]
            out[f"{name}_{label}_max_abs_val_diff"] = 100 * max(diffs) if diffs else None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes (checks the script, measures nothing)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="processes for reglab's study and GridSearchCV's n_jobs (default: the CPUs)")
    args = parser.parse_args()
    try:
        import skorch
    except ImportError:  # an optional extra: say how to get it rather than show a traceback
        parser.exit(2, "peers.py: needs skorch (the `bench` extra): pip install -e '.[bench]'\n")

    sizes = dict(SMOKE if args.smoke else FULL)
    if args.epochs:
        sizes["epochs"] = args.epochs
    splits = load("mnist1d")
    results, loads = {}, {}
    for name, fn in (("reglab", lambda: run_reglab(sizes, args.workers)),
                     ("skorch", lambda: run_skorch(sizes, args.workers, splits)),
                     ("plain", lambda: run_plain(sizes, splits))):
        loads[name] = os.getloadavg()
        results[name] = fn()
        print(f"{name}: {results[name]['seconds']:.1f} s", flush=True)
    print(table(results, sizes))
    check = agreement(results, sizes)
    print(json.dumps(check))
    if args.json:
        meta = {
            "sizes": sizes, "lr": LR, "batch_size": BATCH, "hidden": HIDDEN, "workers": args.workers,
            "torch_threads_main": torch.get_num_threads(), "load_average_at_start": loads,
            "versions": {"python": platform.python_version(), "torch": torch.__version__,
                         "skorch": skorch.__version__, "scikit-learn": sklearn.__version__,
                         "numpy": np.__version__, "reglab": reglab.__version__},
            "cpus": os.cpu_count(),
        }
        plain = {name: {"seconds": r["seconds"], "chosen": list(r["chosen"]), "test": r["test"],
                        "test_ci": mean_ci(r["test"]),
                        "val": [{"weight_decay": c[0], "dropout": c[1], "per_seed": v}
                                for c, v in r["val"].items()]}
                 for name, r in results.items()}
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"meta": meta, "results": plain, "agreement": check}, indent=1))
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
