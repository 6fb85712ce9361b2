"""The replay benchmark (``probsched bench --suite replay``): how long replaying a trace takes,
without compiling. Search replays thousands of traces per round, so this bounds its speed.

Two parts. (a) A fixed trace, replayed (below). (b) What the evolutionary search pays per
candidate of the generated space on GMM-1024 and the ResNet C2D (56x56x64 -> 64, 3x3), the
figures of issue 11: a fresh sample (the space run, sampling), a mutant (the space run again
with one decision changed), the features the cost model reads, and one search round at the
default :class:`~probsched.search.evolutionary.SearchConfig` (the population it chose, the
round's seconds per candidate proposed: the search's overhead per trial). CPU seconds of this
process (``time.process_time``), medians over the candidates, so that other load on a shared
machine counts less.

The trace is a MetaSchedule-style tiling of GMM-1024 (about 40 instructions): sampled tiles
for i, j and k, splits, a reorder into an SSRSRS nest, a local accumulator written back under
the tile loops, fused parallel outer loops, a vectorized and an unrolled inner loop, and an
unroll annotation. Steps the schedule refuses (primitives not available) are replaced by more
splits and reorders, so the trace keeps its length; the row says which steps ran.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from ...errors import ScheduleError
from ...schedule import Schedule, Trace
from ...workloads import c2d, gmm
from . import suite

TARGET_INSTRUCTIONS = 40
BAR_MS = 2.0


def tiled_gmm(sch: Schedule) -> list[str]:
    """Tile ``C`` as MetaSchedule's multi-level tiling would; returns the optional steps that
    were refused (and replaced)."""
    refused = []
    c = sch.get_block("C")
    b, i, j, k = sch.get_loops(c)
    i0, i1, i2, i3 = sch.split(i, sch.sample_perfect_tile(i, 4, 16))
    j0, j1, j2, j3 = sch.split(j, sch.sample_perfect_tile(j, 4, 16))
    k0, k1 = sch.split(k, sch.sample_perfect_tile(k, 2, 16))
    sch.reorder(i0, j0, i1, j1, k0, i2, j2, k1, i3, j3)
    try:
        write = sch.cache_write(c, "local")
        sch.reverse_compute_at(write, j1)
    except ScheduleError:
        refused.append("cache_write + reverse_compute_at")
    try:
        sch.decompose_reduction(c, k0)
    except ScheduleError:
        refused.append("decompose_reduction")
    outer = sch.fuse(b, i0, j0)
    sch.parallel(outer)
    sch.vectorize(j3)
    sch.unroll(i3)
    sch.annotate(outer, "pragma_auto_unroll_max_step",
                 sch.sample_categorical([0, 16, 64, 512], [0.25, 0.25, 0.25, 0.25]))
    # What a generated space also does: look the block and its loops up again for each rule,
    # then transform (here: reorders of the inner tile loops, keeping their order).
    while len(sch.trace) + 3 <= TARGET_INSTRUCTIONS:
        loops = sch.get_loops(sch.get_block("C"))
        sch.reorder(loops[-3], loops[-2])
    while len(sch.trace) < TARGET_INSTRUCTIONS:
        sch.annotate(outer, "note", len(sch.trace))
    return refused


def replay_times(trace: Trace, workload, replays: int) -> list[float]:
    """Seconds per ``trace.replay(workload)``, after two warm-up replays."""
    for _ in range(2):
        trace.replay(workload)
    out = []
    for _ in range(replays):
        t = time.perf_counter()
        trace.replay(workload)
        out.append(time.perf_counter() - t)
    return out


def candidate_costs(workload, n: int = 30, round_batch: int | None = 64, seed: int = 0) -> dict:
    """Per candidate of the generated space for ``workload``: CPU ms of a fresh sample, of a
    mutant's run and of its features (medians over ``n`` each); then, unless ``round_batch``
    is None, one round of the default search proposing ``round_batch``: the population it
    used and its CPU ms per candidate proposed. The model is GBDT, fitted on the fresh
    samples with made-up latencies (so that scoring costs what it does in a tune)."""
    from ...rules import generated_space
    from ...search.candidates import CandidateMaker
    from ...search.evolutionary import EvolutionarySearch
    from ...search.features import FeatureCache
    from ...search.model_choice import make_cost_model
    from ...search.mutators import default_probs, propose

    space, rng = generated_space(), np.random.default_rng(seed)
    maker = CandidateMaker(workload, space, None, rng)
    maker.make(None)  # warm: the rule library is loaded and parsed once
    fresh: list = []
    fresh_s: list[float] = []
    while len(fresh) < n and len(fresh_s) < 4 * n:
        t = time.process_time()
        cand = maker.make(None)
        fresh_s.append(time.process_time() - t)
        if cand is not None:
            fresh.append(cand)
    mutant_s: list[float] = []
    features_s: list[float] = []
    probs = default_probs()
    for cand in fresh:
        decisions = propose(cand.choices, rng, probs)
        if decisions is None:
            continue
        t = time.process_time()
        child = maker.make(decisions)
        mutant_s.append(time.process_time() - t)
        if child is not None:
            t = time.process_time()
            FeatureCache()([child])
            features_s.append(time.process_time() - t)
    row = {"fresh sample ms": _median_ms(fresh_s), "mutant ms": _median_ms(mutant_s),
           "features ms": _median_ms(features_s)}
    if round_batch is not None:
        features = FeatureCache()
        model = make_cost_model("gbdt", seed, round_batch)
        latencies = list(rng.uniform(1e-3, 1e-2, len(fresh)))
        model.update(features(fresh), [c.trace for c in fresh], latencies,
                     workload.structural_hash)
        search = EvolutionarySearch(workload, space, model, seed=seed, features=features)
        t = time.process_time()
        proposed = search.propose(round_batch)
        spent = time.process_time() - t
        row["population"] = search.stats["population"]
        row["runs in the round"] = search.stats["replays"]
        row["search ms per trial"] = spent * 1e3 / max(1, len(proposed))
    return row


def _median_ms(seconds: list[float]) -> float | None:
    return statistics.median(seconds) * 1e3 if seconds else None


@suite("replay")
def replay_suite(trials, progress) -> dict:
    replays = trials or 200
    wl = gmm(b=1, n=1024, m=1024, k=1024)
    sch = Schedule(wl, seed=0)
    refused = tiled_gmm(sch)
    trace = sch.trace
    again = Trace.from_json(trace.to_json()).replay(wl)
    assert str(again.program) == str(sch.program), "replay gave another program"
    progress(f"replaying a {len(trace)}-instruction trace {replays} times")
    times = sorted(replay_times(trace, wl, replays))
    median_ms = statistics.median(times) * 1e3
    row = {
        "trace": "GMM-1024 multi-level tiling",
        "instructions": len(trace),
        "replays": replays,
        "median ms": median_ms,
        "min ms": times[0] * 1e3,
        "p90 ms": times[int(0.9 * (len(times) - 1))] * 1e3,
        "us per instruction": median_ms * 1e3 / len(trace),
        "refused steps (replaced)": ", ".join(refused) or "none",
    }
    rows = [row]
    resnet = c2d(n=1, h=56, w=56, ci=64, co=64, kernel=3, stride=1, pad=1)
    for label, workload in (("GMM-1024", wl), ("C2D 56x56x64->64 3x3", resnet)):
        progress(f"{label}: the generated space's candidates and one search round")
        rows.append({"trace": f"{label}, generated space", **candidate_costs(workload)})
    scaled = median_ms * TARGET_INSTRUCTIONS / len(trace)
    return {
        "rows": rows,
        "summary": {
            f"replay ms, median, scaled to {TARGET_INSTRUCTIONS} instructions "
            f"(bar <= {BAR_MS})": scaled,
            "meets the bar": scaled <= BAR_MS,
        },
    }
