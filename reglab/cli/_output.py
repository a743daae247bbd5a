"""Output file paths of the ``reglab`` subcommands that write one (``export``, ``report``)."""

from __future__ import annotations

from pathlib import Path

from reglab.errors import UserError

__all__ = ["prepare_output"]


def prepare_output(out: Path, example: str) -> None:
    """Check an output file path and create its missing folders; a path that cannot be one raises UserError.

    ``example`` is a file name suggested when ``out`` is a folder.
    """
    if out.is_dir():
        raise UserError(f"--out {str(out)!r} is a directory; give a file name, e.g. {str(out / example)!r}")
    above = next((p for p in out.parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise UserError(f"--out {str(out)!r} cannot be created: {str(above)!r} is a file, not a folder")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out {str(out)!r} cannot be created: its folder {str(out.parent)!r} cannot be "
                        f"made ({exc.strerror or exc})") from None
