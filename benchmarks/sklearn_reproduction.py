"""reglab's proximal training against scikit-learn's Lasso / ElasticNet: docstrings, paths and CV.

Every case fits a linear model (``nn.Linear``, float64) with reglab's :func:`~reglab.optim.proximal`
wrapper around full-batch ``torch.optim.SGD`` with step ``1/L``, plus Nesterov extrapolation: FISTA
(Beck & Teboulle, 2009) with gradient-based adaptive restart (O'Donoghue & Candès, 2015). Along a path
each alpha starts from the previous solution (warm starts, as glmnet and scikit-learn do). The data
loss is scikit-learn's ``1/(2n)·||y - Xw - b||²``; the penalty is ``L1.from_sklearn`` /
``ElasticNet.from_sklearn``; the intercept, when fitted, is the unpenalized bias. The references are
scikit-learn fits at a tight ``tol`` (their defaults stop about 1e-4 relative to the optimum).

Cases: the ``Lasso``, ``lasso_path`` and ``enet_path`` docstring examples; ``enet_path`` on the
standardized diabetes data (l1_ratio 0.5 and 1.0, 100 alphas); ``ElasticNetCV`` on diabetes with
``KFold(5)`` (no shuffle) over l1_ratio {0.5, 1.0}, reproduced by reglab fits of the five folds (one
stacked model, one row per fold) and the mean validation MSE; a larger synthetic lasso path.

Usage:
    python benchmarks/sklearn_reproduction.py                   # all cases, 100 alphas
    python benchmarks/sklearn_reproduction.py --alphas 10        # smoke run
Prints a table and writes JSON (default benchmarks/results/sklearn_reproduction.json).

The functions here are also the harness of ``tests/evidence/test_sklearn_reproduction.py``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from reglab.optim import proximal
from reglab.penalties import L1, ElasticNet, Penalty

DEFAULT_JSON = Path(__file__).parent / "results" / "sklearn_reproduction.json"
TIGHT = {"tol": 1e-14, "max_iter": 1_000_000}  # scikit-learn reference fits: to the last digits


def sklearn_penalty(alpha: float, l1_ratio: float) -> Penalty:
    """scikit-learn's ``ElasticNet(alpha, l1_ratio)`` penalty (``Lasso`` when ``l1_ratio == 1``)."""
    return L1.from_sklearn(alpha) if l1_ratio == 1 else ElasticNet.from_sklearn(alpha, l1_ratio)


class LeastSquares:
    """``K`` independent problems ``1/(2n_k)·||y_k - X_k w_k - b_k||²`` held as Gram matrices.

    The gradient is written out (``H θ - h``) instead of calling autograd on the loss because these
    problems have 10-100 parameters, where autograd's per-step overhead costs 4x the arithmetic.
    ``X.T @ y`` is computed with numpy on a Fortran-ordered ``X``, as scikit-learn computes it for its
    alpha grid: at ``alpha_max`` the solution lies exactly on the soft-threshold, and the two agree on
    its exact zeros only if they round alike there.

    Args:
        xs, ys: one design matrix ``(n_k, p)`` and target ``(n_k,)`` per problem.
        intercept: fit an unpenalized bias per problem.
    """

    def __init__(self, xs: Sequence[np.ndarray], ys: Sequence[np.ndarray], *, intercept: bool):
        grams, linears = [], []
        for x, y in zip(xs, ys):
            n = len(y)
            x = np.asfortranarray(x)
            gram, linear = x.T @ x / n, x.T @ y / n
            if intercept:
                mean = x.sum(0) / n
                gram = np.block([[gram, mean[:, None]], [mean[None, :], np.ones((1, 1))]])
                linear = np.append(linear, y.sum() / n)
            grams.append(gram)
            linears.append(linear)
        self.gram = torch.tensor(np.stack(grams))
        self.linear = torch.tensor(np.stack(linears))
        self.intercept = intercept
        self.features = xs[0].shape[1]
        # One step size for all K problems: 1/L with L the largest curvature among them.
        self.lipschitz = float(torch.linalg.eigvalsh(self.gram).max())

    def grad(self, theta: torch.Tensor) -> torch.Tensor:
        """Gradient of each problem's loss at ``theta`` ``(K, p[+1])`` (weights, then bias)."""
        return torch.bmm(self.gram, theta.unsqueeze(2)).squeeze(2) - self.linear


