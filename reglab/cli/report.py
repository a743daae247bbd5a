"""``reglab report STUDY [--out FILE]``: a self-contained HTML report and a Markdown summary.

Example:
    >>> from reglab.cli import main
    >>> main(["report", "out/my-study", "--out", "report.html"])  # doctest: +SKIP
    0
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from reglab.cli._output import prepare_output

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "report",
        help="write a study's self-contained HTML report and Markdown summary",
        description="Write one HTML file (charts inline, opens offline) and a Markdown summary next to it.",
    )
    p.add_argument("study", metavar="STUDY", help="study directory (with study.db), .db file or database URL")
    p.add_argument("--out", metavar="FILE", help="HTML file to write (default: STUDY/report.html)")
    p.add_argument("--no-describe", action="store_true",
                   help="skip rebuilding the models to list what was regularized (faster)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from reglab.report.from_study import load_study  # here: matplotlib and pandas load only for this command
    from reglab.report.html import write_report

    data = load_study(args.study, describe=not args.no_describe)
    out = Path(args.out) if args.out else _default_out(args.study)
    # A folder is refused first; other names than *.html write_report refuses itself, before any mkdir.
    if args.out and (out.is_dir() or out.suffix.lower() in (".html", ".htm")):
        prepare_output(out, "report.html")
    html_path, md_path = write_report(data, out)
    print(f"wrote {html_path} and {md_path}")
    return 0


def _default_out(study: str) -> Path:
    path = Path(study)
    if "://" in study:
        return Path("report.html")
    return (path if path.is_dir() else path.parent) / "report.html"
