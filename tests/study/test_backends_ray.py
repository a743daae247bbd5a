"""The Ray backend on a loopback Ray instance stores exactly what the local backend stores: every export
(trials and epochs, CSV and JSON) is byte-identical."""

from __future__ import annotations

import pytest

from reglab.study import Study
from reglab.study.export import export, open_storage


def exported(path) -> dict[tuple[str, bool], str]:
    store = open_storage(path)
    try:
        return {(fmt, per_epoch): export(store, fmt, epochs=per_epoch)
                for fmt in ("csv", "json") for per_epoch in (False, True)}
    finally:
        store.close()


@pytest.mark.slow  # starting Ray and its workers takes about 20 s here
def test_ray_backend_equals_local(tiny, tmp_path, monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # Ray 2.60: no token auth for a loopback test instance
    tiny["recipes"]["absurd_lr"] = {"lr": 1e8}
    Study(tiny).run(out=tmp_path / "local", progress=False)
    Study(tiny).run(out=tmp_path / "ray", backend="ray", workers=2, progress=False)
    assert exported(tmp_path / "ray") == exported(tmp_path / "local")
