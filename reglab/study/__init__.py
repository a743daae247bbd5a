"""Regularization studies: a YAML config, a search per recipe, CV, storage that resumes, backends.

``reglab.Study`` runs the same thing the ``reglab study`` command does::

    study = Study.from_yaml("mnist1d")          # a file path or a built-in name
    results = study.run(out="studies/mnist1d")  # rerun to resume after a crash

See ``docs/studies.md``. The names load on first use: ``reglab show`` and ``reglab ls`` read a study
through ``reglab.study.storage`` without importing torch, optuna or scipy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reglab.study.runner import Study
    from reglab.study.schema import StudyConfig, config_json_schema, load_config
    from reglab.study.storage import StudyStorage

_LAZY = {
    "Study": "reglab.study.runner",
    "StudyConfig": "reglab.study.schema",
    "config_json_schema": "reglab.study.schema",
    "load_config": "reglab.study.schema",
    "StudyStorage": "reglab.study.storage",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'reglab.study' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["Study", "StudyConfig", "StudyStorage", "config_json_schema", "load_config"]
