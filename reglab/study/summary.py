"""Human-readable study results: a rich table of recipes (mean +- 95 % CI, paired difference vs baseline),
and the software environment a study ran in (recorded in its summary at run time).

Recipes are listed in one order everywhere (``reglab study``'s and ``reglab show``'s tables, the HTML
report's ranking): :func:`rank_recipes`, best test mean first.

Example:
    >>> print(format_ci({"mean": 0.8, "low": 0.75, "high": 0.85, "n": 3}))
    0.800 [0.750, 0.850]
"""

from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Mapping
from importlib import metadata
from typing import Any

from reglab._rich import Console, Table

__all__ = ["results_table", "format_ci", "format_params", "console", "run_environment", "verdict_line",
           "rank_recipes", "recipe_order"]

_PACKAGES = ("reglab", "torch", "numpy", "scikit-learn", "scipy")


def run_environment(threads: int) -> dict[str, str]:
    """Versions and machine of the running process, for a study's summary (``versions``).

    Args:
        threads: the torch thread count each trial ran with (``training.threads``).

    Example:
        >>> env = run_environment(1)
        >>> sorted(k for k in env if k in ("python", "torch", "numpy", "scikit-learn", "reglab"))
        ['numpy', 'python', 'reglab', 'scikit-learn', 'torch']
    """
    out = {"python": platform.python_version()}
    for pkg in _PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:  # reglab run from a source tree without installing it
            out[pkg] = "not installed"
    if out["reglab"] == "not installed":
        import reglab

        out["reglab"] = str(getattr(reglab, "__version__", "unknown"))
    out["platform"] = platform.platform()
    out["torch threads per trial"] = str(threads)
    out["cpus"] = str(os.cpu_count())
    return out


class _Console(Console):
    """rich's Console, but a closed pipe raises BrokenPipeError.

    rich's own handling exits with status 1 (``raise SystemExit(1)``); the ``reglab`` entry point
    catches the error instead and exits quietly with 0, as it does for any other write to stdout.
    """

    def on_broken_pipe(self) -> None:
        raise  # called inside rich's `except BrokenPipeError`: re-raise that error


def console() -> Console:
    """A rich console; when output is not a terminal, wide enough that tables are not wrapped.

    Markup is off: recipe names, parameters and paths are the user's text, and ``[red]x`` or ``[/]``
    in one would be styled or raise rich's MarkupError instead of being shown as written.
    """
    c = _Console(markup=False)
    return c if c.is_terminal else _Console(width=220, markup=False)


def format_ci(stat: dict[str, Any] | None, digits: int = 3) -> str:
    """``mean [low, high]``, or ``-`` when missing."""
    if not stat or stat.get("mean") is None or not math.isfinite(stat["mean"]):
        return "-"
    if not math.isfinite(stat.get("low", math.nan)):
        return f"{stat['mean']:.{digits}f}"
    return f"{stat['mean']:.{digits}f} [{stat['low']:.{digits}f}, {stat['high']:.{digits}f}]"


def format_params(params: dict[str, Any] | None) -> str:
    if params is None:
        return "-"
    parts = []
    for k, v in params.items():
        if isinstance(v, float):
            v = f"{v:.3g}"
        elif isinstance(v, dict | list):
            v = json.dumps(v, separators=(",", ":"))
        parts.append(f"{k}={v}")
    return " ".join(parts) or "(none)"


