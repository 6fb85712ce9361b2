"""The tuning database: workloads and every measured trace, in one SQLite file.

A tuning run writes one record per measured candidate and commits it at once, so killing the
tuner (even with ``kill -9``) loses nothing it measured; the next run resumes from the file: it
trains on the records and seeds its population with the best of them. The file is in WAL mode,
so ``probsched show`` (or any reader) can open it while a tuner writes. Everything stored is
JSON text, never pickle. Records move between databases as JSON lines (:mod:`.jsonl`).

Schema (version 2; the ``meta`` table holds ``application = probsched`` and ``schema = 2``):

- ``workloads``: id, structural_hash (unique), name, text (canonical), flops, created;
- ``records``: id, workload_id, trace (JSON, its decisions by address), decisions (the
  canonical JSON of that map, indexed: the same decisions are measured once per target),
  target (the target's key), runs_s (JSON list), latency_s (median run; NULL when the
  candidate failed), error, error_kind, max_abs_err, space, seed, created (Unix seconds).

Version 1 keyed decisions by instruction index; its records cannot be read back by address,
so a version-1 file is refused with a message that says so.

>>> import probsched as ps
>>> from probsched.measure import RunResult
>>> wl = ps.workloads.gmm(b=1, n=16, m=16, k=16)
>>> sch = ps.Schedule(wl, seed=0)
>>> with Database(":memory:") as db:
...     _ = db.add_record(wl, sch.trace, RunResult(True, 2e-6, 1e-6, (1e-6, 2e-6, 3e-6)),
...                       target="x86_64")
...     _ = db.add_record(wl, sch.trace, RunResult.failed("crash", "SIGSEGV"), target="x86_64")
...     [(r.latency_s, r.error_kind) for r in db.records(wl)], db.best(wl)[0].runs_s
([(2e-06, None), (inf, 'crash')], (1e-06, 2e-06, 3e-06))
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from ..errors import ProbschedError
from ..ir.compute import Workload
from ..measure.runner import RunResult
from ..schedule.trace import Trace
from .records import RECORD_COLUMNS, Record, WorkloadRow, record_from_row, succeeded

SCHEMA_VERSION = 2
"""The version this module writes and reads; a file of another version is refused."""

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE workloads (
    id INTEGER PRIMARY KEY,
    structural_hash TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    text TEXT NOT NULL,
    flops INTEGER NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE records (
    id INTEGER PRIMARY KEY,
    workload_id INTEGER NOT NULL REFERENCES workloads(id),
    trace TEXT NOT NULL,
    decisions TEXT NOT NULL,
    target TEXT NOT NULL,
    runs_s TEXT NOT NULL,
    latency_s REAL,
    error TEXT,
    error_kind TEXT,
    max_abs_err REAL,
    space TEXT,
    seed INTEGER,
    created REAL NOT NULL
);
CREATE INDEX records_by_decisions ON records(workload_id, decisions);
CREATE INDEX records_by_latency ON records(workload_id, latency_s);
"""


class TuningDatabase(Protocol):
    """What tuning needs of a database (:class:`Database` is the one we ship)."""

    def add_record(self, wl: Workload, trace: Trace, result: RunResult, *, target: str,
                   space: str | None = None, seed: int | None = None) -> int: ...

    def records(self, wl: Workload | str, *, only_ok: bool = False,
                target: str | None = None) -> list[Record]: ...

    def best(self, wl: Workload | str, k: int = 1, *,
             target: str | None = None) -> list[Record]: ...

    def measured_decisions(self, wl: Workload | str, *,
                           target: str | None = None) -> set[str]: ...


