"""Simulated annealing against evolution (``probsched bench --suite sa``; issue 15, item 6:
reported, no bar).

GMM-512 and C1D (the suite's benchmark shape) over the generated space, each tuned with the
GBDT for the same trials (default 64) by evolution and by simulated annealing
(:mod:`probsched.search.annealing`), seeds 0 and 1, everything else alike (post-optimization,
re-timing, the search's time budget). A row per run: the best GFLOP/s (the search's figure,
the median of its timings), wall, the search's own seconds and, for annealing, the chains
of the last round and the iterations of all; the summary has the medians
over seeds per workload and strategy and the ratio of annealing's median best to
evolution's.
"""

from __future__ import annotations

import statistics

from . import suite

STRATEGIES = {"evolutionary": "evolutionary", "sa": "sa"}


def _cases() -> dict:
    from ...workloads import SUITE, gmm

    c1d, c1d_shape, _ = SUITE["C1D"]
    return {"GMM-512": gmm(b=1, n=512, m=512, k=512), "C1D": c1d(**c1d_shape)}


def annealing_bench(trials: int = 64, seeds=(0, 1), progress=None) -> dict:
    """The runs of the module docstring, ``trials`` each, for ``seeds``."""
    from ...search.tuner import tune

    progress = progress or (lambda msg: None)
    rows, summary = [], {}
    for label, wl in _cases().items():
        best: dict[str, list[float]] = {}
        wall: dict[str, list[float]] = {}
        for seed in seeds:
            for name, strategy in STRATEGIES.items():
                progress(f"{label}: {name}, {trials} trials, seed {seed}")
                res = tune(wl, None, trials=trials, db=None, seed=seed, progress=False,
                           reference=False, strategy=strategy)
                gflops = res.best_gflops or 0.0
                rows.append({"workload": label, "strategy": name, "seed": seed,
                             "trials": res.trials, "failed": res.failures,
                             "best_gflops": gflops, "wall_s": res.wall_s,
                             "search_s": res.search_s,
                             "chains": res.stats.get("chains"),
                             "iterations": res.stats.get("iterations")})
                best.setdefault(name, []).append(gflops)
                wall.setdefault(name, []).append(res.wall_s)
        evo, sa = (statistics.median(best[n]) for n in STRATEGIES)
        evo_wall, sa_wall = (statistics.median(wall[n]) for n in STRATEGIES)
        summary[f"{label} {trials} trials: median best GFLOP/s (evolutionary, sa), sa / evo"] = (
            f"{evo:.1f}, {sa:.1f}, {sa / evo if evo else float('nan'):.2f}")
        summary[f"{label}: median wall s (evolutionary, sa)"] = f"{evo_wall:.1f}, {sa_wall:.1f}"
    return {"rows": rows, "summary": summary}


@suite("sa")
def run(trials: int | None, progress) -> dict:
    return annealing_bench(trials or 64, progress=progress)
