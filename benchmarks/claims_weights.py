"""The seeds' claims about weight penalties, measured: (a) L1 vs L2 sparsity, (b) L2 shrinkage.

(a) **L1 gives exact zeros and selects features; L2 gives none.** Logistic regression on breast_cancer
(398 training rows, 30 standardized features), one fit per split seed, along a grid of scikit-learn ``C``
(weak to strong: ``L1: l1 = 1/(C·n)``, ``L2: l2 = 1/(2·C·n)`` with the mean log-loss, docs/conventions.md).
reglab fits ``nn.Linear`` in float64 with :func:`reglab.optim.proximal` around full-batch SGD (step 1/L)
plus FISTA extrapolation, warm-started from the strongest penalty down, to a relative step of 1e-7.
Each fit is
compared with ``LogisticRegression(penalty="l1"/"l2", C)`` (liblinear / lbfgs; liblinear's intercept is
penalized, so it gets ``intercept_scaling=1e4``, which makes that penalty negligible): the same selected
features, and the largest coefficient difference. A third fit puts the same L1 term in the loss
(Adam, the usual "subgradient" way) to show that it shrinks weights without making them exactly zero.

(b) **L2 shrinks weights smoothly.** The MNIST-1D MLP 40-100-100-10 (residual hidden layer) trained by
:class:`reglab.population.Population` (Adam lr 1e-2, batch 100) with L2 in the loss over a grid of
strengths, several seeds at once: final weight norm, exact-zero fraction and accuracy against strength.

Usage:
    python benchmarks/claims_weights.py                 # full run (a few minutes on 2 cores)
    python benchmarks/claims_weights.py --smoke         # tiny sizes, seconds; writes to a temporary folder
    python benchmarks/claims_weights.py --only b --seeds 5
    python benchmarks/claims_weights.py --replot       # redraw figures and tables from the JSON
Prints Markdown tables, writes JSON (default benchmarks/results/claims_weights.json) and PNG figures
(default benchmarks/figures/claim_l1_vs_l2.png, claim_l2_shrinkage.png).
"""

from __future__ import annotations

import json
import platform
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import sklearn  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from _claims import fmt, parse_parts  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from torch import nn  # noqa: E402

from reglab.data import load  # noqa: E402
from reglab.models import MLP  # noqa: E402
from reglab.optim import proximal  # noqa: E402
from reglab.penalties import L1, L2, ElasticNet, Penalty  # noqa: E402
from reglab.population import Population  # noqa: E402

# The population's stacked gradients trip a harmless autograd layout warning once per run.
warnings.filterwarnings("ignore", message="grad and param do not obey the gradient layout contract")




# ----------------------------------------------------------------------------- (a) L1 vs L2
class Logistic:
    """``K`` binary logistic regressions (one per split seed), mean log-loss, gradient written out.

    Autograd's per-step overhead would cost more than the arithmetic for 31 parameters per problem.
    """

    def __init__(self, xs: Sequence[torch.Tensor], ys: Sequence[torch.Tensor]):
        self.x = torch.stack(list(xs)).double()  # (K, n, p)
        self.y = torch.stack(list(ys)).double()  # (K, n)
        self.n = self.x.shape[1]
        ones = torch.ones(*self.x.shape[:2], 1, dtype=torch.float64)
        design = torch.cat([self.x, ones], 2)
        # The log-loss's curvature is at most 1/4 of the least-squares one.
        self.lipschitz = float(torch.linalg.eigvalsh(design.transpose(1, 2) @ design / self.n).max()) / 4

    def grad(self, model: nn.Linear) -> tuple[torch.Tensor, torch.Tensor]:
        w, b = model.weight.detach(), model.bias.detach()
        z = torch.bmm(self.x, w.unsqueeze(2)).squeeze(2) + b[:, None]
        r = (torch.sigmoid(z) - self.y) / self.n
        return torch.bmm(r.unsqueeze(1), self.x).squeeze(1), r.sum(1)


