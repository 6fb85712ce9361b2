"""A tuning database's schema, and what makes an SQLite file ours.

Schema (version 2; the ``meta`` table holds ``application = probsched`` and ``schema = 2``,
and the tuning runs' notes as ``note:KEY`` = JSON: ``Database.put_note``):

- ``workloads``: id, structural_hash (unique), name, text (canonical), flops, created;
- ``records``: id, workload_id, trace (JSON, its decisions by address), decisions (the
  canonical JSON of that map, indexed: the same decisions are measured once per target),
  target (the target's key), runs_s (JSON list), latency_s (median run; NULL when the
  candidate failed), error, error_kind, max_abs_err, space, seed, created (Unix seconds),
  contention (how much the measurement waited for CPUs other processes held; above
  ``measure.contention.LOADED_CORES`` a record is ranked after clean ones), repeat (1: a
  timing again of a candidate measured before, not a new trial).

Version 1 keyed decisions by instruction index; its records cannot be read back by address,
so a version-1 file is refused with a message that says so.

A file is ours when its ``meta`` table names probsched; :func:`identify` reads only the
schema and that table, so it runs on a read-only connection, before anything may be written.
"""

from __future__ import annotations

import sqlite3

from ..errors import DatabaseError
from .sqlite_file import damaged

SCHEMA_VERSION = 2
"""The version this module writes and reads; a file of another version is refused."""

_TABLES = """
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
    created REAL NOT NULL,
    contention REAL NOT NULL DEFAULT 0,
    repeat INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX records_by_decisions ON records(workload_id, decisions);
CREATE INDEX records_by_latency ON records(workload_id, latency_s);
"""


def identify(conn: sqlite3.Connection, path: str) -> bool:
    """Whether the file open on ``conn`` holds our schema (False: no schema and no other
    application's mark, nothing to lose by creating ours); a DatabaseError, naming ``path``,
    for any other file."""
    rows = conn.execute("SELECT type, name FROM sqlite_master").fetchall()
    tables = {name for kind, name in rows if kind == "table"}
    if not rows:
        marks = [conn.execute(f"PRAGMA {mark}").fetchone()[0]
                 for mark in ("application_id", "user_version")]
        if marks == [0, 0]:
            return False
        raise DatabaseError(f"{path}: not a probsched database (an SQLite file with no tables, "
                            f"application_id {marks[0]}, user_version {marks[1]})")
    if "meta" not in tables:
        what = f"tables {', '.join(sorted(tables))}" if tables else "no tables"
        raise DatabaseError(f"{path}: not a probsched database (an SQLite file with {what})")
    columns = {row[1] for row in conn.execute("PRAGMA table_info(meta)")}
    pairs = {"key", "value"} <= columns  # else a meta table of another application
    meta = dict(conn.execute("SELECT key, value FROM meta")) if pairs else {}
    if meta.get("application") != "probsched":
        raise DatabaseError(f"{path}: not a probsched database (its meta table does not name "
                            "probsched)")
    version = str(meta.get("schema", ""))
    if not version.isdigit() or int(version) < 1:
        raise DatabaseError(f"{path}: unknown database schema version {version!r}")
    if int(version) < SCHEMA_VERSION:
        raise DatabaseError(
            f"{path}: database schema version {version} was written by an older probsched, "
            f"which keyed each decision by instruction index; this one keys decisions by "
            f"address (schema {SCHEMA_VERSION}) and cannot read those back. Tune into a new "
            "database (--db); the old file is left as it is")
    if int(version) > SCHEMA_VERSION:
        raise DatabaseError(
            f"{path}: database schema version {version} was written by a newer probsched; "
            f"this one reads version {SCHEMA_VERSION} (upgrade probsched)")
    missing = {"workloads", "records"} - tables
    if missing:
        raise damaged(path, f"tables missing: {', '.join(sorted(missing))}")
    return True


def create_tables(conn: sqlite3.Connection) -> None:
    """Create the tables and the meta rows (inside the caller's transaction)."""
    for statement in _TABLES.split(";"):
        conn.execute(statement)
    conn.executemany("INSERT INTO meta VALUES (?, ?)",
                     [("application", "probsched"), ("schema", str(SCHEMA_VERSION))])


__all__ = ["SCHEMA_VERSION", "create_tables", "identify"]
