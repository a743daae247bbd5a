"""A study database damaged where a run would not read is refused before the study writes on into it."""

from __future__ import annotations

import sqlite3

import pytest

from reglab.errors import UserError
from reglab.study import Study


def _problems(path) -> list[str]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [r[0] for r in con.execute("PRAGMA quick_check")]
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    finally:
        con.close()


def test_resuming_on_a_damaged_database_is_one_line_and_writes_nothing(tiny, tmp_path):
    Study(tiny).run(out=tmp_path, progress=False)
    db = tmp_path / "study.db"
    good = db.read_bytes()
    for page in range(len(good) // 4096 - 1, 1, -1):  # from the end: pages of rows, not the schema's
        bad = bytearray(good)
        bad[page * 4096 + 100:page * 4096 + 300] = bytes(range(200))
        db.write_bytes(bytes(bad))
        if _problems(db) != ["ok"]:
            break
    else:
        pytest.skip("no page whose damage SQLite's check finds")
    with pytest.raises(UserError, match=r"study database .*study\.db' is damaged \(SQLite's integrity check"):
        Study(tiny).run(out=tmp_path, progress=False)
    assert db.read_bytes() == bytes(bad)  # nothing written into the broken file
