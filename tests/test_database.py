"""The tuning database: round trips, best-k, failures, duplicates, kill -9, JSONL, concurrency,
schema versions."""

import io
import json
import math
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import probsched as ps
from probsched.measure import RunResult
from probsched.schedule import decisions_key
from probsched.search.database import SCHEMA_VERSION, Database
from probsched.search.jsonl import export_jsonl, import_jsonl

ROOT = Path(__file__).resolve().parent.parent
TARGET = "x86_64-test cpu=test vector=256b"
WL = ps.workloads.gmm(b=1, n=16, m=16, k=16)


def make_trace(factors=None, seed=0, wl=WL):
    """gmm's j loop split in two; ``factors`` overrides the sampled decision."""
    sch = ps.Schedule(wl, seed=seed)
    loops = sch.get_loops(sch.get_block("C"))
    t = sch.sample_perfect_tile(loops[1], n=2)
    sch.split(loops[1], t)
    return sch.trace if factors is None else sch.trace.with_decision("#0", factors)


def ok(latency, runs=None):
    runs = runs or (latency * 0.9, latency, latency * 1.1)
    return RunResult(True, latency, min(runs), tuple(runs), 1e-7)


def test_round_trip(tmp_path):
    path = tmp_path / "t.db"
    t1, t2 = make_trace((2, 8)), make_trace((4, 4))
    with Database(path) as db:
        wid = db.add_workload(WL)
        assert db.add_workload(WL) == wid == db.workload_id(WL) == db.workload_id(
            WL.structural_hash)
        r1 = db.add_record(WL, t1, ok(2e-6, (1e-6, 2e-6, 5e-6)), target=TARGET, space="s",
                           seed=7)
        r2 = db.add_record(WL, t2, ok(1e-6), target=TARGET)
    with Database(path, create=False) as db:
        recs = db.records(WL)
        assert [r.id for r in recs] == [r1, r2]
        a = recs[0]
        assert a.trace == t1 and a.trace.decision_map == {"#0": (2, 8)}
        assert (a.latency_s, a.runs_s, a.min_s) == (2e-6, (1e-6, 2e-6, 5e-6), 1e-6)
        assert (a.target, a.space, a.seed, a.error, a.error_kind) == (TARGET, "s", 7, None, None)
        assert a.ok and a.workload_id == wid
        assert a.decisions == decisions_key(t1.decision_map) == t1.key
        assert a.created <= time.time() and a.max_abs_err == 1e-7
        assert a.result() == ok(2e-6, (1e-6, 2e-6, 5e-6))
        assert recs[1].trace == t2 and recs[1].space is None and recs[1].seed is None
        [w] = db.workloads()
        assert (w.id, w.structural_hash, w.name, w.text, w.flops) == (
            wid, WL.structural_hash, "gmm", WL.text(), WL.flops)
        assert db.count(WL) == db.count() == 2


def test_wal_mode_and_json_only(tmp_path):
    path = tmp_path / "t.db"
    with Database(path) as db:
        db.add_record(WL, make_trace(), ok(1e-6), target=TARGET)
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    trace, runs = raw.execute("SELECT trace, runs_s FROM records").fetchone()
    assert isinstance(trace, str) and ps.Trace.from_json(trace) == make_trace()
    assert json.loads(runs) == list(ok(1e-6).runs_s)
    raw.close()


