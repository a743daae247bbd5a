"""The ``reglab`` command. Each subcommand lives in its own module under ``reglab.cli``.

A subcommand module defines ``register(subparsers) -> None`` (adds its parser and sets
``func``) and a ``run(args) -> int``. User mistakes (``UserError``, ``InvalidParameterError``,
a missing file, another ``OSError`` about a path, a database that cannot be read) become one line
on stderr and exit code 2, never a traceback. Output whose reader stops early (``reglab show S | head -1``)
ends the command quietly with exit code 0. Ctrl-C at any moment ends it with one line and exit code 130.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
from types import FrameType
from typing import NoReturn

from reglab._validation import InvalidParameterError
from reglab.errors import UserError

__all__ = ["main", "build_parser"]

# Subcommand modules, in the order `reglab --help` lists them.
COMMANDS = ("demo", "diagnose", "report", "study", "ls", "show", "export")


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage mistake said in one line (argparse prints the whole usage first)."""

    subcommands: dict[str, argparse.ArgumentParser]  # the top-level parser's, set by build_parser

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {_one_line(message)} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from reglab import __version__

    parser = _Parser(
        prog="reglab",
        description="Regularization lab: compare, measure and diagnose regularization of neural networks.",
    )
    parser.add_argument("--version", action="version", version=f"reglab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"reglab.cli.{name}").register(sub)
    parser.subcommands = sub.choices  # name -> its parser: main() reports its stray arguments through it
    return parser


def _parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """``parse_args``, but an argument no parser knows is reported by the parser it was given to.

    ``parse_args`` leaves the unknown ones to the top-level parser, whose one line then pointed to
    ``reglab --help``, which does not list a subcommand's options.
    """
    args, extras = parser.parse_known_args(argv)
    if extras:
        argv = sys.argv[1:] if argv is None else list(argv)
        command = getattr(args, "command", None)
        chosen = getattr(parser, "subcommands", {}).get(command) if command else None
        # An unknown option before the subcommand's name was given to `reglab` itself.
        before = argv[: argv.index(command)] if command in argv else argv
        if chosen is None or any(e in before for e in extras):
            chosen = parser
        chosen.error(f"unrecognized arguments: {' '.join(extras)}")
    return args


def _one_line(text: str) -> str:
    """``text`` with line breaks and other control characters escaped (a path may hold a newline)."""
    return "".join(c if c.isprintable() or c == " " else c.encode("unicode_escape").decode() for c in text)


def _storage_error(exc: BaseException, where: str | None = None) -> str | None:
    """The line for a database that cannot be read (corrupt, locked, gone), naming ``where`` (the study
    folder, file or URL the command was given) when known, else None.

    Only sqlalchemy's ``OperationalError`` and plain ``DatabaseError`` count: an ``IntegrityError`` or a
    ``ProgrammingError`` is a bug in reglab and keeps its traceback.
    """
    sa_exc = sys.modules.get("sqlalchemy.exc")
    if sa_exc is None or type(exc) not in (sa_exc.OperationalError, sa_exc.DatabaseError):
        return None
    from reglab.study.storage import driver_message

    at = f" at {where!r}" if where else ""
    return f"the study database{at} cannot be read: {driver_message(exc)}"


# The line a Ctrl-C inside an import prints (set to name the command once it is known).
_interrupted_line = ["reglab: interrupted"]


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    """Python's SIGINT handler (raise KeyboardInterrupt), except inside an import: exit 130 at once.

    A KeyboardInterrupt raised inside an import was swallowed by some libraries (the command then ran
    to its end) or left a module half-initialized, whose next use recursed (numpy's ``__getattr__``:
    a RecursionError traceback). A study's database is safe at any instant (it survives kill -9).
    """
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib."):
            for stream, text in ((sys.stdout, ""), (sys.stderr, _interrupted_line[0] + "\n")):
                try:
                    stream.write(text)
                    stream.flush()
                except (OSError, ValueError):  # a closed or broken stream: nothing more to say
                    pass
            os._exit(130)
        frame = frame.f_back
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    # Only where Python's own handler is in place (not under SIG_IGN, a background job's, nor another
    # program's), and only in the main thread, where signal handlers can be set.
    ours = threading.current_thread() is threading.main_thread() and \
        signal.getsignal(signal.SIGINT) is signal.default_int_handler
    _interrupted_line[0] = "reglab: interrupted"
    if ours:
        signal.signal(signal.SIGINT, _on_sigint)
    try:
        return _guarded_main(argv)
    finally:
        if ours:
            signal.signal(signal.SIGINT, signal.default_int_handler)


def _guarded_main(argv: list[str] | None) -> int:
    try:
        code = _main(argv)
        # Output still buffered would otherwise meet the closed pipe in the interpreter's flush at exit,
        # which prints "Exception ignored ... BrokenPipeError" and exits 120.
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader stopped early (`reglab show S | head -1`): stop quietly, as `git log | head` does.
        # Python's recipe (signal module docs, "Note on SIGPIPE"): point stdout at devnull, so that the
        # flush at exit has nowhere to fail.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 0
    except KeyboardInterrupt:
        # Ctrl-C before the command ran (while its modules import) or while it reported one: no traceback.
        # (A command's own run() catches it first and says what was kept.)
        print("reglab: interrupted", file=sys.stderr)
        return 130
    return code


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = _parse(parser, argv)
    if args.command:
        kept = "; finished results are kept." if args.command in ("study", "demo") else ""
        _interrupted_line[0] = f"reglab {args.command}: interrupted{kept}"
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (UserError, InvalidParameterError) as exc:
        print(f"reglab {args.command}: error: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        if exc.filename is None:
            raise
        where = _one_line(str(exc.filename))
        print(f"reglab {args.command}: error: file not found: {where}", file=sys.stderr)
        return 2
    except OSError as exc:  # PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError, ...
        if exc.filename is None:  # not about a path the user gave (a broken pipe, a socket): not theirs
            raise
        where = str(exc.filename) + (f" -> {exc.filename2}" if exc.filename2 is not None else "")
        print(f"reglab {args.command}: error: {_one_line(where)}: {_one_line(exc.strerror or str(exc))}",
              file=sys.stderr)
        return 2
    except Exception as exc:
        # The database the command opened: a STUDY argument, or `reglab study`'s --storage / --out.
        given = (getattr(args, name, None) for name in ("study", "storage", "out"))
        where = next((str(value) for value in given if value), None)
        line = _storage_error(exc, where)
        if line is None:
            raise
        print(f"reglab {args.command}: error: {_one_line(line)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Only study and demo write results: `reglab ls` said "interrupted; finished results are kept."
        print(_interrupted_line[0], file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
