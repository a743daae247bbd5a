"""``reglab diagnose HISTORY``: say whether a run over-fits, under-fits, is over-regularized or fine.

Example:
    >>> from reglab.cli import main
    >>> main(["diagnose", "no-such-file.csv"])  # doctest: +SKIP
    2
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from reglab.errors import UserError
from reglab.report.diagnose import TASKS, diagnose
from reglab.report.histories import read_history

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "diagnose",
        help="diagnose a training history (reglab, Keras CSVLogger, Lightning metrics.csv)",
        description="Read training curves and say whether the run over-fits, under-fits, is "
        "over-regularized or is fine, with the evidence and what to try.",
    )
    p.add_argument("history", metavar="HISTORY", help="CSV or JSON file with epoch, train_loss, val_loss")
    p.add_argument("--task", choices=TASKS, help="kind of data: picks the recommendations")
    p.add_argument("--features", type=int, help="number of input features (many features: try L1)")
    p.add_argument("--samples", type=int, help="number of training examples (small data: early stopping)")
    p.add_argument("--params", type=int, help="number of trainable parameters (large model: decay + dropout)")
    p.add_argument("--batchnorm", action="store_true", help="the model uses BatchNorm (dropout <= 0.2)")
    p.add_argument("--json", action="store_true", help="print the diagnosis as JSON")
    p.add_argument(
        "--verify",
        action="store_true",
        help="run a small study of the recommendations (needs the study engine, reglab.study)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.verify:
        _verify_available()
    history = read_history(args.history)
    result = diagnose(
        history,
        task=args.task,
        features=args.features,
        samples=args.samples,
        params=args.params,
        batchnorm=args.batchnorm,
    )
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(result.to_text())
    return 0


def _verify_available() -> None:
    # --verify needs a study of the recommended recipes, and a diagnosed file carries no data or
    # model to rerun; until reglab.study offers that, say so rather than fake a result.
    raise UserError(
        "--verify is not available yet: it needs reglab.study to rerun the recommended recipes; "
        "run `reglab diagnose` without --verify, then compare recipes with `reglab study`."
    )
