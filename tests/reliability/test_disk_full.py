"""A full disk while a study writes its checkpoints: the study stops, records no trial as failed, and
the same command resumes once there is space, ending with exactly a clean run's results."""

from __future__ import annotations

import errno
import os
from collections import Counter

import pytest
import torch

from reglab.callbacks import save_atomic
from reglab.errors import UserError
from reglab.study import Study
from reglab.study.export import export, open_storage

from ._support import run_cli, write_yaml

ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class _FullFile:
    """A file on a full disk: a write stores half its bytes, then fails with ENOSPC."""

    def __init__(self, f):
        self.f = f

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()

    def write(self, data):
        data = bytes(data)
        self.f.write(data[: len(data) // 2])
        raise OSError(ENOSPC.errno, ENOSPC.strerror)

    def __getattr__(self, name):
        return getattr(self.f, name)


@pytest.fixture
def full_disk_after(monkeypatch):
    """``full_disk_after(n)``: the files ``save_atomic`` opens after its first ``n`` are on a full disk."""
    real = os.fdopen
    left = {"n": 0}

    def fdopen(fd, *args, **kwargs):
        f = real(fd, *args, **kwargs)
        left["n"] -= 1
        return f if left["n"] >= 0 else _FullFile(f)

    def arm(n):
        left["n"] = n
        monkeypatch.setattr(os, "fdopen", fdopen)

    yield arm
    monkeypatch.setattr(os, "fdopen", real)


def test_save_atomic_on_a_full_disk_raises_enospc_naming_the_file_and_keeps_the_old_one(
        tmp_path, full_disk_after):
    path = tmp_path / "last.pt"
    save_atomic({"w": torch.zeros(3)}, path)
    full_disk_after(0)
    # Large enough that torch's own writer would meet the failure mid-file (it said RuntimeError
    # "unexpected pos ..." there, hiding the full disk).
    with pytest.raises(OSError) as info:
        save_atomic({"w": torch.ones(10_000)}, path)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(path)
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.zeros(3))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # the half-written temp file is gone


def test_a_full_disk_stops_the_study_without_failed_trials_and_resume_equals_a_clean_run(
        tmp_path, tiny, full_disk_after, capsys):
    # A Trainer trial (augmentation) and population groups both checkpoint through save_atomic.
    tiny["recipes"]["aug"] = {"augment": "feature_noise"}
    config = write_yaml(tmp_path / "tiny.yaml", tiny)
    out = tmp_path / "full"
    full_disk_after(3)
    code, _, err = run_cli(["study", str(config), "--out", str(out), "--workers", "1", "--quiet"], capsys)
    assert code == 2
    assert err.count("\n") == 1 and "No space left on device" in err and "run the same command again" in err
    store = open_storage(out)
    try:
        statuses = Counter(t["status"] for t in store.trials())
    finally:
        store.close()
    assert "failed" not in statuses and statuses["done"] >= 1  # what finished before is kept
    full_disk_after(10**9)  # space again
    code, _, err = run_cli(["study", str(config), "--out", str(out), "--workers", "1", "--quiet"], capsys)
    assert code == 0, err
    Study(tiny).run(out=tmp_path / "clean", progress=False)
    resumed, clean = open_storage(out), open_storage(tmp_path / "clean")
    try:
        assert export(resumed, "csv") == export(clean, "csv")
        assert export(resumed, "csv", epochs=True) == export(clean, "csv", epochs=True)
        assert {t["status"] for t in resumed.trials()} == {"done"}
    finally:
        resumed.close()
        clean.close()


def test_a_full_disk_raises_one_line_from_the_python_api(tmp_path, tiny, full_disk_after):
    full_disk_after(0)
    with pytest.raises(UserError, match=r"cannot write the study checkpoint '.*': No space left on device"):
        Study(tiny).run(out=tmp_path / "s", progress=False)


def test_a_full_disk_under_the_study_database_is_one_line_and_the_rerun_resumes(tmp_path, tiny, monkeypatch,
                                                                                 capsys):
    import reglab.study.storage as storage

    real = storage._sqlite_pragmas

    def capped(conn, record):  # SQLite's own "database or disk is full" once the file reaches 20 pages
        real(conn, record)
        conn.execute("PRAGMA max_page_count=20")

    monkeypatch.setattr(storage, "_sqlite_pragmas", capped)
    config = write_yaml(tmp_path / "tiny.yaml", {**tiny, "seeds": [0, 1, 2, 3]})
    out = tmp_path / "s"
    code, _, err = run_cli(["study", str(config), "--out", str(out), "--workers", "1", "--quiet"], capsys)
    # It said "the study database cannot be read: database or disk is full".
    assert code == 2 and err.count("\n") == 1, err
    assert f"the study database '{out / 'study.db'}' cannot be written: the disk (or quota) is full" in err
    assert "run the same command again to resume" in err and "cannot be read" not in err
    monkeypatch.setattr(storage, "_sqlite_pragmas", real)
    code, _, err = run_cli(["study", str(config), "--out", str(out), "--workers", "1", "--quiet"], capsys)
    assert code == 0, err
    Study({**tiny, "seeds": [0, 1, 2, 3]}).run(out=tmp_path / "clean", progress=False)
    resumed, clean = open_storage(out), open_storage(tmp_path / "clean")
    try:
        assert export(resumed, "csv") == export(clean, "csv")
    finally:
        resumed.close()
        clean.close()
