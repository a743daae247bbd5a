"""``reglab demo [--quick] [--out DIR]``: the default MNIST-1D study, its ranking and its report.

The demo is an ordinary study (the built-in ``mnist1d`` config), so it resumes like one: rerunning the
same command after an interruption finishes it without repeating finished trials. ``--quick`` runs a
small version (fewer recipes, seeds and epochs) that still goes through every stage: search, refit,
test, ranking and report.

Example:
    >>> from reglab.cli import main
    >>> main(["demo", "--quick", "--out", "demo-quick"])  # doctest: +SKIP
    0
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from reglab.cli.study import _positive_int  # --workers 0: one line naming the option, as `reglab study` says

__all__ = ["register", "run", "quick_config"]

# --quick keeps one recipe per stage of the pipeline: the baseline, a searched strength (grid, so a
# regularization path), a fixed in-model regularizer, augmentation and early stopping.
QUICK_RECIPES = ("none", "l2", "dropout_0.2", "augment", "early_stopping")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "demo",
        help="run the default MNIST-1D study, print its ranking and write its HTML report",
        description="Run the built-in mnist1d study (resumable), print the ranking of recipes and write "
        "a self-contained HTML report into the study directory.",
    )
    p.add_argument("--quick", action="store_true", help="a small version that exercises every stage")
    p.add_argument("--out", metavar="DIR",
                   help="study directory (default: studies/demo or studies/demo-quick)")
    p.add_argument("--workers", type=_positive_int, default=2, metavar="N",
                   help="parallel worker processes (default 2)")
    p.add_argument("--quiet", action="store_true", help="no live progress")
    p.set_defaults(func=run)


def quick_config() -> Any:
    """The built-in mnist1d study cut down to a few recipes, 2 seeds and 3 epochs."""
    from reglab.study.schema import StudyConfig, load_config

    full = load_config("mnist1d").model_dump()
    full["name"] = "mnist1d-quick"
    full["description"] = "A quick version of the default study (reglab demo --quick)."
    full["recipes"] = {k: v for k, v in full["recipes"].items() if k in QUICK_RECIPES}
    full["seeds"] = [0, 1]
    full["training"]["epochs"] = 3
    return StudyConfig.model_validate(full)


def run(args: argparse.Namespace) -> int:
    from reglab.cli.study import failure_line
    from reglab.errors import UserError
    from reglab.report.from_study import load_study
    from reglab.report.html import write_report
    from reglab.study.runner import Study, check_study_dir
    from reglab.study.schema import load_config
    from reglab.study.storage import OtherStudyError, default_url
    from reglab.study.summary import console, results_table, verdict_line

    config = quick_config() if args.quick else load_config("mnist1d")
    out = Path(args.out) if args.out else Path("studies") / ("demo-quick" if args.quick else "demo")
    check_study_dir(out, "--out" if args.out else "the default study folder")
    print(f"reglab demo: {config.description} -> {out}")
    try:
        summary = Study(config).run(out=out, workers=args.workers, progress=False if args.quiet else None)
    except KeyboardInterrupt:
        again = shlex.join(["reglab", *sys.argv[1:]]) if sys.argv[1:2] == ["demo"] else "the same command"
        print(f"reglab demo: interrupted; finished trials are kept in {out}. Run {again} again to resume.",
              file=sys.stderr)
        return 130
    except OtherStudyError as exc:  # its own line: the demo has no --storage to suggest
        where = f"--out {str(out)!r}" if args.out else f"the default study folder {str(out)!r}"
        raise UserError(f"{where} holds another study ({exc.stored_name!r}), not this demo; give the demo a "
                        "folder of its own with --out DIR") from None
    console().print(results_table(summary))
    print(verdict_line(summary))
    failed = failure_line(default_url(out), summary)
    if failed:
        print(f"reglab demo: error: {failed}", file=sys.stderr)
        return 1
    html_path, md_path = write_report(load_study(out), out / "report.html")
    print(f"report: {html_path.resolve()}")
    print(f"summary: {md_path.resolve()}")
    return 0