@dataclass
class PathFit:
    """Solutions along a path: ``coefs[a, k]``, ``intercepts[a, k]`` for alpha ``a`` and problem ``k``."""

    coefs: np.ndarray
    intercepts: np.ndarray
    iterations: int


def _theta(model: nn.Linear) -> torch.Tensor:
    w = model.weight.detach()
    return torch.cat([w, model.bias.detach()[:, None]], 1) if model.bias is not None else w.clone()


def _set(model: nn.Linear, theta: torch.Tensor, attr: str = "data") -> None:
    p = model.weight.shape[1]
    if attr == "grad":
        model.weight.grad = theta[:, :p].contiguous()
        if model.bias is not None:
            model.bias.grad = theta[:, p].contiguous()
        return
    with torch.no_grad():
        model.weight.copy_(theta[:, :p])
        if model.bias is not None:
            model.bias.copy_(theta[:, p])


def fista(
    model: nn.Linear, penalty: Penalty, problem: LeastSquares, *, tol: float = 1e-13, max_iter: int = 100_000
) -> int:
    """Minimize ``problem + penalty`` from the model's current weights; return the iterations used.

    Each iteration is one ``step()`` of ``proximal(SGD(lr=1/L), penalty)`` at the extrapolated point
    (the proximal gradient step), then the FISTA extrapolation. Momentum restarts per problem when
    the step points against the last move. Stops when every problem's proximal-gradient step is at
    most ``tol`` times its largest coefficient (at least 1): with the step ``1/L``, that bounds the
    distance to the optimum by ``2·L/mu`` times the step on a ``mu``-strongly convex problem.
    """
    opt = proximal(torch.optim.SGD(model.parameters(), lr=1 / problem.lipschitz), penalty, model)
    x_prev = _theta(model)
    t = torch.ones(x_prev.shape[0], 1, dtype=x_prev.dtype)
    for iteration in range(1, max_iter + 1):
        y = _theta(model)
        _set(model, problem.grad(y), "grad")
        opt.step()
        x = _theta(model)
        step = x - y
        if float(step.abs().max()) <= tol * max(1.0, float(x.abs().max())):
            return iteration
        t = torch.where(((y - x) * (x - x_prev)).sum(1, keepdim=True) > 0, 1.0, t)
        t_next = (1 + torch.sqrt(1 + 4 * t * t)) / 2
        _set(model, x + (t - 1) / t_next * (x - x_prev))
        x_prev, t = x, t_next
    raise RuntimeError(f"FISTA did not reach tol={tol} in {max_iter} iterations")


def fit_path(
    problem: LeastSquares, alphas: Sequence[float], l1_ratio: float, *, tol: float = 1e-13
) -> PathFit:
    """Warm-started reglab fits of ``problem`` at each of ``alphas`` (in the order given)."""
    k = problem.linear.shape[0]
    model = nn.Linear(problem.features, k, bias=problem.intercept, dtype=torch.float64)
    nn.init.zeros_(model.weight)
    if model.bias is not None:
        nn.init.zeros_(model.bias)
    coefs, intercepts, iterations = [], [], 0
    for alpha in alphas:
        iterations += fista(model, sklearn_penalty(float(alpha), l1_ratio), problem, tol=tol)
        coefs.append(model.weight.detach().numpy().copy())
        intercepts.append(model.bias.detach().numpy().copy() if model.bias is not None else np.zeros(k))
    return PathFit(np.stack(coefs), np.stack(intercepts), iterations)


def cv_mse_path(
    x: np.ndarray, y: np.ndarray, folds: Sequence[tuple[np.ndarray, np.ndarray]], alphas: Sequence[float],
    l1_ratio: float, *, tol: float = 1e-13,
) -> tuple[np.ndarray, int]:
    """Validation MSE ``(n_alphas, n_folds)`` of reglab fits (with intercept) on each fold's training rows.

    The folds are fitted together: one ``nn.Linear`` whose output ``k`` is fold ``k``'s model.
    """
    problem = LeastSquares([x[tr] for tr, _ in folds], [y[tr] for tr, _ in folds], intercept=True)
    path = fit_path(problem, alphas, l1_ratio, tol=tol)
    mse = np.empty((len(alphas), len(folds)))
    for k, (_, val) in enumerate(folds):
        pred = x[val] @ path.coefs[:, k].T + path.intercepts[:, k]
        mse[:, k] = ((pred - y[val, None]) ** 2).mean(0)
    return mse, path.iterations


