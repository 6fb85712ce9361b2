"""`probsched tune` and `probsched show` on databases they cannot use (damaged, read-only, in a
read-only directory, another application's, empty, missing): exit 1 with one line naming the
file and the cause, no traceback, nothing measured, and the file left as it was."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from db_files import beside, damage

import probsched as ps
from probsched.measure import RunResult
from probsched.search.database import Database
from probsched.target import resolve

REPO = Path(__file__).resolve().parent.parent
MATMUL = str(REPO / "examples" / "matmul.sched")
PARAMS = {"n": 32, "m": 32, "k": 16}
SMALL = [arg for name, value in PARAMS.items() for arg in ("--param", f"{name}={value}")]


def cli(*args, preexec_fn=None):
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "probsched", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300, preexec_fn=preexec_fn)


def tune(db, preexec_fn=None):
    return cli("tune", MATMUL, "--trials", "2", "--db", str(db), "--quiet", *SMALL,
               preexec_fn=preexec_fn)


def show(db, preexec_fn=None):
    return cli("show", MATMUL, "--db", str(db), *SMALL, preexec_fn=preexec_fn)


def refused(out, db, says):
    """Exit 1 and one line, ``probsched: error: DB: SAYS...``: no traceback, nothing tuned."""
    assert out.returncode == 1, out.stderr
    assert out.stdout == "" and "Traceback" not in out.stderr
    assert out.stderr.count("\n") == 1, out.stderr
    assert out.stderr.startswith(f"probsched: error: {db}: {says}"), out.stderr


def stored(path, filler=0):
    """A database with one correct record of matmul.sched's workload for this machine (what
    ``show`` looks for), and ``filler`` failed records of it."""
    wl = ps.load(MATMUL).workload(None, **PARAMS)
    target = resolve(None).key
    with Database(path) as db:
        db.add_record(wl, ps.Schedule(wl).trace, RunResult(True, 1e-3, 1e-3, (1e-3,)),
                      target=target)
        with db.transaction():
            wid = db.ensure_workload(wl.structural_hash, wl.name, wl.text(), wl.flops, 0.0)
            for i in range(filler):
                db.insert(wid, ps.Schedule(wl).trace.to_json(), f"[{i}]", target, [], None,
                          "filler", "crash", None, None, i, 0.0)
    return path


def test_a_damaged_database(tmp_path):
    db = stored(tmp_path / "runs.db", filler=300)
    damage(db)
    before = db.read_bytes()
    refused(tune(db), db, "the database is damaged (")
    refused(show(db), db, "the database is damaged (")
    assert db.read_bytes() == before


def test_a_read_only_database(tmp_path, permissions_bind):
    db = stored(tmp_path / "runs.db")
    db.chmod(0o444)
    before = db.read_bytes()
    refused(tune(db, permissions_bind), db, "the database is read-only (its permissions do not "
            "let this user write it); tuning writes every record it measures")
    assert beside(db) == ["runs.db"] and db.read_bytes() == before  # no -wal, no -shm
    out = show(db, permissions_bind)  # reading needs no write permission
    assert out.returncode == 0 and out.stdout.startswith("best of gmm: 1.000 ms"), out.stderr


def test_a_read_only_directory(tmp_path, permissions_bind):
    locked = tmp_path / "locked"
    locked.mkdir()
    db = stored(locked / "runs.db")
    locked.chmod(0o555)
    try:
        says = f"its directory {locked} is not writable, and SQLite keeps runs.db-wal and runs"
        refused(tune(db, permissions_bind), db, says)
        refused(show(db, permissions_bind), db, says)
        new = locked / "new.db"
        refused(tune(new, permissions_bind), new, f"cannot create the database: its directory "
                f"{locked} is not writable")
        assert beside(db) == ["runs.db"]
    finally:
        locked.chmod(0o755)


def test_another_applications_sqlite_file_with_a_meta_table(tmp_path):
    db = tmp_path / "theirs.db"
    raw = sqlite3.connect(db)
    raw.execute("CREATE TABLE meta (key TEXT, value TEXT)")
    raw.execute("INSERT INTO meta VALUES ('application', 'theirs')")
    raw.commit()
    raw.close()
    before = db.read_bytes()
    for out in (tune(db), show(db)):
        refused(out, db, "not a probsched database (its meta table does not name probsched)")
    assert db.read_bytes() == before and beside(db) == ["theirs.db"]


def test_show_on_an_empty_a_missing_and_a_text_file_writes_nothing(tmp_path):
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    refused(show(empty), empty, "an empty file, not a probsched database (it has no records)")
    missing = tmp_path / "missing.db"
    refused(show(missing), missing, "no such database")
    text = tmp_path / "notes.txt"
    text.write_text("not SQLite\n")
    refused(show(text), text, "not a probsched database (not an SQLite file)")
    refused(tune(text), text, "not a probsched database (not an SQLite file)")
    assert empty.read_bytes() == b"" and text.read_text() == "not SQLite\n"
    assert beside(empty) == ["empty.db", "notes.txt"]
