"""Cost-model quality (``probsched bench --suite costmodel``).

On GMM-512 and C2D (DESIGN.md's shapes) ``trials`` random schedules (default 200) are measured
for real (isolated builder and runner); the GBDT model and the random model are trained on 80 %
and ranked on the other 20 %, five times (5-fold: every record is held out once), and the
held-out scores averaged: pairwise ranking accuracy and top-k score (TLP's definition, k = 1, 5,
10), plus the time of ``update`` (features of the trace, rows, fit). Also the feature
extraction time per program (store features, trace features).

The random schedules come from :func:`random_schedule`, a small generator in MetaSchedule's
CPU style: sampled tiles (spatial loops in 4, reduce loops in 2, ordered SSRSRS), sometimes a
random loop order instead, optional local write cache placed under a tile, the producer
(padding) inlined, computed at a sampled location or left at the root, the outer spatial
tiles fused and parallel, the innermost spatial loop vectorized, a short inner loop unrolled.
Steps the schedule refuses are skipped, so the generator keeps working while primitives are
being finished.

With the pretrained set shipped (:mod:`probsched.search.pretrained`), two more models: "GBDT +
pretrained" (the set's rows of every *other* operator, held out by operator: GMM's rows for
GMM-512, C2D's for C2D, plus the training folds) and "pretrained only" (those rows and no
record of the workload). And a table measured on nothing new: each operator of the set held
out in turn, a GBDT fitted on the others' rows ranks its rows, per workload (mean over the
operator's shapes), against random scores (:func:`held_out_operators`).
"""

from __future__ import annotations

import time

import numpy as np

from ...errors import ScheduleError
from ...ir import expr as E
from ...ir.compute import Workload
from ...ir.program import Block
from ...schedule import Schedule
from ...search.cost_model import add_ranking, ranking_by_group
from . import suite
from .costmodel_dl import rows_and_summary

WORKLOADS = ("GMM-512", "C2D")


def bench_workloads() -> dict[str, Workload]:
    from ...workloads import SUITE, gmm

    c2d_fn, c2d_shape, _ = SUITE["C2D"]
    return {"GMM-512": gmm(b=1, n=512, m=512, k=512), "C2D": c2d_fn(**c2d_shape)}


# ---------------------------------------------------------------- random schedules


def _try(fn, *args):
    try:
        return fn(*args)
    except ScheduleError:
        return None


def _reduce_vars(block: Block) -> set[str]:
    out: set[str] = set()
    for iv, b in zip(block.iter_vars, block.bindings, strict=True):
        if iv.reduce:
            out |= E.free_vars(b)
    return out


def random_schedule(workload: Workload, seed: int, *, parallel: bool = True) -> Schedule:
    """One random schedule of ``workload`` (every choice from ``seed``); ``parallel=False``
    leaves every loop on one thread (steadier timings on a busy machine)."""
    sch = Schedule(workload, seed=seed)
    rng = np.random.default_rng(seed)
    blocks = list(sch.program.blocks())
    main = blocks[-1]
    for blk in blocks[:-1]:  # producers (padding): inline, compute at, or root
        rv = sch.get_block(blk.name)
        r = rng.random()
        if r < 0.35:
            _try(sch.compute_inline, rv)
        elif r < 0.7:
            loc = _try(sch.sample_compute_location, rv)
            if loc is not None:
                _try(sch.compute_at, rv, loc)
    _tile(sch, main.name, rng, parallel)
    for blk in list(sch.program.blocks()):
        if blk.name != main.name and not blk.name.startswith(main.name + "_"):
            _simple(sch, blk.name, rng, parallel)
    return sch


