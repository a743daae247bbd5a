"""Study storage: one database per study, through SQLAlchemy Core.

The default is one SQLite file per study (``<out>/study.db``) in WAL mode with a
busy timeout; ``postgresql://...`` URLs work the same for a database shared by
several machines. Tables: ``schema_version``, ``study`` (the config), ``trials``,
``epochs`` (every epoch's metrics), ``histograms`` (each final trial's weight histogram:
bin edges, counts, exact zeros) and ``results``. A version-1 database (before
``histograms``) is upgraded in place when opened: its trials simply have no histogram.

Concurrency and crash contract (the runner relies on it):

* Each finished trial is written in ONE transaction (its row, its epochs); after a
  crash, Ctrl-C or ``kill -9`` a trial is either fully stored or not at all.
* ``(phase, recipe, params, seed, fold)`` is unique: a trial is never stored twice.
* A trial marked ``running`` when the process died is rerun on resume (from its
  checkpoint, which lives in the study directory, not in the database).

Example:
    >>> s = StudyStorage("sqlite://")          # in memory
    >>> s.save_config("demo", '{"name": "demo"}')
    >>> s.load_config()
    '{"name": "demo"}'
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable
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
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from reglab.errors import UserError

__all__ = ["StudyStorage", "SCHEMA_VERSION", "TrialKey", "params_key", "default_url", "strict_json"]

SCHEMA_VERSION = 2
_UPGRADABLE = {1}  # versions this reglab upgrades by adding tables (nothing existing changes)

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


def strict_json(value: Any) -> str:
    """Sorted JSON that any parser reads (RFC 8259): NaN and infinities become ``null``.

    Python's ``json`` writes ``NaN``/``Infinity``, which JavaScript, ``jq`` and strict parsers reject.

    Example:
        >>> strict_json({"b": float("nan"), "a": [1.5, float("inf")]})
        '{"a": [1.5, null], "b": null}'
    """
    return json.dumps(_finite(value), sort_keys=True, allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def default_url(study_dir: str | Path) -> str:
    """The embedded default: ``sqlite:///<study_dir>/study.db``."""
    return f"sqlite:///{Path(study_dir) / 'study.db'}"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL: readers (reglab show) do not block the writer; busy_timeout: wait instead of failing
    # when another process holds the lock; synchronous=FULL: a committed trial survives power loss too.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


