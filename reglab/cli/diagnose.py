"""``reglab diagnose HISTORY``: say whether a run over-fits, under-fits, is over-regularized or fine.

Example:
    >>> from reglab.cli import main
    >>> main(["diagnose", "no-such-file.csv"])  # doctest: +SKIP
    2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from reglab.errors import UserError

# reglab.report.diagnose's TASKS, spelled here so that building the parser (every `reglab` command) does
# not import reglab.report, pandas and matplotlib; tests/cli/test_startup_cli.py checks they agree.
TASKS = ("image", "text", "tabular", "signal")

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
        help="run a small study of the recommendations against the run's recipe (needs --config)",
    )
    p.add_argument("--config", metavar="CONFIG", help="with --verify: the study config (YAML or built-in "
                   "name) the run came from: its data, model, training and baseline recipe")
    p.add_argument("--verify-out", metavar="DIR", help="with --verify: the verification study's directory "
                   "(default: a 'verify' folder next to HISTORY)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.verify and not args.config:
        raise UserError(
            "--verify needs --config CONFIG, the study config the run came from (its data, model and "
            "baseline recipe): a history file alone cannot be rerun."
        )
    given = [flag for flag, value in (("--config", args.config), ("--verify-out", args.verify_out)) if value]
    if given and not args.verify:
        verb = "applies" if len(given) == 1 else "apply"
        raise UserError(f"{' and '.join(given)} only {verb} with --verify; add --verify to check the advice")
    from reglab.report.diagnose import diagnose, json_safe
    from reglab.report.histories import read_history

    history = read_history(args.history)
    result = diagnose(
        history,
        task=args.task,
        features=args.features,
        samples=args.samples,
        params=args.params,
        batchnorm=args.batchnorm,
    )
    out = result.to_dict()
    text = result.to_text()
    if args.verify:
        from reglab.report.verify import verify

        where = Path(args.verify_out) if args.verify_out else Path(args.history).parent / "verify"
        checked = verify(result, args.config, out=where)
        out["verification"] = [dataclasses.asdict(v) for v in checked]
        text += f"\nVerification (study in {where}; paired difference vs the run's recipe, 95% CI):"
        for v in checked:
            text += f"\n  - {v.action}: {v.outcome}{_interval(v)}"
    if args.json:
        print(json.dumps(json_safe(out), indent=2))
    else:
        print(text)
    return 0


def _interval(v: Any) -> str:
    """The paired difference and its CI; no interval when every pair differs by the same amount."""
    if v.pairs < 2 or not math.isfinite(v.diff):
        return ""
    if math.isfinite(v.low) and math.isfinite(v.high):
        return f": {v.diff:+.4g} [{v.low:+.4g}, {v.high:+.4g}], {v.pairs} pairs"
    if v.diff == 0:
        return (f": identical to the run's recipe on every seed, {v.pairs} pairs (no interval; more seeds "
                "cannot separate them)")
    return f": {v.diff:+.4g}, {v.pairs} pairs (no interval: every pair differs by the same amount)"
