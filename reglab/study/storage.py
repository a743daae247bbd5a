"""Study storage: one database per study, through SQLAlchemy Core.

The default is one SQLite file per study (``<out>/study.db``) in WAL mode with a
busy timeout; ``postgresql://...`` URLs work the same for a database shared by
several machines. Tables: ``schema_version``, ``study`` (the config), ``trials``,
``epochs`` (every epoch's metrics), ``histograms`` (each final trial's weight histogram:
bin edges, counts, exact zeros), ``claims`` (which live process runs which trial) and
``results``. Older databases get the tables they lack when a writer (``reglab study``) opens
them (a version-1 database has no histograms; its trials simply have none).

Readers (``readonly=True``: ``reglab show``, ``export``, ``report``, ``ls``) create and change
nothing: a missing file, an empty one, a file that is not SQLite or a database without reglab's
tables is refused in one line, and an older study is read as it is. A writer adds its tables
beside other programs' tables, but refuses (before switching SQLite to WAL) a file that is not
SQLite and a database whose tables of reglab's names are not a reglab study's.

Concurrency and crash contract (the runner relies on it):

* Each finished trial is written in ONE transaction (its row, its epochs); after a
  crash, Ctrl-C or ``kill -9`` a trial is either fully stored or not at all.
* ``(phase, recipe, params, seed, fold)`` is unique: a trial is never stored twice.
* Several processes (or machines) can run one study: a process claims trials in ONE
  writer transaction (SQLite ``BEGIN IMMEDIATE``; PostgreSQL a transaction-level advisory
  lock) and keeps its claims alive with a heartbeat thread, as Optuna's RDB storage does.
  A trial claimed by a live process is never claimed by another; a claim whose owner died
  (no heartbeat for ``grace_period`` seconds, or on this host: its process is gone) is
  taken over. Only the claim's owner can store the trial's result.
* A trial marked ``running`` when its process died is rerun (from its checkpoint, which
  lives in the study directory, not in the database).
* Per-epoch histories and the summary are stored as strict JSON (RFC 8259, see
  :func:`dumps_exact`): a non-finite number is ``null`` in place and its JSON Pointer is
  listed under ``"$nonfinite"``, so the readers restore NaN and the infinities exactly.

Example:
    >>> s = StudyStorage("sqlite://")          # in memory
    >>> s.save_config("demo", '{"name": "demo"}')
    >>> s.load_config()
    '{"name": "demo"}'
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import sqlite3
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError

from reglab._json import NONFINITE_KEY, dumps_exact, loads_exact, strict_json  # noqa: F401 (re-exported)
from reglab.errors import UserError

__all__ = [
    "StudyStorage", "SCHEMA_VERSION", "TrialKey", "params_key", "default_url", "strict_json",
    "dumps_exact", "loads_exact", "HEARTBEAT_S", "GRACE_S", "masked_url", "driver_message", "BUSY_TIMEOUT_S",
    "DatabaseLocked", "OtherStudyError",
]

SCHEMA_VERSION = 2
_UPGRADABLE = {1}  # versions this reglab upgrades by adding tables (nothing existing changes)
# The claims table is added to version-2 databases as well: reglab versions that do not know it ignore it.

HEARTBEAT_S = 10.0  # how often a process refreshes its claims
# How long a process waits for another process's lock on an SQLite study database before it gives up
# (SQLite's busy_timeout), and after how long a waiting writer says so on stderr. Read at each
# connection and transaction, so a test can shorten them.
BUSY_TIMEOUT_S = 30.0
BUSY_NOTICE_S = 3.0
GRACE_S = 60.0  # a claim not refreshed for this long belongs to a dead process and is taken over
_HOST = socket.gethostname()
_SQLITE_MAGIC = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file
_PG_LOCK = 0x7265676C  # "regl": the advisory lock that makes a PostgreSQL write transaction the only writer

metadata = MetaData()
schema_version = Table("schema_version", metadata, Column("version", Integer, nullable=False))
study_table = Table(
    "study",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("config", Text, nullable=False),
    Column("created", Float, nullable=False),
)
trials = Table(
    "trials",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("phase", String(32), nullable=False),
    Column("recipe", String(200), nullable=False),
    Column("params", String(2000), nullable=False),
    Column("seed", Integer, nullable=False),
    Column("fold", Integer, nullable=False),
    Column("epochs_budget", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("metrics", Text),
    Column("attempts", Integer, nullable=False, default=0),
    Column("started", Float),
    Column("finished", Float),
    Column("duration", Float),
    Column("error", Text),
    UniqueConstraint("phase", "recipe", "params", "seed", "fold", name="uq_trial"),
)
epochs = Table(
    "epochs",
    metadata,
    Column("trial_id", Integer, ForeignKey("trials.id"), primary_key=True),
    Column("epoch", Integer, primary_key=True),
    Column("metrics", Text, nullable=False),
)
histograms = Table(
    "histograms",
    metadata,
    Column("trial_id", Integer, ForeignKey("trials.id"), primary_key=True),
    Column("edges", Text, nullable=False),
    Column("counts", Text, nullable=False),
    Column("zeros", Integer, nullable=False),
    Column("total", Integer, nullable=False),
)
claims = Table(  # a row per trial that a process is running now (Optuna: trial_heartbeats)
    "claims",
    metadata,
    Column("trial_id", Integer, ForeignKey("trials.id"), primary_key=True),
    Column("owner", String(300), nullable=False),  # host:pid:token of the claiming process
    Column("heartbeat", Float, nullable=False),  # time.time() of its last heartbeat
)
results = Table(
    "results",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("value", Text, nullable=False),
)

TrialKey = tuple[str, str, str, int, int]  # phase, recipe, params (canonical JSON), seed, fold
FINISHED = ("done", "diverged", "failed")
def params_key(params: dict[str, Any]) -> str:
    """Canonical JSON of a parameter dict (sorted keys, floats by ``repr``): the unique identity."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"))