def standardized_diabetes() -> tuple[np.ndarray, np.ndarray]:
    """Diabetes with standardized columns and centered target (so no intercept is needed)."""
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True)
    return (x - x.mean(0)) / x.std(0), y - y.mean()


# ---------------------------------------------------------------- cases for the benchmark


def _timed(fn: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _row(case: str, ours: np.ndarray, ref: np.ndarray, t_ours: float, t_ref: float, **extra: object) -> dict:
    return {
        "case": case,
        "max_abs_dcoef": float(np.abs(ours - ref).max()),
        "zeros_agree": bool(((ours == 0) == (ref == 0)).all()),
        "zeros": int((ref == 0).sum()),
        "coefs": int(ref.size),
        "reglab_s": t_ours,
        "sklearn_s": t_ref,
        **extra,
    }


def case_paths(
    x: np.ndarray, y: np.ndarray, name: str, l1_ratios: Sequence[float], n_alphas: int
) -> list[dict]:
    """``enet_path`` (no intercept) at ``n_alphas`` alphas vs reglab's warm-started path."""
    from sklearn.linear_model import enet_path

    rows = []
    problem = LeastSquares([x], [y], intercept=False)
    for ratio in l1_ratios:
        (alphas, ref, _), t_ref = _timed(
            lambda r=ratio: enet_path(x, y, l1_ratio=r, alphas=n_alphas, **TIGHT)
        )
        fit, t_ours = _timed(lambda r=ratio, a=alphas: fit_path(problem, a, r))
        rows.append(_row(f"enet_path {name} l1_ratio={ratio} ({n_alphas} alphas)", fit.coefs[:, 0].T, ref,
                         t_ours, t_ref, iterations=fit.iterations))
    return rows


def case_cv(x: np.ndarray, y: np.ndarray, l1_ratios: Sequence[float], n_alphas: int) -> dict:
    """``ElasticNetCV(cv=KFold(5))`` vs reglab fits of the same folds: chosen (l1_ratio, alpha) and MSEs."""
    from sklearn.linear_model import ElasticNetCV
    from sklearn.model_selection import KFold

    folds = list(KFold(5).split(x))
    cv = ElasticNetCV(l1_ratio=list(l1_ratios), alphas=n_alphas, cv=folds, **TIGHT)
    ref, t_ref = _timed(lambda: cv.fit(x, y))
    start, mse, iterations = time.perf_counter(), [], 0
    for ratio, alphas in zip(l1_ratios, ref.alphas_):
        m, it = cv_mse_path(x, y, folds, alphas, ratio)
        mse.append(m)
        iterations += it
    t_ours = time.perf_counter() - start
    mse = np.stack(mse)
    best = np.unravel_index(np.argmin(mse.mean(2)), mse.shape[:2])
    chosen = (l1_ratios[best[0]], float(ref.alphas_[best]))
    return {
        "case": f"ElasticNetCV diabetes KFold(5) l1_ratio={list(l1_ratios)} ({n_alphas} alphas)",
        "max_rel_dmse": float((np.abs(mse - ref.mse_path_) / ref.mse_path_).max()),
        "same_choice": chosen == (ref.l1_ratio_, ref.alpha_),
        "chosen": {"l1_ratio": chosen[0], "alpha": chosen[1]},
        "sklearn_chosen": {"l1_ratio": float(ref.l1_ratio_), "alpha": float(ref.alpha_)},
        "reglab_s": t_ours,
        "sklearn_s": t_ref,
        "iterations": iterations,
    }


def case_docstrings() -> list[dict]:
    """The ``Lasso``, ``lasso_path`` and ``enet_path`` docstring examples against tight references."""
    from sklearn.datasets import make_regression
    from sklearn.linear_model import Lasso, enet_path, lasso_path

    rows = []
    x, y = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]), np.array([0.0, 1.0, 2.0])
    ref, t_ref = _timed(lambda: Lasso(alpha=0.1, **TIGHT).fit(x, y))
    fit, t_ours = _timed(lambda: fit_path(LeastSquares([x], [y], intercept=True), [0.1], 1.0))
    # Identical columns: every split of 0.85 between them is optimal; compare what is identified.
    rows.append({
        **_row("Lasso docstring (coef sum, intercept)",
               np.array([fit.coefs[0, 0].sum(), fit.intercepts[0, 0]]),
               np.array([ref.coef_.sum(), ref.intercept_]), t_ours, t_ref),
        "reglab_coef": fit.coefs[0, 0].tolist(), "sklearn_coef": ref.coef_.tolist(),
    })
    x = np.array([[1, 2, 3.1], [2.3, 5.4, 4.3]]).T
    y = np.array([1, 2, 3.1])
    (_, ref, _), t_ref = _timed(lambda: lasso_path(x, y, alphas=[5.0, 1.0, 0.5], **TIGHT))
    fit, t_ours = _timed(lambda: fit_path(LeastSquares([x], [y], intercept=False), [5.0, 1.0, 0.5], 1.0))
    rows.append(_row("lasso_path docstring", fit.coefs[:, 0].T, ref, t_ours, t_ref))
    x, y = make_regression(n_samples=100, n_features=5, n_informative=2, random_state=0)
    (alphas, ref, _), t_ref = _timed(lambda: enet_path(x, y, alphas=3, **TIGHT))
    fit, t_ours = _timed(lambda: fit_path(LeastSquares([x], [y], intercept=False), alphas, 0.5))
    rows.append(_row("enet_path docstring", fit.coefs[:, 0].T, ref, t_ours, t_ref))
    return rows


