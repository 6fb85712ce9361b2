"""The runner: loads compiled candidates and times them, one at a time, in one worker process.

Per workload (and input seed) the worker makes random inputs, the reference outputs and their
tolerances once and keeps them (the first contact is a request of its own, with a generous
timeout). A tolerance is per output element: how far a correct kernel's rounding may take it
from the reference (:mod:`probsched.ir.rounding`: long float32 sums get more than elementwise
ops). Per candidate:

1. load the object code; restore the inputs (a buggy kernel may have written to them); fill
   the outputs with NaN, so that an element the kernel never writes shows up;
2. one run, checked against the reference (``check_outputs``), so wrong code is never timed;
3. ``warmup`` runs, then timed runs until ``min_repeats`` runs *and* ``min_time_s`` of kernel
   time (at most ``max_repeats``; fewer when the kernel is so slow that they would not fit in
   80 % of ``timeout_s``). Given ``slow_s`` (a tuner passes a few times its best latency so
   far), a candidate whose checking run and one more both take longer is timed by that one
   run only: a loser needs no precise figure, and slow losers dominate a tuning run's time.

``timeout_s`` bounds all of that for one candidate; a crash or hang fails the candidate, and the
next one gets a fresh worker.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from ..codegen.compile import CompiledArtifact
from ..codegen.gpu_kernel import GpuKernel
from ..codegen.runtime import NP_DTYPES, load_object
from ..errors import MeasureError
from ..ir.compute import Workload
from ..ir.reference import check_memory, check_outputs, random_inputs, reference
from ..ir.rounding import TINY, error_bounds, tolerance
from . import contention as machine_load
from .contention import BusySampler, MachineLock
from .worker import Reply, Worker

CACHED_WORKLOADS = 4
"""Workloads whose inputs and reference a runner worker keeps (least recently used go)."""

ALIGN = 64


RETAKES = 2
"""Times a measurement taken under load is taken again before it is returned flagged."""
RETAKE_PAUSE_S = 0.2

WARMUP_S = 0.01  # minimum warm-up time per candidate
PROCESS_WARMUP_S = 0.25
"""Minimum warm-up of a worker's first candidate: for ~100 ms after a worker starts, a parallel
kernel's calls took 8 ms each (a 20 us kernel, on this 2-core machine) before settling."""
_warmed_up = False  # whether this worker process has had its first warm-up


@dataclass(frozen=True)
class RunConfig:
    """How a candidate is timed; see the module docstring."""

    timeout_s: float = 10.0
    warmup: int = 1
    min_repeats: int = 3
    max_repeats: int = 100
    min_time_s: float = 0.05


@dataclass(frozen=True)
class RunResult:
    """One candidate's measurement. Failed (``error_kind`` set: "build", "crash", "timeout",
    "wrong" or "error") candidates have ``correct=False`` and ``latency_s = inf``."""

    correct: bool
    latency_s: float = math.inf  # median of runs_s
    min_s: float = math.inf
    runs_s: tuple[float, ...] = ()
    max_abs_err: float = math.nan  # nan: not checked
    error: str | None = None
    error_kind: str | None = None
    kernel_s: float = 0.0  # all time in the kernel: correctness, warm-up and timed runs
    contention: float = 0.0  # our threads' wait for CPUs per second of timing (contention.py)

    @property
    def loaded(self) -> bool:
        """Timed while other processes took the CPUs (retaken, and still so)."""
        return self.contention > machine_load.LOADED_CORES

    @property
    def ok(self) -> bool:
        return self.error_kind is None

    @staticmethod
    def failed(kind: str, error: str, max_abs_err: float = math.nan) -> RunResult:
        return RunResult(False, max_abs_err=max_abs_err, error=error, error_kind=kind)


