"""The neural cost models' rows of ``probsched bench --suite costmodel`` (PyTorch, the ``dl``
extra; without it, or without a set that carries traces, the suite leaves them out).

Held-out operators, on the shipped set that carries its traces (``cpu_znver3_traces``:
measured on this kind of Zen 3 by ``probsched dataset --per-shape 64``, its candidates'
traces beside the rows): each operator held out in turn, GBDT, GNN and TLP trained on the
other operators' records (the GBDT on the set's rows, the GNN on the programs the traces
replay to, TLP on the traces) rank the operator's records per workload; the mean over its
workloads of pairwise accuracy, top-1 and top-5, with each model's fit and predict time.

Fit and score times (:func:`speed`): a fit on 10,000 records (the set's real records,
repeated to that many: a fit's cost is the same for repeated records as for new ones, and
the labels stay real) and scoring 2,000 candidates (their graphs or sequences made already,
as the tuner's feature cache has them; making them is timed apart, per candidate), each under
the machine's measurement lock (:class:`~probsched.measure.contention.MachineLock`) so that
no timed kernel runs beside them.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ...errors import DatasetError, ProbschedError
from ...measure.contention import MachineLock
from ...search import pretrained
from ...search.cost_model import GBDTModel, RandomModel, normalized_throughput, ranking_by_group
from ...search.model_choice import neural_cost_model
from ...search.neural import NEURAL_MODELS, torch_missing
from ...workloads import SUITE

__all__ = ["TracedSet", "held_out_neural", "load_traced", "speed"]

FIT_RECORDS = 10_000
SCORED = 2_000


class TracedSet:
    """A pretrained set with its traces replayed: ``programs`` and ``traces`` per row."""

    def __init__(self, data: pretrained.PretrainedSet, traces: list, programs: list):
        self.data, self.traces, self.programs = data, traces, programs

    @property
    def keys(self) -> np.ndarray:
        return np.array([self.data.workloads[w]["structural_hash"] for w in self.data.workload])


def load_traced(path=None, progress=lambda msg: None) -> TracedSet | None:
    """The set at ``path`` (default the shipped traced one) with its programs rebuilt; None
    when it is not there or carries no traces."""
    path = path or pretrained.shipped_path(pretrained.TRACED)
    try:
        data = pretrained.load(path)
        traces = pretrained.load_traces(path, data)
    except DatasetError:
        return None
    if traces is None:
        return None
    workloads = []
    for w in data.workloads:
        workloads.append(SUITE[w["op"]][0](**w["params"]))
    programs = []
    t = time.perf_counter()
    for trace, w in zip(traces, data.workload, strict=True):
        try:
            programs.append(trace.replay(workloads[w]).program)
        except ProbschedError as exc:
            raise DatasetError(f"{path}: a trace no longer replays on "
                               f"{workloads[w].name} ({exc})") from None
    progress(f"{len(programs)} traces replayed in {time.perf_counter() - t:.1f} s")
    return TracedSet(data, traces, programs)


def _models(seed: int = 0) -> dict[str, Any]:
    return {name: neural_cost_model(name, seed) for name in NEURAL_MODELS}


def held_out_neural(ts: TracedSet, progress=lambda msg: None) -> list[dict]:
    """Per operator of ``ts``: GBDT, GNN, TLP and random scores trained on the others, the
    mean over its workloads of pairwise accuracy and top-k, fit and predict seconds."""
    data = ts.data
    ops = data.ops()
    keys = ts.keys
    out = []
    for op in dict.fromkeys(ops):
        train, test = np.flatnonzero(ops != op), np.flatnonzero(ops == op)
        progress(f"held out {op}: {len(train)} training records, {len(test)} ranked")
        preds: dict[str, np.ndarray] = {}
        times: dict[str, tuple[float, float]] = {}
        gbdt = GBDTModel(prior=(data.rows[train], data.labels[train]))
        t = time.perf_counter()
        gbdt.fit()
        fit_s = time.perf_counter() - t
        t = time.perf_counter()
        preds["GBDT"] = gbdt.predict_rows(data.rows[test])
        times["GBDT"] = (fit_s, time.perf_counter() - t)
        for name, model in _models().items():
            label = name.upper()
            for w in np.unique(keys[train]):
                mine = train[keys[train] == w]
                model.add([ts.programs[k] for k in mine], [ts.traces[k] for k in mine],
                          data.latency_s[mine], str(w))
            t = time.perf_counter()
            model.fit()
            fit_s = time.perf_counter() - t
            items = model.encode([ts.programs[k] for k in test], [ts.traces[k] for k in test])
            t = time.perf_counter()
            preds[label] = model.predict_items(items)
            times[label] = (fit_s, time.perf_counter() - t)
        preds["random"] = RandomModel(seed=0).predict(list(data.rows[test]), None)
        times["random"] = (0.0, 0.0)
        for name, p in preds.items():
            out.append({"workload": f"held-out {op} (traced set)", "model": name,
                        "records": len(test), "train_rows": len(train),
                        **ranking_by_group(p, data.labels[test], data.workload[test]),
                        "update_s": times[name][0], "predict_s": times[name][1]})
    return out


def speed(ts: TracedSet, progress=lambda msg: None) -> list[dict]:
    """Per neural model: the seconds of a fit on ``FIT_RECORDS`` records (the set's real
    records repeated), of scoring ``SCORED`` encoded candidates, and of encoding one."""
    n = len(ts.programs)
    rep = np.arange(FIT_RECORDS) % n
    keys = ts.keys
    out = []
    for name, model in _models().items():
        t = time.perf_counter()
        model.encode(ts.programs[:200], ts.traces[:200])
        encode_ms = (time.perf_counter() - t) / 200 * 1e3
        items = model.encode(ts.programs, ts.traces)
        for w in np.unique(keys):
            mine = rep[keys[rep] == w]
            model._items.extend(items[k] for k in mine)
            model._latencies.extend(float(x) for x in ts.data.latency_s[mine])
            model._keys.extend([str(w)] * len(mine))
        progress(f"{name}: fitting on {model.n_records} records")
        with MachineLock():
            t = time.perf_counter()
            model.fit()
            fit_s = time.perf_counter() - t
        scored = [items[k] for k in np.arange(SCORED) % n]
        model.predict_items(scored[:64])  # warm
        runs = []
        with MachineLock():
            for _ in range(5):
                t = time.perf_counter()
                model.predict_items(scored)
                runs.append(time.perf_counter() - t)
        labels = normalized_throughput(ts.data.latency_s, keys)
        out.append({"workload": f"{FIT_RECORDS} records / {SCORED} candidates",
                    "model": name.upper(), "records": model.n_records, "fit_s": fit_s,
                    "score_2000_ms": float(np.median(runs) * 1e3),
                    "score_2000_min_ms": float(np.min(runs) * 1e3),
                    "encode_ms_per_candidate": encode_ms,
                    "label_mean": float(labels.mean())})
    return out


def rows_and_summary(progress) -> tuple[list[dict], dict[str, str]]:
    """The suite's neural rows and summary lines (none, with the reason, when they cannot
    run)."""
    why = torch_missing()
    if why is not None:
        return [], {"GNN, TLP": f"not run: {why} (the dl extra)"}
    ts = load_traced(progress=progress)
    if ts is None:
        return [], {"GNN, TLP": "not run: no shipped set with traces"}
    rows = held_out_neural(ts, progress)
    summary = {}
    for name in ("GBDT", "GNN", "TLP", "random"):
        mine = [r for r in rows if r["model"] == name]
        summary[f"held-out operators (traced set), {name}: mean pairwise, top-1, top-5"] = \
            ", ".join(f"{np.mean([r[k] for r in mine]):.3f}"
                      for k in ("pairwise_acc", "top1", "top5"))
    timing = speed(ts, progress)
    for r in timing:
        summary[f"{r['model']}: fit on {FIT_RECORDS} records s, score {SCORED} ms"] = \
            f"{r['fit_s']:.1f}, {r['score_2000_ms']:.1f}"
    return rows + timing, summary
