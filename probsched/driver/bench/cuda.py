"""The GPU benchmark (``probsched bench --suite cuda``): matmul tuned on the device against
torch's cuBLAS, side by side in one run.

Needs a CUDA device, the ``cuda`` extra and torch (the yardstick). For each shape the space of
``examples/cuda_matmul.sched`` (shared-memory tiles, register tiles, bound threads), and at
1024 also the generated space, is tuned for ``--trials`` trials (default 64) on the device
read by :func:`~probsched.measure.cuda.device_target`; the best kernel is then timed again
by a fresh runner (median of 3 runner calls), and torch's ``matmul`` on the same inputs is
timed by CUDA events in this process with TF32 off (``torch.backends.cuda.matmul.allow_tf32
= False``: a plain fp32 cuBLAS kernel). Columns: tuned TFLOP/s, torch's, their ratio, the
share of the device's FP32 peak (from its clock: SMs x 128 lanes x 2 x clock), trials,
failed, tuning wall and wall per trial.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

from ...errors import ProbschedError
from ...lang import load
from ...measure.cuda import CudaRunner, device_target, unavailable
from ...search.tuner import tune
from . import suite

DEFAULT_TRIALS = 64
SHAPES = (1024, 2048, 4096)
GENERATED_SHAPE = 1024  # also tuned over the generated space (probsched/rules/cuda.sched)
PREPARE_TIMEOUT_S = 600.0  # inputs, float64 reference and bounds at 4096^3: tens of seconds
EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "cuda_matmul.sched"


def torch_matmul_seconds(n: int, m: int, k: int, repeats: int = 50) -> float:
    """Median seconds of torch's fp32 ``A @ B`` (TF32 off) for A n x k, B k x m, by events."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    a = torch.rand(n, k, device="cuda", dtype=torch.float32)
    b = torch.rand(k, m, device="cuda", dtype=torch.float32)
    return events_seconds(lambda: a @ b, repeats)


def events_seconds(fn, repeats: int = 50) -> float:
    """Median seconds of ``fn()`` on the device by CUDA events, after 5 warm-up calls."""
    import torch

    for _ in range(5):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return statistics.median(times)


def retimed_best(res, wl, target) -> float | None:
    """Seconds of a GPU tune's best kernel timed again by a fresh runner, median of 3 runner
    calls (None: no best, or it fails now)."""
    from ...codegen.nvptx import build_cuda

    if res.best_trace is None:
        return None
    kernel = build_cuda(res.best_trace.replay(wl, target=target).program, target)
    again = []
    with CudaRunner(prepare_timeout_s=PREPARE_TIMEOUT_S) as fresh:
        for _ in range(3):
            r = fresh.run(kernel, wl)
            if r.ok:
                again.append(r.latency_s)
    return statistics.median(again) if again else None


def require_device(suite_name: str, *, example: bool = False) -> None:
    """A clear error where a GPU bench cannot run: no device, or (``example``) no source
    checkout with the example space."""
    why = unavailable()
    if why is not None:
        raise ProbschedError(f"bench --suite {suite_name} needs a CUDA device: {why}")
    if example and not EXAMPLE.exists():
        raise ProbschedError(f"bench --suite {suite_name} needs {EXAMPLE} (a source checkout)")


@suite("cuda")
def bench_cuda(trials: int | None, progress) -> dict:
    require_device("cuda", example=True)
    trials = trials or DEFAULT_TRIALS
    target = device_target()
    peak = target.peak_fp32_flops()
    mod = load(EXAMPLE)
    rows = []
    runs = [(size, False) for size in SHAPES] + [(GENERATED_SHAPE, True)]
    for size, generated in runs:
        progress(f"GMM-{size}: tuning {trials} trials on {target.name}")
        try:
            rows.append(_row(mod, size, trials, target, peak, generated=generated))
        except ProbschedError as exc:  # one shape failing leaves the others' figures
            rows.append({"op": f"GMM-{size}", "error": str(exc).splitlines()[0][:300]})
        progress(f"GMM-{size}: {rows[-1]}")
    from ...target import host

    return {"machine": f"{target.describe()}; host {host().describe()}", "target": target.key,
            "rows": rows, "summary": {
        "device": target.describe(), "FP32 peak TFLOP/s (clock)": peak / 1e12,
        "trials": trials}}


def _row(mod, size: int, trials: int, target, peak: float, seed: int = 0, *,
         generated: bool = False) -> dict:
    """One shape tuned over the example's space (or, ``generated``, the generated one)."""
    from ...codegen.nvptx import build_cuda

    wl = mod.workload(n=size, m=size, k=size)
    t0 = time.perf_counter()
    with CudaRunner(prepare_timeout_s=PREPARE_TIMEOUT_S) as runner:
        runner.run(build_cuda(_first(mod, wl, target), target), wl)  # inputs and reference
        prepare_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        space = None if generated else mod.space("tiled")
        res = tune(wl, space, trials=trials, db=None, progress=False,
                   target=target, reference=False, seed=seed, runner=runner,
                   builder_workers=max(2, min(16, (os.cpu_count() or 2) - 1)))
        wall = time.perf_counter() - t0
    tuned_s = retimed_best(res, wl, target)
    torch_s = torch_matmul_seconds(size, size, size)
    tflops = wl.flops / tuned_s / 1e12 if tuned_s else None
    torch_tflops = wl.flops / torch_s / 1e12
    return {
        "op": f"GMM-{size}", "space": "generated" if generated else "example",
        "seed": seed, "trials": res.trials, "failed": res.failures,
        "tuned TFLOP/s": tflops, "torch fp32 TFLOP/s": torch_tflops,
        "tuned / torch": tflops / torch_tflops if tflops else None,
        "% of FP32 peak": 100 * tflops * 1e12 / peak if tflops else None,
        "search's TFLOP/s": (wl.flops / res.best_latency_s / 1e12
                             if res.best_latency_s and res.best_trace else None),
        "tune s": wall, "s per trial": wall / max(1, res.trials),
        "reference s": prepare_s,
        "phases s": ", ".join(f"{k} {v:.1f}" for k, v in res.phases),
    }


def _first(mod, wl, target):
    """One program of the space (seed 0), to prepare the runner's inputs with."""
    from ...schedule import Schedule

    sch = Schedule(wl, seed=0, target=target)
    mod.space("tiled").apply(sch)
    return sch.program
