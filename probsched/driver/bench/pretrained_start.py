"""The pretrained start against tuning from scratch (``probsched bench --suite
pretrained-start``; issue 15's bar: at 64 trials, the suite's median reaches >= 95 % of the
from-scratch 200-trial result, same machine, same run).

Every suite operator at DESIGN.md's shape over the generated space, seed 0: tuned from
scratch for ``trials`` (default 200), and with the shipped pretrained set for ``32 %`` of them
(64 of 200), the set's rows of that very workload (same structural hash) left out. A row per
operator: the best GFLOP/s of each run (the search's figure), the from-scratch run's best
within its first 64 trials (what 64 trials give without the set), and the ratio of the
pretrained run's best to the from-scratch 200-trial best. The summary has the median ratio and
whether it meets the bar.
"""

from __future__ import annotations

import math
import statistics

from . import suite

SHARE = 0.32
BAR = 0.95


def _best_within(result, n: int) -> float:
    """The best GFLOP/s among a run's first ``n`` trials (0 with none correct)."""
    lat = [r.latency_s for r in result.records if not r.repeat][:n]
    best = min((x for x in lat if math.isfinite(x)), default=math.inf)
    return result.flops / best / 1e9 if math.isfinite(best) else 0.0


def summarize(rows: list[dict]) -> dict[str, str]:
    """The median over operators of the pretrained run's best over the from-scratch best, and
    whether it meets the bar."""
    ratios = [r["ratio"] for r in rows if r["ratio"] is not None]
    median = statistics.median(ratios) if ratios else float("nan")
    return {"median ratio (pretrained at 32 % of the trials / from scratch)": f"{median:.3f}",
            f"bar >= {BAR}": str(median >= BAR)}


@suite("pretrained-start")
def run(trials: int | None, progress) -> dict:
    from ...search import pretrained
    from ...search.tuner import tune
    from ...workloads import SUITE

    n = trials or 200
    short = max(1, round(n * SHARE))
    data = pretrained.load(pretrained.shipped_path())
    rows = []
    for op, (fn, shape, _) in SUITE.items():
        wl = fn(**shape)
        progress(f"{op}: from scratch, {n} trials")
        scratch = tune(wl, None, trials=n, db=None, progress=False, reference=False)
        progress(f"{op}: pretrained, {short} trials")
        prior = data.without(hashes=(wl.structural_hash,))
        warm = tune(wl, None, trials=short, db=None, progress=False, reference=False,
                    pretrained=prior)
        full, mine = scratch.best_gflops or 0.0, warm.best_gflops or 0.0
        rows.append({"op": op, "scratch_gflops": full,
                     f"scratch_at_{short}_gflops": _best_within(scratch, short),
                     "pretrained_gflops": mine, "ratio": mine / full if full else None,
                     "prior_rows": len(prior), "scratch_wall_s": scratch.wall_s,
                     "pretrained_wall_s": warm.wall_s})
    return {"rows": rows, "summary": summarize(rows)}
