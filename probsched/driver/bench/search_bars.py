"""The search issue's bars (``probsched bench --suite search-bars``), side by side in one run:
the operators and budgets of its comparison with TVM MetaSchedule, each tuned over the
generated space with three seeds, read as % of the machine's FMA peak measured in the same run.

Rows (the issue's shapes): GMM 1024^3 at 200 and at 64 trials, C1D (1, 256, 64) -> 128 k3 s2,
TBG (12 heads of 128 x 128 x 64, B transposed), the ResNet layer's C2D and CBR (56 x 56 x 64 ->
64, 3x3, pad 1), DEP (112 x 112 x 32, 3x3), SFM and NRM at 1024 x 1024, at 64 trials. Per row:

- ``GFLOP/s per seed``: the tune's best, timed again by a fresh runner (median of 3:
  :func:`~.naive.remeasure_gflops`), seeds 0, 1, 2; ``median`` of them and ``spread``
  (max / min: item 6's bar is <= 1.15 on GMM-1024, C1D and C2D at 64 trials);
- ``% of peak``: the median against the FMA peak on every core (the higher of a measurement
  before and one after the tunes: :func:`~probsched.measure.peak.fma_peak`);
- ``/ numpy``: against numpy's real kernel (a fresh process without the OpenBLAS overrides:
  :func:`~probsched.measure.baselines.numpy_seconds`) where numpy has the op;
- ``bar`` and ``met``; ``s per trial``: the median tune's wall per trial (bar <= 0.35 s on
  GMM-1024 and C2D at 200 trials).

``--trials N`` runs every row with N trials instead (a quicker look; the bars are then not
the issue's).
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from ...ir.compute import Workload
from ...measure.baselines import NUMPY_OPS, numpy_baseline, numpy_seconds
from ...measure.peak import fma_peak
from ...workloads import c1d, c2d, cbr, dep, gmm, nrm, sfm
from ...workloads.more_ops import batch_matmul
from ..notes import cpu_model
from . import suite
from .naive import remeasure_gflops
from .ops import gflops

SEEDS = (0, 1, 2)
RESNET = dict(n=1, h=56, w=56, ci=64, co=64, kernel=3, stride=1, pad=1)


def cases() -> list[tuple[str, Workload, int, str, float]]:
    """(label, workload, trials, what the bar reads: "peak" % or "numpy" x, its minimum)."""
    g = gmm(b=1, n=1024, m=1024, k=1024)
    return [
        ("GMM-1024", g, 200, "peak", 90.0),
        ("GMM-1024", g, 64, "peak", 70.0),
        ("C1D", c1d(n=1, l=256, ci=64, co=128, kernel=3, stride=2, pad=1), 64, "peak", 85.0),
        ("TBG", batch_matmul(b=12, n=128, m=128, k=64, transpose_b=True), 64, "peak", 55.0),
        ("C2D-56", c2d(**RESNET), 64, "peak", 94.0),
        ("CBR-56", cbr(**RESNET), 64, "peak", 80.0),
        ("DEP", dep(n=1, h=112, w=112, c=32, kernel=3, stride=1, pad=1), 64, "peak", 35.0),
        ("SFM-1024", sfm(n=1024, m=1024), 64, "numpy", 4.0),
        ("NRM-1024", nrm(n=1024, m=1024), 64, "numpy", 7.0),
    ]


@suite("search-bars")
def search_bars(trials: int | None, progress) -> dict:
    from ...search.tuner import tune

    progress("the machine's FMA peak")
    peaks = [fma_peak().all_cores_gflops]
    kernel = numpy_baseline("GMM", gmm(b=1, n=64, m=64, k=64)).kernel
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="probsched-bars-") as tmp:
        for label, wl, budget, reads, minimum in cases():
            budget = trials or budget
            op = label.split("-")[0]
            numpy = gflops(wl, numpy_seconds(op, wl)) if op in NUMPY_OPS else None
            figures: list[float | None] = []
            walls: list[float] = []
            failed = 0
            for seed in SEEDS:
                progress(f"{label}: {budget} trials, seed {seed}")
                db = str(Path(tmp) / f"{label}-{budget}-{seed}.db")
                res = tune(wl, None, budget, db, seed, progress=False, reference=False)
                failed += res.failures
                walls.append(res.wall_s / max(1, res.trials))
                figures.append(remeasure_gflops(wl, res.best_program)
                               if res.best_program is not None else None)
            rows.append({"op": label, "trials": budget, "per seed": figures,
                         "numpy": numpy, "failed": failed,
                         "s per trial": statistics.median(walls), "reads": reads,
                         "minimum": minimum})
            progress(f"{label}: {rows[-1]}")
    peaks.append(fma_peak(seconds=0.31).all_cores_gflops)
    peak = max(peaks)
    out = []
    for r in rows:
        good = [f for f in r["per seed"] if f]
        median = statistics.median(good) if good else None
        pct = 100 * median / peak if median else None
        vs_numpy = median / r["numpy"] if median and r["numpy"] else None
        score = pct if r["reads"] == "peak" else vs_numpy
        bar = (f">= {r['minimum']:g} % of peak" if r["reads"] == "peak"
               else f">= {r['minimum']:g}x numpy")
        out.append({
            "op": r["op"], "trials": r["trials"],
            "GFLOP/s per seed": ", ".join("-" if f is None else f"{f:.1f}"
                                          for f in r["per seed"]),
            "median GFLOP/s": median, "spread (max / min)": (max(good) / min(good)
                                                             if len(good) > 1 else None),
            "% of peak": pct, "numpy GFLOP/s": r["numpy"], "/ numpy": vs_numpy,
            "bar": bar, "met": score is not None and score >= r["minimum"],
            "failed (3 seeds)": r["failed"], "s per trial": r["s per trial"],
        })
    return {"rows": out, "summary": {
        "cpu": cpu_model(), "numpy's BLAS kernel": kernel,
        "FMA peak GFLOP/s, every core (before, after)": ", ".join(f"{p:.0f}" for p in peaks),
        "seeds": ", ".join(map(str, SEEDS))}}
