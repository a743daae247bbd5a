"""``reglab study CONFIG``: run or resume a regularization study.

Example:
    >>> from reglab.cli import main
    >>> main(["study", "no-such-config"])  # doctest: +SKIP
    2
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import Any

__all__ = ["register", "run", "failure_line"]


def _positive_int(text: str) -> int:
    """``--workers``: an int >= 1 (argparse turns the ValueError into one line naming the option)."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < 1:
        raise argparse.ArgumentTypeError(f"must be an int >= 1, got {text!r}")
    return value


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "study",
        help="run (or resume) a regularization study from a YAML config or a built-in name",
        description="Run every recipe of a study config over seeds and validation folds, refit the best "
        "strength of each on the training split, test once, and store everything in one database. "
        "Rerunning the same command resumes an interrupted study. The last lines give the verdict: the best "
        "recipe against the baseline (paired difference on the test metric, its 95 % CI and p-value).",
    )
    p.add_argument("config", metavar="CONFIG",
                   help="a YAML file or a built-in study: mnist1d, digits, breast_cancer, diabetes")
    p.add_argument("--out", metavar="DIR",
                   help="study directory (database, checkpoints); default studies/<name>")
    p.add_argument("--backend", choices=("local", "ray"), default="local", help="where trials run")
    p.add_argument("--address", metavar="HOST:PORT", help="Ray cluster address (with --backend ray)")
    p.add_argument("--workers", type=_positive_int, default=None, metavar="N",
                   help="parallel worker processes / Ray CPUs (default: the CPU cores available; results do "
                   "not depend on it)")
    p.add_argument("--storage", metavar="URL",
                   help="database URL instead of DIR/study.db, e.g. postgresql+psycopg://host/db")
    p.add_argument("--quiet", action="store_true", help="no live progress")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from reglab.study.runner import Study, check_study_dir, default_out
    from reglab.study.storage import default_url
    from reglab.study.summary import console, results_table, verdict_line

    study = Study.from_yaml(args.config)
    workers = args.workers if args.workers is not None else len(os.sched_getaffinity(0))
    out = Path(args.out) if args.out else default_out(study.config)
    check_study_dir(out, "--out" if args.out else "the default study folder")
    try:
        summary = study.run(out=out, backend=args.backend, workers=workers, address=args.address,
                            storage=args.storage, progress=False if args.quiet else None)
    except KeyboardInterrupt:
        again = shlex.join(["reglab", *sys.argv[1:]]) if sys.argv[1:2] == ["study"] else "the same command"
        print(f"reglab study: interrupted; finished trials are kept in {out}. Run {again} again to resume.",
              file=sys.stderr)
        return 130
    console().print(results_table(summary))
    print(verdict_line(summary))
    print(f"study stored in {out}" + (f" ({args.storage})" if args.storage else ""))
    failed = failure_line(args.storage or default_url(out), summary)
    if failed:
        print(f"reglab study: error: {failed}", file=sys.stderr)
        return 1
    return 0


def failure_line(url: str, summary: dict[str, Any]) -> str | None:
    """When no trial of a study trained to the end and some failed: one line with the first error.

    A study whose trials all failed (an error in every run, not a diverging loss) has no result;
    the commands that ran it exit 1 with this line. Its trials stay stored.
    """
    from reglab.cli import _one_line
    from reglab.errors import UserError
    from reglab.study.storage import StudyStorage

    if any(r.get("status") == "ok" for r in summary.get("recipes", {}).values()):
        return None
    try:
        store = StudyStorage(url, readonly=True)
    except UserError:  # an in-memory database (--storage sqlite://) is gone with the study
        return None
    try:
        trials = store.trials()
    finally:
        store.close()
    failed = [t for t in trials if t["status"] == "failed"]
    if not failed or any(t["status"] == "done" for t in trials):
        return None
    first = _one_line(str(failed[0]["error"] or "no error recorded"))
    if len(failed) == len(trials):
        return f"every trial failed ({len(trials)} trials); first error: {first}"
    return f"no trial finished: {len(failed)} of {len(trials)} trials failed, the others diverged; " \
           f"first error: {first}"