def default_url(study_dir: str | Path) -> str:
    """The embedded default: ``sqlite:///<study_dir>/study.db``."""
    return f"sqlite:///{Path(study_dir) / 'study.db'}"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # pysqlite would open a transaction only at the first write, so a read-then-write (a claim)
    # would not be one transaction; with this, SQLAlchemy's begin (below) emits BEGIN itself.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    # busy_timeout first: wait instead of failing when another process holds the lock (also while
    # switching to WAL); WAL: readers (reglab show) do not block the writer; synchronous=FULL: a
    # committed trial survives power loss too.
    _busy_timeout(cur, BUSY_TIMEOUT_S)
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_reader_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # A reader (show, export, report, ls) changes nothing: no journal-mode switch (which rewrites the
    # header of a database not in WAL mode), and query_only makes SQLite refuse any write.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    _busy_timeout(cur, BUSY_TIMEOUT_S)
    cur.execute("PRAGMA query_only=ON")
    cur.close()


def _sqlite_path(url: Any) -> Path | None:
    """The file of an SQLite URL; ``None`` for an in-memory database or a ``file:`` URI."""
    database = url.database
    if database in (None, "", ":memory:") or url.query.get("uri") or str(database).startswith("file:"):
        return None
    return Path(database)


def _cannot_share_memory(path: Path) -> bool:
    """Whether SQLite cannot open this WAL study for reading: its folder is not writable (a read-only
    mount, another user's or an archived study) and no writer left a ``-wal`` file there.

    A reader of a WAL database creates its ``-shm`` file beside it, so in such a folder SQLite refused
    it ("attempt to write a readonly database"). Without a ``-wal`` file every commit is in the database
    file itself, and no writer can be at work there, so it is read as an immutable file.
    """
    return not os.access(path.parent, os.W_OK) and not Path(f"{path}-wal").exists()


def _immutable_url(path: Path) -> str:
    """An SQLAlchemy URL that reads ``path`` as an immutable file (SQLite's ``immutable=1`` URI)."""
    from urllib.parse import quote

    return f"sqlite:///file:{quote(str(path.resolve()))}?immutable=1&uri=true"


