"""Regularization studies: a YAML config, a search per recipe, CV, storage that resumes, backends.

``reglab.Study`` runs the same thing the ``reglab study`` command does::

    study = Study.from_yaml("mnist1d")          # a file path or a built-in name
    results = study.run(out="studies/mnist1d")  # rerun to resume after a crash

See ``docs/studies.md``.
"""

from reglab.study.runner import Study
from reglab.study.schema import StudyConfig, config_json_schema, load_config
from reglab.study.storage import StudyStorage

__all__ = ["Study", "StudyConfig", "StudyStorage", "config_json_schema", "load_config"]