def test_best_k_ordering_and_failures():
    with Database(":memory:") as db:
        for i, lat in enumerate([5e-6, 1e-6, 3e-6, 2e-6]):
            db.add_record(WL, make_trace((2 ** i, 16 // 2 ** i)), ok(lat), target=TARGET)
        db.add_record(WL, make_trace((1, 16)), RunResult.failed("crash", "SIGSEGV"),
                      target=TARGET)
        db.add_record(WL, make_trace((16, 1)),
                      RunResult.failed("wrong", "C: max abs error 3", max_abs_err=3.0),
                      target=TARGET)
        db.add_record(WL, make_trace((4, 4)), ok(0.5e-6), target="another target")
        assert [r.latency_s for r in db.best(WL, k=3, target=TARGET)] == [1e-6, 2e-6, 3e-6]
        assert db.best(WL)[0].latency_s == 0.5e-6
        assert len(db.best(WL, k=100)) == 5
        failed = [r for r in db.records(WL) if not r.ok]
        assert [(r.error_kind, r.error, r.latency_s) for r in failed] == [
            ("crash", "SIGSEGV", math.inf), ("wrong", "C: max abs error 3", math.inf)]
        assert failed[1].max_abs_err == 3.0 and math.isnan(failed[0].max_abs_err)
        assert failed[0].result() == RunResult.failed("crash", "SIGSEGV")
        assert len(db.records(WL, only_ok=True)) == 5
        assert db.count(WL) == 7 and db.count(WL, only_ok=True) == 5


def test_unknown_workload_is_empty():
    other = ps.workloads.gmm(b=1, n=8, m=8, k=8)
    with Database(":memory:") as db:
        db.add_record(WL, make_trace(), ok(1e-6), target=TARGET)
        assert db.workload_id(other) is None
        assert db.records(other) == db.best(other) == []
        assert db.count(other) == 0 and not db.has_decisions(other, make_trace())


def test_duplicates_by_decisions():
    with Database(":memory:") as db:
        db.add_record(WL, make_trace((2, 8)), ok(1e-6), target=TARGET)
        # a different trace object (another seed, then the same decision) is a duplicate
        assert db.has_decisions(WL, make_trace((2, 8), seed=5))
        assert not db.has_decisions(WL, make_trace((8, 2)))
        assert not db.has_decisions(WL, make_trace((2, 8)), target="another target")
        assert db.measured_decisions(WL) == {make_trace((2, 8)).key}
    assert make_trace((2, 8)).key == '[["#0",[2,8]]]'
    assert decisions_key({"b": 1, "a": [2, 3]}) == decisions_key({"a": (2, 3), "b": 1})


WRITER = textwrap.dedent("""
    import sys, time
    import probsched as ps
    from probsched.measure import RunResult
    from probsched.search.database import Database
    wl = ps.workloads.gmm(b=1, n=16, m=16, k=16)
    sch = ps.Schedule(wl, seed=0)
    loops = sch.get_loops(sch.get_block("C"))
    sch.split(loops[1], sch.sample_perfect_tile(loops[1], n=2))
    trace = sch.trace
    n, pause = int(sys.argv[2]), float(sys.argv[3])
    with Database(sys.argv[1]) as db:
        for i in range(n):
            lat = 1e-6 * (1 + i % 7)
            rid = db.add_record(wl, trace.with_decision("#0", (1, 16)) if i % 2 else trace,
                                RunResult(True, lat, lat, (lat,)), target="t", seed=i)
            print(rid, flush=True)
            time.sleep(pause)
""")


def _writer(path, n, pause):
    return subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(n), str(pause)],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)


def test_kill_9_loses_nothing_committed(tmp_path):
    path = tmp_path / "t.db"
    proc = _writer(path, 100_000, 0.002)
    committed = []
    try:
        while len(committed) < 20:
            line = proc.stdout.readline()
            assert line, "the writer died"
            committed.append(int(line))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    with Database(path, create=False) as db:
        ids = {r.id for r in db.records(WL)}
        assert set(committed) <= ids and len(ids) < 100_000
        assert db._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        db.add_record(WL, make_trace(), ok(1e-6), target="t")  # and it takes more
        assert db.count(WL) == len(ids) + 1


def test_concurrent_reader_while_writer_writes(tmp_path):
    path = tmp_path / "t.db"
    proc = _writer(path, 300, 0.0)
    assert proc.stdout.readline()  # the database exists
    seen = []
    while proc.poll() is None:
        with Database(path, create=False) as db:
            recs = db.records(WL)
            assert [r.id for r in recs] == sorted(r.id for r in recs)
            assert all(r.ok for r in recs)
            seen.append(len(recs))
    proc.stdout.read()
    proc.stdout.close()
    assert proc.returncode == 0
    assert seen == sorted(seen) and len(seen) > 1
    with Database(path, create=False) as db:
        assert db.count(WL) == 300


def test_jsonl_round_trip(tmp_path):
    small = ps.workloads.gmm(b=1, n=8, m=8, k=8)
    a, b = Database(tmp_path / "a.db"), Database(tmp_path / "b.db")
    with a, b:
        a.add_record(WL, make_trace((2, 8)), ok(2e-6), target=TARGET, space="s", seed=1)
        a.add_record(WL, make_trace((1, 16)), RunResult.failed("timeout", "took > 10 s"),
                     target=TARGET)
        a.add_record(small, make_trace((2, 4), wl=small), ok(1e-6), target=TARGET)
        assert export_jsonl(a, tmp_path / "all.jsonl") == 3
        assert import_jsonl(b, tmp_path / "all.jsonl") == 3
        assert import_jsonl(b, tmp_path / "all.jsonl") == 0  # duplicates skipped

        def fields(db, wl):
            return [(r.trace, r.decisions, r.target, r.runs_s, r.latency_s, r.error,
                     r.error_kind, r.space, r.seed, r.created) for r in db.records(wl)]

        for wl in (WL, small):
            assert fields(a, wl) == fields(b, wl)
        assert [(w.structural_hash, w.text, w.flops) for w in a.workloads()] == [
            (w.structural_hash, w.text, w.flops) for w in b.workloads()]

        buf = io.StringIO()
        assert export_jsonl(a, buf, small) == 1
        with Database(":memory:") as c:
            assert import_jsonl(c, io.StringIO(buf.getvalue())) == 1
            assert c.best(small.structural_hash)[0].latency_s == 1e-6


def test_import_corrupt_line_names_it_and_adds_nothing(tmp_path):
    with Database(":memory:") as a:
        a.add_record(WL, make_trace((2, 8)), ok(2e-6), target=TARGET)
        a.add_record(WL, make_trace((4, 4)), ok(1e-6), target=TARGET)
        buf = io.StringIO()
        export_jsonl(a, buf)
    good = buf.getvalue().splitlines()
    bad = tmp_path / "bad.jsonl"
    with Database(":memory:") as b:
        for broken in ['{"version": 1, "trunc', '[1, 2]', good[1].replace('"target"', '"t"'),
                       good[1].replace('"version":2', '"version":9'),
                       good[1].replace('"version":2', '"version":1')]:
            bad.write_text(good[0] + "\n\n" + broken + "\n")
            with pytest.raises(ps.ProbschedError, match=r"bad\.jsonl:3:1: error: bad record"):
                import_jsonl(b, bad)
            assert b.count() == 0 and b.workloads() == []
        # the rolled-back workload must not linger in the id cache
        b.add_record(WL, make_trace(), ok(1e-6), target=TARGET)
        assert b.count(WL) == 1


def test_schema_version_checked(tmp_path):
    path = tmp_path / "t.db"
    Database(path).close()
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone() == (
        str(SCHEMA_VERSION),)
    raw.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (str(SCHEMA_VERSION + 1),))
    raw.commit()
    with pytest.raises(ps.ProbschedError, match="newer probsched"):
        Database(path)
    raw.execute("UPDATE meta SET value = 'x' WHERE key = 'schema'")
    raw.commit()
    raw.close()
    with pytest.raises(ps.ProbschedError, match="unknown database schema version 'x'"):
        Database(path)


