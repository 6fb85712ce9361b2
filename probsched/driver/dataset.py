"""``probsched dataset`` and ``ps.dataset``: measure schedules of the suite for cost-model
training, then export them as a pretrained set (:mod:`probsched.search.pretrained`).

What is measured. Every suite operator at four shapes (``SHAPES``, MetaSchedule's four per
operator; batch 1, float32, sized so that a poor schedule still runs in well under a second on
a small machine): ``per_shape`` records each, ``searched_share`` of them from a short tune
over the generated space (the search's own picks: what a cost model meets in a tune) and the
rest random samples of that space (fresh decisions, what TenSet measures). The random ones
come first, for every shape, then the tunes, which resume from them: the model of a tune
learns from the shape's random records, so it proposes from its first round.

Resumable. Records go to ``db`` (a tuning database) one by one, committed at once; a second
run with the same options measures only what is missing: random samples are drawn from the
same seeded stream and those whose decisions are stored are skipped, and a tune gets the
trials its shape still lacks. Random records are stored with the space name ``RANDOM_SPACE``,
the tunes' with the generated space's. The tunes time each candidate once (no re-timing of a
round's fastest: a label needs one figure, the search's best is not the point), and builds
are given ``BUILD_TIMEOUT_S``.

Then :func:`probsched.driver.dataset_export.export` writes the database's records as rows,
normalized labels and the JSON sidecar (the target, the CPU, feature version, workloads and
counts); ``probsched dataset`` (:mod:`.dataset_cli`) runs both.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import ProbschedError
from ..ir.compute import Workload
from ..lang.loader import generated_space
from ..measure import Builder, Runner, RunResult
from ..search.candidates import CandidateMaker
from ..search.database import Database
from ..search.records import succeeded
from ..search.strategy import Candidate
from ..search.tuner import SLOW_FACTOR
from ..search.tuner import tune as search_tune
from ..target import CpuTarget, resolve
from ..workloads import SUITE

RANDOM_SPACE = "dataset-random"
BUILD_TIMEOUT_S = 10.0
"""A candidate that takes longer to compile is a failed record (a few softmax schedules take
LLVM over 30 s: the tuner's default would stall a batch for them)."""

SHAPES: dict[str, tuple[dict[str, int], ...]] = {
    # matmuls: square ones and BERT-base's projection (seq 128, hidden 768)
    "GMM": (dict(b=1, n=128, m=128, k=128), dict(b=1, n=256, m=256, k=256),
            dict(b=1, n=512, m=512, k=512), dict(b=1, n=128, m=768, k=768)),
    # DESIGN.md's; a wider stride-1 one; a long, narrow kernel-5 one; a short, deep one
    "C1D": (dict(n=1, l=256, ci=64, co=128, kernel=3, stride=2, pad=1),
            dict(n=1, l=128, ci=128, co=256, kernel=3, stride=1, pad=1),
            dict(n=1, l=512, ci=32, co=64, kernel=5, stride=1, pad=2),
            dict(n=1, l=64, ci=256, co=256, kernel=3, stride=2, pad=1)),
    # ResNet's stem (DESIGN.md's) and a 3x3 layer of each of its stages 1-3
    "C2D": (dict(n=1, h=224, w=224, ci=3, co=64, kernel=7, stride=2, pad=3),
            dict(n=1, h=56, w=56, ci=64, co=64, kernel=3, stride=1, pad=1),
            dict(n=1, h=28, w=28, ci=128, co=128, kernel=3, stride=1, pad=1),
            dict(n=1, h=14, w=14, ci=256, co=256, kernel=3, stride=1, pad=1)),
    # MobileNet's depthwise layers: DESIGN.md's, a stride-2 one, two deeper ones
    "DEP": (dict(n=1, h=112, w=112, c=32, kernel=3, stride=1, pad=1),
            dict(n=1, h=56, w=56, c=64, kernel=3, stride=2, pad=1),
            dict(n=1, h=28, w=28, c=128, kernel=3, stride=1, pad=1),
            dict(n=1, h=14, w=14, c=256, kernel=3, stride=1, pad=1)),
    "NRM": (dict(n=256, m=256), dict(n=512, m=512), dict(n=1024, m=1024), dict(n=128, m=2048)),
    "SFM": (dict(n=256, m=256), dict(n=512, m=512), dict(n=1024, m=1024), dict(n=128, m=2048)),
    # conv2d + bias + batch-norm + relu at C2D's four shapes
    "CBR": (dict(n=1, h=224, w=224, ci=3, co=64, kernel=7, stride=2, pad=3),
            dict(n=1, h=56, w=56, ci=64, co=64, kernel=3, stride=1, pad=1),
            dict(n=1, h=28, w=28, ci=128, co=128, kernel=3, stride=1, pad=1),
            dict(n=1, h=14, w=14, ci=256, co=256, kernel=3, stride=1, pad=1)),
}


def dataset_workloads(ops: Sequence[str] | None = None, shapes: Sequence[int] | None = None
                      ) -> list[tuple[str, int, Workload]]:
    """(op, shape index, workload) for ``ops`` (default: all of ``SHAPES``) at the shape
    indices ``shapes`` (0-3; default all four)."""
    ops = list(SHAPES) if ops is None else [o.upper() for o in ops]
    unknown = [o for o in ops if o not in SHAPES]
    if unknown:
        raise ProbschedError(f"dataset: unknown operators {unknown}; known: "
                             f"{', '.join(SHAPES)}")
    idx = range(4) if shapes is None else list(shapes)
    bad = [k for k in idx if not 0 <= k < 4]
    if bad:
        raise ProbschedError(f"dataset: shape indices are 0-3 (four per operator), got {bad}")
    return [(op, k, SUITE[op][0](**SHAPES[op][k])) for op in ops for k in idx]


def split_budget(per_shape: int, searched_share: float) -> tuple[int, int]:
    """(random, searched) records per shape."""
    if per_shape < 1:
        raise ProbschedError(f"dataset: --per-shape must be >= 1, got {per_shape}")
    if not 0.0 <= searched_share <= 1.0:
        raise ProbschedError(f"dataset: the searched share must be in [0, 1], got "
                             f"{searched_share}")
    searched = round(per_shape * searched_share)
    return per_shape - searched, searched


def measure(db: str | os.PathLike[str] | Database, *, ops: Sequence[str] | None = None,
            shapes: Sequence[int] | None = None, per_shape: int = 64,
            searched_share: float = 0.5, seed: int = 0, target: CpuTarget | str | None = None,
            progress: Callable[[str], None] | None = None) -> dict[str, dict[str, int]]:
    """Measure the dataset's records into ``db`` (see the module docstring); per workload
    label (``"GMM-0"``...), how many random and searched records it has now."""
    tgt = resolve(target)
    if not isinstance(tgt, CpuTarget):
        raise ProbschedError(f"dataset: CPU targets only, not {tgt.describe()}")
    say = progress or (lambda msg: print(f"[dataset] {msg}", file=sys.stderr, flush=True))
    n_random, n_searched = split_budget(per_shape, searched_share)
    items = dataset_workloads(ops, shapes)
    space = generated_space()
    own = not isinstance(db, Database)
    database = db if isinstance(db, Database) else Database(db)
    counts: dict[str, dict[str, int]] = {}
    try:
        with Builder(workers=2, timeout_s=BUILD_TIMEOUT_S, target=tgt) as builder, \
                Runner() as runner:
            for op, k, wl in items:
                label = f"{op}-{k}"
                have = _count(database, wl, tgt.key, RANDOM_SPACE)
                t = time.perf_counter()
                made = _random(database, wl, tgt, space, n_random - have,
                               _seed(seed, op, k), builder, runner)
                counts[label] = {"random": have + made}
                say(f"{label} {_shape(op, k)}: {have + made}/{n_random} random "
                    f"({made} measured now, {time.perf_counter() - t:.1f} s)")
            for op, k, wl in items:
                label = f"{op}-{k}"
                have = _count(database, wl, tgt.key, space.name)
                todo = n_searched - have
                t = time.perf_counter()
                if todo > 0:
                    search_tune(wl, space, todo, database, _seed(seed, op, k), False,
                                target=tgt, builder=builder, runner=runner, retime_top=0,
                                reference=False)
                counts[label]["searched"] = _count(database, wl, tgt.key, space.name)
                say(f"{label} {_shape(op, k)}: {counts[label]['searched']}/{n_searched} "
                    f"searched ({max(todo, 0)} tuned now, {time.perf_counter() - t:.1f} s)")
    finally:
        if own:
            database.close()
    return counts


def _shape(op: str, k: int) -> str:
    return ", ".join(f"{a}={v}" for a, v in SHAPES[op][k].items())


def _seed(seed: int, op: str, k: int) -> int:
    return seed * 1000 + list(SHAPES).index(op) * 10 + k


def _count(db: Database, wl: Workload, target: str, space: str) -> int:
    """Trials (not re-timings) of ``wl`` on ``target`` stored with space name ``space``."""
    return sum(1 for r in db.records(wl, target=target) if r.space == space and not r.repeat)


def _random(db: Database, wl: Workload, target: CpuTarget, space: Any, n: int, seed: int,
            builder: Builder, runner: Runner, chunk: int = 16) -> int:
    """Measure ``n`` more random samples of ``space`` (seeded; stored decisions skipped)."""
    if n <= 0:
        return 0
    maker = CandidateMaker(wl, space, target, np.random.default_rng(seed))
    seen = db.measured_decisions(wl, target=target.key)
    ok = [r.latency_s for r in db.records(wl, only_ok=True, target=target.key)]
    best = min(ok, default=math.inf)
    done = 0
    while done < n and maker.stats["replays"] < 40 * n + 100:  # a small space runs out
        batch: list[Candidate] = []
        while len(batch) < min(chunk, n - done) and maker.stats["replays"] < 40 * n + 100:
            cand = maker.make(None)
            if cand is not None and cand.key not in seen:
                seen.add(cand.key)
                batch.append(cand)
        for cand, built in zip(batch, builder.build_many([c.program for c in batch]),
                               strict=True):
            if built.ok and built.artifact is not None:
                slow = SLOW_FACTOR * best if math.isfinite(best) else None
                res = runner.run(built.artifact, wl, slow_s=slow)
            else:
                res = RunResult.failed("build", built.error or "build failed")
            if succeeded(res) and not res.loaded:
                best = min(best, res.latency_s)
            db.add_record(wl, cand.trace, res, target=target.key, space=RANDOM_SPACE,
                          seed=seed)
            done += 1
    return done


__all__ = ["RANDOM_SPACE", "SHAPES", "dataset_workloads", "measure", "split_budget"]