class Database:
    """A probsched tuning database at ``path`` (created when missing unless ``create=False``;
    ``":memory:"`` for a throwaway one). Workload arguments are a :class:`Workload` or its
    structural hash. One connection per object: open one per thread or process."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True,
                 timeout_s: float = 30.0):
        self.path = str(path)
        memory = self.path == ":memory:"
        if not memory and not create and not Path(self.path).exists():
            raise ProbschedError(f"{self.path}: no such database")
        self._ids: dict[str, int] = {}
        try:
            self._conn = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None)
        except sqlite3.Error as exc:
            raise ProbschedError(f"{self.path}: cannot open database: {exc}") from None
        try:
            self._open(memory)
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise ProbschedError(f"{self.path}: not a probsched database ({exc})") from None
        except BaseException:
            self._conn.close()
            raise

    def _open(self, memory: bool) -> None:
        tables = self._tables()  # reads the header: raises for a file that is not SQLite
        if tables and "meta" not in tables:
            raise ProbschedError(f"{self.path}: not a probsched database (an SQLite file "
                                 f"with tables {', '.join(sorted(tables))})")
        if tables:
            self._check_meta()
        if not memory:
            self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        if not tables:
            with self.transaction():  # another process may be creating it: check again inside
                if "meta" not in self._tables():
                    for statement in _SCHEMA.split(";"):
                        self._conn.execute(statement)
                    self._conn.executemany("INSERT INTO meta VALUES (?, ?)",
                                           [("application", "probsched"),
                                            ("schema", str(SCHEMA_VERSION))])
            self._check_meta()

    def _tables(self) -> set[str]:
        rows = self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {name for (name,) in rows}

    def _check_meta(self) -> None:
        meta = dict(self._conn.execute("SELECT key, value FROM meta"))
        if meta.get("application") != "probsched":
            raise ProbschedError(f"{self.path}: not a probsched database (its meta table does "
                                 "not name probsched)")
        version = meta.get("schema", "")
        if not version.isdigit() or int(version) < 1:
            raise ProbschedError(f"{self.path}: unknown database schema version {version!r}")
        if int(version) < SCHEMA_VERSION:
            raise ProbschedError(
                f"{self.path}: database schema version {version} was written by an older "
                f"probsched, which keyed each decision by instruction index; this one keys "
                f"decisions by address (schema {SCHEMA_VERSION}) and cannot read those back. "
                "Tune into a new database (--db); the old file is left as it is")
        if int(version) > SCHEMA_VERSION:
            raise ProbschedError(
                f"{self.path}: database schema version {version} was written by a newer "
                f"probsched; this one reads version {SCHEMA_VERSION} (upgrade probsched)")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction: committed on success, rolled back on any error."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            self._ids.clear()  # ids of workloads added in the transaction are gone
            raise
        self._conn.execute("COMMIT")

    # ------------------------------------------------------------ workloads

    def add_workload(self, wl: Workload) -> int:
        """The id of ``wl``, adding it if new (workloads are identified by structural hash)."""
        with self.transaction():
            return self.ensure_workload(wl.structural_hash, wl.name, wl.text(), wl.flops,
                                        time.time())

    def ensure_workload(self, h: str, name: str, text: str, flops: int, created: float) -> int:
        """The id of the workload of hash ``h``, adding it if new (inside a transaction)."""
        if h not in self._ids:
            self._conn.execute(
                "INSERT INTO workloads (structural_hash, name, text, flops, created) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (structural_hash) DO NOTHING",
                (h, name, text, flops, created),
            )
            self._ids[h] = self._conn.execute(
                "SELECT id FROM workloads WHERE structural_hash = ?", (h,)).fetchone()[0]
        return self._ids[h]

    def workload_id(self, wl: Workload | str) -> int | None:
        """The id of a stored workload; None when it is not stored."""
        h = wl if isinstance(wl, str) else wl.structural_hash
        if h not in self._ids:
            row = self._conn.execute(
                "SELECT id FROM workloads WHERE structural_hash = ?", (h,)).fetchone()
            if row is None:
                return None
            self._ids[h] = row[0]
        return self._ids[h]

    def workloads(self) -> list[WorkloadRow]:
        rows = self._conn.execute(
            "SELECT id, structural_hash, name, text, flops, created FROM workloads ORDER BY id")
        return [WorkloadRow(*row) for row in rows]

    # ------------------------------------------------------------ records

    def add_record(self, wl: Workload, trace: Trace, result: RunResult, *, target: str,
                   space: str | None = None, seed: int | None = None) -> int:
        """Store one measurement (committed before this returns); its id."""
        ok = succeeded(result)
        err = result.max_abs_err
        now = time.time()
        with self.transaction():
            wid = self.ensure_workload(wl.structural_hash, wl.name, wl.text(), wl.flops, now)
            return self.insert(wid, trace.to_json(), trace.key, target,
                               [float(s) for s in result.runs_s],
                               float(result.latency_s) if ok else None, result.error,
                               result.error_kind, float(err) if math.isfinite(err) else None,
                               space, seed, now)

    def insert(self, workload_id: int, trace_json: str, decisions: str, target: str,
               runs_s: list[float], latency_s: float | None, error: str | None,
               error_kind: str | None, max_abs_err: float | None, space: str | None,
               seed: int | None, created: float) -> int:
        """Insert one record row as given (inside a transaction); its id."""
        cur = self._conn.execute(
            f"INSERT INTO records ({RECORD_COLUMNS}) "
            "VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (workload_id, trace_json, decisions, target, json.dumps(runs_s), latency_s, error,
             error_kind, max_abs_err, space, seed, created),
        )
        return int(cur.lastrowid or 0)

    def _select(self, wl: Workload | str, where: str = "", args: tuple = (),
                order: str = "id", limit: int = -1) -> list[Record] | None:
        wid = self.workload_id(wl)
        if wid is None:
            return None
        rows = self._conn.execute(
            f"SELECT {RECORD_COLUMNS} FROM records WHERE workload_id = ? {where} "
            f"ORDER BY {order} LIMIT ?", (wid, *args, limit))
        return [record_from_row(row) for row in rows]

    def records(self, wl: Workload | str, *, only_ok: bool = False,
                target: str | None = None) -> list[Record]:
        """``wl``'s records in the order they were measured (only correct ones if
        ``only_ok``; only those measured on ``target`` if given)."""
        where, args = _filters(only_ok, target)
        return self._select(wl, where, args) or []

    def best(self, wl: Workload | str, k: int = 1, *,
             target: str | None = None) -> list[Record]:
        """The ``k`` fastest correct records of ``wl``, fastest first."""
        where, args = _filters(True, target)
        return self._select(wl, where, args, order="latency_s, id", limit=k) or []

    def has_decisions(self, wl: Workload | str, trace: Trace, *,
                      target: str | None = None) -> bool:
        """Whether a trace with ``trace``'s decisions was measured for ``wl``."""
        wid = self.workload_id(wl)
        if wid is None:
            return False
        where, args = _filters(False, target)
        row = self._conn.execute(
            f"SELECT 1 FROM records WHERE workload_id = ? AND decisions = ? {where} LIMIT 1",
            (wid, trace.key, *args)).fetchone()
        return row is not None

    def has_record(self, workload_id: int, decisions: str, target: str,
                   trace_json: str) -> bool:
        """Whether exactly this trace was measured for this workload and target."""
        row = self._conn.execute(
            "SELECT 1 FROM records WHERE workload_id = ? AND decisions = ? AND target = ? "
            "AND trace = ? LIMIT 1", (workload_id, decisions, target, trace_json)).fetchone()
        return row is not None

    def measured_decisions(self, wl: Workload | str, *, target: str | None = None) -> set[str]:
        """The decisions key of every record of ``wl`` (measured on ``target`` if given), to
        skip duplicates in bulk."""
        wid = self.workload_id(wl)
        if wid is None:
            return set()
        where, args = _filters(False, target)
        rows = self._conn.execute(
            f"SELECT DISTINCT decisions FROM records WHERE workload_id = ? {where}", (wid, *args))
        return {key for (key,) in rows}

    def count(self, wl: Workload | str | None = None, *, only_ok: bool = False) -> int:
        """How many records ``wl`` has (all workloads' when None)."""
        where, args = _filters(only_ok, None)
        if wl is None:
            sql, params = f"SELECT count(*) FROM records WHERE 1 {where}", args
        else:
            wid = self.workload_id(wl)
            if wid is None:
                return 0
            sql, params = f"SELECT count(*) FROM records WHERE workload_id = ? {where}", (
                wid, *args)
        return self._conn.execute(sql, params).fetchone()[0]

    def with_workloads(self, wl: Workload | str | None = None
                       ) -> list[tuple[WorkloadRow, Record]]:
        """Every record (of ``wl`` only, if given) with its workload, in storage order."""
        columns = ", ".join("r." + c.strip() for c in RECORD_COLUMNS.split(","))
        sql = (f"SELECT w.id, w.structural_hash, w.name, w.text, w.flops, w.created, {columns} "
               "FROM records r JOIN workloads w ON w.id = r.workload_id")
        args: tuple[Any, ...] = ()
        if wl is not None:
            wid = self.workload_id(wl)
            if wid is None:
                return []
            sql, args = sql + " WHERE r.workload_id = ?", (wid,)
        rows = self._conn.execute(sql + " ORDER BY r.id", args).fetchall()
        return [(WorkloadRow(*row[:6]), record_from_row(tuple(row[6:]))) for row in rows]

    # ------------------------------------------------------------ lifetime

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Database({self.path!r})"


def _filters(only_ok: bool, target: str | None) -> tuple[str, tuple]:
    where = ""
    args: tuple[str, ...] = ()
    if only_ok:
        where += " AND latency_s IS NOT NULL"
    if target is not None:
        where, args = where + " AND target = ?", (target,)
    return where, args


__all__ = ["SCHEMA_VERSION", "Database", "Record", "TuningDatabase", "WorkloadRow"]
