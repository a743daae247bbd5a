"""Backends store the same numbers: in-process and a 2-process pool (Ray: test_backends_ray.py)."""

from __future__ import annotations

import pytest

from reglab._validation import InvalidParameterError
from reglab.study import Study
from reglab.study.backends import make_backend
from reglab.study.export import export, open_storage


def exported(path) -> str:
    store = open_storage(path)
    try:
        return export(store, "csv")
    finally:
        store.close()


def test_unknown_backend_is_one_line():
    expected = r"'backend' parameter of Study.run must be one of 'local', 'ray'\. Got 'rey' instead\. Did you"
    with pytest.raises(InvalidParameterError, match=expected):
        make_backend("rey")


def test_process_pool_equals_in_process(tiny, tmp_path):
    Study(tiny).run(out=tmp_path / "one", progress=False)
    Study(tiny).run(out=tmp_path / "two", workers=2, progress=False)
    assert exported(tmp_path / "one") == exported(tmp_path / "two")