def _check_sqlite_target(path: Path) -> None:
    """A writer's SQLite file: missing, empty, or a reglab study; anything else is refused unchanged."""
    try:
        if not path.is_file() or path.stat().st_size == 0:
            return  # a new database (or a folder, which SQLite reports when it cannot open it)
        with path.open("rb") as f:
            head = f.read(16)
    except OSError:
        return  # SQLite reports it when it opens the file
    if head != _SQLITE_MAGIC:
        raise UserError(f"{str(path)!r} is not an SQLite database, so not a reglab study; give a new --out "
                        "folder or a new database file")
    try:  # read-only: a foreign database is not switched to WAL mode
        con = sqlite3.connect(f"{path.resolve().as_uri().replace('file://', 'file:', 1)}?mode=ro", uri=True)
        try:
            names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            # Damage SQLite meets only on the pages a run happens to read let a study resume (exit 0) and
            # write on into a broken file. quick_check reads every page: about 40 ms for a 1 MB study.
            problems = [r[0] for r in con.execute("PRAGMA quick_check(3)")] if names else ["ok"]
        finally:
            con.close()
    except sqlite3.Error:
        return  # SQLite reports it again, in one line, when the writer opens it
    _check_no_clash(names, str(path))
    if problems != ["ok"]:
        raise UserError(f"the study database {str(path)!r} is damaged (SQLite's integrity check: "
                        f"{'; '.join(problems)[:200]}); nothing was written to it. `reglab export` may "
                        "still read its finished trials: restore it from a backup, or move it aside to run "
                        "the study anew")


def _check_sqlite_writable(path: Path) -> None:
    """A writer's SQLite file and its folder must be writable: SQLite said only "attempt to write a readonly
    database" or "unable to open database file", naming neither. (Root passes; so does SQLite for it.)"""
    folder = path.parent
    if path.is_file() and not os.access(path, os.W_OK):
        raise UserError(f"the study database {str(path)!r} is not writable (read-only for this user); make "
                        "it writable or use another study folder")
    if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"the study folder {str(folder)!r} is not writable (the study database {path.name} "
                        "and its journal are written there); make it writable or use another study folder")


def _check_sqlite_file(url: Any) -> None:
    """A reader's SQLite file must exist and be an SQLite database (SQLite creates a missing one)."""
    path = _sqlite_path(url)
    if path is None:
        return
    if not path.exists():
        raise UserError(f"no study database at {str(path)!r}: no such file")
    if path.is_dir():
        raise UserError(f"{str(path)!r} is a directory, not a study database")
    try:
        with path.open("rb") as f:
            head = f.read(16)
    except OSError as exc:
        raise UserError(f"cannot read the study database {str(path)!r}: {exc.strerror or exc}") from None
    if head != _SQLITE_MAGIC:
        what = "an empty file" if not head else "not an SQLite database"
        raise UserError(f"{str(path)!r} is not a reglab study ({what})")


def _check_no_clash(names: set[str], where: str) -> None:
    """A writer adds its tables beside other programs' (as Optuna does), but not to a database whose
    tables of reglab's names are someone else's (no ``schema_version``)."""
    clash = names & set(metadata.tables)
    if clash and "schema_version" not in names:
        raise UserError(
            f"storage {where!r} is not a reglab study but has tables of reglab's names "
            f"({', '.join(sorted(clash))}); give a new --out folder or another database"
        )


def _tables_text(names: set[str]) -> str:
    if not names:
        return "no tables"
    listed = sorted(names)
    more = f", ... ({len(listed)} in all)" if len(listed) > 5 else ""
    return "its tables: " + ", ".join(listed[:5]) + more


def masked_url(url: str) -> str:
    """``url`` with its password hidden, for messages.

    Example:
        >>> masked_url("postgresql+psycopg://me:secret@db.example/studies")
        'postgresql+psycopg://me:***@db.example/studies'
    """
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL sqlalchemy parses: hide whatever sits between "user:" and "@"
        return re.sub(r"(://[^/:@]*:)[^/@]*@", r"\1***@", url)


def driver_message(exc: BaseException) -> str:
    """The first line of a database error as the driver wrote it (without sqlalchemy's SQL and links)."""
    orig = getattr(exc, "orig", None)
    lines = str(orig if orig is not None else exc).strip().splitlines()
    return lines[0].strip() if lines else type(exc).__name__


class DatabaseLocked(UserError):
    """Another process held an SQLite study database's lock for longer than ``BUSY_TIMEOUT_S``."""


class OtherStudyError(UserError):
    """The storage holds another study config than the one run (``stored_name``: that study's name)."""

    def __init__(self, message: str, stored_name: str) -> None:
        super().__init__(message)
        self.stored_name = stored_name


