"""The seeds' claims about dropout and BatchNorm, measured: (c) the train/validation gap, (d) BatchNorm.

(c) **Dropout reduces the train/validation gap.** The MNIST-1D MLP 40-100-100-10 (residual hidden layer),
Adam lr 1e-2, batch 100 (the paper's recipe), dropout 0, 0.1, 0.2 and 0.5 after each hidden layer, several
seeds, all trained at once by :class:`reglab.population.Population`. The gap is measured in eval mode
(dropout off) on both sides: validation loss minus *training-set* loss after each epoch. The training loss
a run logs is taken with dropout on and would make dropout's gap look smaller than it is, so the same
population is trained twice with identical seeds (the engine is deterministic): once validated on the
validation split, once on the training split; the script checks that both runs trained identically.

(d) **BatchNorm speeds convergence and allows larger learning rates.** The same MLP with and without
BatchNorm (``norm="batch"``: Linear -> BatchNorm -> ReLU), plain SGD (no momentum), batch 100, over a grid
of learning rates, several seeds. Definitions (also written to the JSON):

* *epochs to target*: the first epoch whose training loss (the logged loss: mean over the epoch's
  batches, in training mode) is at most ``--target`` (default 1.0; chance level is ln 10 = 2.30);
* *stable*: every epoch's training loss is finite and the last epoch's is below 2.0 (the run learned);
* *largest stable learning rate*: the largest grid value at which the run is stable, per seed; the
  table also gives the stricter version, the largest learning rate whose run reaches the target.

Usage:
    python benchmarks/claims_dropout_bn.py               # full run (a few minutes on 2 cores)
    python benchmarks/claims_dropout_bn.py --smoke       # tiny sizes, seconds; writes to a temporary folder
    python benchmarks/claims_dropout_bn.py --only d --seeds 5
    python benchmarks/claims_dropout_bn.py --replot     # redraw figures and tables from the JSON
Prints Markdown tables, writes JSON (default benchmarks/results/claims_dropout_bn.json) and PNG figures
(default benchmarks/figures/claim_dropout_gap.png, claim_batchnorm.png).
"""

from __future__ import annotations

import json
import math
import platform
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from _claims import fmt, parse_parts  # noqa: E402

from reglab.data import load  # noqa: E402
from reglab.models import MLP  # noqa: E402
from reglab.population import Population  # noqa: E402

STABLE_BELOW = 2.0  # last-epoch training loss of a run that learned (chance: ln 10 = 2.30)
# The population's stacked gradients trip a harmless autograd layout warning once per run.
warnings.filterwarnings("ignore", message="grad and param do not obey the gradient layout contract")




def mlp(norm: str | None = None) -> MLP:
    return MLP(40, 10, hidden=(100, 100), residual=True, norm=norm)


# ----------------------------------------------------------------------------- (c) dropout gap
def claim_c(seeds: int, rates: Sequence[float], epochs: int) -> dict:
    d = load("mnist1d", seed=0)
    configs = [{"lr": 1e-2, "dropout": float(p), "seed": s} for p in rates for s in range(seeds)]
    runs = {}
    start = time.perf_counter()
    for name, val in (("val", d.val), ("train", d.train)):  # the same training, validated on each split
        pop = Population(mlp(), configs, optimizer="adam", seed=0)
        runs[name] = (pop, pop.fit(d.train, val, epochs=epochs, batch_size=100, progress="off"))
    seconds = time.perf_counter() - start
    pop, hv = runs["val"]
    _, ht = runs["train"]
    test = pop.evaluate(d.test)
    members, identical = [], True
    for k, cfg in enumerate(configs):
        v, t = hv[k].to_pandas(), ht[k].to_pandas()
        identical &= bool(np.array_equal(v["train_loss"].to_numpy(), t["train_loss"].to_numpy()))
        gap = (v["val_loss"] - t["val_loss"]).to_numpy()
        members.append(
            {
                **cfg,
                "train_loss_eval": t["val_loss"].tolist(),  # training set, dropout off
                "train_accuracy_eval": t["val_accuracy"].tolist(),
                "train_loss_logged": v["train_loss"].tolist(),  # training mode (dropout on)
                "val_loss": v["val_loss"].tolist(),
                "val_accuracy": v["val_accuracy"].tolist(),
                "gap_loss": gap.tolist(),
                "gap_accuracy": (t["val_accuracy"] - v["val_accuracy"]).tolist(),
                "test_accuracy": test[k]["accuracy"],
            }
        )
    return {
        "rates": list(map(float, rates)),
        "seeds": seeds,
        "epochs": epochs,
        "seconds": seconds,
        "identical_training": identical,
        "members": members,
    }


