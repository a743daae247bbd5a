"""The ``reglab`` command. Each subcommand lives in its own module under ``reglab.cli``.

A subcommand module defines ``register(subparsers) -> None`` (adds its parser and sets
``func``) and a ``run(args) -> int``. User mistakes (``UserError``, ``InvalidParameterError``,
a missing file) become one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from reglab._validation import InvalidParameterError
from reglab.errors import UserError

__all__ = ["main", "build_parser"]

# Subcommand modules, in the order `reglab --help` lists them.
COMMANDS = ("demo", "diagnose", "report", "study", "ls", "show", "export")


def build_parser() -> argparse.ArgumentParser:
    from reglab import __version__

    parser = argparse.ArgumentParser(
        prog="reglab",
        description="Regularization lab: compare, measure and diagnose regularization of neural networks.",
    )
    parser.add_argument("--version", action="version", version=f"reglab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"reglab.cli.{name}").register(sub)
    return parser


def _one_line(text: str) -> str:
    """``text`` with line breaks and other control characters escaped (a path may hold a newline)."""
    return "".join(c if c.isprintable() or c == " " else c.encode("unicode_escape").decode() for c in text)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (UserError, InvalidParameterError) as exc:
        print(f"reglab {args.command}: error: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        where = _one_line(str(exc.filename))
        print(f"reglab {args.command}: error: file not found: {where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"reglab {args.command}: interrupted; finished results are kept.", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