def _busy_timeout(cursor: Any, seconds: float) -> None:
    cursor.execute(f"PRAGMA busy_timeout={max(0, round(seconds * 1000))}")


def _sqlite_error_lines(path: Path) -> Callable[[Any], None]:
    """A ``handle_error`` listener: SQLite's "database is locked" and "database or disk is full" become one
    line naming the file (a locked one as :class:`DatabaseLocked`)."""

    def listener(context: Any) -> None:
        code = getattr(context.original_exception, "sqlite_errorcode", None)
        if isinstance(code, int) and code & 0xFF == 13:  # SQLITE_FULL: the transaction rolled back
            # The CLI said "the study database cannot be read: database or disk is full".
            raise UserError(
                f"the study database {str(path)!r} cannot be written: the disk (or quota) is full. Finished "
                "trials are kept: free space and run the same command again to resume"
            )
        if isinstance(code, int) and code & 0xFF in (5, 6):  # SQLITE_BUSY, SQLITE_LOCKED (and extended codes)
            raise DatabaseLocked(
                f"the study database {str(path)!r} is locked by another process, which held it for more than "
                f"{BUSY_TIMEOUT_S:g} s (a program with it open in a transaction, e.g. sqlite3 or a database "
                "browser, or a stuck process); close that program or wait for it, then rerun"
            )

    return listener


def _sqlite_begin(conn: Connection) -> None:
    # A writer takes the write lock up front (IMMEDIATE): a deferred transaction that read first
    # fails at once, without the busy timeout, when another process wrote in between.
    if not conn.get_execution_options().get("reglab_write"):
        conn.exec_driver_sql("BEGIN")
        return
    # SQLite waits for the lock inside one call: to say that it waits, wait BUSY_NOTICE_S first, then
    # the rest of BUSY_TIMEOUT_S. A failed BEGIN started no transaction, so it can be tried again.
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    first = min(BUSY_NOTICE_S, BUSY_TIMEOUT_S)
    try:
        _busy_timeout(cursor, first)
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            return
        except DatabaseLocked:
            if first >= BUSY_TIMEOUT_S:
                raise
        path = _sqlite_path(conn.engine.url)
        print(f"reglab: waiting for the study database {str(path)!r}: another process holds its write lock "
              f"(giving up after {BUSY_TIMEOUT_S:g} s)", file=sys.stderr, flush=True)
        _busy_timeout(cursor, BUSY_TIMEOUT_S - first)
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    finally:
        _busy_timeout(cursor, BUSY_TIMEOUT_S)
        cursor.close()


def _process_gone(owner: str) -> bool:
    """True when ``owner`` (``host:pid:token``) is a process of this host that no longer runs."""
    where, _, _token = owner.rpartition(":")
    host, _, pid_text = where.rpartition(":")
    if host != _HOST or not pid_text.isdigit():
        return False  # another machine's process: only its heartbeat can tell
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # e.g. another user's process: alive
        return False
    try:  # a killed process its parent has not reaped yet is a zombie: gone all the same
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2] == "Z"
    except (OSError, ValueError, IndexError):
        return False


class _Heartbeat(threading.Thread):
    """Refreshes this process's claims every ``interval`` seconds until stopped."""

    def __init__(self, storage: StudyStorage):
        super().__init__(name="reglab-heartbeat", daemon=True)
        self.storage, self.stopped = storage, threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.storage.heartbeat_interval):
            with contextlib.suppress(Exception):  # a missed beat only risks a takeover after the grace period
                self.storage.heartbeat()


