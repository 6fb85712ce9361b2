"""Ctrl-C (SIGINT to the whole process group, as a terminal sends it) and SIGTERM (to the
tuner alone) stop `probsched tune` with a short message and no traceback from any process,
during start-up too; what was measured is kept."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from probsched.search.database import Database

WIDE = """
workload gmm(n = 64, m = 64, k = 64):
    input A: float32[n, k]
    input B: float32[k, m]
    C[i, j] = sum(A[i, r] * B[r, j])

space wide for gmm:
    c = get_block("C")
    i, j, r = get_loops(c)
    i0, i1 = split(i, sample_perfect_tile(i, n=2, max_innermost_factor=8))
    j0, j1 = split(j, sample_perfect_tile(j, n=2, max_innermost_factor=16))
    vectorize(j1)
"""


def _start(tmp_path):
    sched = tmp_path / "wide.sched"
    sched.write_text(WIDE)
    db = tmp_path / "runs.db"
    proc = subprocess.Popen([sys.executable, "-m", "probsched", "tune", str(sched), "--trials",
                             "500", "--db", str(db), "--quiet"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=_ctrl_c_as_a_terminal_gives_it)
    return proc, db


def _ctrl_c_as_a_terminal_gives_it() -> None:
    # a shell's background job (CI started with `&`) inherits SIGINT ignored: the tuner
    # started here gets it back, as it has in a terminal
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _records(db) -> int:
    if not db.exists():
        return 0
    with Database(db) as d:
        return d.count()


def _wait_for_records(proc, db, n: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and _records(db) < n:
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()[1]


def _finish(proc) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    time.sleep(0.5)  # an orphan would write after the parent ended
    return proc.returncode, err


@pytest.mark.parametrize("when", ["start-up", "tuning"])
def test_ctrl_c_stops_quietly_and_keeps_the_records(tmp_path, when):
    proc, db = _start(tmp_path)
    if when == "start-up":  # the database exists: workers are being started
        deadline = time.monotonic() + 60
        while not db.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
    else:
        _wait_for_records(proc, db, 3)
    before = _records(db)
    os.killpg(proc.pid, signal.SIGINT)  # the whole group, as a terminal does
    rc, err = _finish(proc)
    assert rc == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert "interrupted" in err
    assert _records(db) >= before


def test_sigterm_stops_quietly_and_no_orphan_complains(tmp_path):
    proc, db = _start(tmp_path)
    _wait_for_records(proc, db, 3)
    before = _records(db)
    os.kill(proc.pid, signal.SIGTERM)  # the tuner alone
    rc, err = _finish(proc)
    assert rc == 143, err
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert "terminated" in err
    assert _records(db) >= before


def test_a_ctrl_c_while_a_child_starts_is_not_lost():
    """Launching a worker blocks SIGINT in the launching thread (the child inherits the
    mask, so it cannot die half-started); the tuner still gets a Ctrl-C that comes
    meanwhile: SIGINT was once ignored during the launch, and such a Ctrl-C was lost."""
    from probsched.measure.processes import _launching

    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # even if inherited
    try:                                                                # ignored
        with pytest.raises(KeyboardInterrupt):
            with _launching():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)
            time.sleep(1.0)  # another thread may take it at once; else when it is unblocked
            pytest.fail("the Ctrl-C was lost")
    finally:
        signal.signal(signal.SIGINT, before)
