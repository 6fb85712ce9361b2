"""The tuning database: workloads and every measured trace, in one SQLite file.

A tuning run writes one record per measured candidate and commits it at once, so killing the
tuner (even with ``kill -9``) loses nothing it measured; the next run resumes from the file: it
trains on the records and seeds its population with the best of them. The file is in WAL mode,
so ``probsched show`` (or any reader) can open it while a tuner writes. Everything stored is
JSON text, never pickle.

Schema (version 1; the ``meta`` table holds ``application = probsched`` and ``schema = 1``):

- ``workloads``: id, structural_hash (unique), name, text (canonical), flops, created;
- ``records``: id, workload_id, trace (JSON), decisions (canonical JSON of the trace's
  decisions, indexed: the same decisions are measured once), target, runs_s (JSON list),
  latency_s (median run; NULL when the candidate failed), error, error_kind, max_abs_err,
  space, seed, created (Unix seconds).

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

import io
import json
import math
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from ..errors import Location, ProbschedError
from ..ir.compute import Workload
from ..measure.runner import RunResult
from ..schedule.trace import Trace

SCHEMA_VERSION = 1
"""The version this module writes and reads; a file of a newer version is refused."""

JSONL_VERSION = 1
"""The ``"version"`` of each line :meth:`Database.export_jsonl` writes."""

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

_RECORD_COLUMNS = ("id, workload_id, trace, decisions, target, runs_s, latency_s, error, "
                   "error_kind, max_abs_err, space, seed, created")


@dataclass(frozen=True)
class WorkloadRow:
    """A stored workload (its canonical text; the database cannot rebuild the object)."""

    id: int
    structural_hash: str
    name: str
    text: str
    flops: int
    created: float


@dataclass(frozen=True)
class Record:
    """One measured candidate. A failed one has ``latency_s = inf`` and says why in
    ``error_kind`` ("build", "crash", "timeout", "wrong" or "error") and ``error``."""

    id: int
    workload_id: int
    trace: Trace
    decisions: str
    target: str
    runs_s: tuple[float, ...]
    latency_s: float
    error: str | None
    error_kind: str | None
    max_abs_err: float
    space: str | None
    seed: int | None
    created: float

    @property
    def ok(self) -> bool:
        return math.isfinite(self.latency_s)

    @property
    def min_s(self) -> float:
        return min(self.runs_s, default=math.inf)

    def result(self) -> RunResult:
        """The measurement as the runner reported it."""
        return RunResult(self.ok, self.latency_s, self.min_s, self.runs_s, self.max_abs_err,
                         self.error, self.error_kind)


class TuningDatabase(Protocol):
    """What the search needs from a database (``Database`` is the one we ship)."""

    def add_record(self, wl: Workload, trace: Trace, result: RunResult, *, target: str,
                   space: str | None = None, seed: int | None = None) -> int: ...

    def records(self, wl: Workload | str, *, only_ok: bool = False) -> list[Record]: ...

    def best(self, wl: Workload | str, k: int = 1) -> list[Record]: ...

    def has_decisions(self, wl: Workload | str, trace: Trace) -> bool: ...


def decisions_key(trace: Trace) -> str:
    """The canonical JSON of ``trace``'s decisions (by instruction index): equal for two
    traces exactly when their decisions are; the database indexes records by it."""
    decisions = json.loads(trace.to_json())["decisions"]
    return json.dumps(sorted(decisions, key=lambda d: d[0]), separators=(",", ":"))


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
        if not memory:
            self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        if not tables:
            with self._write():  # another process may be creating it too: check again inside
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
        if int(version) > SCHEMA_VERSION:
            raise ProbschedError(
                f"{self.path}: database schema version {version} was written by a newer "
                f"probsched; this one reads version {SCHEMA_VERSION} (upgrade probsched)"
            )

    @contextmanager
    def _write(self) -> Iterator[None]:
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
        with self._write():
            return self._add_workload(wl.structural_hash, wl.name, wl.text(), wl.flops,
                                      time.time())

    def _add_workload(self, h: str, name: str, text: str, flops: int, created: float) -> int:
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
        ok = result.correct and result.error_kind is None and math.isfinite(result.latency_s)
        err = result.max_abs_err
        now = time.time()
        with self._write():
            wid = self._add_workload(wl.structural_hash, wl.name, wl.text(), wl.flops, now)
            cur = self._conn.execute(
                f"INSERT INTO records ({_RECORD_COLUMNS}) "
                "VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (wid, trace.to_json(), decisions_key(trace), target,
                 json.dumps([float(s) for s in result.runs_s]),
                 float(result.latency_s) if ok else None, result.error, result.error_kind,
                 float(err) if math.isfinite(err) else None, space, seed, now),
            )
        return cur.lastrowid

    def _select(self, wl: Workload | str, where: str = "", args: tuple = (),
                order: str = "id", limit: int = -1) -> list[Record] | None:
        wid = self.workload_id(wl)
        if wid is None:
            return None
        rows = self._conn.execute(
            f"SELECT {_RECORD_COLUMNS} FROM records WHERE workload_id = ? {where} "
            f"ORDER BY {order} LIMIT ?", (wid, *args, limit))
        return [_record(row) for row in rows]

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
            (wid, decisions_key(trace), *args)).fetchone()
        return row is not None

    def measured_decisions(self, wl: Workload | str, *, target: str | None = None) -> set[str]:
        """The :func:`decisions_key` of every record of ``wl`` (measured on ``target`` if
        given), to skip duplicates in bulk."""
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

    # ------------------------------------------------------------ JSON lines

    def export_jsonl(self, dest: str | os.PathLike[str] | IO[str],
                     wl: Workload | str | None = None) -> int:
        """Write every record (of ``wl`` only, if given) as one JSON object per line, with
        its workload's hash and text; the number of lines written."""
        sql = (f"SELECT w.structural_hash, w.name, w.text, w.flops, "
               f"{', '.join('r.' + c.strip() for c in _RECORD_COLUMNS.split(','))} "
               "FROM records r JOIN workloads w ON w.id = r.workload_id")
        args: tuple = ()
        if wl is not None:
            wid = self.workload_id(wl)
            if wid is None:
                return 0
            sql, args = sql + " WHERE r.workload_id = ?", (wid,)
        rows = self._conn.execute(sql + " ORDER BY r.id", args).fetchall()
        with _open_text(dest, "w") as out:
            for h, name, text, flops, *rec in rows:
                r = _record(tuple(rec))
                line = {
                    "version": JSONL_VERSION,
                    "workload": {"hash": h, "name": name, "text": text, "flops": flops},
                    "trace": json.loads(r.trace.to_json()),
                    "target": r.target,
                    "runs_s": list(r.runs_s),
                    "latency_s": r.latency_s if r.ok else None,
                    "error": r.error,
                    "error_kind": r.error_kind,
                    "max_abs_err": r.max_abs_err if math.isfinite(r.max_abs_err) else None,
                    "space": r.space,
                    "seed": r.seed,
                    "created": r.created,
                }
                out.write(json.dumps(line, separators=(",", ":"), allow_nan=False) + "\n")
        return len(rows)

    def import_jsonl(self, src: str | os.PathLike[str] | IO[str]) -> int:
        """Add the records of a JSON-lines file (as :meth:`export_jsonl` writes), creating
        their workloads by hash and skipping records already stored (same workload, trace and
        target). All or nothing: a bad line raises, naming it, and nothing is added. Returns
        the number of records added."""
        name = str(src) if not hasattr(src, "read") else getattr(src, "name", "<jsonl>")
        added = 0
        with _open_text(src, "r") as lines, self._write():
            for lineno, text in enumerate(lines, 1):
                if not text.strip():
                    continue
                try:
                    line = _parse_line(text)
                except (ValueError, KeyError, TypeError, ProbschedError) as exc:
                    msg = exc.message if isinstance(exc, ProbschedError) else str(exc)
                    raise ProbschedError(f"bad record: {msg}", Location(str(name), lineno, 1)
                                         ) from None
                added += self._import_line(line)
        return added

    def _import_line(self, line: dict[str, Any]) -> int:
        w = line["workload"]
        wid = self._add_workload(w["hash"], w["name"], w["text"], w["flops"], line["created"])
        trace, key, target = line["trace"], decisions_key(line["trace"]), line["target"]
        trace_json = trace.to_json()
        dup = self._conn.execute(
            "SELECT 1 FROM records WHERE workload_id = ? AND decisions = ? AND target = ? "
            "AND trace = ? LIMIT 1", (wid, key, target, trace_json)).fetchone()
        if dup is not None:
            return 0
        self._conn.execute(
            f"INSERT INTO records ({_RECORD_COLUMNS}) "
            "VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (wid, trace_json, key, target, json.dumps(line["runs_s"]), line["latency_s"],
             line["error"], line["error_kind"], line["max_abs_err"], line["space"],
             line["seed"], line["created"]),
        )
        return 1

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
    where, args = "", ()
    if only_ok:
        where += " AND latency_s IS NOT NULL"
    if target is not None:
        where, args = where + " AND target = ?", (target,)
    return where, args


