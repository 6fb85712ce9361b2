"""Records as JSON lines: one object per record, with its workload's hash and text, to move
records between databases (and machines) or to read them elsewhere.

Line format (version 2): ``version``, ``workload`` (hash, name, text, flops), ``trace`` (its
JSON, decisions by address), ``target``, ``runs_s``, ``latency_s`` (null when failed),
``error``, ``error_kind``, ``max_abs_err``, ``space``, ``seed``, ``created``,
``contention`` (0 when absent), ``repeat`` (false when absent).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from ..errors import Location, ProbschedError
from ..ir.compute import Workload
from ..schedule.trace import Trace
from .database import Database

JSONL_VERSION = 2
"""The ``"version"`` of each line :func:`export_jsonl` writes (1 keyed decisions by
instruction index: refused)."""


def export_jsonl(db: Database, dest: str | os.PathLike[str] | IO[str],
                 wl: Workload | str | None = None) -> int:
    """Write every record of ``db`` (of ``wl`` only, if given) as one JSON object per line;
    the number of lines written."""
    rows = db.with_workloads(wl)
    with _open_text(dest, "w") as out:
        for w, r in rows:
            line = {
                "version": JSONL_VERSION,
                "workload": {"hash": w.structural_hash, "name": w.name, "text": w.text,
                             "flops": w.flops},
                "trace": json.loads(r.trace.to_json()),
                "target": r.target,
                "runs_s": list(r.runs_s),
                "latency_s": r.latency_s if r.ok else None,
                "error": r.error,
                "error_kind": r.error_kind,
                "max_abs_err": r.max_abs_err if math.isfinite(r.max_abs_err) else None,
                "contention": r.contention,
                "repeat": r.repeat,
                "space": r.space,
                "seed": r.seed,
                "created": r.created,
            }
            out.write(json.dumps(line, separators=(",", ":"), allow_nan=False) + "\n")
    return len(rows)


def import_jsonl(db: Database, src: str | os.PathLike[str] | IO[str]) -> int:
    """Add the records of a JSON-lines file (as :func:`export_jsonl` writes) to ``db``,
    creating their workloads by hash and skipping records already stored (same workload,
    trace and target). All or nothing: a bad line raises, naming it, and nothing is added.
    Returns the number of records added."""
    name = str(src) if not hasattr(src, "read") else getattr(src, "name", "<jsonl>")
    added = 0
    with _open_text(src, "r") as lines, db.transaction():
        for lineno, text in enumerate(lines, 1):
            if not text.strip():
                continue
            try:
                line = _parse_line(text)
            except (ValueError, KeyError, TypeError, ProbschedError) as exc:
                msg = exc.message if isinstance(exc, ProbschedError) else str(exc)
                raise ProbschedError(f"bad record: {msg}", Location(str(name), lineno, 1)
                                     ) from None
            added += _import_line(db, line)
    return added


def _import_line(db: Database, line: dict[str, Any]) -> int:
    w = line["workload"]
    wid = db.ensure_workload(w["hash"], w["name"], w["text"], w["flops"], line["created"])
    trace: Trace = line["trace"]
    trace_json, target = trace.to_json(), line["target"]
    if db.has_record(wid, trace.key, target, trace_json):
        return 0
    db.insert(wid, trace_json, trace.key, target, line["runs_s"], line["latency_s"],
              line["error"], line["error_kind"], line["max_abs_err"], line["space"],
              line["seed"], line["created"], line["contention"], bool(line["repeat"]))
    return 1


def _parse_line(text: str) -> dict[str, Any]:
    """One exported line, checked and with its trace parsed; raises ValueError and friends."""
    line = json.loads(text)
    if not isinstance(line, dict):
        raise ValueError("not a JSON object")
    if line.get("version") == 1:
        raise ValueError("version 1 (decisions keyed by instruction index, from an older "
                         "probsched) cannot be read back by address")
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
    line.setdefault("contention", 0.0)  # lines of earlier version-2 writers lack these
    line.setdefault("repeat", False)
    if not isinstance(line["repeat"], bool):
        raise ValueError("repeat must be true or false")
    for key in ("latency_s", "max_abs_err", "contention"):
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
    if not isinstance(f, str | os.PathLike):  # a file object
        yield f
        return
    try:
        handle = open(f, mode, encoding="utf-8")  # noqa: SIM115 (closed below)
    except OSError as exc:
        raise ProbschedError(f"{f}: {exc.strerror}") from None
    with handle:
        yield handle
