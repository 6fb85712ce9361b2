"""The operator-suite benchmark (``probsched bench --suite ops``), side by side in one run.

Every suite operator at DESIGN.md's shape, plus SFM at 256x256 (``SFM-256``), is tuned over
the generated space for ``--trials`` trials (default 200) in a temporary database. The
yardstick ``G`` is numpy's GFLOP/s on GMM-1024 with 2 BLAS threads, timed in this run. numpy
always runs in a fresh process (:func:`~probsched.measure.baselines.numpy_seconds`), so no BLAS
thread spins while our kernels run. Columns per operator:

- ``tuned GFLOP/s``: the best correct candidate, timed again after tuning by a fresh runner
  (median of 3; :func:`~probsched.driver.bench.naive.remeasure_gflops`); ``search's figure``: what
  the search measured for it (the luckiest of hundreds of noisy measurements, biased
  upwards); ``correct`` says whether there was one; ``trials``, ``failed``, ``tune s`` (wall);
- ``naive GFLOP/s``: the untransformed kernel as probsched compiles it (the default pipeline:
  LLVM vectorizes and unrolls only where the schedule says), timed by the isolated runner;
  ``naive GFLOP/s, LLVM loop heuristics``: the same program with LLVM's loop vectorizer and
  unroller on (:func:`~probsched.driver.bench.naive.heuristics_gflops`), which auto-vectorizes
  some naive loops (DEP, NRM, SFM) and is a much harder baseline;
- ``numpy GFLOP/s`` where numpy has the op (GMM: 2-thread sgemm, SFM, NRM);
- ``tuned / G``, ``tuned / numpy``, ``tuned / naive`` and ``tuned / naive, heuristics``;
- ``bar``: the operator's target, ``met``: whether the tuned kernel reaches it;
  ``>= 10x naive``: the bar every operator has besides (against the naive kernel).

G is measured three times (first, right after GMM is tuned, last) and the median is used:
the machine drifts over a run that takes most of an hour.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from ...errors import ProbschedError
from ...ir import lower
from ...measure import Builder, Runner
from ...measure.baselines import NUMPY_OPS, numpy_baseline, numpy_seconds
from ...measure.peak import fma_peak
from ...workloads import SUITE, gmm, sfm
from . import suite
from .naive import heuristics_gflops, remeasure_gflops

DEFAULT_TRIALS = 200
NAIVE_BAR = 10.0
NAIVE_KEY = f">= {NAIVE_BAR:g}x naive"
# Per operator: (what the tuned GFLOP/s is divided by, the minimum ratio).
BARS = {
    "GMM": ("G", 0.95),
    "C1D": ("G", 0.9),
    "C2D": ("G", 1.0),
    "DEP": ("G", 0.65),
    "NRM": ("numpy", 6.0),
    "SFM": ("numpy", 1.5),
    "SFM-256": ("numpy", 1.5),
    "CBR": ("G", 1.0),
    "C2D-56": ("G", 1.0),
    "CBR-56": ("G", 1.0),
}
RESNET = dict(n=1, h=56, w=56, ci=64, co=64, kernel=3, stride=1, pad=1)
"""The ResNet layer of the search issue's comparison with MetaSchedule."""


def operators() -> dict:
    """Label -> workload: the suite at its default shapes, SFM-256 right after SFM, the
    ResNet-layer C2D and CBR right after theirs."""
    ops = {}
    for name, (make, shape, _) in SUITE.items():
        ops[name] = make(**shape)
        if name == "SFM":
            ops["SFM-256"] = sfm(n=256, m=256)
        if name in ("C2D", "CBR"):
            ops[f"{name}-56"] = make(**RESNET)
    return ops


def gflops(wl, seconds: float | None) -> float | None:
    """GFLOP/s of ``wl`` at ``seconds`` a call (None: no time)."""
    return wl.flops / seconds / 1e9 if seconds else None