def fista(
    model: nn.Linear, penalty: Penalty, problem: Logistic, *, tol: float, max_iter: int
) -> tuple[int, bool]:
    """Minimize mean log-loss + ``penalty`` from the model's current weights: (iterations, converged).

    One iteration: the gradient at the extrapolated point, one ``step()`` of
    ``reglab.optim.proximal(SGD(lr=1/L), penalty)`` (a proximal gradient step: exact zeros for L1),
    then FISTA's extrapolation with gradient-based adaptive restart per problem. Stops when every
    problem's step is at most ``tol`` (relative to its largest coefficient, at least 1).
    """
    opt = proximal(torch.optim.SGD(model.parameters(), lr=1 / problem.lipschitz), penalty, model)

    def theta() -> torch.Tensor:
        return torch.cat([model.weight.detach(), model.bias.detach()[:, None]], 1).clone()

    def assign(t: torch.Tensor) -> None:
        with torch.no_grad():
            model.weight.copy_(t[:, :-1])
            model.bias.copy_(t[:, -1])

    x_prev = theta()
    t = torch.ones(x_prev.shape[0], 1, dtype=torch.float64)
    for iteration in range(1, max_iter + 1):
        y = theta()
        model.weight.grad, model.bias.grad = problem.grad(model)
        opt.step()
        x = theta()
        if float((x - y).abs().max()) <= tol * max(1.0, float(x.abs().max())):
            return iteration, True
        t = torch.where(((y - x) * (x - x_prev)).sum(1, keepdim=True) > 0, 1.0, t)
        t_next = (1 + torch.sqrt(1 + 4 * t * t)) / 2
        assign(x + (t - 1) / t_next * (x - x_prev))
        x_prev, t = x, t_next
    return max_iter, False


def penalty_for(kind: str, c: float, n: int) -> Penalty:
    """scikit-learn ``LogisticRegression(penalty=kind, C=c)`` as a reglab penalty on the mean log-loss."""
    if kind == "l1":
        return L1(ElasticNet.from_logistic_regression(c, n_samples=n, l1_ratio=1.0).l1)
    return L2.from_logistic_regression(c, n_samples=n)


