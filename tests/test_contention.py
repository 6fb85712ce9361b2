"""Measuring on a shared machine: two measuring processes take turns on the machine lock, and
a measurement taken while other processes hold the CPUs is retaken and flagged."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import probsched as ps
from probsched.ir import lower
from probsched.measure import Builder, Runner
from probsched.measure.contention import BusySampler, MachineLock

HOLDER = textwrap.dedent("""
    import sys, time
    from probsched.measure.contention import MachineLock
    with MachineLock():
        print(f"{time.time():.6f}", flush=True)
        time.sleep(float(sys.argv[1]))
        print(f"{time.time():.6f}", flush=True)
""")


def _holders(n: int, hold_s: float) -> list[tuple[float, float]]:
    procs = [subprocess.Popen([sys.executable, "-c", HOLDER, str(hold_s)],
                              stdout=subprocess.PIPE, text=True) for _ in range(n)]
    spans = []
    for p in procs:
        out, _ = p.communicate(timeout=60)
        start, end = map(float, out.split())
        spans.append((start, end))
    return sorted(spans)


def test_processes_take_turns_on_the_machine_lock():
    spans = _holders(3, 0.3)
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert start >= end - 1e-3, spans  # never two at once


def test_the_lock_is_reentrant_within_one_holder():
    lock = MachineLock()
    with lock, lock:
        pass


SPIN = "while True: pass"


def _spin_cores(n: int) -> list[subprocess.Popen]:
    """``n`` processes spinning for every core there is (more runnable threads than cores)."""
    n *= max(1, (os.cpu_count() or 1) // 2)
    return [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(n)]


def test_waiting_for_cpus_is_seen():
    """(Whether the machine is quiet otherwise, the test cannot know: it checks the load it
    makes itself.)"""
    hogs = _spin_cores(4)  # more runnable threads than cores
    try:
        time.sleep(0.2)
        busy = BusySampler()
        t = time.perf_counter()
        while time.perf_counter() - t < 0.3:
            pass
        assert busy.other_cores() > 0.2
    finally:
        for h in hogs:
            h.kill()


def test_a_measurement_under_load_is_retaken_and_flagged():
    wl = ps.workloads.gmm(b=1, n=128, m=128, k=128)
    with Builder(workers=1) as builder, Runner() as runner:
        (built,) = builder.build_many([lower(wl)])
        assert built.artifact is not None
        calm = runner.run(built.artifact, wl)
        hogs = _spin_cores(4)
        try:
            time.sleep(0.2)
            loaded = runner.run(built.artifact, wl)
        finally:
            for h in hogs:
                h.kill()
    assert calm.correct  # (quiet or not: the machine is shared with other work)
    assert loaded.correct and loaded.loaded and loaded.contention > 0.2