class StudyStorage:
    """Trials, epochs, config and results of one study in a SQL database.

    Args:
        url: an SQLAlchemy URL, e.g. ``sqlite:///out/study.db`` or ``postgresql+psycopg://host/db``.
        heartbeat_interval: seconds between refreshes of this process's claims.
        grace_period: seconds without a heartbeat after which another process takes a claim over.
        readonly: only read (``reglab show``, ``export``, ``report``, ``ls``): nothing is created, upgraded
            or switched to WAL; a missing file or a database that is not a reglab study raises ``UserError``.
            A writer (the default) creates its tables beside any others, and refuses a database whose
            tables of reglab's names are not a study's.

    Example:
        >>> s = StudyStorage("sqlite://")
        >>> tid = s.start(("cv", "l2", '{"l2":0.001}', 0, 0), epochs_budget=5)
        >>> s.finish(tid, "done", {"val_accuracy": 0.9}, [{"epoch": 0, "loss": 1.0}], duration=0.1)
        >>> s.trials()[0]["status"]
        'done'
    """

    def __init__(self, url: str, *, heartbeat_interval: float | None = None,
                 grace_period: float | None = None, readonly: bool = False):
        self.url = url
        self.readonly = readonly
        self.heartbeat_interval = HEARTBEAT_S if heartbeat_interval is None else heartbeat_interval
        self.grace_period = GRACE_S if grace_period is None else grace_period
        self.owner = f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._beat: _Heartbeat | None = None
        self._claimed: set[int] = set()  # ids of trials this instance claimed
        self._tables: set[str] = set(metadata.tables)
        self._shown = masked_url(url)
        self._where = self._shown  # how messages name the database: an SQLite file by its path
        try:
            self.engine: Engine = create_engine(url, future=True)
        except Exception as exc:  # sqlalchemy's errors for bad URLs / missing drivers vary
            raise UserError(f"cannot open storage {self._shown!r}: {exc}") from None
        dialect = self.engine.dialect.name
        # An in-memory SQLite database lives in one connection per thread: no other process can share it.
        self._shared = not (dialect == "sqlite" and self.engine.url.database in (None, "", ":memory:"))
        if dialect == "sqlite":
            file = _sqlite_path(self.engine.url)
            # SQLite would create a missing file, and the writer's pragmas (WAL) alter a foreign database.
            if readonly:
                _check_sqlite_file(self.engine.url)
                if file is not None and _cannot_share_memory(file):
                    self.engine.dispose()
                    self.engine = create_engine(_immutable_url(file), future=True)
            elif file is not None:
                _check_sqlite_writable(file)  # first: reading a WAL database creates files beside it
                _check_sqlite_target(file)
            event.listen(self.engine, "connect", _sqlite_reader_pragmas if readonly else _sqlite_pragmas)
            event.listen(self.engine, "begin", _sqlite_begin)
            if file is not None:
                self._where = str(file)
                event.listen(self.engine, "handle_error", _sqlite_error_lines(file))
        try:
            self._open()
        except BaseException as exc:
            self.engine.dispose()
            if isinstance(exc, DBAPIError):  # no server, no such file or folder, not a database, ...
                raise UserError(f"cannot open storage {self._shown!r}: {driver_message(exc)}") from None
            raise

    def _open(self) -> None:
        """Check the database is a reglab study (or a writer's empty one); create or upgrade its tables."""
        with self.engine.connect() as conn:  # an up-to-date database is only read (reglab show, export)
            names = set(inspect(conn).get_table_names())
            version = conn.execute(select(schema_version.c.version)).scalar() if "schema_version" in names \
                else None
        if self.readonly:
            needed = {"schema_version", "study", "trials", "epochs", "results"}  # as in version 1
            if not needed <= names or version is None:
                raise UserError(f"{self._where!r} is not a reglab study ({_tables_text(names)})")
            self._check_version(version)
            self._tables = names
            return
        if set(metadata.tables) <= names and version == SCHEMA_VERSION:
            return
        with self._write() as conn:  # one writer: two processes opening a new study do not race
            _check_no_clash(set(inspect(conn).get_table_names()), self._where)
            metadata.create_all(conn)
            row = conn.execute(select(schema_version.c.version)).first()
            if row is None:
                conn.execute(insert(schema_version).values(version=SCHEMA_VERSION))
            elif row.version in _UPGRADABLE:  # create_all above added the new tables
                conn.execute(update(schema_version).values(version=SCHEMA_VERSION))
            else:
                self._check_version(row.version)

    def _check_version(self, version: int) -> None:
        if version != SCHEMA_VERSION and version not in _UPGRADABLE:
            raise UserError(
                f"storage {self._shown!r} has schema version {version}; this reglab reads version "
                f"{SCHEMA_VERSION}. Use a new --out directory or the matching reglab version."
            )

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        """A transaction that is the only writer of the database from its first statement on."""
        with self.engine.connect() as conn:
            conn.execution_options(reglab_write=True)
            with conn.begin():
                if self.engine.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
                yield conn

    # -- config --------------------------------------------------------------------------
    def save_config(self, name: str, config_json: str, *, same: Callable[[str], bool] | None = None,
                    differences: Callable[[str], list[str]] | None = None) -> None:
        """Store the config; if one is stored already it must be the same study: the same text, or one
        that ``same(stored)`` accepts (a config stored before a setting was added, read with its default).
        Otherwise :class:`OtherStudyError`, naming what ``differences(stored)`` lists."""
        with self._write() as conn:
            row = conn.execute(select(study_table.c.name, study_table.c.config)).first()
            if row is None:
                row = dict(id=1, name=name, config=config_json, created=time.time())
                conn.execute(insert(study_table).values(**row))
            elif row.config != config_json and not (same is not None and same(row.config)):
                diff = differences(row.config) if differences is not None else []
                shown = f" ({'; '.join(diff)})" if diff else ""
                raise OtherStudyError(
                    f"storage {self._shown!r} holds a different study config{shown}; resuming needs the same "
                    "config. Use another --out directory (or --storage) for a changed config.", row.name
                )

    def save_data_fingerprint(self, fingerprint: str, source: str) -> None:
        """Store the hash of the study's data; if one is stored already, the data must be the same.

        Trials finished on one version of a data file and resumed on another would mix two
        datasets in one table, so a resume on changed data is refused as a changed config is.
        """
        with self._write() as conn:
            row = conn.execute(select(results.c.value).where(results.c.key == "data")).first()
            if row is None:  # a new study, or one started before reglab stored the hash
                conn.execute(insert(results).values(key="data", value=json.dumps(fingerprint)))
            elif json.loads(row.value) != fingerprint:
                raise UserError(
                    f"storage {self._shown!r} was filled from other data: {source} changed since the study "
                    "started (its contents hash differently); resuming needs the same data. Restore it, or "
                    "use another --out directory (or --storage) for the new data."
                )

    def load_config(self) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(study_table.c.config)).first()
        return None if row is None else row.config

    # -- claims --------------------------------------------------------------------------
    def claim(self, items: Sequence[tuple[TrialKey, int]]) -> dict[TrialKey, int] | None:
        """Claim a group of trials ``[(key, epochs_budget), ...]`` for this process, all or nothing.

        Returns the ids of the claimed (unfinished) trials, ``{}`` when all are finished, or ``None``
        when a live process holds any of them. Claimed trials are ``running`` and their attempts
        counted; a claim of a dead process is taken over.

        Example:
            >>> s = StudyStorage("sqlite://")
            >>> s.claim([(("cv", "none", "{}", 0, 0), 2)])
            {('cv', 'none', '{}', 0, 0): 1}
        """
        with self.engine.connect() as conn:  # a read first: a process waiting on others never locks
            state = self._claim_state(conn, items, time.time())
        if state != "free":
            return None if state == "busy" else {}
        return self._claim(items, force=False)

    def start(self, key: TrialKey, *, epochs_budget: int) -> int:
        """Claim one trial whoever holds it (insert, or count one more attempt); return its id."""
        got = self._claim([(key, epochs_budget)], force=True) or {}
        if key in got:
            return got[key]
        with self.engine.connect() as conn:
            return int(conn.execute(select(trials.c.id).where(_key_where(key))).scalar_one())

    def _claim_state(self, conn: Connection, items: Sequence[tuple[TrialKey, int]], now: float) -> str:
        finished = True
        for key, _ in items:
            row = conn.execute(
                select(trials.c.status, claims.c.owner, claims.c.heartbeat)
                .select_from(trials.outerjoin(claims, claims.c.trial_id == trials.c.id))
                .where(_key_where(key))
            ).first()
            if row is None or row.status not in FINISHED:
                finished = False
                if row is not None and row.owner is not None and self._held(row.owner, row.heartbeat, now):
                    return "busy"
        return "finished" if finished else "free"

    def live_trials(self) -> set[int]:
        """Ids of the trials a live process holds now; a ``running`` trial outside it was interrupted
        (its process ended or died) and reruns on resume.

        Example:
            >>> StudyStorage("sqlite://").live_trials()
            set()
        """
        now = time.time()
        with self.engine.connect() as conn:
            rows = conn.execute(select(claims.c.trial_id, claims.c.owner, claims.c.heartbeat)).all()
        return {r.trial_id for r in rows if r.owner == self.owner or self._held(r.owner, r.heartbeat, now)}

    def _held(self, owner: str, heartbeat: float, now: float) -> bool:
        """Whether another live process holds a claim."""
        if owner == self.owner:
            return False
        return now - heartbeat <= self.grace_period and not _process_gone(owner)

    def _claim(self, items: Sequence[tuple[TrialKey, int]], *, force: bool) -> dict[TrialKey, int] | None:
        now = time.time()
        out: dict[TrialKey, int] = {}
        with self._write() as conn:
            state = "free" if force else self._claim_state(conn, items, now)
            if state != "free":  # another process claimed or finished them since the read above
                return None if state == "busy" else {}
            for key, budget in items:
                phase, recipe, params, seed, fold = key
                row = conn.execute(select(trials.c.id, trials.c.status).where(_key_where(key))).first()
                if row is None:
                    res = conn.execute(insert(trials).values(
                        phase=phase, recipe=recipe, params=params, seed=seed, fold=fold,
                        epochs_budget=budget, status="running", attempts=1, started=now,
                    ))
                    tid = int(res.inserted_primary_key[0])
                elif row.status in FINISHED:
                    continue
                else:
                    tid = int(row.id)
                    conn.execute(update(trials).where(trials.c.id == tid)
                                 .values(status="running", attempts=trials.c.attempts + 1, started=now))
                    conn.execute(delete(claims).where(claims.c.trial_id == tid))
                conn.execute(insert(claims).values(trial_id=tid, owner=self.owner, heartbeat=now))
                out[key] = tid
        self._claimed |= set(out.values())
        if out and self._shared and self._beat is None:
            self._beat = _Heartbeat(self)
            self._beat.start()
        return out

    def heartbeat(self) -> int:
        """Refresh this process's claims (the heartbeat thread calls this); return how many."""
        with self._write() as conn:
            res = conn.execute(update(claims).where(claims.c.owner == self.owner)
                               .values(heartbeat=time.time()))
        return int(res.rowcount)

    def release(self) -> None:
        """Give up this process's claims (its unfinished trials stay ``running``, free for anyone)."""
        if self._beat is not None:
            self._beat.stopped.set()
            # A Ctrl-C can land while start() waits for the thread: join() then refuses a thread
            # "not started" (it stops by itself, stopped is set).
            with contextlib.suppress(RuntimeError):
                self._beat.join()
            self._beat = None
        if self._claimed:
            with self._write() as conn:
                conn.execute(delete(claims).where(claims.c.owner == self.owner))

    # -- trials --------------------------------------------------------------------------
    def finish(
        self,
        trial_id: int,
        status: str,
        metrics: dict[str, Any],
        history: Iterable[dict[str, Any]],
        *,
        duration: float,
        error: str | None = None,
        histogram: dict[str, Any] | None = None,
    ) -> None:
        """Store a finished trial, its epochs and its weight histogram in ONE transaction.

        A trial this object claimed is stored only while the claim is still its own: a result
        for a claim another process took over (this one was presumed dead) is dropped with a
        warning. A trial it never claimed (rewriting a stored trial) is written as given.
        """
        self.finish_many([{"trial_id": trial_id, "status": status, "metrics": metrics, "history": history,
                           "duration": duration, "error": error, "histogram": histogram}])

    @staticmethod
    def _finish(conn: Any, trial_id: int, status: str, metrics: dict[str, Any],
                history: Iterable[dict[str, Any]], *, duration: float, error: str | None,
                histogram: dict[str, Any] | None = None, owner: str | None = None) -> bool:
        if owner is not None:  # a trial this process claimed: stored only while the claim is still its own
            mine = conn.execute(delete(claims).where((claims.c.trial_id == trial_id)
                                                     & (claims.c.owner == owner)))
            if mine.rowcount != 1:
                return False
        conn.execute(delete(epochs).where(epochs.c.trial_id == trial_id))
        conn.execute(delete(histograms).where(histograms.c.trial_id == trial_id))
        if histogram is not None:
            conn.execute(insert(histograms).values(
                trial_id=trial_id, edges=json.dumps(histogram["edges"]),
                counts=json.dumps(histogram["counts"]),
                zeros=int(histogram["zeros"]), total=int(histogram["total"]),
            ))
        rows = [{"trial_id": trial_id, "epoch": i, "metrics": dumps_exact(m)} for i, m in enumerate(history)]
        if rows:
            conn.execute(insert(epochs), rows)
        conn.execute(
            update(trials).where(trials.c.id == trial_id).values(
                status=status, metrics=strict_json(metrics), finished=time.time(),
                duration=duration, error=error,
            )
        )
        return True

    def finish_many(self, rows: list[dict[str, Any]]) -> None:
        """Store several finished trials (one population group) in ONE transaction.

        Each row has ``trial_id, status, metrics, history, duration`` and optionally ``error``
        and ``histogram``.
        """
        with self._write() as conn:
            lost = [r["trial_id"] for r in rows
                    if not self._finish(conn, r["trial_id"], r["status"], r["metrics"], r["history"],
                                        duration=r["duration"], error=r.get("error"),
                                        histogram=r.get("histogram"),
                                        owner=self.owner if r["trial_id"] in self._claimed else None)]
        if lost:
            warnings.warn(f"trials {lost} were taken over by another process (no heartbeat for "
                          f"{self.grace_period:g} s); their results here were not stored", RuntimeWarning,
                          stacklevel=2)

    def trials(self, *, phase: str | None = None, finished_only: bool = False) -> list[dict[str, Any]]:
        """All trials as dicts (``params`` and ``metrics`` decoded), ordered by id."""
        query = select(trials).order_by(trials.c.id)
        if phase is not None:
            query = query.where(trials.c.phase == phase)
        if finished_only:
            query = query.where(trials.c.status.in_(FINISHED))
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        out = []
        for r in rows:
            d = dict(r)
            d["params_json"] = d["params"]
            d["params"] = json.loads(d["params"])
            d["metrics"] = json.loads(d["metrics"]) if d["metrics"] else None
            out.append(d)
        return out

    def finished(self) -> dict[TrialKey, dict[str, Any]]:
        """Finished trials keyed by ``(phase, recipe, params, seed, fold)``."""
        return {
            (t["phase"], t["recipe"], t["params_json"], t["seed"], t["fold"]): t
            for t in self.trials(finished_only=True)
        }

    def epochs(self, trial_id: int) -> list[dict[str, Any]]:
        """One trial's per-epoch metrics, NaN and infinities restored."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(epochs.c.metrics).where(epochs.c.trial_id == trial_id).order_by(epochs.c.epoch)
            ).all()
        return [loads_exact(r.metrics) for r in rows]

    def all_epochs(self) -> dict[int, list[dict[str, Any]]]:
        """Every trial's per-epoch metrics by trial id, in one query."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(epochs).order_by(epochs.c.trial_id, epochs.c.epoch)).all()
        out: dict[int, list[dict[str, Any]]] = {}
        for r in rows:
            out.setdefault(int(r.trial_id), []).append(loads_exact(r.metrics))
        return out

    def histograms(self) -> dict[int, dict[str, Any]]:
        """Weight histograms by trial id: ``{"edges", "counts", "zeros", "total"}`` (final trials)."""
        if "histograms" not in self._tables:  # a version-1 database opened read-only
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(select(histograms)).mappings().all()
        return {int(r["trial_id"]): {"edges": json.loads(r["edges"]), "counts": json.loads(r["counts"]),
                                     "zeros": int(r["zeros"]), "total": int(r["total"])} for r in rows}

    # -- results -------------------------------------------------------------------------
    def save_results(self, value: dict[str, Any]) -> None:
        with self._write() as conn:
            conn.execute(delete(results).where(results.c.key == "summary"))
            conn.execute(insert(results).values(key="summary", value=dumps_exact(value)))

    def load_results(self) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(results.c.value).where(results.c.key == "summary")).first()
        return None if row is None else loads_exact(row.value)

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check`` (``'ok'`` when sound); other databases return ``'ok'``."""
        if self.engine.dialect.name != "sqlite":
            return "ok"
        with self.engine.connect() as conn:
            return str(conn.execute(text("PRAGMA integrity_check")).scalar())

    def close(self) -> None:
        """Release this process's claims and close the connections."""
        try:
            self.release()
        finally:
            self.engine.dispose()


def _key_where(key: TrialKey) -> Any:
    phase, recipe, params, seed, fold = key
    return ((trials.c.phase == phase) & (trials.c.recipe == recipe) & (trials.c.params == params)
            & (trials.c.seed == seed) & (trials.c.fold == fold))