class Runner:
    """Times candidates in one worker process (see the module docstring).

    ``prepare_timeout_s`` bounds the one-time making of inputs and reference for a workload;
    the worker is recycled after ``recycle_after`` candidates.
    """

    def __init__(self, timeout_s: float = 10.0, warmup: int = 1, min_repeats: int = 3,
                 max_repeats: int = 100, min_time_s: float = 0.05, *,
                 prepare_timeout_s: float = 300.0, recycle_after: int = 500,
                 retakes: int = RETAKES):
        if not 1 <= min_repeats <= max_repeats:
            raise ValueError(f"Runner: need 1 <= min_repeats ({min_repeats}) "
                             f"<= max_repeats ({max_repeats})")
        self.config = RunConfig(timeout_s, warmup, min_repeats, max_repeats, min_time_s)
        self.prepare_timeout_s = prepare_timeout_s
        self.recycle_after = recycle_after
        self.retakes = retakes
        self.worker = Worker(name="probsched-run")  # recycled per candidate, not per request
        self.lock = MachineLock()
        self._candidates = 0

    def run(self, artifact: CompiledArtifact | GpuKernel, workload: Workload, *, seed: int = 0,
            slow_s: float | None = None) -> RunResult:
        """Check and time ``artifact`` (built from a program of ``workload``), holding the
        machine's measurement lock; ``slow_s``: see the module docstring. A measurement
        taken under load is retaken (``retakes`` times, default ``RETAKES``); one still
        loaded comes back flagged (``RunResult.loaded``)."""
        if isinstance(artifact, GpuKernel):
            raise MeasureError(f"kernel {artifact.entry} is CUDA code: the CPU runner cannot "
                               "run it (probsched.measure.cuda.CudaRunner does)")
        with self.lock:
            result = self._run(artifact, workload, seed, slow_s)
            for _ in range(self.retakes):
                if not (result.ok and result.loaded):
                    break
                time.sleep(RETAKE_PAUSE_S)  # let the other load pass
                again = self._run(artifact, workload, seed, slow_s)
                if not again.ok or again.contention < result.contention:
                    result = again
        return result

    def _run(self, artifact: CompiledArtifact, workload: Workload, seed: int,
             slow_s: float | None) -> RunResult:
        if self.worker.pid is None:  # no process (yet, or after a crash): the next is fresh
            self._candidates = 0
        elif self.recycle_after and self._candidates >= self.recycle_after:
            self.worker.close()  # the next request starts a fresh process
            self._candidates = 0
        self._candidates += 1
        key = (workload.structural_hash, seed)
        reply = call_prepared(self.worker, key, (_measure, artifact, self.config, slow_s),
                              (prepare_case, workload, seed), self.config.timeout_s,
                              self.prepare_timeout_s, lambda prep: _unprepared(workload, prep))
        if not reply.ok:
            return _failed(reply)
        return reply.value

    def close(self) -> None:
        self.worker.close()

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def call_prepared(worker: Worker, key: tuple[str, int], measure: tuple, prepare: tuple,
                  timeout_s: float, prepare_timeout_s: float,
                  unprepared: Callable[[Reply], str]) -> Reply:
    """``measure`` (a function and its arguments after ``key``) in ``worker``; on the first
    contact with ``key`` (the function answers None), ``prepare`` once, then ``measure``
    again. A failed preparation is no candidate's fault: a MeasureError saying
    ``unprepared(reply)``. An ok reply's value is a RunResult."""
    fn, *args = measure
    reply = worker.call(fn, key, *args, timeout_s=timeout_s)
    if reply.ok and reply.value is None:  # first contact with this workload
        prep_fn, *prep_args = prepare
        prep = worker.call(prep_fn, key, *prep_args, timeout_s=prepare_timeout_s)
        if not prep.ok:  # no candidate of this workload can be checked: not theirs
            raise MeasureError(unprepared(prep))
        reply = worker.call(fn, key, *args, timeout_s=timeout_s)
    if reply.ok and reply.value is None:
        return Reply(RunResult.failed("error", "the runner lost the workload's inputs"))
    return reply


