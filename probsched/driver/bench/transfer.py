"""Transfer across targets (``probsched bench --suite transfer``; issue 15, item 3).

Two CPU targets, ``--source`` and ``--dest`` (defaults: the host and ``x86-64-v2``; on an
AVX-512 host, ``--source x86-64-v3 --dest host`` is the AVX2 -> AVX-512 pair). Each target's
records are a pretrained set: the shipped one when it was measured for the source target
(same target key), else measured here with ``probsched dataset --target`` into ``--data``
(``SOURCE.db`` / ``DEST.db``, resumable, then exported beside them; ``--trials`` is the
records per shape, default 64, of ``DEST_OPS`` at four shapes each).

Each destination operator is held out in turn (its four workloads; ``evaluate`` can hold out
one workload at a time instead, 4x the fits): its records are the test, ranked per
workload; the other operators' records are the pool a model may learn from, drawn at random
(nested: the 32 drawn include the 16) for each seed. The models:

- ``scratch``: a GBDT on ``n`` destination records only (fitted from any number of them);
- ``source only``: the source target's GBDT, no destination record (transfer at 0);
- ``transfer``: :class:`~probsched.search.transfer.TransferModel`, the source GBDT plus a
  residual GBDT on ``n`` destination records;
- ``prior``: :class:`~probsched.search.cost_model.GBDTModel` with the source rows as a prior
  and ``n`` destination records as its own (the weighting ``tune(pretrained=...)`` uses), at
  ``PRIOR_SIZES`` only (each is a fit on thousands of rows).

Two conditions for the source: it has every workload (the held-out ones measured on the
source target, as the shipped set covers the suite), or it lacks the held-out operator
(nothing of it was ever measured anywhere). The rows give, per condition,
model and ``n``, the median over seeds of the mean over held-out workloads of pairwise
accuracy, top-1 and top-5; the summary checks the bar (transfer at 64 >= scratch at 256).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ...search.pretrained import PretrainedSet
from . import suite

DEST_OPS = ("GMM", "C1D", "C2D", "DEP")
SIZES = (16, 32, 64, 128)
SCRATCH_SIZES = (64, 256)
PRIOR_SIZES = (64,)
SEEDS = (0, 1, 2)
PRIOR_SEEDS = (0,)
"""What a run on 2 shared cores affords (about 20 minutes): every model is fitted per held-out
operator and seed; the prior's fits, on thousands of rows, once per held-out operator."""
CONDITIONS = ("source has the workload", "source without the operator")


def _rank(pred: np.ndarray, true: np.ndarray) -> tuple[float, float, float]:
    from ...search.cost_model import pairwise_accuracy, top_k_score

    return pairwise_accuracy(pred, true), top_k_score(pred, true, 1), top_k_score(pred, true, 5)


