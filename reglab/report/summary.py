"""The report's tables as data and as a Markdown summary.

Example:
    >>> import pandas as pd
    >>> from reglab.report.aggregate import StudyData
    >>> t = pd.DataFrame({"trial_id": [0, 1], "recipe": ["none", "l2"], "seed": [0, 0]})
    >>> e = pd.DataFrame({"trial_id": [0, 1], "epoch": [0, 0], "train_loss": [1.0, 1.0],
    ...                   "val_loss": [1.0, 1.0]})
    >>> r = pd.DataFrame({"trial_id": [0, 1], "test_accuracy": [0.6, 0.7]})
    >>> print(markdown_summary(StudyData("s", t, e, r, baseline="none")).splitlines()[0])
    # Study report: s
"""

from __future__ import annotations

import html
import json
import math
import re
from typing import Any

from reglab.errors import UserError
from reglab.report.aggregate import StudyData, ranking, shared_mean_curves
from reglab.report.diagnose import diagnose

__all__ = ["ranking_rows", "recipe_diagnoses", "markdown_summary", "fmt"]


def fmt(x: Any, digits: int = 4) -> str:
    """A number for a table: ``-`` when missing."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    if isinstance(x, int):
        return str(x)
    return f"{x:.{digits}g}"


def recipe_diagnoses(data: StudyData) -> dict[str, str]:
    """The :func:`~reglab.report.diagnose.diagnose` verdict of each recipe's mean curves, over the epochs
    that every one of the recipe's trials reached."""
    out = {}
    # Early stopping ends trials at different epochs. Past the first stop the mean is over the trials left,
    # and the curve steps where one drops out: a recipe whose every trial stopped on a rising validation
    # loss read as "under-fitting, still improving".
    curves = shared_mean_curves(data)
    for recipe, c in curves.groupby(curves["recipe"].astype(str), sort=False):
        try:
            out[recipe] = diagnose(c).label
        except UserError:
            out[recipe] = "-"  # too few epochs to tell
    return out


def ranking_rows(data: StudyData, *, confidence: float = 0.95) -> list[dict[str, str]]:
    """The ranking table as formatted strings: mean ± CI, paired difference with the baseline.

    A recipe without a mean has no rank (``-``); one of ``data.unfinished`` says why in its ``mean``
    cell (e.g. ``no result: no candidate finished (diverged)``), as ``reglab show`` does. With one
    trial (or no spread) there is no interval: the mean is shown alone and the CI as ``-``. An
    interval clipped to the metric's range is no longer centred on the mean: ``0.95 -0.64/+0.05``.
    """
    verdicts = recipe_diagnoses(data)
    rows = []
    for rank, r in enumerate(ranking(data, confidence=confidence).itertuples(index=False), 1):
        if r.recipe == data.baseline:
            diff = "baseline"
        elif r.pairs:
            spread = math.isfinite(r.diff_low) and math.isfinite(r.diff_high)
            diff_ci = f" [{fmt(r.diff_low)}, {fmt(r.diff_high)}]" if spread else ""
            pairs = f"{r.pairs} pair{'s' * (r.pairs != 1)}"
            diff = f"{fmt(r.diff)}{diff_ci} (p={fmt(r.p_value, 2)}, {pairs})"
        else:
            diff = "-"
        interval = math.isfinite(r.ci_low) and math.isfinite(r.ci_high)
        if r.recipe in data.unfinished:
            mean = f"no result: {data.unfinished[r.recipe]}"
        elif interval:
            below, above = r.mean - r.ci_low, r.ci_high - r.mean
            if math.isclose(below, above, rel_tol=1e-9, abs_tol=1e-12):
                mean = f"{fmt(r.mean)} ± {fmt((r.ci_high - r.ci_low) / 2, 2)}"
            else:  # clipped to the metric's range (an accuracy's [0, 1]): a half-width would shift it
                mean = f"{fmt(r.mean)} -{fmt(below, 2)}/+{fmt(above, 2)}"
        else:
            mean = fmt(r.mean)
        rows.append(
            {
                "rank": str(rank) if r.n else "-",
                "recipe": r.recipe,
                "n": str(r.n),
                "mean": mean,
                "ci": f"[{fmt(r.ci_low)}, {fmt(r.ci_high)}]" if interval else "-",
                "diff": diff,
                "diagnosis": verdicts.get(r.recipe, "-"),
            }
        )
    return rows


def _md(text: str) -> str:
    # Markdown renders inline HTML and splits tables on '|': escape both.
    return html.escape(str(text), quote=False).replace("|", "\\|")


def markdown_summary(data: StudyData, *, confidence: float = 0.95) -> str:
    """A short Markdown summary: ranking, what was regularized, how to reproduce."""
    lines = [f"# Study report: {_md(data.name)}", ""]
    base = f"; differences are paired against `{_md(data.baseline)}`" if data.baseline else ""
    better = "higher" if data.higher_is_better else "lower"
    lines += [f"Ranking by **{_md(data.metric)}** ({better} is better; best first; mean ± {confidence:.0%} "
              f"t-interval half-width, clipped to the metric's range{base}).", ""]
    lines += [
        "| # | recipe | n | mean ± CI | CI | Δ vs baseline [CI] | diagnosis |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in ranking_rows(data, confidence=confidence):
        lines.append(
            "| "
            + " | ".join(_md(r[k]) for k in ("rank", "recipe", "n", "mean", "ci", "diff", "diagnosis"))
            + " |"
        )
    if data.selection is not None and not data.selection.empty:
        lines += ["", "## What was regularized", ""]
        cols = list(data.selection.columns)
        lines += ["| " + " | ".join(map(_md, cols)) + " |", "|" + "---|" * len(cols)]
        lines += [
            "| " + " | ".join(_md(v) for v in row) + " |" for row in data.selection.itertuples(index=False)
        ]
    seeds = sorted(set(int(s) for s in data.trials["seed"]))
    lines += ["", "## Reproduce", "", f"Seeds: {', '.join(map(str, seeds))}"]
    if data.versions:
        lines.append("Versions: " + ", ".join(f"{_md(k)} {_md(v)}" for k, v in data.versions.items()))
    if data.config:
        text = json.dumps(data.config, indent=2, sort_keys=True, default=str)
        # Code fences show their content literally; make the fence longer than any backtick run in it.
        fence = "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", text)), default=0))
        lines += ["", fence + "json", text, fence]
    return "\n".join(lines) + "\n"