def _naive(wl) -> tuple[float | None, float]:
    """The untransformed kernel: (runner GFLOP/s, None if wrong or failed; heuristics')."""
    program = lower(wl)
    with Builder(workers=1) as builder, Runner(timeout_s=300.0) as runner:
        (built,) = builder.build_many([program])
        res = runner.run(built.artifact, wl) if built.artifact is not None else None
    runner_gflops = gflops(wl, res.latency_s) if res is not None and res.correct else None
    return runner_gflops, heuristics_gflops(wl, program)


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def _row(label: str, wl, res, tuned, g, numpy, naive_runner, naive_heur,
         peak: float | None = None) -> dict:
    vs_naive = _ratio(tuned, naive_runner)
    base, bar = BARS[label]
    against = _ratio(tuned, g if base == "G" else numpy)
    return {
        "op": label,
        "shape": ", ".join(f"{k}={v}" for k, v in wl.params),
        "tuned GFLOP/s": tuned,
        "search's figure": res.best_gflops,
        "correct": tuned is not None,
        "trials": res.trials,
        "failed": res.failures,
        "tune s": res.wall_s,
        "naive GFLOP/s": naive_runner,
        "naive GFLOP/s, LLVM loop heuristics": naive_heur,
        "numpy GFLOP/s": numpy,
        "% of FMA peak": None if tuned is None or not peak else 100 * tuned / peak,
        "tuned / G": _ratio(tuned, g),
        "tuned / numpy": _ratio(tuned, numpy),
        "tuned / naive": vs_naive,
        "tuned / naive, heuristics": _ratio(tuned, naive_heur),
        "bar": f">= {bar}x {base}",
        "met": against is not None and against >= bar,
        NAIVE_KEY: vs_naive is not None and vs_naive >= NAIVE_BAR,
    }


def ops_bench(trials: int = DEFAULT_TRIALS, ops=None, progress=None, seed: int = 0) -> dict:
    """Tune each operator of ``ops`` (labels of :func:`operators`; all by default) for
    ``trials`` trials and report it against numpy, naive and ``G``; see the module docstring."""
    from ...search.tuner import tune

    progress = progress or (lambda msg: None)
    cases = operators()
    unknown = set(ops or ()) - set(cases)
    if unknown:
        raise ProbschedError(f"unknown ops {sorted(unknown)}; known: {', '.join(cases)}")
    if ops is not None:
        cases = {label: wl for label, wl in cases.items() if label in ops}
    yardstick = gmm(b=1, n=1024, m=1024, k=1024)

    def measure_g() -> float | None:  # None: numpy's answer was wrong
        progress("G: numpy GMM-1024, every core")
        return gflops(yardstick, numpy_seconds("GMM", yardstick))

    progress("the machine's FMA peak")
    peaks = [fma_peak().all_cores_gflops]
    kernel = numpy_baseline("GMM", gmm(b=1, n=64, m=64, k=64)).kernel
    gs = [measure_g()]
    done = []
    with tempfile.TemporaryDirectory(prefix="probsched-ops-") as tmp:
        for label, wl in cases.items():
            op = label.split("-")[0]
            progress(f"{label}: numpy and the naive kernel")
            is_g = (wl.name, wl.params) == (yardstick.name, yardstick.params)
            numpy = None
            if not is_g and op in NUMPY_OPS:
                numpy = gflops(wl, numpy_seconds(op, wl))
            naive = _naive(wl)
            progress(f"{label}: tuning the generated space, {trials} trials")
            db = str(Path(tmp) / f"{label}.db")
            res = tune(wl, None, trials, db, seed, progress=False, reference=False)
            progress(
                f"{label}: {res.trials} trials ({res.failures} failed) in "
                f"{res.wall_s:.0f} s, best {res.best_gflops or 0:.2f} GFLOP/s"
            )
            tuned = None
            if res.best_program is not None:
                progress(f"{label}: timing the best again")
                tuned = remeasure_gflops(wl, res.best_program)
            if is_g:
                gs.append(measure_g())  # side by side with the tuned GMM
            done.append((label, wl, res, tuned, numpy, naive, is_g))
    gs.append(measure_g())
    peaks.append(fma_peak(seconds=0.31).all_cores_gflops)  # again, after: the same machine?
    peak = max(peaks)
    measured = [x for x in gs if x is not None]
    g = statistics.median(measured) if measured else None
    rows = [_row(label, wl, res, tuned, g, g if is_g else numpy, *naive, peak)
            for label, wl, res, tuned, numpy, naive, is_g in done]
    summary = {
        "G: numpy GMM-1024 GFLOP/s, every core (median of the runs)": g,
        "G, each run": ", ".join("failed" if x is None else f"{x:.0f}" for x in gs),
        "numpy's BLAS kernel (started without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE)": kernel,
        "FMA peak GFLOP/s, every core (before, after tuning)": ", ".join(
            f"{p:.0f}" for p in peaks),
        "trials per operator": trials,
        "bars met": f"{sum(r['met'] for r in rows)}/{len(rows)}",
        f"{NAIVE_KEY} met": f"{sum(r[NAIVE_KEY] for r in rows)}/{len(rows)}",
    }
    return {"rows": rows, "summary": summary}


@suite("ops")
def run(trials: int | None, progress) -> dict:
    return ops_bench(DEFAULT_TRIALS if trials is None else trials, progress=progress)
