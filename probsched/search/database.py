"""The tuning database: workloads and every measured trace, in one SQLite file.

A tuning run writes one record per measured candidate and commits it at once, so killing the
tuner (even with ``kill -9``) loses nothing it measured; the next run resumes from the file: it
trains on the records and seeds its population with the best of them. The file is in WAL mode,
so ``probsched show`` (or any reader) can open it while a tuner writes. Everything stored is
JSON text, never pickle. Records move between databases as JSON lines (:mod:`.jsonl`); the
tables, and what makes a file ours, are in :mod:`.schema`.

Opening checks the file before SQLite may write to it (:mod:`.sqlite_file`), so that a tuner
stops before it measures anything: it must be SQLite and ours, or it is refused untouched;
intact (``PRAGMA quick_check``, about 1.3 s for 100k records, 1.3 GB); and, to tune, writable
(its permissions and its directory's, then a write transaction rolled back). With
``readonly=True`` (what ``probsched show`` uses) it opens by ``mode=ro``: nothing is created,
converted or written (reading a file in WAL mode leaves SQLite's ``-wal`` and ``-shm`` beside
it, as any reader does). Every sqlite3 error becomes a :class:`~probsched.errors.DatabaseError`
naming the file and the cause.

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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any, Protocol

from ..errors import DatabaseError
from ..ir.compute import Workload
from ..measure import contention as machine_load
from ..measure.runner import RunResult
from ..schedule.trace import Trace
from .records import RECORD_COLUMNS, Record, WorkloadRow, record_from_row, succeeded
from .schema import SCHEMA_VERSION, create_tables, identify
from .sqlite_file import EMPTY, MISSING, SQLITE, check_writable, connect, damaged, failure, inspect


class TuningDatabase(Protocol):
    """What tuning needs of a database (:class:`Database` is the one we ship)."""

    def add_record(self, wl: Workload, trace: Trace, result: RunResult, *, target: str,
                   space: str | None = None, seed: int | None = None,
                   repeat: bool = False) -> int: ...

    def records(self, wl: Workload | str, *, only_ok: bool = False,
                target: str | None = None) -> list[Record]: ...

    def best(self, wl: Workload | str, k: int = 1, *,
             target: str | None = None) -> list[Record]: ...

    def measured_decisions(self, wl: Workload | str, *,
                           target: str | None = None) -> set[str]: ...


class Database:
    """A probsched tuning database at ``path`` (created when missing or empty unless
    ``create=False``; ``":memory:"`` for a throwaway one), checked as the module says;
    ``readonly=True`` to read it only. Workload arguments are a :class:`Workload` or its
    structural hash. One connection per object: open one per thread or process."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True,
                 readonly: bool = False, timeout_s: float = 30.0):
        self.path = str(path)
        self.readonly = readonly
        self._ids: dict[str, int] = {}
        memory = self.path == ":memory:"
        if memory and readonly:
            raise DatabaseError("':memory:' cannot be opened read-only (it starts empty)")
        state = EMPTY if memory else inspect(self.path)
        if state == MISSING and (readonly or not create):
            raise DatabaseError(f"{self.path}: no such database")
        if state == EMPTY and not memory and (readonly or not create):
            raise DatabaseError(f"{self.path}: an empty file, not a probsched database (it has "
                                "no records)")
        if not readonly and not memory:
            check_writable(self.path, state)
        self._conn: sqlite3.Connection
        try:
            self._open(state, memory, create, timeout_s)
        except BaseException as exc:
            if hasattr(self, "_conn"):  # unset when the first connection failed
                self._conn.close()
            if isinstance(exc, sqlite3.Error):
                raise failure(self.path, exc) from None
            raise

    def _open(self, state: str, memory: bool, create: bool, timeout_s: float) -> None:
        ours = False
        if state == SQLITE:  # identified and checked by a read-only connection first
            self._conn = connect(self.path, readonly=True, timeout_s=timeout_s)
            ours = identify(self._conn, self.path)
            if not ours and (self.readonly or not create):
                raise DatabaseError(f"{self.path}: an SQLite file with no tables, not a "
                                    "probsched database (it has no records)")
            problems = self._conn.execute("PRAGMA quick_check(1)").fetchone()[0]
            if problems != "ok":
                raise damaged(self.path, f"quick_check: {problems}")
            if self.readonly:
                return
            self._conn.close()
        self._conn = connect(self.path, readonly=False, timeout_s=timeout_s)
        if ours:  # a write that is rolled back: SQLite's own word on whether it can write
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute("UPDATE meta SET value = value WHERE key = 'application'")
            self._conn.execute("ROLLBACK")
        if not memory and self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0] != "wal":
            raise DatabaseError(f"{self.path}: SQLite cannot switch the database to WAL mode")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        if ours:
            return
        with self.transaction():  # another process may be creating it: check again inside
            if not identify(self._conn, self.path):
                create_tables(self._conn)

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        """Every row of one statement; SQLite's errors as a DatabaseError naming the file."""
        try:
            return self._conn.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise failure(self.path, exc) from None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction: committed on success, rolled back on any error."""
        if self.readonly:
            raise DatabaseError(f"{self.path}: opened read-only (readonly=True): cannot write")
        self._rows("BEGIN IMMEDIATE")
        try:
            yield
            self._rows("COMMIT")
        except BaseException:
            if self._conn.in_transaction:  # SQLite rolls back by itself after some errors
                with suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
            self._ids.clear()  # ids of workloads added in the transaction are gone
            raise

    # ------------------------------------------------------------ workloads

    def add_workload(self, wl: Workload) -> int:
        """The id of ``wl``, adding it if new (workloads are identified by structural hash)."""
        with self.transaction():
            return self.ensure_workload(wl.structural_hash, wl.name, wl.text(), wl.flops,
                                        time.time())

    def ensure_workload(self, h: str, name: str, text: str, flops: int, created: float) -> int:
        """The id of the workload of hash ``h``, adding it if new (inside a transaction)."""
        if h not in self._ids:
            self._rows(
                "INSERT INTO workloads (structural_hash, name, text, flops, created) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (structural_hash) DO NOTHING",
                (h, name, text, flops, created),
            )
            self._ids[h] = self._rows(
                "SELECT id FROM workloads WHERE structural_hash = ?", (h,))[0][0]
        return self._ids[h]

    def workload_id(self, wl: Workload | str) -> int | None:
        """The id of a stored workload; None when it is not stored."""
        h = wl if isinstance(wl, str) else wl.structural_hash
        if h not in self._ids:
            rows = self._rows("SELECT id FROM workloads WHERE structural_hash = ?", (h,))
            if not rows:
                return None
            self._ids[h] = rows[0][0]
        return self._ids[h]

    def workloads(self) -> list[WorkloadRow]:
        rows = self._rows(
            "SELECT id, structural_hash, name, text, flops, created FROM workloads ORDER BY id")
        return [WorkloadRow(*row) for row in rows]

    # ------------------------------------------------------------ records

    def add_record(self, wl: Workload, trace: Trace, result: RunResult, *, target: str,
                   space: str | None = None, seed: int | None = None,
                   repeat: bool = False) -> int:
        """Store one measurement (committed before this returns); its id. ``repeat``: a
        timing again of a candidate measured before."""
        ok = succeeded(result)
        err = result.max_abs_err
        now = time.time()
        with self.transaction():
            wid = self.ensure_workload(wl.structural_hash, wl.name, wl.text(), wl.flops, now)
            return self.insert(wid, trace.to_json(), trace.key, target,
                               [float(s) for s in result.runs_s],
                               float(result.latency_s) if ok else None, result.error,
                               result.error_kind, float(err) if math.isfinite(err) else None,
                               space, seed, now, float(result.contention), repeat)

    def insert(self, workload_id: int, trace_json: str, decisions: str, target: str,
               runs_s: list[float], latency_s: float | None, error: str | None,
               error_kind: str | None, max_abs_err: float | None, space: str | None,
               seed: int | None, created: float, contention: float = 0.0,
               repeat: bool = False) -> int:
        """Insert one record row as given (inside a transaction); its id."""
        self._rows(
            f"INSERT INTO records ({RECORD_COLUMNS}) "
            "VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (workload_id, trace_json, decisions, target, json.dumps(runs_s), latency_s, error,
             error_kind, max_abs_err, space, seed, created, contention, int(repeat)),
        )
        return int(self._rows("SELECT last_insert_rowid()")[0][0])

    def _select(self, wl: Workload | str, where: str = "", args: tuple = (),
                order: str = "id", limit: int = -1) -> list[Record] | None:
        wid = self.workload_id(wl)
        if wid is None:
            return None
        rows = self._rows(
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
        """The ``k`` fastest candidates of ``wl`` (distinct decisions), fastest first, each by
        the median of its correct timings, as the record that took that median. Candidates
        timed again (several clean timings: a tuner confirms its best so) come before those
        timed once, and one timed only under load (``Record.loaded``) after every clean
        one."""
        wid = self.workload_id(wl)
        if wid is None:
            return []
        where, args = _filters(True, target)
        rows = self._rows(f"SELECT id, decisions, target, latency_s, contention FROM records "
                          f"WHERE workload_id = ? {where}", (wid, *args))
        groups: dict[tuple[str, str], list[tuple[bool, float, int]]] = {}
        for rid, decisions, tgt, latency, contention in rows:  # a candidate: on one target
            groups.setdefault((decisions, tgt), []).append(
                (contention > machine_load.LOADED_CORES, latency, rid))
        ranked = []
        confirmed = any(sum(not t[0] for t in timings) > 1 for timings in groups.values())
        for timings in groups.values():
            clean = sorted(t for t in timings if not t[0]) or sorted(timings)
            middle = clean[(len(clean) - 1) // 2]  # the median (the lower one of two)
            once = confirmed and len(clean) < 2
            ranked.append((middle[0], once, middle[1], middle[2]))
        ids = [rid for *_, rid in sorted(ranked)[:k]]
        if not ids:
            return []
        marks = ", ".join("?" * len(ids))
        found = {r.id: r for r in self._select(wl, f"AND id IN ({marks})", tuple(ids)) or []}
        return [found[i] for i in ids]

    def has_decisions(self, wl: Workload | str, trace: Trace, *,
                      target: str | None = None) -> bool:
        """Whether a trace with ``trace``'s decisions was measured for ``wl``."""
        wid = self.workload_id(wl)
        if wid is None:
            return False
        where, args = _filters(False, target)
        return bool(self._rows(
            f"SELECT 1 FROM records WHERE workload_id = ? AND decisions = ? {where} LIMIT 1",
            (wid, trace.key, *args)))

    def has_record(self, workload_id: int, decisions: str, target: str,
                   trace_json: str) -> bool:
        """Whether exactly this trace was measured for this workload and target."""
        return bool(self._rows(
            "SELECT 1 FROM records WHERE workload_id = ? AND decisions = ? AND target = ? "
            "AND trace = ? LIMIT 1", (workload_id, decisions, target, trace_json)))

    def measured_decisions(self, wl: Workload | str, *, target: str | None = None) -> set[str]:
        """The decisions key of every record of ``wl`` (measured on ``target`` if given), to
        skip duplicates in bulk."""
        wid = self.workload_id(wl)
        if wid is None:
            return set()
        where, args = _filters(False, target)
        rows = self._rows(
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
        return int(self._rows(sql, params)[0][0])

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
        rows = self._rows(sql + " ORDER BY r.id", args)
        return [(WorkloadRow(*row[:6]), record_from_row(tuple(row[6:]))) for row in rows]

    def verdicts(self, wl: Workload | str) -> list[tuple]:
        """Every record of ``wl`` without its trace, in storage order: (id, target,
        latency_s or None, error_kind, error, contention, repeat) rows (what a report reads:
        parsing a thousand traces would take seconds)."""
        wid = self.workload_id(wl)
        if wid is None:
            return []
        return self._rows("SELECT id, target, latency_s, error_kind, error, contention, "
                          "repeat FROM records WHERE workload_id = ? ORDER BY id", (wid,))

    # ------------------------------------------------------------ notes

    def put_note(self, key: str, value: dict) -> None:
        """Keep ``value`` (JSON) under ``key``: what a tuning run notes beside its records
        (baselines, the machine's peak, versions; probsched/driver/notes.py), in the meta
        table as ``note:KEY``, replacing an older note of that key."""
        with self.transaction():
            self._rows("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                       ("note:" + key, json.dumps(value)))

    def notes(self) -> dict[str, dict]:
        """Every note by key (:meth:`put_note`)."""
        rows = self._rows("SELECT key, value FROM meta WHERE key LIKE 'note:%'")
        return {k.removeprefix("note:"): json.loads(v) for k, v in rows}

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
