"""The hand-written GMM schedule (examples/gmm_schedule.py) against numpy, side by side.

``probsched bench --suite handwritten``: for GMM-512 and GMM-1024, the schedule's kernel is
built and timed by the isolated runner (checked against the reference); numpy's 2-thread
matmul is timed in this process in the same run.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ...measure import Builder, Runner
from ...measure.baselines import numpy_seconds
from ...schedule import Schedule
from ...workloads import gmm
from . import suite

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "gmm_schedule.py"


def load_example():
    """The example module (examples/ is not a package; it ships with the repository)."""
    spec = importlib.util.spec_from_file_location("gmm_schedule_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@suite("handwritten")
def handwritten_suite(trials, progress) -> dict:
    example = load_example()
    rows = []
    with Builder(workers=1) as builder, Runner(timeout_s=60.0) as runner:
        for n in (512, 1024):
            wl = gmm(b=1, n=n, m=n, k=n)
            progress(f"GMM-{n}: numpy, then the hand-written schedule")
            numpy_s = numpy_seconds("GMM", wl)  # None: numpy's answer was wrong
            numpy = wl.flops / numpy_s / 1e9 if numpy_s is not None else None
            sch = Schedule(wl, seed=0)
            example.gmm_schedule(sch)
            (built,) = builder.build_many([sch.program])
            res = runner.run(built.artifact, wl) if built.artifact is not None else None
            ours = wl.flops / res.latency_s / 1e9 if res is not None and res.ok else None
            rows.append({
                "op": f"GMM-{n}",
                "probsched GFLOP/s": ours,
                "numpy 2-thread GFLOP/s": numpy,
                "ratio (bar >= 0.9)": ours / numpy if ours and numpy else None,
                "correct": bool(res is not None and res.correct),
                "error": (res.error if res is not None else built.error) or "",
            })
    return {"rows": rows}