def _tile(sch: Schedule, name: str, rng: np.random.Generator, parallel: bool) -> None:
    block = sch.get_block(name)
    blk = next(b for b in sch.program.blocks() if b.name == name)
    red = _reduce_vars(blk)
    loops = sch.get_loops(block)
    spatial = [lp for lp in loops if sch.get(lp) not in red]
    reduce_ = [lp for lp in loops if sch.get(lp) in red]
    s_tiles, r_tiles = [], []
    for k, lp in enumerate(spatial):
        inner = 64 if k == len(spatial) - 1 else 16
        s_tiles.append(sch.split(lp, sch.sample_perfect_tile(lp, 4, inner)))
    for lp in reduce_:
        r_tiles.append(sch.split(lp, sch.sample_perfect_tile(lp, 2, 16)))
    level = lambda tiles, k: [t[k] for t in tiles]  # noqa: E731
    order = (level(s_tiles, 0) + level(s_tiles, 1) + level(r_tiles, 0) + level(s_tiles, 2)
             + level(r_tiles, 1) + level(s_tiles, 3))
    if rng.random() < 0.25:
        order = [order[k] for k in rng.permutation(len(order))]
    sch.reorder(*order)
    if rng.random() < 0.5:
        wb = _try(sch.cache_write, block, "local")
        if wb is not None:
            at = s_tiles[-1][int(rng.integers(0, 2))] if s_tiles else None
            if at is not None:
                _try(sch.reverse_compute_at, wb, at)
    if rng.random() < 0.5 and r_tiles:
        _try(sch.decompose_reduction, block, order[0])
    if parallel and rng.random() < 0.8 and s_tiles and order[: len(s_tiles)] == level(s_tiles, 0):
        outer = _try(sch.fuse, *level(s_tiles, 0)) if len(s_tiles) > 1 else s_tiles[0][0]
        if outer is not None:
            _try(sch.parallel, outer)
    last = order[-1]
    if rng.random() < 0.8 and sch.get(last) not in red and 1 < sch.loop_extent(last) <= 64:
        _try(sch.vectorize, last)
    if rng.random() < 0.3 and len(order) > 1 and 1 < sch.loop_extent(order[-2]) <= 16:
        _try(sch.unroll, order[-2])


def _simple(sch: Schedule, name: str, rng: np.random.Generator, parallel: bool) -> None:
    """A block other than the main one: parallel outer, vectorize inner, when it may."""
    loops = sch.get_loops(sch.get_block(name))
    if not loops:
        return
    if parallel and rng.random() < 0.5:
        _try(sch.parallel, loops[0])
    if rng.random() < 0.5 and 1 < sch.loop_extent(loops[-1]) <= 64:
        _try(sch.vectorize, loops[-1])


def random_schedules(workload: Workload, n: int, seed: int = 0, *, parallel: bool = True
                     ) -> list[Schedule]:
    """``n`` random schedules with distinct programs (up to ``20 n`` attempts)."""
    out, seen = [], set()
    for s in range(seed, seed + 20 * n):
        try:
            sch = random_schedule(workload, s, parallel=parallel)
        except ScheduleError:
            continue
        key = str(sch.program)
        if key in seen:
            continue
        seen.add(key)
        out.append(sch)
        if len(out) == n:
            break
    return out


# ---------------------------------------------------------------- the suite


@suite("costmodel")
def run(trials: int | None, progress) -> dict:
    from ...measure import measure_many
    from ...search.cost_model import normalized_throughput
    from ...search.features import extract
    from ...search.trace_features import extract_trace

    n = trials or 200
    rows, summary = [], {}
    data = _shipped()
    if data is not None:
        progress(f"held-out operators of the shipped set ({len(data)} rows)")
        held = held_out_operators(data)
        rows += held
        for name in ("GBDT", "random"):
            mine = [r for r in held if r["model"] == name]
            summary[f"held-out operators, {name}: mean pairwise, top-1, top-5"] = ", ".join(
                f"{np.mean([r[k] for r in mine]):.3f}" for k in ("pairwise_acc", "top1", "top5"))
    dl_rows, dl_summary = rows_and_summary(progress)
    rows += dl_rows
    summary.update(dl_summary)
    for label, wl in bench_workloads().items():
        progress(f"{label}: sampling {n} schedules")
        schedules = random_schedules(wl, n)
        programs = [s.program for s in schedules]
        traces = [s.trace for s in schedules]
        t = time.perf_counter()
        feats = extract(programs)
        feat_ms = (time.perf_counter() - t) / len(programs) * 1e3
        t = time.perf_counter()
        extract_trace(traces)
        trace_ms = (time.perf_counter() - t) / len(programs) * 1e3
        progress(f"{label}: measuring {len(programs)} schedules")
        results = measure_many(programs, wl)
        lat = np.array([r.latency_s if r.ok else np.inf for r in results])
        true = normalized_throughput(lat, np.array([wl.name] * len(lat)))
        prior = None if data is None else data.without(ops=(label.split("-")[0],))
        for name, scores in _cross_validate(feats, traces, lat, true, wl.name, prior).items():
            rows.append({"workload": label, "model": name, "records": len(programs),
                         "failed": int((~np.isfinite(lat)).sum()), **scores})
        ok = np.isfinite(lat)
        summary[f"{label} feature extraction ms/program (stores, trace)"] = \
            f"{feat_ms:.2f}, {trace_ms:.2f}"
        summary[f"{label} latency ms (best, median)"] = \
            f"{np.min(lat[ok]) * 1e3:.2f}, {np.median(lat[ok]) * 1e3:.2f}" if ok.any() else "-"
    return {"rows": rows, "summary": summary}