def _tail(values: Sequence[float]) -> float:
    """ "(end)" in the tables: the mean of the last 10 % of epochs (at least one), robust to noise."""
    n = max(1, len(values) // 10)
    return float(np.mean(values[-n:]))


def table_c(res: dict) -> str:
    lines = [
        "| dropout | gap, val − train loss (end) | gap at epoch 20 | train loss (end) | val loss (end) "
        "| lowest val loss | train acc % | val acc % (end) | best val acc % | test acc % |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    at = min(19, res["epochs"] - 1)
    for p in res["rates"]:
        ms = [m for m in res["members"] if m["dropout"] == p]
        lines.append(
            f"| {p:g} | {fmt([_tail(m['gap_loss']) for m in ms], 3)} "
            f"| {fmt([m['gap_loss'][at] for m in ms], 3)} "
            f"| {fmt([_tail(m['train_loss_eval']) for m in ms], 3)} "
            f"| {fmt([_tail(m['val_loss']) for m in ms], 3)} "
            f"| {fmt([min(m['val_loss']) for m in ms], 3)} "
            f"| {fmt([_tail(m['train_accuracy_eval']) for m in ms], 1, 100)} "
            f"| {fmt([_tail(m['val_accuracy']) for m in ms], 1, 100)} "
            f"| {fmt([max(m['val_accuracy']) for m in ms], 1, 100)} "
            f"| {fmt([m['test_accuracy'] for m in ms], 1, 100)} |"
        )
    return "\n".join(lines)


def figure_c(res: dict, path: Path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    epochs = np.arange(1, res["epochs"] + 1)
    for i, p in enumerate(res["rates"]):
        ms = [m for m in res["members"] if m["dropout"] == p]
        color = plt.get_cmap("tab10")(i)
        for ax, key in ((axes[0], "gap_loss"), (axes[1], "gap_accuracy")):
            curves = np.array([m[key] for m in ms]) * (100 if key == "gap_accuracy" else 1)
            mean = curves.mean(0)
            ax.plot(epochs, mean, color=color, label=f"dropout {p:g}")
            if len(ms) > 1:
                sd = curves.std(0, ddof=1)
                ax.fill_between(epochs, mean - sd, mean + sd, color=color, alpha=0.2)
        val = np.array([m["val_loss"] for m in ms]).mean(0)
        train = np.array([m["train_loss_eval"] for m in ms]).mean(0)
        axes[2].plot(epochs, val, color=color, label=f"val, dropout {p:g}")
        axes[2].plot(epochs, train, color=color, ls="--")
    axes[0].set_ylabel("validation loss − training loss (eval mode)")
    axes[0].set_title("loss gap")
    axes[1].set_ylabel("train accuracy − validation accuracy (points)")
    axes[1].set_title("accuracy gap")
    axes[2].set_ylabel("cross-entropy (solid: validation, dashed: training set)")
    axes[2].set_yscale("log")
    axes[2].set_title("the two losses (mean over seeds)")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
    fig.suptitle(
        f"Claim: dropout reduces the train/validation gap (MNIST-1D MLP, Adam 1e-2, "
        f"{res['seeds']} seeds, mean ± sd)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- (d) BatchNorm
def epochs_to(losses: Sequence[float], target: float) -> int | None:
    """1-based epoch at which the training loss first reaches ``target``; None if never."""
    for i, v in enumerate(losses):
        if math.isfinite(v) and v <= target:
            return i + 1
    return None


def claim_d(seeds: int, lrs: Sequence[float], epochs: int, target: float) -> dict:
    d = load("mnist1d", seed=0)
    configs = [{"lr": float(lr), "seed": s} for lr in lrs for s in range(seeds)]
    members, seconds = [], {}
    for norm in (None, "batch"):
        pop = Population(mlp(norm), configs, optimizer="sgd", seed=0)
        start = time.perf_counter()
        histories = pop.fit(d.train, d.val, epochs=epochs, batch_size=100, progress="off")
        seconds[str(norm)] = time.perf_counter() - start
        for k, (cfg, h) in enumerate(zip(configs, histories)):
            frame = h.to_pandas()
            losses = [float(v) for v in frame["train_loss"]]
            finite = pop.status[k] != "diverged" and all(math.isfinite(v) for v in losses)
            members.append(
                {
                    **cfg,
                    "batchnorm": norm == "batch",
                    "status": pop.status[k],
                    "train_loss": losses,
                    "epochs_to_target": epochs_to(losses, target),
                    "stable": bool(finite and len(losses) == epochs and losses[-1] < STABLE_BELOW),
                    "final_train_loss": losses[-1],
                    "final_val_accuracy": float(frame["val_accuracy"].iloc[-1])
                    if "val_accuracy" in frame and finite
                    else None,
                }
            )
    largest = {}
    for bn in (False, True):
        per_seed = []
        for s in range(seeds):
            ok = [m["lr"] for m in members if m["batchnorm"] == bn and m["seed"] == s and m["stable"]]
            per_seed.append(max(ok) if ok else None)
        largest["batchnorm" if bn else "plain"] = per_seed
    return {
        "lrs": list(map(float, lrs)),
        "seeds": seeds,
        "epochs": epochs,
        "target": target,
        "definitions": {
            "epochs_to_target": f"first epoch whose logged training loss <= {target}",
            "stable": f"all epochs' training loss finite and the last one < {STABLE_BELOW}",
            "largest_stable_lr": "largest grid lr at which the run is stable, per seed",
        },
        "seconds": seconds,
        "largest_stable_lr": largest,
        "members": members,
    }


def _cell(ms: list[dict]) -> str:
    reached = [m["epochs_to_target"] for m in ms if m["epochs_to_target"] is not None]
    text = f"{fmt(reached, 1)}" if reached else "never"
    return text + (f" ({len(reached)}/{len(ms)})" if 0 < len(reached) < len(ms) else "")


def _status(ms: list[dict]) -> str:
    diverged = sum(m["status"] == "diverged" for m in ms)
    stable = sum(m["stable"] for m in ms)
    return f"{stable}/{len(ms)} stable" + (f", {diverged} NaN" if diverged else "")


def best_lr_summary(res: dict) -> dict:
    """Per architecture: the lr with the fewest mean epochs to target (all seeds reaching it)."""
    out = {}
    for bn in (False, True):
        best = None
        for lr in res["lrs"]:
            ms = [m for m in res["members"] if m["batchnorm"] == bn and m["lr"] == lr]
            reached = [m["epochs_to_target"] for m in ms]
            if all(r is not None for r in reached) and (best is None or np.mean(reached) < best[1]):
                best = (lr, float(np.mean(reached)), reached)
        out["batchnorm" if bn else "plain"] = (
            {"lr": best[0], "mean_epochs": best[1], "epochs": best[2]} if best else None
        )
    return out


def table_d(res: dict) -> str:
    lines = [
        f"| lr | epochs to loss ≤ {res['target']:g}, plain | with BatchNorm | final train loss, plain "
        "| with BatchNorm | plain | with BatchNorm |",
        "|---|---|---|---|---|---|---|",
    ]
    for lr in res["lrs"]:
        row = {
            bn: [m for m in res["members"] if m["batchnorm"] == bn and m["lr"] == lr] for bn in (False, True)
        }
        loss = {bn: [m["final_train_loss"] for m in row[bn] if m["stable"]] for bn in (False, True)}
        lines.append(
            f"| {lr:g} | {_cell(row[False])} | {_cell(row[True])} "
            f"| {fmt(loss[False], 3)} | {fmt(loss[True], 3)} "
            f"| {_status(row[False])} | {_status(row[True])} |"
        )
    lines.append("")
    for key, label in (("plain", "plain"), ("batchnorm", "with BatchNorm")):
        per_seed = res["largest_stable_lr"][key]
        best = res["best_lr"][key]
        speed = (
            f"fewest epochs to target {best['mean_epochs']:.1f} at lr {best['lr']:g}"
            if best
            else "never reached"
        )
        # The stricter reading of "stable": the run also reaches the target loss within the budget.
        reach = []
        for s in range(res["seeds"]):
            ok = [
                m["lr"]
                for m in res["members"]
                if m["batchnorm"] == (key == "batchnorm") and m["seed"] == s and m["epochs_to_target"]
            ]
            reach.append(max(ok) if ok else None)
        lines.append(
            f"- {label}: largest stable lr per seed {_lrs(per_seed)}; largest lr reaching the target "
            f"per seed {_lrs(reach)}; {speed}."
        )
    return "\n".join(lines)


def _lrs(values: Sequence[float | None]) -> str:
    return ", ".join(f"{v:g}" if v else "-" for v in values)


def figure_d(res: dict, path: Path) -> None:
    lrs = np.array(res["lrs"])
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    for bn, color, label in ((False, "tab:blue", "plain"), (True, "tab:orange", "BatchNorm")):
        rows = [[m for m in res["members"] if m["batchnorm"] == bn and m["lr"] == lr] for lr in lrs]
        ep = [[m["epochs_to_target"] for m in ms if m["epochs_to_target"] is not None] for ms in rows]
        x = [lr for lr, e in zip(lrs, ep) if e]
        axes[0].errorbar(
            x,
            [np.mean(e) for e in ep if e],
            yerr=[np.std(e, ddof=1) if len(e) > 1 else 0 for e in ep if e],
            fmt="o-",
            color=color,
            capsize=3,
            label=label,
        )
        finals = [[m["final_train_loss"] if m["stable"] else np.nan for m in ms] for ms in rows]
        mean = np.array([np.nanmean(f) if not np.all(np.isnan(f)) else np.nan for f in finals])
        axes[1].plot(lrs, mean, "o-", color=color, label=f"{label} (stable runs)")
        # Above the curves: lrs where at least one seed diverged (x) or finished without learning (^).
        nan = [lr for lr, ms in zip(lrs, rows) if any(m["status"] == "diverged" for m in ms)]
        stuck = [
            lr for lr, ms in zip(lrs, rows) if any(not m["stable"] and m["status"] != "diverged" for m in ms)
        ]
        y = 3.2 if bn else 2.8
        axes[1].plot(nan, [y] * len(nan), "x", color=color, ms=9, label=f"{label}: a seed diverged (NaN)")
        axes[1].plot(
            stuck,
            [y] * len(stuck),
            "^",
            color=color,
            ms=7,
            mfc="none",
            label=f"{label}: a seed ends with loss ≥ {STABLE_BELOW:g}",
        )
        best = res["best_lr"]["batchnorm" if bn else "plain"]
        if best:
            curves = np.array(
                [m["train_loss"] for m in res["members"] if m["batchnorm"] == bn and m["lr"] == best["lr"]]
            )
            axes[2].plot(
                np.arange(1, curves.shape[1] + 1),
                curves.mean(0),
                color=color,
                label=f"{label}, its best lr {best['lr']:g}",
            )
        common = [
            m["train_loss"] for m in res["members"] if m["batchnorm"] == bn and m["lr"] == 0.1 and m["stable"]
        ]
        if common:
            curves = np.array(common)
            axes[2].plot(
                np.arange(1, curves.shape[1] + 1),
                curves.mean(0),
                color=color,
                ls="--",
                label=f"{label}, lr 0.1",
            )
    axes[0].set_ylabel(f"epochs to training loss ≤ {res['target']:g}")
    axes[0].set_title("convergence speed (runs that reach the target)")
    axes[1].set_ylabel("final training loss")
    axes[1].set_yscale("log")
    axes[1].set_title("final training loss of stable runs; markers: unstable seeds")
    for ax in axes[:2]:
        ax.set_xscale("log")
        ax.set_xlabel("learning rate (plain SGD)")
        ax.legend(fontsize=8)
    axes[2].axhline(res["target"], color="k", lw=0.5)
    axes[2].set_yscale("log")
    axes[2].set_xlabel("epoch")
    axes[2].set_ylabel("training loss (mean over seeds)")
    axes[2].set_title("training curves")
    if axes[2].get_legend_handles_labels()[0]:
        axes[2].legend(fontsize=8)
    fig.suptitle(
        f"Claim: BatchNorm speeds convergence and allows larger learning rates (MNIST-1D MLP, SGD, "
        f"{res['epochs']} epochs, {res['seeds']} seeds)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- main
def report(key: str, res: dict, figures: Path) -> None:
    """Draw the claim's figure and print its table."""
    if key == "c":
        figure_c(res, figures / "claim_dropout_gap.png")
        print(
            f"## (c) Dropout and the train/validation gap, MNIST-1D MLP ({res['seeds']} seeds, "
            f"{res['epochs']} epochs, {res['wall_s']:.0f} s; both runs trained identically: "
            f"{res['identical_training']})\n"
        )
        print(table_c(res))
    else:
        figure_d(res, figures / "claim_batchnorm.png")
        print(
            f"## (d) BatchNorm: convergence and learning rates, MNIST-1D MLP, plain SGD ({res['seeds']} "
            f"seeds, {res['epochs']} epochs, {res['wall_s']:.0f} s)\n"
        )
        print(table_d(res))
    print()


def main(argv: Sequence[str] | None = None) -> int:
    def target(parser) -> None:  # an argparse.ArgumentParser
        parser.add_argument("--target", type=float, default=1.0, help="(d) target training loss")

    parsed = parse_parts("claims_dropout_bn", __doc__, "cd", argv, report, add=target)
    if parsed is None:  # --replot
        return 0
    args, only, path, figures = parsed
    seeds = args.seeds
    if not 0 < args.target < STABLE_BELOW:
        raise SystemExit(f"--target must be in (0, {STABLE_BELOW}); got {args.target}")
    out = {
        "meta": {
            "smoke": args.smoke,
            "seeds": seeds,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "platform": platform.platform(),
        }
    }
    if "c" in only:
        start = time.perf_counter()
        res = claim_c(seeds, [0.0, 0.1, 0.2, 0.5], epochs=2 if args.smoke else 80)
        res["wall_s"] = time.perf_counter() - start
        out["c"] = res
        report("c", res, figures)
    if "d" in only:
        start = time.perf_counter()
        lrs = [1e-2, 0.3, 3.0] if args.smoke else [1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0]
        res = claim_d(seeds, lrs, epochs=2 if args.smoke else 40, target=args.target)
        res["best_lr"] = best_lr_summary(res)
        res["wall_s"] = time.perf_counter() - start
        out["d"] = res
        report("d", res, figures)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path} and figures in {figures}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
