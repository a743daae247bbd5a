"""Where generated datasets are cached, and an atomic ``.npz`` write."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import platformdirs

__all__ = ["cache_dir", "save_npz_atomic"]

ENV_VAR = "REGLAB_CACHE_DIR"


def cache_dir() -> Path:
    """The directory reglab caches generated data in (created on demand).

    ``$REGLAB_CACHE_DIR`` when set, else ``platformdirs.user_cache_dir("reglab")``.

    Example:
        >>> cache_dir().name != ""
        True
    """
    path = Path(os.environ.get(ENV_VAR) or platformdirs.user_cache_dir("reglab"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_npz_atomic(path: Path, **arrays: np.ndarray) -> None:
    """Write ``arrays`` to ``path`` so that readers never see a half-written file.

    The arrays go to a temporary file in the same directory, then ``os.replace``
    renames it over ``path`` (atomic on POSIX and Windows), so two processes that
    generate the same dataset at once both leave a complete file.
    """
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
