"""Built-in study configs shipped in ``reglab/configs/``: ``reglab study mnist1d`` finds them by name."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from reglab._validation import did_you_mean
from reglab.errors import UserError

__all__ = ["builtin_names", "resolve"]


def _configs_dir() -> Path:
    return Path(str(resources.files("reglab") / "configs"))


def builtin_names() -> list[str]:
    """Names of the built-in study configs.

    Example:
        >>> "mnist1d" in builtin_names()
        True
    """
    return sorted(p.stem for p in _configs_dir().glob("*.yaml"))


def resolve(path_or_name: str | Path) -> Path:
    """A config file path: the path itself when it exists, else the built-in config of that name."""
    path = Path(path_or_name)
    if path.is_file():
        return path
    builtin = _configs_dir() / f"{path_or_name}.yaml"
    if path.suffix == "" and builtin.is_file():
        return builtin
    names = builtin_names()
    raise UserError(
        f"no study config file {str(path_or_name)!r} and no built-in study of that name."
        f"{did_you_mean(str(path_or_name), names)} Built-in studies: {', '.join(names)}."
    )
