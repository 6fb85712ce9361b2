"""The tuning database: round trips, best-k, failures, duplicates, kill -9, JSONL, concurrency,
schema versions; files it cannot use (damaged, read-only, in a read-only directory, not ours,
empty) refused with one line naming the file, and left as they were."""

import io
import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from db_files import beside, damage

import probsched as ps
from probsched.measure import RunResult
from probsched.schedule import decisions_key
from probsched.search import database
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


# ------------------------------------------------------------ files it cannot use


def filled(path, n=300, wl=WL, target=TARGET):
    """A real database of ``n`` records, closed (everything checkpointed into the file)."""
    with Database(path) as db, db.transaction():
        wid = db.ensure_workload(wl.structural_hash, wl.name, wl.text(), wl.flops, 0.0)
        for i in range(n):
            db.insert(wid, make_trace(wl=wl).to_json(), f"[{i}]", target, [1e-6], 1e-6, None,
                      None, None, None, i, 0.0)
    return path


OPEN = textwrap.dedent("""
    import sys
    from probsched.errors import DatabaseError
    from probsched.search.database import Database
    try:
        with Database(sys.argv[1], readonly=sys.argv[2] == "ro") as db:
            print("opened", db.count())
    except DatabaseError as exc:
        print(exc)
""")


def open_in_child(path, mode, preexec_fn):
    """What ``Database(path)`` (``mode`` "rw") or ``Database(path, readonly=True)`` ("ro")
    says in a child process run under ``preexec_fn``."""
    out = subprocess.run([sys.executable, "-c", OPEN, str(path), mode], preexec_fn=preexec_fn,
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_damaged_bytes_are_reported_naming_the_file_and_left_as_they_are(tmp_path):
    path = filled(tmp_path / "runs.db")
    damage(path)
    before = path.read_bytes()
    for kwargs in ({}, {"create": False}, {"readonly": True}):
        with pytest.raises(ps.DatabaseError, match=r"^\S*runs\.db: the database is damaged "
                           r"\(.+\); restore it from a copy or tune into another file") as err:
            Database(path, **kwargs)
        assert "\n" not in str(err.value)
    assert path.read_bytes() == before


def test_tune_refuses_a_damaged_database_before_measuring(tmp_path):
    path = filled(tmp_path / "runs.db")
    damage(path)

    class NoBuilder:
        def build_many(self, programs):
            raise AssertionError("a candidate was built")

    with pytest.raises(ps.DatabaseError, match="the database is damaged"):
        ps.tune(WL, trials=2, db=str(path), builder=NoBuilder(), progress=False,
                reference=False)


def test_a_read_only_file_is_refused_before_sqlite_opens_it(tmp_path, permissions_bind):
    path = filled(tmp_path / "runs.db", 20)
    path.chmod(0o444)
    before = path.read_bytes()
    assert open_in_child(path, "rw", permissions_bind) == (
        f"{path}: the database is read-only (its permissions do not let this user write it); "
        "tuning writes every record it measures: make the file writable or tune into another "
        "file (--db)")
    assert beside(path) == ["runs.db"] and path.read_bytes() == before
    assert open_in_child(path, "ro", permissions_bind) == "opened 20"
    assert path.read_bytes() == before


def test_a_read_only_directory_is_named_as_the_cause(tmp_path, permissions_bind):
    locked = tmp_path / "locked"
    locked.mkdir()
    path = filled(locked / "runs.db", 20)
    locked.chmod(0o555)
    try:
        says = (f"{path}: its directory {locked} is not writable, and SQLite keeps runs.db-wal "
                "and runs.db-shm beside a database in WAL mode ({}); make the directory "
                "writable or copy the database to one that is")
        assert open_in_child(path, "rw", permissions_bind) == says.format(
            "its permissions do not let this user write there")
        # reading a database in WAL mode needs its -shm: refused, not 'not a database'
        assert open_in_child(path, "ro", permissions_bind) == says.format(
            "attempt to write a readonly database")
        assert open_in_child(locked / "new.db", "rw", permissions_bind) == (
            f"{locked / 'new.db'}: cannot create the database: its directory {locked} is not "
            "writable")
        assert beside(path) == ["runs.db"]
    finally:
        locked.chmod(0o755)


def test_permissions_are_read_before_sqlite_touches_the_file(tmp_path, monkeypatch):
    """The checks of the two tests above, simulated through ``os.access`` so that they run as
    root too (whom chmod does not stop, so those two need CAP_DAC_OVERRIDE dropped)."""
    path = filled(tmp_path / "runs.db", 5)
    before = path.read_bytes()
    denied = {str(path)}
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: os.fspath(p) not in denied and real(
        p, mode, **kw))
    with pytest.raises(ps.DatabaseError, match=r"runs\.db: the database is read-only \(its "
                       r"permissions do not let this user write it\)"):
        Database(path)
    denied = {str(tmp_path)}
    with pytest.raises(ps.DatabaseError, match=r"runs\.db: its directory \S+ is not writable, "
                       "and SQLite keeps runs.db-wal and runs.db-shm"):
        Database(path)
    with pytest.raises(ps.DatabaseError, match=r"new\.db: cannot create the database: its "
                       "directory .* is not writable"):
        Database(tmp_path / "new.db")
    assert beside(path) == ["runs.db"] and path.read_bytes() == before


