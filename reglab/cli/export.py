"""``reglab export STUDY --format csv|json [--epochs] [--out FILE]``: a row per finished trial (or epoch)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from reglab.cli._output import prepare_output
from reglab.errors import UserError

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a study's trials as CSV or JSON",
        description="Write one row per finished trial (phase, recipe, parameters, seed, fold, status, "
        "final metrics), sorted deterministically; wall-clock timings are left out, so the same config "
        "and seeds export the same bytes. fold is a selection trial's validation fold (0 .. k-1 with "
        "kfold, 0 with holdout); -1 marks a final trial: refit on the training split and the only one "
        "scored on the test split (its test_* columns).",
    )
    p.add_argument("study", metavar="STUDY", help="study directory, its study.db, or a database URL")
    p.add_argument("--format", choices=("csv", "json"), default="csv", help="output format (default: csv)")
    p.add_argument("--epochs", action="store_true", help="one row per epoch of every finished trial")
    p.add_argument("--out", metavar="FILE", help="write here instead of standard output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from reglab.study.export import export, open_storage

    store = open_storage(args.study)
    try:
        text = export(store, args.format, epochs=args.epochs)
    finally:
        store.close()
    if args.out:
        out = Path(args.out)
        prepare_output(out, f"trials.{args.format}")
        try:
            out.write_text(text)
        except OSError as exc:
            raise UserError(f"--out {args.out!r} cannot be created: {exc.strerror or exc}") from None
    else:
        sys.stdout.write(text)
    return 0