def objective(kind: str, c: float, theta: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    """Mean log-loss + penalty at ``theta`` (weights, then intercept): what both fits minimize."""
    z = x @ theta[:-1] + theta[-1]
    loss = float(np.mean(np.logaddexp(0.0, z) - y * z))
    w = theta[:-1]
    n = len(y)
    return loss + (np.abs(w).sum() / (c * n) if kind == "l1" else (w @ w) / (2 * c * n))


def sklearn_fit(kind: str, c: float, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Coefficients of scikit-learn's fit at ``C = c``, intercept last."""
    if kind == "l1":
        model = LogisticRegression(
            C=c,
            l1_ratio=1.0,
            solver="liblinear",
            tol=1e-10,
            max_iter=100_000,
            intercept_scaling=1e4,
            random_state=0,  # liblinear visits coordinates in a random order
        )
    else:
        model = LogisticRegression(C=c, l1_ratio=0.0, solver="lbfgs", tol=1e-12, max_iter=100_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x, y)
    return np.append(model.coef_[0], model.intercept_[0])


def l1_in_loss(c: float, x: torch.Tensor, y: torch.Tensor, epochs: int) -> np.ndarray:
    """The same L1 term added to the loss, Adam lr 1e-2 full batch: subgradient descent on ``|w|``."""
    torch.manual_seed(0)
    model = nn.Linear(x.shape[1], 1, dtype=torch.float64)
    penalty = penalty_for("l1", c, len(y))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(epochs):
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(model(x).squeeze(1), y) + penalty(model)
        loss.backward()
        opt.step()
    return model.weight.detach().numpy()[0].copy()


def claim_a(seeds: int, n_c: int, max_iter: int, adam_epochs: int, tol: float = 1e-7) -> dict:
    splits = [load("breast_cancer", seed=s) for s in range(seeds)]
    names = list(splits[0].feature_names)
    problem = Logistic([d.train.x for d in splits], [d.train.y for d in splits])
    n = problem.n
    # From about the strongest C that keeps one feature up to 2.75 decades weaker. Beyond C = 3 the
    # nearly separable, strongly collinear features (radius, perimeter, area) make every solver crawl.
    cs = np.logspace(-2.25, 0.5, n_c)
    result: dict = {
        "C": cs.tolist(),
        "features": names,
        "n_train": n,
        "seeds": seeds,
        "tol": tol,
        "max_iter": max_iter,
    }
    for kind in ("l1", "l2"):
        model = nn.Linear(problem.x.shape[2], seeds, dtype=torch.float64)
        nn.init.zeros_(model.weight)
        nn.init.zeros_(model.bias)
        rows = []
        for c in cs:  # weak C = strong penalty first: warm starts along the path
            start = time.perf_counter()
            iters, converged = fista(
                model, penalty_for(kind, float(c), n), problem, tol=tol, max_iter=max_iter
            )
            seconds = time.perf_counter() - start
            w = model.weight.detach().numpy().copy()
            b = model.bias.detach().numpy().copy()
            per_seed = []
            for s, d in enumerate(splits):
                xs, ys = d.train.x.double().numpy(), d.train.y.double().numpy()
                ref = sklearn_fit(kind, float(c), xs, d.train.y.numpy())
                ours = np.append(w[s], b[s])
                logits = d.test.x.double().numpy() @ w[s] + b[s]
                per_seed.append(
                    {
                        "zero_fraction": float((w[s] == 0).mean()),
                        "sklearn_zero_fraction": float((ref[:-1] == 0).mean()),
                        "selected": [names[j] for j in np.flatnonzero(w[s])],
                        "same_support": bool(np.array_equal(w[s] == 0, ref[:-1] == 0)),
                        "max_abs_diff": float(np.abs(ours - ref).max()),
                        # < 0: reglab's solution has the lower objective; differences in the
                        # coefficients then lie along directions the objective barely sees.
                        "objective_minus_sklearn": objective(kind, float(c), ours, xs, ys)
                        - objective(kind, float(c), ref, xs, ys),
                        "min_abs_weight": float(np.abs(w[s]).min()),
                        "weight_norm": float(np.linalg.norm(w[s])),
                        "test_accuracy": float(((logits > 0) == d.test.y.numpy().astype(bool)).mean()),
                        "coef": w[s].tolist(),
                    }
                )
            rows.append(
                {
                    "C": float(c),
                    "iterations": iters,
                    "converged": converged,
                    "seconds": seconds,
                    "seeds": per_seed,
                }
            )
        result[kind] = rows
    # L1 in the loss, the usual autograd way: no exact zeros, only small weights.
    mid = float(cs[len(cs) // 2])
    d = splits[0]
    w_sub = l1_in_loss(mid, d.train.x.double(), d.train.y.double(), adam_epochs)
    w_prox = np.array(result["l1"][len(cs) // 2]["seeds"][0]["coef"])
    result["l1_in_loss"] = {
        "C": mid,
        "epochs": adam_epochs,
        "exact_zeros": int((w_sub == 0).sum()),
        "below_1e-3": int((np.abs(w_sub) < 1e-3).sum()),
        "proximal_exact_zeros": int((w_prox == 0).sum()),
        "coef": w_sub.tolist(),
    }
    return result


def table_a(res: dict) -> str:
    lines = [
        "| C | L1 zeros (reglab) | L1 zeros (sklearn) | same features | max \\|Δcoef\\| "
        "| objective − sklearn's | L2 zeros "
        "| L2 min \\|w\\| "
        "| test acc L1 | test acc L2 | FISTA iterations L1 / L2 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r1, r2 in zip(res["l1"], res["l2"]):
        s1, s2 = r1["seeds"], r2["seeds"]
        same = sum(s["same_support"] for s in s1)
        lines.append(
            f"| {r1['C']:.4g} | {fmt([s['zero_fraction'] for s in s1], 2)} "
            f"| {fmt([s['sklearn_zero_fraction'] for s in s1], 2)} | {same}/{len(s1)} "
            f"| {max(s['max_abs_diff'] for s in s1):.1e} "
            f"| {max(s['objective_minus_sklearn'] for s in s1):+.1e} "
            f"| {max(s['zero_fraction'] for s in s2):.2f} "
            f"| {min(s['min_abs_weight'] for s in s2):.1e} "
            f"| {fmt([s['test_accuracy'] for s in s1], 3)} | {fmt([s['test_accuracy'] for s in s2], 3)} "
            f"| {r1['iterations']}{'' if r1['converged'] else '*'} "
            f"/ {r2['iterations']}{'' if r2['converged'] else '*'} |"
        )
    lines.append("")
    lines.append(
        f"(* = stopped at {res['max_iter']} iterations before the relative step reached {res['tol']:g}.)"
    )
    l2 = [s for r in res["l2"] for s in r["seeds"]]
    lines.append(
        f"L2 vs scikit-learn lbfgs: max |Δcoef| {max(s['max_abs_diff'] for s in l2):.1e}, objective − "
        f"sklearn's at most {max(s['objective_minus_sklearn'] for s in l2):+.1e} over every C and seed."
    )
    sub = res["l1_in_loss"]
    lines.append(
        f"L1 in the loss (Adam, {sub['epochs']} full-batch steps, C = {sub['C']:.4g}, seed 0): "
        f"{sub['exact_zeros']} exact zeros, {sub['below_1e-3']} weights below 1e-3 in magnitude; "
        f"proximal: {sub['proximal_exact_zeros']} exact zeros."
    )
    return "\n".join(lines)


def selection_table(res: dict, max_rows: int = 8) -> str:
    """The order in which features enter the L1 path, per seed (the strongest penalties first)."""
    orders = []
    for s in range(res["seeds"]):
        order: list[str] = []
        for row in res["l1"]:
            for name in row["seeds"][s]["selected"]:
                if name not in order:
                    order.append(name)
        orders.append(order)
    lines = [
        "| rank | " + " | ".join(f"seed {s}" for s in range(res["seeds"])) + " |",
        "|---|" + "---|" * res["seeds"],
    ]
    for i in range(max_rows):
        lines.append(f"| {i + 1} | " + " | ".join(o[i] if i < len(o) else "" for o in orders) + " |")
    return "\n".join(lines)


def figure_a(res: dict, path: Path) -> None:
    cs = np.array(res["C"])
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    for ax, kind, title in (
        (axes[0, 0], "l1", "L1 (proximal): coefficients, seed 0"),
        (axes[0, 1], "l2", "L2: coefficients, seed 0"),
    ):
        coefs = np.array([r["seeds"][0]["coef"] for r in res[kind]])
        ax.plot(cs, coefs, lw=1)
        ax.axhline(0, color="k", lw=0.5)
        ax.set_xscale("log")
        ax.set_xlabel("scikit-learn C (larger = weaker penalty)")
        ax.set_ylabel("coefficient (standardized features)")
        ax.set_title(title)
    ax = axes[1, 0]
    for kind, key, label, style in (
        ("l1", "zero_fraction", "L1, reglab proximal", "o-"),
        ("l1", "sklearn_zero_fraction", "L1, scikit-learn liblinear", "x--"),
        ("l2", "zero_fraction", "L2, reglab", "s-"),
    ):
        vals = np.array([[s[key] for s in r["seeds"]] for r in res[kind]])
        _seed_errorbar(ax, cs, vals, fmt=style, label=label, ms=4)
    ax.set_xscale("log")
    ax.set_xlabel("scikit-learn C")
    ax.set_ylabel("exact-zero fraction of the 30 weights")
    ax.set_title(f"exact zeros (mean ± sd over {res['seeds']} splits)")
    ax.legend()
    ax = axes[1, 1]
    for kind, label in (("l1", "L1"), ("l2", "L2")):
        vals = np.array([[s["test_accuracy"] for s in r["seeds"]] for r in res[kind]])
        _seed_errorbar(ax, cs, vals, fmt="o-", label=label, ms=4)
    ax.set_xscale("log")
    ax.set_xlabel("scikit-learn C")
    ax.set_ylabel("test accuracy")
    ax.set_title("breast_cancer test accuracy (114 rows)")
    ax.legend()
    fig.suptitle("Claim: L1 gives exact zeros and selects features; L2 shrinks without zeros")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- (b) L2 shrinkage
def claim_b(seeds: int, strengths: Sequence[float], epochs: int) -> dict:
    d = load("mnist1d", seed=0)
    configs = [{"lr": 1e-2, "l2": float(l2), "seed": s} for l2 in strengths for s in range(seeds)]
    pop = Population(MLP(40, 10, hidden=(100, 100), residual=True), configs, optimizer="adam", seed=0)
    start = time.perf_counter()
    histories = pop.fit(d.train, d.val, epochs=epochs, batch_size=100, progress="off")
    seconds = time.perf_counter() - start
    train, test = pop.evaluate(d.train), pop.evaluate(d.test)
    members = []
    for k, (cfg, h) in enumerate(zip(configs, histories)):
        w = torch.cat([p.detach().flatten() for n, p in pop.member(k).named_parameters() if p.ndim >= 2])
        members.append(
            {
                **cfg,
                "status": pop.status[k],
                "weight_norm_curve": [float(v) for v in h.to_pandas()["weight_norm"]],
                "zero_fraction": float((w == 0).double().mean()),
                "small_fraction": float((w.abs() < 1e-3).double().mean()),
                "max_abs_weight": float(w.abs().max()),
                "train_accuracy": train[k]["accuracy"],
                "test_accuracy": test[k]["accuracy"],
                "test_loss": test[k]["loss"],
            }
        )
        members[-1]["weight_norm"] = members[-1]["weight_norm_curve"][-1]  # at the end of training
    return {
        "strengths": list(map(float, strengths)),
        "seeds": seeds,
        "epochs": epochs,
        "seconds": seconds,
        "members": members,
    }


def _by_strength(res: dict, key: str) -> list[list[float]]:
    return [[m[key] for m in res["members"] if m["l2"] == l2] for l2 in res["strengths"]]


def table_b(res: dict) -> str:
    lines = [
        "| L2 strength | weight norm | exact zeros | \\|w\\| < 1e-3 | train acc % | test acc % |",
        "|---|---|---|---|---|---|",
    ]
    cols = {
        k: _by_strength(res, k)
        for k in ("weight_norm", "zero_fraction", "small_fraction", "train_accuracy", "test_accuracy")
    }
    for i, l2 in enumerate(res["strengths"]):
        lines.append(
            f"| {l2:g} | {fmt(cols['weight_norm'][i], 2)} | {max(cols['zero_fraction'][i]):.0%} "
            f"| {fmt(cols['small_fraction'][i], 3)} | {fmt(cols['train_accuracy'][i], 1, 100)} "
            f"| {fmt(cols['test_accuracy'][i], 1, 100)} |"
        )
    return "\n".join(lines)


def _seed_errorbar(ax, x, values: np.ndarray, **style) -> None:
    """Mean over the seeds (``values``' columns) with their sd as error bars (none for one seed)."""
    sd = values.std(1, ddof=1) if values.shape[1] > 1 else None
    ax.errorbar(x, values.mean(1), yerr=sd, capsize=3, **style)


def figure_b(res: dict, path: Path) -> None:
    strengths = np.array(res["strengths"])
    x = np.where(strengths > 0, strengths, strengths[strengths > 0].min() / 3)  # 0 drawn left of the grid
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    ax = axes[0]
    norms = np.array(_by_strength(res, "weight_norm"))
    _seed_errorbar(ax, x, norms, fmt="o-")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("L2 strength (Keras formula; leftmost point = 0)")
    ax.set_ylabel("final weight norm ||W||₂")
    ax.set_title("weight norm against strength")
    ax = axes[1]
    for key, label in (("train_accuracy", "train"), ("test_accuracy", "test")):
        acc = 100 * np.array(_by_strength(res, key))
        _seed_errorbar(ax, x, acc, fmt="o-", label=label)
    ax.set_xscale("log")
    ax.set_xlabel("L2 strength (leftmost point = 0)")
    ax.set_ylabel("accuracy %")
    ax.set_title("accuracy against strength")
    ax.legend()
    ax = axes[2]
    cmap = plt.get_cmap("viridis")
    for i, l2 in enumerate(strengths):
        curves = np.array([m["weight_norm_curve"] for m in res["members"] if m["l2"] == l2])
        ax.plot(
            np.arange(1, curves.shape[1] + 1),
            curves.mean(0),
            color=cmap(i / max(1, len(strengths) - 1)),
            label=f"{l2:g}",
        )
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("weight norm (mean over seeds)")
    ax.set_title("weight norm during training")
    ax.legend(title="L2", fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.suptitle(
        f"Claim: L2 shrinks weights smoothly (MNIST-1D MLP 40-100-100-10, Adam, "
        f"{res['epochs']} epochs, {res['seeds']} seeds, mean ± sd)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- main
def report(key: str, res: dict, figures: Path) -> None:
    """Draw the claim's figure and print its tables."""
    if key == "a":
        figure_a(res, figures / "claim_l1_vs_l2.png")
        print(f"## (a) L1 vs L2 on breast_cancer ({res['seeds']} splits, {res['wall_s']:.0f} s)\n")
        print(table_a(res))
        print("\nOrder in which features enter the L1 path (strongest penalty first):\n")
        print(selection_table(res))
    else:
        figure_b(res, figures / "claim_l2_shrinkage.png")
        print(
            f"## (b) L2 shrinkage, MNIST-1D MLP ({res['seeds']} seeds, {res['epochs']} epochs, "
            f"{res['wall_s']:.0f} s)\n"
        )
        print(table_b(res))
    print()


def main(argv: Sequence[str] | None = None) -> int:
    parsed = parse_parts("claims_weights", __doc__, "ab", argv, report)
    if parsed is None:  # --replot
        return 0
    args, only, path, figures = parsed
    seeds = args.seeds
    out = {
        "meta": {
            "smoke": args.smoke,
            "seeds": seeds,
            "torch": torch.__version__,
            "sklearn": sklearn.__version__,
            "threads": torch.get_num_threads(),
            "platform": platform.platform(),
        }
    }
    if "a" in only:
        start = time.perf_counter()
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # 31 parameters per problem: a second thread only adds synchronization
        try:
            res = claim_a(
                seeds,
                n_c=4 if args.smoke else 12,
                max_iter=500 if args.smoke else 20_000,
                adam_epochs=50 if args.smoke else 3_000,
            )
        finally:
            torch.set_num_threads(threads)
        res["wall_s"] = time.perf_counter() - start
        out["a"] = res
        report("a", res, figures)
    if "b" in only:
        start = time.perf_counter()
        strengths = [0, 1e-4, 1e-2] if args.smoke else [0, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2]
        res = claim_b(seeds, strengths, epochs=2 if args.smoke else 60)
        res["wall_s"] = time.perf_counter() - start
        out["b"] = res
        report("b", res, figures)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path} and figures in {figures}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
