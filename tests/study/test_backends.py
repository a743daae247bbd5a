"""Backends store the same numbers: in-process, a 2-process pool, and Ray tasks on a loopback instance."""

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


@pytest.mark.slow  # starting Ray and its workers takes about 20 s here
def test_ray_backend_equals_local(tiny, tmp_path, monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # Ray 2.60: no token auth for a loopback test instance
    tiny["recipes"]["absurd_lr"] = {"lr": 1e8}
    Study(tiny).run(out=tmp_path / "local", progress=False)
    Study(tiny).run(out=tmp_path / "ray", backend="ray", workers=2, progress=False)
    assert exported(tmp_path / "ray") == exported(tmp_path / "local")