def test_sqlite_refusing_to_write_is_reported_at_opening(tmp_path, monkeypatch):
    """Where the permission bits allow a write that SQLite refuses (a read-only mount; root
    passing the check), the rolled-back write at opening says so. Simulated by handing the
    database a ``mode=ro`` connection where it asks for one to write, since root writes any
    file."""
    path = filled(tmp_path / "runs.db", 5)
    before = path.read_bytes()
    real = database.connect
    monkeypatch.setattr(database, "connect", lambda p, *, readonly, timeout_s: real(
        p, readonly=True, timeout_s=timeout_s))
    with pytest.raises(ps.DatabaseError, match=r"runs\.db: the database is read-only \(attempt "
                       r"to write a readonly database\); tuning writes every record"):
        Database(path)
    assert path.read_bytes() == before


@pytest.mark.parametrize("journal", ["delete", "wal"])
@pytest.mark.parametrize("columns, rows", [
    ("key TEXT, value TEXT", [("application", "other"), ("schema", "2")]),
    ("key TEXT, value TEXT", [("version", "3")]),
    ("id INTEGER, note TEXT", [(1, "application probsched")]),
])
def test_a_foreign_sqlite_file_with_a_meta_table_is_refused_untouched(tmp_path, journal,
                                                                      columns, rows):
    path = tmp_path / "theirs.db"
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA journal_mode={journal}")
    raw.execute(f"CREATE TABLE meta ({columns})")
    raw.executemany(f"INSERT INTO meta VALUES ({', '.join('?' * len(rows[0]))})", rows)
    raw.commit()
    raw.close()
    before = path.read_bytes()
    for kwargs in ({}, {"create": False}, {"readonly": True}):
        with pytest.raises(ps.DatabaseError, match=r"theirs\.db: not a probsched database "
                           r"\(its meta table does not name probsched\)"):
            Database(path, **kwargs)
    assert path.read_bytes() == before  # no WAL switch, no schema
    if journal == "delete":  # (reading a file in WAL mode makes SQLite's -wal and -shm)
        assert beside(path) == ["theirs.db"]


