"""The GPU operator benchmark (``probsched bench --suite cuda-ops``): the issue's GPU shapes
beyond matmul, each tuned over the generated space (``probsched/rules/cuda.sched``) on the
device and timed against torch's op on the same shapes in the same run, fp32 with TF32 off.

Rows: TBG (BERT batch 16: 192 heads of 128 x 128 x 64, B transposed) against ``torch.bmm``;
C2D (ResNet 56 x 56 x 64 -> 64, 3 x 3, pad 1, batch 16, NHWC) against torch's channels-last
convolution; SFM (4096 x 4096 softmax over rows) and NRM (the 2-norm of 4096 x 1024) against
``torch.softmax`` and ``torch.linalg.norm``, with the bandwidth each reaches beside a device
copy of the same bytes (``x.clone()``: read and write). ``bench --suite cuda-4096`` is GMM
4096^3 over the example space for up to 500 trials (the issue's budget for that bar).

Each best kernel is timed again by a fresh runner (median of 3 runner calls); torch by CUDA
events, median of 50 after 5 warm-ups. Every row also gives the tune's wall per trial and
its split by phase (search, build, run, model fit: :attr:`TuneResult.phases`).
"""

from __future__ import annotations

import os
import time

from ...errors import ProbschedError
from ...measure.cuda import device_target
from ...search.tuner import tune
from ...workloads import suite as ops
from ...workloads.more_ops import batch_matmul
from . import suite
from .cuda import EXAMPLE, _row, events_seconds, require_device, retimed_best

DEFAULT_TRIALS = 48
GMM_4096_TRIALS = 500


def _cases():
    """(name, workload, torch op, bytes the op must read and write, the tensor whose copy is
    the bandwidth yardstick) per row; torch's tensors are made here, on the device."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = "cuda"
    q, k = (torch.rand(192, 128, 64, device=dev) for _ in range(2))
    x = torch.rand(16, 64, 56, 56, device=dev).to(memory_format=torch.channels_last)
    w = torch.rand(64, 64, 3, 3, device=dev).to(memory_format=torch.channels_last)
    s = torch.rand(4096, 4096, device=dev)
    a = torch.rand(4096, 1024, device=dev)
    conv = torch.nn.functional.conv2d
    return [
        ("TBG 192x128x128x64", batch_matmul(b=192, n=128, m=128, k=64, transpose_b=True),
         lambda: torch.bmm(q, k.transpose(1, 2)), None, None),
        ("C2D 16x56x56x64->64 3x3", ops.c2d(n=16, h=56, w=56, ci=64, co=64, kernel=3,
                                            stride=1, pad=1),
         lambda: conv(x, w, padding=1), None, None),
        ("SFM 4096x4096", ops.sfm(n=4096, m=4096), lambda: torch.softmax(s, dim=1),
         2 * s.numel() * 4, s),
        ("NRM 4096x1024", ops.nrm(n=4096, m=1024), lambda: torch.linalg.norm(a),
         a.numel() * 4, a),
    ]


def _tuned(wl, trials: int, target, seed: int) -> tuple[dict, float | None]:
    t0 = time.perf_counter()
    res = tune(wl, None, trials=trials, db=None, progress=False, target=target,
               reference=False, seed=seed,
               builder_workers=max(2, min(16, (os.cpu_count() or 2) - 1)))
    wall = time.perf_counter() - t0
    failures: dict[str, int] = {}
    for rec in res.records:
        if rec.error_kind:
            failures[rec.error_kind] = failures.get(rec.error_kind, 0) + 1
    row = {"trials": res.trials, "failed": res.failures,
           "failed by kind": ", ".join(f"{k} {n}" for k, n in sorted(failures.items())),
           "tune s": wall, "s per trial": wall / max(1, res.trials),
           "phases s": ", ".join(f"{k} {v:.1f}" for k, v in res.phases)}
    return row, retimed_best(res, wl, target)


@suite("cuda-ops")
def bench_cuda_ops(trials: int | None, progress) -> dict:
    require_device("cuda-ops")
    trials = trials or DEFAULT_TRIALS
    target = device_target()
    rows = []
    for name, wl, torch_op, nbytes, source in _cases():
        progress(f"{name}: tuning {trials} trials on {target.name}")
        try:
            row, tuned_s = _tuned(wl, trials, target, seed=0)
        except ProbschedError as exc:  # one op failing leaves the others' figures
            rows.append({"op": name, "error": str(exc).splitlines()[0][:300]})
            continue
        torch_s = events_seconds(torch_op)
        out = {"op": name, "tuned us": tuned_s and tuned_s * 1e6, "torch us": torch_s * 1e6,
               "tuned / torch": tuned_s and torch_s / tuned_s}
        if tuned_s and wl.flops:
            out["tuned TFLOP/s"] = wl.flops / tuned_s / 1e12
        if nbytes and tuned_s:  # a clone reads and writes the tensor: twice its bytes
            copy_bw = 2 * source.numel() * source.element_size() / events_seconds(source.clone)
            out["GB/s"] = nbytes / tuned_s / 1e9
            out["copy GB/s"] = copy_bw / 1e9
            out["% of copy"] = 100 * (nbytes / tuned_s) / copy_bw
        rows.append({**out, **row})
        progress(f"{name}: {rows[-1]}")
    from ...target import host

    return {"machine": f"{target.describe()}; host {host().describe()}", "target": target.key,
            "rows": rows, "summary": {"device": target.describe(), "trials": trials}}


@suite("cuda-4096")
def bench_cuda_4096(trials: int | None, progress) -> dict:
    """GMM 4096^3 over the example space, the issue's 500-trial budget by default."""
    return _gmm_4096("cuda-4096", trials, progress, generated=False)


@suite("cuda-4096-generated")
def bench_cuda_4096_generated(trials: int | None, progress) -> dict:
    """GMM 4096^3 over the generated space (probsched/rules/cuda.sched), 500 trials."""
    return _gmm_4096("cuda-4096-generated", trials, progress, generated=True)


def _gmm_4096(name: str, trials: int | None, progress, *, generated: bool) -> dict:
    require_device(name, example=True)
    from ...lang import load

    trials = trials or GMM_4096_TRIALS
    target = device_target()
    space = "the generated space" if generated else "the example space"
    progress(f"GMM-4096: tuning {trials} trials over {space} on {target.name}")
    row = _row(load(EXAMPLE), 4096, trials, target, target.peak_fp32_flops(),
               generated=generated)
    return {"machine": target.describe(), "target": target.key, "rows": [row],
            "summary": {"device": target.describe(), "trials": trials}}