class StudyStorage:
    """Trials, epochs, config and results of one study in a SQL database.

    Args:
        url: an SQLAlchemy URL, e.g. ``sqlite:///out/study.db`` or ``postgresql+psycopg://host/db``.

    Example:
        >>> s = StudyStorage("sqlite://")
        >>> tid = s.start(("cv", "l2", '{"l2":0.001}', 0, 0), epochs_budget=5)
        >>> s.finish(tid, "done", {"val_accuracy": 0.9}, [{"epoch": 0, "loss": 1.0}], duration=0.1)
        >>> s.trials()[0]["status"]
        'done'
    """

    def __init__(self, url: str):
        self.url = url
        try:
            self.engine: Engine = create_engine(url, future=True)
        except Exception as exc:  # sqlalchemy's errors for bad URLs / missing drivers vary
            raise UserError(f"cannot open storage {url!r}: {exc}") from None
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        metadata.create_all(self.engine)
        with self.engine.begin() as conn:
            row = conn.execute(select(schema_version.c.version)).first()
            if row is None:
                conn.execute(insert(schema_version).values(version=SCHEMA_VERSION))
            elif row.version in _UPGRADABLE:  # create_all above added the new tables
                conn.execute(update(schema_version).values(version=SCHEMA_VERSION))
            elif row.version != SCHEMA_VERSION:
                raise UserError(
                    f"storage {url!r} has schema version {row.version}; this reglab reads version "
                    f"{SCHEMA_VERSION}. Use a new --out directory or the matching reglab version."
                )

    # -- config --------------------------------------------------------------------------
    def save_config(self, name: str, config_json: str) -> None:
        """Store the config; if one is stored already it must be the same study."""
        with self.engine.begin() as conn:
            row = conn.execute(select(study_table.c.config)).first()
            if row is None:
                row = dict(id=1, name=name, config=config_json, created=time.time())
                conn.execute(insert(study_table).values(**row))
            elif row.config != config_json:
                raise UserError(
                    f"storage {self.url!r} holds a different study config; resuming needs the same config. "
                    "Use another --out directory (or --storage) for a changed config."
                )

    def load_config(self) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(study_table.c.config)).first()
        return None if row is None else row.config

    # -- trials --------------------------------------------------------------------------
    def start(self, key: TrialKey, *, epochs_budget: int) -> int:
        """Mark a trial ``running`` (insert, or count one more attempt); return its id."""
        phase, recipe, params, seed, fold = key
        where = (
            (trials.c.phase == phase)
            & (trials.c.recipe == recipe)
            & (trials.c.params == params)
            & (trials.c.seed == seed)
            & (trials.c.fold == fold)
        )
        now = time.time()
        with self.engine.begin() as conn:
            row = conn.execute(select(trials.c.id, trials.c.status).where(where)).first()
            if row is None:
                try:
                    res = conn.execute(
                        insert(trials).values(
                            phase=phase, recipe=recipe, params=params, seed=seed, fold=fold,
                            epochs_budget=epochs_budget, status="running", attempts=1, started=now,
                        )
                    )
                    return int(res.inserted_primary_key[0])
                except IntegrityError:  # another worker inserted it first: fall through to update
                    row = conn.execute(select(trials.c.id, trials.c.status).where(where)).first()
            if row.status in FINISHED:
                return int(row.id)
            conn.execute(
                update(trials).where(trials.c.id == row.id)
                .values(status="running", attempts=trials.c.attempts + 1, started=now)
            )
            return int(row.id)

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
        """Store a finished trial, its epochs and its weight histogram in ONE transaction."""
        with self.engine.begin() as conn:
            self._finish(conn, trial_id, status, metrics, history, duration=duration, error=error,
                         histogram=histogram)

    @staticmethod
    def _finish(conn: Any, trial_id: int, status: str, metrics: dict[str, Any],
                history: Iterable[dict[str, Any]], *, duration: float, error: str | None,
                histogram: dict[str, Any] | None = None) -> None:
        conn.execute(delete(epochs).where(epochs.c.trial_id == trial_id))
        conn.execute(delete(histograms).where(histograms.c.trial_id == trial_id))
        if histogram is not None:
            conn.execute(insert(histograms).values(
                trial_id=trial_id, edges=json.dumps(histogram["edges"]),
                counts=json.dumps(histogram["counts"]),
                zeros=int(histogram["zeros"]), total=int(histogram["total"]),
            ))
        rows = [
            {"trial_id": trial_id, "epoch": i, "metrics": json.dumps(m, sort_keys=True)}
            for i, m in enumerate(history)
        ]
        if rows:
            conn.execute(insert(epochs), rows)
        conn.execute(
            update(trials).where(trials.c.id == trial_id).values(
                status=status, metrics=strict_json(metrics), finished=time.time(),
                duration=duration, error=error,
            )
        )

    def finish_many(self, rows: list[dict[str, Any]]) -> None:
        """Store several finished trials (one population group) in ONE transaction.

        Each row has ``trial_id, status, metrics, history, duration`` and optionally ``error``
        and ``histogram``.
        """
        with self.engine.begin() as conn:
            for r in rows:
                self._finish(conn, r["trial_id"], r["status"], r["metrics"], r["history"],
                             duration=r["duration"], error=r.get("error"), histogram=r.get("histogram"))

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
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(epochs.c.metrics).where(epochs.c.trial_id == trial_id).order_by(epochs.c.epoch)
            ).all()
        return [json.loads(r.metrics) for r in rows]

    def histograms(self) -> dict[int, dict[str, Any]]:
        """Weight histograms by trial id: ``{"edges", "counts", "zeros", "total"}`` (final trials)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(histograms)).mappings().all()
        return {int(r["trial_id"]): {"edges": json.loads(r["edges"]), "counts": json.loads(r["counts"]),
                                     "zeros": int(r["zeros"]), "total": int(r["total"])} for r in rows}

    # -- results -------------------------------------------------------------------------
    def save_results(self, value: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(results).where(results.c.key == "summary"))
            conn.execute(insert(results).values(key="summary", value=json.dumps(value, sort_keys=True)))

    def load_results(self) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(results.c.value).where(results.c.key == "summary")).first()
        return None if row is None else json.loads(row.value)

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check`` (``'ok'`` when sound); other databases return ``'ok'``."""
        if self.engine.dialect.name != "sqlite":
            return "ok"
        with self.engine.connect() as conn:
            return str(conn.execute(text("PRAGMA integrity_check")).scalar())

    def close(self) -> None:
        self.engine.dispose()