def test_reading_never_writes_an_empty_missing_or_bare_file(tmp_path):
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    for kwargs in ({"readonly": True}, {"create": False}):
        with pytest.raises(ps.DatabaseError, match=r"empty\.db: an empty file, not a probsched "
                           r"database \(it has no records\)"):
            Database(empty, **kwargs)
    with pytest.raises(ps.DatabaseError, match=r"missing\.db: no such database"):
        Database(tmp_path / "missing.db", readonly=True)
    bare = tmp_path / "bare.db"  # SQLite's header, no tables
    raw = sqlite3.connect(bare)
    raw.execute("CREATE TABLE t (x)")
    raw.execute("DROP TABLE t")
    raw.close()
    marked = tmp_path / "marked.db"
    raw = sqlite3.connect(marked)
    raw.execute("PRAGMA user_version = 7")
    raw.close()
    files = {p: p.read_bytes() for p in (bare, marked)}
    with pytest.raises(ps.DatabaseError, match=r"bare\.db: an SQLite file with no tables, not "
                       r"a probsched database \(it has no records\)"):
        Database(bare, readonly=True)
    for kwargs in ({}, {"readonly": True}):
        with pytest.raises(ps.DatabaseError, match=r"marked\.db: not a probsched database \(an "
                           r"SQLite file with no tables, application_id 0, user_version 7\)"):
            Database(marked, **kwargs)
    assert {p: p.read_bytes() for p in files} == files and empty.read_bytes() == b""
    assert beside(empty) == ["bare.db", "empty.db", "marked.db"]
    with Database(empty) as db, Database(bare) as db2:  # tuning may start in either
        assert db.count() == db2.count() == 0


def test_readonly_reads_and_refuses_to_write(tmp_path):
    path = filled(tmp_path / "runs.db", 3)
    before = path.read_bytes()
    with Database(path, readonly=True) as db:
        assert db.count(WL) == 3 and len(db.best(WL.structural_hash, k=5)) == 3
        with pytest.raises(ps.DatabaseError, match=r"runs\.db: opened read-only \(readonly="
                           r"True\): cannot write"):
            db.add_record(WL, make_trace(), ok(1e-6), target=TARGET)
    assert path.read_bytes() == before
    with pytest.raises(ps.DatabaseError, match="':memory:' cannot be opened read-only"):
        Database(":memory:", readonly=True)


def test_sqlite_errors_after_opening_name_the_file(tmp_path):
    db = Database(tmp_path / "runs.db")
    db.close()
    with pytest.raises(ps.DatabaseError, match=r"runs\.db: SQLite failed \(Cannot operate on a "
                       r"closed database\.\)"):
        db.count()


def test_a_record_timed_under_load_is_ranked_after_clean_ones():
    with Database(":memory:") as db:
        fast_but_loaded = RunResult(True, 1e-6, 1e-6, (1e-6,), 1e-7, contention=0.9)
        db.add_record(WL, make_trace((2, 8)), fast_but_loaded, target=TARGET)
        db.add_record(WL, make_trace((4, 4)), ok(3e-6), target=TARGET)
        best = db.best(WL, k=2)
        assert [r.latency_s for r in best] == [3e-6, 1e-6]
        assert best[1].loaded and not best[0].loaded and best[1].contention == 0.9
        assert best[1].result().loaded


def test_best_ranks_a_candidate_by_the_median_of_its_timings():
    with Database(":memory:") as db:
        lucky = make_trace((2, 8))
        for lat in (1e-6, 5e-6, 6e-6):  # one lucky timing, then two honest ones
            db.add_record(WL, lucky, ok(lat), target=TARGET, repeat=lat != 1e-6)
        db.add_record(WL, make_trace((8, 2)), ok(4e-6), target=TARGET)
        db.add_record(WL, make_trace((8, 2)), ok(2e-6), target=TARGET, repeat=True)
        db.add_record(WL, make_trace((4, 4)), ok(3e-6), target=TARGET)  # timed once
        best = db.best(WL, k=3)
        # confirmed candidates first, by their median (the record that took it stands for it)
        assert [r.latency_s for r in best] == [2e-6, 5e-6, 3e-6]
        assert best[1].repeat and best[1].decisions == lucky.key
