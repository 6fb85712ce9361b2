"""Baselines measured beside our kernels: numpy's expression of the same op, where numpy has
one (matmul on OpenBLAS's sgemm, softmax, the 2-norm), checked against the reference and
timed in a fresh process, with the BLAS kernel that ran.

A fresh process because OpenBLAS's threads keep spinning after a call and would slow down
whatever is measured next on a small machine (and a runner worker pins BLAS to one thread);
started without the OpenBLAS overrides of :data:`BLAS_OVERRIDES`, so that the real kernel for
this CPU runs.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from ..errors import MeasureError
from ..ir.compute import Workload
from ..ir.reference import random_inputs
from ..target import host
from .contention import MachineLock
from .worker import Worker


def _softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# The same op written in numpy, where numpy has it (on the workload's inputs).
NUMPY_OPS: dict[str, Callable[..., ArrayLike]] = {
    "GMM": lambda a, b: np.matmul(a, b),
    "SFM": _softmax,
    "NRM": lambda a: np.sqrt(np.sum(a * a)),
}


def time_call(fn, inputs, min_time_s: float = 0.3, max_runs: int = 200,
              warmup_s: float = 0.25) -> float:
    """Median seconds per call of ``fn(*inputs)`` after at least one call and ``warmup_s`` of
    warm-up (in this process): threads just started run slow for ~100 ms on this machine,
    numpy's OpenBLAS threads as much as our kernels' (measure/runner.py's PROCESS_WARMUP_S)."""
    start = time.perf_counter()
    fn(*inputs)
    while time.perf_counter() - start < warmup_s:
        fn(*inputs)
    runs: list[float] = []
    start = time.perf_counter()
    while len(runs) < 3 or (time.perf_counter() - start < min_time_s and len(runs) < max_runs):
        t = time.perf_counter()
        fn(*inputs)
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def _numpy_seconds_here(op: str, workload, threads: int) -> float | None:
    from threadpoolctl import threadpool_limits as limits

    from ..ir.reference import check_outputs, reference

    inputs = random_inputs(workload)
    (expected,) = reference(workload, *inputs)
    if op == "GMM" and all(x.ndim == 3 and x.shape[0] == 1 for x in inputs):
        inputs = tuple(x[0] for x in inputs)  # 2-D matmul: OpenBLAS sgemm
        expected = expected[0]
    with limits(threads, user_api="blas"):
        try:
            got = np.asarray(NUMPY_OPS[op](*inputs), dtype=expected.dtype).reshape(expected.shape)
        except ValueError:  # a workload of that name that is not this op
            return None
        if not check_outputs([got], [expected])[0]:
            return None
        return time_call(NUMPY_OPS[op], inputs)



BLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
"""Variables some machines set for old OpenBLAS builds; on an AVX-512 CPU they make numpy run
its AVX2 sgemm at about half speed. The baseline's process starts without them (only it:
tests and workers keep the environment as it is)."""


@dataclass(frozen=True)
class NumpyBaseline:
    """numpy's median seconds for an op (None: numpy has no such op for this workload) and
    the BLAS kernel that ran (threadpoolctl's report, e.g. ``OpenBLAS 0.3.31 SkylakeX``)."""

    seconds: float | None
    kernel: str
    threads: int


def numpy_baseline(op: str, workload: Workload, threads: int | None = None) -> NumpyBaseline:
    """numpy's expression of ``op`` (a NUMPY_OPS key) on ``workload``'s inputs, timed with
    ``threads`` BLAS threads (None: as many as this process may use, like our kernels) in a
    fresh process started without :data:`BLAS_OVERRIDES`. None
    seconds when numpy's answer differs from the reference (a workload named like the op that
    computes another)."""
    with Worker(name="probsched-baseline", start_method="spawn", drop_env=BLAS_OVERRIDES,
                setup=False) as worker, MachineLock():
        reply = worker.call(_numpy_baseline_here, op, workload, threads or host().cores,
                            timeout_s=600)
    if not reply.ok:
        raise MeasureError(f"timing numpy's {op} failed: {reply.error}")
    return reply.value


def numpy_seconds(op: str, workload: Workload, threads: int | None = None) -> float | None:
    """:func:`numpy_baseline`'s seconds."""
    return numpy_baseline(op, workload, threads).seconds


def _numpy_baseline_here(op: str, workload: Workload, threads: int) -> NumpyBaseline:
    from threadpoolctl import threadpool_info

    seconds = _numpy_seconds_here(op, workload, threads)
    blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    kernel = ", ".join(f"{i.get('internal_api', '?')} {i.get('version', '')} "
                       f"{i.get('architecture') or ''}".replace("  ", " ").strip()
                       for i in blas) or "no BLAS"
    return NumpyBaseline(seconds, kernel, threads)


def numpy_reference(workload: Workload, threads: int | None = None) -> NumpyBaseline | None:
    """numpy's time for the same op, where numpy has it (by workload name: gmm, sfm, nrm)."""
    op = workload.name.upper()
    if op not in NUMPY_OPS:
        return None
    return numpy_baseline(op, workload, threads)


def numpy_latency_s(workload: Workload, threads: int | None = None) -> float | None:
    """:func:`numpy_reference`'s seconds."""
    ref = numpy_reference(workload, threads)
    return None if ref is None else ref.seconds