def verdict_line(summary: dict[str, Any]) -> str:
    """One line answering a study's question: the best recipe against the baseline on the test metric,
    with the paired difference's 95 % CI and p-value (the direction of the metric respected). When the
    baseline itself has the best mean, the line says so and compares the next best recipe with it.

    Example:
        >>> s = {"test_metric": "test_accuracy", "baseline": "none", "seeds": [0, 1, 2], "recipes": {
        ...     "none": {"status": "ok", "best_params": {}, "test": {"mean": 0.8, "low": 0.7, "high": 0.9}},
        ...     "l2": {"status": "ok", "best_params": {"l2": 0.001},
        ...            "test": {"mean": 0.85, "low": 0.8, "high": 0.9},
        ...            "vs_baseline": {"test": {"diff": 0.05, "low": 0.01, "high": 0.09, "p": 0.03,
        ...                                     "n": 3}}}}}
        >>> line = verdict_line(s)
        >>> line.split(" vs ")[0]
        'best recipe: l2 (l2=0.001), test_accuracy 0.850 [0.800, 0.900]'
        >>> for part in line.split(": ")[-1].split("; "):
        ...     print(part)
        difference +0.050 [+0.010, +0.090], p = 0.03 (paired by seed, 3 pairs)
        better than none (CI excludes 0)
    """
    metric, base = summary["test_metric"], summary["baseline"]
    lower = summary.get("lower_is_better", metric.endswith(("loss", "mse")))
    recipes = {n: r for n, r in summary["recipes"].items()
               if r.get("status") == "ok" and math.isfinite((r.get("test") or {}).get("mean", math.nan))}
    if not recipes:
        return f"no recipe finished on {metric}"
    others = {n: r for n, r in recipes.items() if n != base} or recipes
    # The results table's order (rank_recipes): on equal means the table and this line name the same recipe.
    best = rank_recipes({n: r["test"]["mean"] for n, r in others.items()}, lower_is_better=lower)[0]
    r = recipes[best]
    params = format_params(r["best_params"])
    shown = "" if params == "(none)" else f" ({params})"  # "none ((none))" before
    head = f"best recipe: {best}{shown}, {metric} {format_ci(r['test'])}"
    if base in recipes and best != base:
        base_mean, mean = recipes[base]["test"]["mean"], r["test"]["mean"]
        if (base_mean < mean) if lower else (base_mean > mean):
            # The results table just above lists the baseline first: naming another recipe "best" read as
            # a contradiction. Say so, and compare the next best as before.
            head = (f"best recipe: {base} (the baseline: no other recipe has a better mean); next best: "
                    f"{best}{shown}, {metric} {format_ci(r['test'])}")
    cmp = (r.get("vs_baseline") or {}).get("test")
    if best == base:  # no other recipe finished
        return head + " (the baseline; no other recipe finished to compare with it)"
    if base not in recipes or cmp is None:
        return head + f" (no finished baseline {base!r} to compare with)"
    p = "p = -" if not math.isfinite(cmp["p"]) else f"p = {cmp['p']:.2g}"
    diff = (f"difference {cmp['diff']:+.3f}" if not math.isfinite(cmp["low"])
            else f"difference {cmp['diff']:+.3f} [{cmp['low']:+.3f}, {cmp['high']:+.3f}]")
    if math.isfinite(cmp["low"]) and (cmp["low"] > 0 or cmp["high"] < 0):
        good = (cmp["high"] < 0) if lower else (cmp["low"] > 0)
        verdict = f"{'better' if good else 'worse'} than {base} (CI excludes 0)"
    elif cmp["n"] >= 2 and not math.isfinite(cmp["low"]) and cmp["diff"] == 0:
        verdict = f"identical to {base} on every seed (no interval; more seeds cannot separate them)"
    elif cmp["n"] >= 2 and not math.isfinite(cmp["low"]):
        verdict = (f"not distinguishable from {base} (every pair differs by the same amount, so there is "
                   "no interval; add seeds)")
    elif cmp["n"] < 2:
        verdict = f"not distinguishable from {base} (one seed: no interval; add seeds)"
    else:
        verdict = f"not distinguishable from {base} (CI includes 0)"
    pairs = f"{cmp['n']} pair{'s' * (cmp['n'] != 1)}"
    return (f"{head} vs {base} {format_ci(recipes[base]['test'])}: {diff}, {p} "
            f"(paired by seed, {pairs}); {verdict}")


def rank_recipes(means: Mapping[str, float | None], *, lower_is_better: bool) -> list[str]:
    """Recipe names, best mean first; equal means by name, then the recipes without a finite mean by name.

    The one recipe order of ``reglab study``'s and ``reglab show``'s results tables and the HTML
    report's ranking (a stored summary's recipes are sorted by name, a running study's in config order).

    Example:
        >>> rank_recipes({"none": 0.8, "l2": 0.85, "l1": None, "dropout": 0.8}, lower_is_better=False)
        ['l2', 'dropout', 'none', 'l1']
        >>> rank_recipes({"none": 0.3, "l2": 0.2, "bad": float("nan")}, lower_is_better=True)
        ['l2', 'none', 'bad']
    """
    def key(name: str) -> tuple[bool, float, str]:
        mean = means[name]
        if mean is None or not math.isfinite(mean):
            return (True, 0.0, name)
        return (False, mean if lower_is_better else -mean, name)

    return sorted(means, key=key)


def recipe_order(summary: dict[str, Any]) -> list[str]:
    """A study summary's recipes in :func:`rank_recipes` order, by their test mean."""
    lower = summary.get("lower_is_better", summary["test_metric"].endswith(("loss", "mse")))
    means = {n: (r.get("test") or {}).get("mean") if r.get("status") == "ok" else None
             for n, r in summary["recipes"].items()}
    return rank_recipes(means, lower_is_better=lower)


def results_table(summary: dict[str, Any]) -> Table:
    """One row per recipe, best test mean first (:func:`recipe_order`): chosen parameters, validation
    and test scores, difference vs the baseline."""
    metric = summary["test_metric"]
    seeds = len(summary["seeds"])
    better = "lower" if summary.get("lower_is_better", metric.endswith(("loss", "mse"))) else "higher"
    table = Table(title=f"study {summary['study']}: {metric} ({better} is better; mean [95% CI] over "
                  f"{seeds} seed{'s' * (seeds != 1)}; best first)")
    for col in ("recipe", "chosen", "validation", "test", f"vs {summary['baseline']}", "p", "|w|", "zeros"):
        table.add_column(col, overflow="fold")
    for name in recipe_order(summary):
        r = summary["recipes"][name]
        cmp = (r.get("vs_baseline") or {}).get("test")
        diff = "-" if cmp is None else format_ci({"mean": cmp["diff"], "low": cmp["low"],
                                                  "high": cmp["high"]})
        p = "-" if cmp is None or not math.isfinite(cmp["p"]) else f"{cmp['p']:.3g}"
        ok = r["status"] == "ok"
        chosen = format_params(r["best_params"]) if ok else f"no candidate finished ({r['status']})"
        table.add_row(
            name,
            chosen,
            format_ci(r.get("validation")),
            format_ci(r.get("test")),
            diff,
            p,
            "-" if r.get("weight_norm") is None else f"{r['weight_norm']:.3g}",
            "-" if r.get("zero_fraction") is None else f"{r['zero_fraction']:.1%}",
        )
    return table