def _unprepared(workload: Workload, reply: Reply) -> str:
    why = (reply.error or "").removeprefix("ResourceError: ").removeprefix("WorkloadError: ")
    if reply.kind == "crash":
        why += " (out of memory?)" if "SIGKILL" in why else ""
    return f"the reference of workload {workload.name} could not be computed: {why}"


def _failed(reply: Reply, prefix: str = "") -> RunResult:
    return RunResult.failed(reply.kind or "error", prefix + (reply.error or ""))


# ---------------------------------------------------------------- the worker side


@dataclass
class _Case:
    """A workload's inputs (pristine and working copies), reference and output buffers."""

    workload: Workload
    pristine: tuple[np.ndarray, ...]
    inputs: tuple[np.ndarray, ...]
    refs: tuple[np.ndarray, ...]
    outputs: tuple[np.ndarray, ...]
    tolerances: tuple[np.ndarray, ...]  # per output element: the largest correct difference
    all_finite: bool  # every reference value finite (the fast check applies)


CHECK_COPIES = 6
"""Copies of a workload's tensors that checking its candidates holds: the inputs twice
(pristine, working), the reference's tensors, its error bounds' three copies."""

_cases: OrderedDict[tuple[str, int], _Case] = OrderedDict()


def prepare_case(key: tuple[str, int], workload: Workload, seed: int,
                 blas_threads: int | None = 1) -> None:
    """Make and keep ``workload``'s inputs, reference and tolerances under ``key``.
    ``blas_threads``: 1 where CPU kernels are timed next (OpenBLAS's threads keep spinning
    for a while after a call, and on a 2-core machine they would take a core from the kernel
    timed next); more where they are not, as for GPU kernels."""
    check_memory(workload, CHECK_COPIES, "checking its candidates")
    pristine = random_inputs(workload, seed=seed)
    with threadpool_limits(blas_threads, user_api="blas"):
        refs = reference(workload, *pristine)
        bounds = error_bounds(workload, *pristine)
    tolerances = tuple(
        (tolerance(ref, bound, stage.dtype) + TINY).astype(ref.dtype)
        if np.issubdtype(ref.dtype, np.floating) else np.zeros(ref.shape)
        for ref, bound, stage in zip(refs, bounds, workload.outputs, strict=True))
    finite = all(np.issubdtype(r.dtype, np.floating) and np.isfinite(r).all() for r in refs)
    _cases[key] = _Case(
        workload,
        pristine,
        tuple(aligned_copy(a) for a in pristine),
        refs,
        tuple(aligned_empty(r.shape, r.dtype) for r in refs),
        tolerances,
        finite,
    )
    while len(_cases) > CACHED_WORKLOADS:
        _cases.popitem(last=False)


def cached_case(key: tuple[str, int]) -> _Case | None:
    """The case ``prepare_case`` made for ``key`` in this process (None if none, or evicted)."""
    return _cases.get(key)