def evaluate(source: PretrainedSet, dest: PretrainedSet, *, sizes=SIZES,
             scratch_sizes=SCRATCH_SIZES, prior_sizes=PRIOR_SIZES, seeds=SEEDS,
             prior_seeds=PRIOR_SEEDS, conditions=CONDITIONS, holdout: str = "operator",
             progress=None) -> list[dict]:
    """The transfer table (see the module docstring): one row per condition, model and
    number of destination records, with the median over seeds of the mean over held-out
    destination workloads of pairwise accuracy, top-1 and top-5, and the mean fit time.
    ``holdout``: what is held out of the destination's pool at once, an ``"operator"`` (its
    four shapes; 4 rounds of fits for 4 operators) or a ``"workload"`` (one shape)."""
    from ...search.cost_model import GBDTConfig, GBDTModel
    from ...search.transfer import TransferModel, source_model

    say = progress or (lambda msg: None)
    d_hash = np.array([w["structural_hash"] for w in dest.workloads])[dest.workload]
    d_ops = dest.ops()
    scores: dict[tuple[str, str, int], dict[int, list[tuple[float, ...]]]] = {}
    fit_s: dict[tuple[str, str, int], list[float]] = {}

    if holdout not in ("operator", "workload"):
        raise ValueError(f"holdout: 'operator' or 'workload', not {holdout!r}")
    group = d_ops if holdout == "operator" else d_hash

    def record(cond, name, n, seed, pred, test, seconds):
        for w in dict.fromkeys(d_hash[test]):  # ranked within each held-out workload
            mine = d_hash[test] == w
            scores.setdefault((cond, name, n), {}).setdefault(seed, []).append(
                _rank(pred[mine], dest.labels[test][mine]))
        fit_s.setdefault((cond, name, n), []).append(seconds)

    sources: dict[tuple[str, str], GBDTModel] = {}
    for cond in conditions:
        for g in dict.fromkeys(group):
            test = group == g
            op = str(d_ops[test][0])
            held = () if cond == CONDITIONS[0] else (op,)
            src_set = source.without(ops=held) if held else source
            if (cond, op if held else "") not in sources:
                say(f"{cond}: fitting the source model on {len(src_set)} rows")
                sources[(cond, op if held else "")] = source_model(src_set)
            src = sources[(cond, op if held else "")]
            x_test = dest.rows[test]
            pool = np.flatnonzero(~test)
            keys = d_hash.astype(str)
            record(cond, "source only", 0, 0, src.predict_rows(x_test), test, 0.0)
            for seed in seeds:
                order = np.random.default_rng(seed).permutation(pool)
                for n in sorted(set(sizes) | set(scratch_sizes) | set(prior_sizes)):
                    take = order[:n]  # nested: the first 16 of the 32
                    x, lat, k = dest.rows[take], dest.latency_s[take], keys[take]
                    models: list[tuple[str, GBDTModel | TransferModel]] = []
                    if n in sizes:
                        models.append(("transfer", TransferModel(src, seed=seed)))
                    if n in scratch_sizes:
                        models.append(("scratch", GBDTModel(GBDTConfig(min_records=1),
                                                            seed=seed)))
                    if n in prior_sizes and seed in prior_seeds:
                        models.append(("prior", GBDTModel(
                            seed=seed, prior=(src_set.rows, src_set.labels))))
                    for name, model in models:
                        t = time.perf_counter()
                        model.add_rows(x, lat, k)
                        if name != "transfer":
                            model.fit()
                        seconds = time.perf_counter() - t
                        record(cond, name, n, seed, model.predict_rows(x_test), test,
                               seconds)
            say(f"{cond}: held-out {g} done")
    rows: list[dict[str, Any]] = []
    for (cond, name, n), by_seed in scores.items():
        per_seed = np.array([np.nanmean(np.array(v), axis=0) for v in by_seed.values()])
        med = np.median(per_seed, axis=0)
        rows.append({"condition": cond, "model": name, "dest_records": n,
                     "seeds": len(by_seed), "heldout_workloads": len(next(iter(
                         by_seed.values()))),
                     "pairwise_acc": float(med[0]), "top1": float(med[1]),
                     "top5": float(med[2]), "fit_s": float(np.mean(fit_s[(cond, name, n)]))})
    rank = {"scratch": 0, "source only": 1, "prior": 2, "transfer": 3}
    rows.sort(key=lambda r: (conditions.index(r["condition"]), rank[r["model"]],
                             r["dest_records"]))
    return rows


def bar(rows: list[dict]) -> dict[str, str]:
    """Per condition: transfer at 64 destination records against scratch at 256, pairwise."""
    out = {}
    for cond in dict.fromkeys(r["condition"] for r in rows):
        get = {(r["model"], r["dest_records"]): r["pairwise_acc"] for r in rows
               if r["condition"] == cond}
        t, s = get.get(("transfer", 64)), get.get(("scratch", 256))
        if t is not None and s is not None:
            out[f"{cond}: transfer@64 pairwise vs scratch@256 (bar: >=)"] = \
                f"{t:.3f} vs {s:.3f}: {'met' if t >= s else 'not met'}"
    return out


def target_set(name: str, data: Path, per_shape: int, ops, progress) -> PretrainedSet:
    """A target's records as a pretrained set: the shipped set when it was measured for
    that target, else ``probsched dataset --target NAME`` into ``data`` (resumed)."""
    from ...search import pretrained
    from ...target import cpu_target
    from ..dataset_cli import dataset

    tgt = cpu_target(name)
    shipped = pretrained.load(pretrained.shipped_path())
    if shipped.meta.get("target", {}).get("key") == tgt.key:
        return shipped
    db, out = data / f"{name}.db", data / name
    data.mkdir(parents=True, exist_ok=True)
    dataset(db, out, ops=ops, per_shape=per_shape, target=tgt, progress=progress,
            command=f"probsched bench --suite transfer (target {name})")
    return pretrained.load(out)


@suite("transfer")
def run(trials: int | None, progress, source: str = "host", dest: str = "x86-64-v2",
        data: str = "transfer-data") -> dict:
    from ...target import cpu_target

    per_shape = trials or 64
    src = target_set(source, Path(data), per_shape, DEST_OPS, progress)
    dst = target_set(dest, Path(data), per_shape, DEST_OPS, progress)
    rows = evaluate(src, dst, progress=progress)
    summary = {"source": f"{source}: {cpu_target(source).describe()}, {len(src)} rows",
               "destination": f"{dest}: {cpu_target(dest).describe()}, {len(dst)} rows of "
                              f"{len(dst.workloads)} workloads", **bar(rows)}
    return {"rows": rows, "summary": summary}