def _record(row: tuple) -> Record:
    (rid, wid, trace, decisions, target, runs_s, latency_s, error, error_kind, max_abs_err,
     space, seed, created) = row
    return Record(
        rid, wid, Trace.from_json(trace), decisions, target, tuple(json.loads(runs_s)),
        math.inf if latency_s is None else latency_s, error, error_kind,
        math.nan if max_abs_err is None else max_abs_err, space, seed, created,
    )


def _parse_line(text: str) -> dict[str, Any]:
    """One exported line, checked and with its trace parsed; raises ValueError and friends."""
    line = json.loads(text)
    if not isinstance(line, dict):
        raise ValueError("not a JSON object")
    if line.get("version") != JSONL_VERSION:
        raise ValueError(f"unknown version {line.get('version')!r} (expected {JSONL_VERSION})")
    w = line["workload"]
    for key, kind in (("hash", str), ("name", str), ("text", str), ("flops", int)):
        if not isinstance(w[key], kind):
            raise ValueError(f"workload {key} must be {kind.__name__}")
    _check(line, "target", str)
    _check(line, "created", (int, float))
    for key in ("error", "error_kind", "space"):
        _check(line, key, (str, type(None)))
    _check(line, "seed", (int, type(None)))
    for key in ("latency_s", "max_abs_err"):
        _check(line, key, (int, float, type(None)))
    runs = line["runs_s"]
    if not isinstance(runs, list) or not all(isinstance(s, int | float) for s in runs):
        raise ValueError("runs_s must be a list of numbers")
    if line["latency_s"] is None and line["error_kind"] is None:
        raise ValueError("a record without latency_s needs an error_kind")
    line["trace"] = Trace.from_json(json.dumps(line["trace"]))
    return line


def _check(line: dict[str, Any], key: str, kinds) -> None:
    if not isinstance(line[key], kinds) or isinstance(line[key], bool):
        raise ValueError(f"{key} has the wrong type ({type(line[key]).__name__})")


@contextmanager
def _open_text(f: str | os.PathLike[str] | IO[str], mode: str) -> Iterator[IO[str]]:
    if isinstance(f, io.IOBase) or hasattr(f, "read" if mode == "r" else "write"):
        yield f  # type: ignore[misc]
        return
    try:
        handle = open(f, mode, encoding="utf-8")
    except OSError as exc:
        raise ProbschedError(f"{f}: {exc.strerror}") from None
    with handle:
        yield handle