def _shipped():
    from ...errors import DatasetError
    from ...search import pretrained

    try:
        return pretrained.load(pretrained.shipped_path())
    except DatasetError:
        return None


def held_out_operators(data) -> list[dict]:
    """Per operator of the pretrained set ``data``: a GBDT fitted on the other operators' rows
    and random scores rank its rows, per workload; the means over its workloads of pairwise
    accuracy and top-k, the fit and the predict time."""
    from ...search.cost_model import GBDTModel, RandomModel

    ops = data.ops()
    out = []
    for op in dict.fromkeys(ops):
        rest, mine = data.without(ops=(op,)), data.select(ops == op)
        gbdt = GBDTModel(prior=(rest.rows, rest.labels))
        t = time.perf_counter()
        gbdt.fit()
        fit_s = time.perf_counter() - t
        t = time.perf_counter()
        pred = {"GBDT": gbdt.predict_rows(mine.rows)}
        predict_s = time.perf_counter() - t
        pred["random"] = RandomModel(seed=0).predict(list(mine.rows), None)
        for name, p in pred.items():
            out.append({"workload": f"held-out {op}", "model": name, "records": len(mine),
                        "train_rows": len(rest),
                        **ranking_by_group(p, mine.labels, mine.workload),
                        "update_s": fit_s if name == "GBDT" else 0.0,
                        "predict_s": predict_s if name == "GBDT" else 0.0})
    return out


def _cross_validate(feats, traces, lat, true, key: str, prior=None, folds: int = 5
                    ) -> dict[str, dict]:
    """Per model, the mean over ``folds`` splits (train on 80 %, rank the other 20 %) of the
    held-out pairwise accuracy and top-k scores, and the mean fit time. ``prior``: a
    pretrained set of other operators, for the "GBDT + pretrained" and "pretrained only"
    models."""
    from ...search.cost_model import (
        CostModel,
        GBDTModel,
        RandomModel,
    )

    perm = np.random.default_rng(0).permutation(len(lat))
    out: dict[str, dict[str, list]] = {}
    for f in range(folds):
        test = perm[f::folds]
        train = np.setdiff1d(perm, test)
        models: dict[str, CostModel] = {"GBDTModel": GBDTModel(seed=f),
                                     "RandomModel": RandomModel(seed=f)}
        if prior is not None:
            models["GBDT + pretrained"] = GBDTModel(seed=f, prior=(prior.rows, prior.labels))
            models["pretrained only"] = GBDTModel(seed=f, prior=(prior.rows, prior.labels))
        for name, model in models.items():
            t = time.perf_counter()
            if name != "pretrained only":
                model.update([feats[k] for k in train], [traces[k] for k in train],
                             lat[train], key)
            fit_s = time.perf_counter() - t
            pred = model.predict([feats[k] for k in test], [traces[k] for k in test])
            scores = out.setdefault(name, {})
            add_ranking(scores, pred, true[test])
            scores.setdefault("update_s", []).append(fit_s)
    return {name: {k: float(np.nanmean(v)) for k, v in scores.items()}
            for name, scores in out.items()}
