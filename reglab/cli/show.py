"""``reglab show STUDY``: a study's config, trial counts and results table."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("show", help="show a study's results", description="Print a study's "
                              "dataset, protocol, trial counts and results (mean [95% CI], paired difference "
                              "vs the baseline) and each recipe's regularization path.")
    p.add_argument("study", metavar="STUDY", help="study directory, its study.db, or a database URL")
    p.add_argument("--paths", action="store_true", help="also print each recipe's regularization path")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from reglab.study.export import open_storage
    from reglab.study.summary import console as summary_console
    from reglab.study.summary import format_ci, format_params, recipe_order, results_table

    store = open_storage(args.study)
    try:
        config = json.loads(store.load_config() or "{}")
        trials = store.trials()
        live = store.live_trials()
        summary = store.load_results()
    finally:
        store.close()
    console = summary_console()
    v = config.get("validation", {})
    protocol = f"{v.get('folds')}-fold CV" if v.get("kind") == "kfold" else "hold-out validation"
    data = config.get("dataset", {})
    dataset = data.get("name") or data.get("path")
    family = config.get("model", {}).get("family")
    recipes = len(config.get("recipes", {}))
    console.print(f"study {config.get('name')}: dataset {dataset}, model {family}, {recipes} "
                  f"recipe{'s' * (recipes != 1)}, "
                  f"seeds {config.get('seeds')}, {protocol}")
    counts: dict[str, int] = {}
    for t in trials:
        # Left "running" by a process that is gone: interrupted, rerun on resume.
        status = "interrupted" if t["status"] == "running" and t["id"] not in live else t["status"]
        counts[status] = counts.get(status, 0) + 1
    console.print("trials: " + (", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none"))
    if summary is None:
        console.print("no results yet: the study has not finished (rerun `reglab study` to resume)")
        return 0
    console.print(results_table(summary))
    if args.paths:
        for name in recipe_order(summary):  # the results table's order
            r = summary["recipes"][name]
            if not r["searched"]:
                continue
            console.print(f"path of {name} ({summary['metric']}, weight norm, exact zeros):")
            for point in r["path"]:
                score, norm = format_ci(point[summary["metric"]]), format_ci(point["weight_norm"])
                zeros = format_ci(point["zero_fraction"])
                bad = f", {point['diverged']} diverged" if point["diverged"] else ""
                console.print(f"  {format_params(point['params'])}: {score}, |w| {norm}, zeros {zeros}{bad}")
    return 0