def test_a_database_of_decisions_by_index_is_refused_and_left_as_it_is(tmp_path):
    """Schema 1 keyed decisions by instruction index: reading them by address would give the
    wrong candidates, so the file is refused with what to do, and not modified."""
    path = tmp_path / "old.db"
    Database(path).close()
    raw = sqlite3.connect(path)
    raw.execute("UPDATE meta SET value = '1' WHERE key = 'schema'")
    raw.commit()
    raw.execute("PRAGMA journal_mode=DELETE")
    raw.close()
    before = path.read_bytes()
    with pytest.raises(ps.ProbschedError, match="old.db: database schema version 1.*by "
                       "instruction index.*by address.*new database"):
        Database(path)
    assert path.read_bytes() == before


def test_not_a_probsched_database(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello, this is not SQLite at all\n" * 100)
    with pytest.raises(ps.ProbschedError, match="not a probsched database"):
        Database(text)
    other = tmp_path / "other.db"
    raw = sqlite3.connect(other)
    raw.execute("CREATE TABLE people (name TEXT)")
    raw.commit()
    raw.close()
    with pytest.raises(ps.ProbschedError, match="not a probsched database.*people"):
        Database(other)
    with pytest.raises(ps.ProbschedError, match="no such database"):
        Database(tmp_path / "missing.db", create=False)
    assert not (tmp_path / "missing.db").exists()