def run(n_alphas: int) -> dict:
    from sklearn.datasets import make_regression
    from sklearn.linear_model import Lasso

    torch.set_num_threads(1)
    x, y = standardized_diabetes()
    # Warm-up, untimed: the first calls into torch, LAPACK and scikit-learn pay one-off setup costs.
    fit_path(LeastSquares([x[:50]], [y[:50]], intercept=True), [1.0], 1.0)
    Lasso(alpha=1.0).fit(x[:50], y[:50])
    rows = case_docstrings() + case_paths(x, y, "diabetes", (0.5, 1.0), n_alphas)
    big_x, big_y = make_regression(
        n_samples=1000, n_features=100, n_informative=10, noise=10.0, random_state=0
    )
    big_x = (big_x - big_x.mean(0)) / big_x.std(0)
    rows += case_paths(big_x, big_y - big_y.mean(), "make_regression 1000x100", (1.0,), n_alphas)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a ConvergenceWarning would make the reference unusable
        cv = case_cv(x, y, (0.5, 1.0), n_alphas)
    return {
        "rows": rows,
        "cv": cv,
        "machine": {"platform": platform.platform(), "torch": torch.__version__, "threads": 1},
    }


def print_table(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="reglab proximal fits vs scikit-learn (tight tol), float64")
    for col in ("case", "max |Δcoef|", "zeros agree", "zeros", "reglab s", "sklearn s"):
        table.add_column(col, justify="left" if col == "case" else "right")
    for r in result["rows"]:
        table.add_row(r["case"], f"{r['max_abs_dcoef']:.1e}", "yes" if r["zeros_agree"] else "NO",
                      f"{r['zeros']}/{r['coefs']}", f"{r['reglab_s']:.2f}", f"{r['sklearn_s']:.3f}")
    console = Console()
    console.print(table)
    cv = result["cv"]
    console.print(
        f"{cv['case']}: same choice: {'yes' if cv['same_choice'] else 'NO'} "
        f"(reglab {cv['chosen']}, sklearn {cv['sklearn_chosen']}); "
        f"max relative |Δ mse_path_| {cv['max_rel_dmse']:.1e}; "
        f"reglab {cv['reglab_s']:.2f} s, sklearn {cv['sklearn_s']:.3f} s"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alphas", type=int, default=100, help="alphas per path (default 100)")
    parser.add_argument("--json", default=str(DEFAULT_JSON), help="where to write the results")
    args = parser.parse_args(argv)
    result = run(args.alphas)
    result["alphas"] = args.alphas
    print_table(result)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    ok = all(r["zeros_agree"] and r["max_abs_dcoef"] < 1e-6 for r in result["rows"])
    return 0 if ok and result["cv"]["same_choice"] and result["cv"]["max_rel_dmse"] < 1e-8 else 1


if __name__ == "__main__":
    raise SystemExit(main())