def _measure(key: tuple[str, int], artifact: CompiledArtifact, cfg: RunConfig,
             slow_s: float | None = None) -> RunResult | None:
    """None when this process has not prepared the workload yet."""
    start = time.perf_counter()
    case = _cases.get(key)
    if case is None:
        return None
    _cases.move_to_end(key)
    _check_signature(artifact, case)
    kernel = load_object(artifact.object_code, artifact.signature, target=artifact.target)
    for work, orig in zip(case.inputs, case.pristine, strict=True):
        np.copyto(work, orig)
    for out in case.outputs:
        poison(out)
    call = kernel.bind(*case.inputs, *case.outputs)

    t = time.perf_counter()
    call()
    first = time.perf_counter() - t
    ok, err, msg = check_case(case)
    if not ok:
        return RunResult.failed("wrong", msg, err)

    if slow_s is not None and first > slow_s:
        t = time.perf_counter()
        call()
        again = time.perf_counter() - t
        if again > slow_s:  # warm and still slow: a loser
            return RunResult(True, again, again, (again,), err, kernel_s=first + again)

    soft_deadline = start + 0.8 * cfg.timeout_s
    sampler = BusySampler()
    runs: list[float] = []
    total = 0.0
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        global _warmed_up
        t = time.perf_counter()
        # Warm up for at least ``warmup`` calls and WARMUP_S: the first milliseconds after a
        # load (thread start-up, page faults, clock ramp) ran a 2 ms kernel 4x slower.
        warmup_s = WARMUP_S if _warmed_up else PROCESS_WARMUP_S
        _warmed_up = True
        done = 0
        while done < cfg.warmup or time.perf_counter() - t < warmup_s:
            if time.perf_counter() + first > soft_deadline:
                break
            call()
            done += 1
        warm = time.perf_counter() - t
        while len(runs) < cfg.max_repeats:
            if len(runs) >= cfg.min_repeats and total >= cfg.min_time_s:
                break
            if runs and time.perf_counter() + max(runs[-1], first) > soft_deadline:
                break
            t = time.perf_counter()
            call()
            runs.append(time.perf_counter() - t)
            total += runs[-1]
    finally:
        if gc_was_enabled:
            gc.enable()
    return RunResult(True, statistics.median(runs), min(runs), tuple(runs), err,
                     kernel_s=first + warm + total, contention=sampler.other_cores())


def _check_signature(artifact: CompiledArtifact, case: _Case) -> None:
    sig = artifact.signature
    want = [(a.shape, np.dtype(a.dtype)) for a in (*case.inputs, *case.outputs)]
    have = [(a.shape, np.dtype(NP_DTYPES[a.dtype])) for a in (*sig.inputs, *sig.outputs)]
    if want != have:
        raise MeasureError(f"kernel {sig.entry} takes {have}, but workload "
                           f"{case.workload.name} has {want}")


def check_case(case: _Case) -> tuple[bool, float, str]:
    """``check_outputs`` against the rounding-error tolerances, with a fast path for the
    common case (an all-finite reference and a close result): float32 passes, instead of
    several float64 ones (~35 ms at 512^2)."""
    if case.all_finite:
        worst = 0.0
        for out, ref, tol in zip(case.outputs, case.refs, case.tolerances, strict=True):
            diff = np.abs(out - ref)
            if not np.all(diff <= tol):  # also catches NaN
                break
            worst = max(worst, float(np.max(diff, initial=0.0)))
        else:
            return True, worst, f"ok: max abs error {worst:.3g}"
    names = [s.name for s in case.workload.outputs]
    return check_outputs(case.outputs, case.refs, names=names, tolerances=case.tolerances)


def poison(out: np.ndarray) -> None:
    """Fill an output with what no kernel should leave there: NaN (``check_outputs`` reports
    "output not written"), the most negative integer, or False."""
    if np.issubdtype(out.dtype, np.floating):
        out.fill(np.nan)
    elif np.issubdtype(out.dtype, np.integer):
        out.fill(np.iinfo(out.dtype).min)
    else:
        out.fill(0)


def aligned_empty(shape: tuple[int, ...], dtype) -> np.ndarray:
    """An empty array starting on a 64-byte boundary: every candidate, and the compiled
    network, runs on buffers aligned as its timings were taken."""
    dtype = np.dtype(dtype)
    n = math.prod(shape) * dtype.itemsize
    raw = np.empty(n + ALIGN, np.uint8)
    off = (-raw.ctypes.data) % ALIGN
    return raw[off:off + n].view(dtype).reshape(shape)


def aligned_copy(a: np.ndarray) -> np.ndarray:
    """A copy of ``a`` in an :func:`aligned_empty` array."""
    out = aligned_empty(a.shape, a.dtype)
    np.copyto(out, a)
    return out

