"""``reglab ls [DIR]``: list the studies under a folder (default ``studies``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from reglab._rich import Table

__all__ = ["register", "run", "find_studies"]

STATUSES = ("done", "diverged", "failed", "running", "interrupted")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("ls", help="list studies in a folder", description="List the studies (folders "
                              "holding study.db) under DIR, with their trial counts and state.")
    p.add_argument("dir", metavar="DIR", nargs="?", default="studies",
                   help="folder to search (default: studies)")
    p.set_defaults(func=run)


def find_studies(root: Path) -> list[Path]:
    """Study directories: ``root`` itself and its sub-folders (two levels) that hold a ``study.db``."""
    found = [root] if (root / "study.db").is_file() else []
    for pattern in ("*/study.db", "*/*/study.db"):
        found += sorted(p.parent for p in root.glob(pattern))
    return found


def _row(path: Path) -> list[str]:
    """A study's row: name, path, trial counts and state; a study that cannot be read is flagged."""
    from sqlalchemy.exc import DBAPIError

    from reglab.errors import UserError
    from reglab.study.export import open_storage
    from reglab.study.storage import driver_message

    try:
        store = open_storage(path)
        try:
            trials = store.trials()
            name = json.loads(store.load_config() or "{}").get("name", "?")
            live = store.live_trials()
            # A trial left "running" by a process that is gone was interrupted: it reruns on resume.
            status = [("interrupted" if t["status"] == "running" and t["id"] not in live else t["status"])
                      for t in trials]
            count = {s: status.count(s) for s in STATUSES}
            state = "complete" if store.load_results() is not None else "incomplete (rerun to resume)"
        finally:
            store.close()
    except (UserError, DBAPIError, OSError, ValueError) as exc:  # one bad study.db must not hide the others
        reason = driver_message(exc) if isinstance(exc, DBAPIError) else str(exc)
        return ["?", str(path), "", "", "", "", "", f"unreadable: {reason}"]
    return [str(name), str(path), str(count["done"]), str(count["diverged"]), str(count["failed"]),
            str(count["running"]), str(count["interrupted"]), state]


def run(args: argparse.Namespace) -> int:
    from reglab.errors import UserError
    from reglab.study.summary import console

    root = Path(args.dir)
    if root.exists() and not root.is_dir():
        raise UserError(f"{args.dir!r} is a file, not a folder; give the folder that holds your studies "
                        "(reglab show FILE shows one study)")
    if not root.is_dir():
        raise UserError(f"no folder {args.dir!r}; give the folder that holds your studies (default: studies)")
    try:
        studies = find_studies(root)
    except OSError as exc:
        where = exc.filename if exc.filename is not None else root
        raise UserError(f"cannot list the studies under {str(root)!r}: {where}: {exc.strerror or exc}") \
            from None
    if not studies:
        print(f"no studies under {root}")
        return 0
    table = Table(title=f"studies under {root}")
    for col in ("study", "path", "finished", "diverged", "failed", "running", "interrupted", "state"):
        table.add_column(col)
    for path in studies:
        table.add_row(*_row(path))
    console().print(table)
    return 0
