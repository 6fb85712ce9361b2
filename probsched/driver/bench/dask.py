"""The Dask benchmark (``probsched bench --suite dask``): a tune measured on a local Dask
cluster of 2 worker processes against the same tune measured here (same workload, space, seed
and budget: ``trials``, default 64). Bars: the same number of records, all correct, and at
most 20 ms more wall time per trial on the cluster.

Both tune GMM 64 over the generated space, without the numpy and peak baselines (not tuning);
each into a database of its own. The cluster is started before the tunes (not timed). The
two alternate ``REPEATS`` times and each side's median wall per trial is compared: on a
shared machine another user's load shifts a single pair by more than the bar.
"""

from __future__ import annotations

import os
import statistics
import tempfile
from pathlib import Path

from ...search.database import Database
from ...workloads import gmm
from ..notes import cpu_model
from ..tuning import tune
from . import suite

REPEATS = 3


@suite("dask")
def dask_bench(trials: int | None, progress) -> dict:
    """Tune here, then on a local cluster; records and wall per trial side by side."""
    from ..dask_measure import local_cluster

    budget = trials or 64
    wl = gmm(b=1, n=64, m=64, k=64)
    rows: list[dict] = []
    per_trial: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp, local_cluster(2) as cluster:
        runs = [("here", None), ("dask, 2 local workers", cluster.scheduler_address)]
        for mode, where in runs * REPEATS:
            progress(f"tuning {budget} trials {mode}")
            db = Path(tmp) / f"{len(rows)}.db"
            result = tune(wl, trials=budget, db=str(db), seed=0, progress=False,
                          reference=False, cluster=where)
            with Database(db) as d:
                records = [r for r in d.records(wl) if not r.repeat]
            rows.append({"mode": mode, "trials": result.trials, "records": len(records),
                         "correct": sum(r.ok for r in records), "wall_s": result.wall_s,
                         "ms_per_trial": result.wall_s / max(1, result.trials) * 1e3,
                         "load_avg_1min": os.getloadavg()[0]})
            per_trial.setdefault(mode, []).append(rows[-1]["ms_per_trial"])
    here, there = (statistics.median(v) for v in per_trial.values())
    extra = there - here
    pairs = [b - a for a, b in zip(*per_trial.values(), strict=True)]
    return {"rows": rows, "summary": {
        "cpu": cpu_model(),
        "extra wall per trial on the cluster (ms)": extra,
        # beside the bar's figure: each pair ran back to back, so a load that comes and goes
        # moves a pair less than the two medians
        "extra per pair (ms)": ", ".join(f"{d:+.1f}" for d in pairs),
        "median ms per trial here / on the cluster": f"{here:.0f} / {there:.0f}",
        "same records, all correct": len({(r["records"], r["correct"]) for r in rows}) == 1,
        "bar <= 20 ms met": extra <= 20.0}}
