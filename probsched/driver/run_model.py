"""``probsched run-model``: a compiled network timed against onnxruntime in the same process.

The network is compiled from the tuning database (each task's best correct record, its plain
lowering where it has none), both run on the same random inputs, and their outputs compared
(the largest difference relative to the largest magnitude of onnxruntime's output, within
``RTOL``). Timing: ``WARMUP`` calls, then calls until ``REPEATS`` of them or ``MAX_TIME_S``
(at least ``MIN_REPEATS``), the median reported; onnxruntime's CPU provider with
``intra_op_num_threads=2`` (one inter-op thread, sequential execution), our kernels on the
host's cores (libgomp's threads).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import ModelError, ResourceError
from ..network import Network, load_onnx
from ..network.network import DEFAULT_LAYOUT
from ..target import host

ORT_THREADS = 2
WARMUP = 3
REPEATS = 50
MIN_REPEATS = 5
MAX_TIME_S = 10.0
RTOL = 1e-3


def median_seconds(fn: Callable[[], object], repeats: int = REPEATS,
                   max_time_s: float = MAX_TIME_S) -> float:
    """The median of ``fn``'s wall times after ``WARMUP`` calls (see the module docstring)."""
    for _ in range(WARMUP):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeats and (len(times) < MIN_REPEATS
                                    or time.perf_counter() - start < max_time_s):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def ort_session(path: str | os.PathLike[str], threads: int = ORT_THREADS) -> Any:
    """An onnxruntime CPU session of the model with ``threads`` intra-op threads."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ResourceError("comparing with onnxruntime needs the onnxruntime package: "
                            "pip install 'probsched[onnx]'") from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), sess_options=opts,
                                providers=["CPUExecutionProvider"])


def max_relative_error(got: Sequence[np.ndarray], want: Sequence[np.ndarray]) -> float:
    """The largest difference of any output, relative to that output's largest magnitude."""
    worst = 0.0
    for g, w in zip(got, want, strict=True):
        if g.shape != w.shape:
            raise ModelError(f"an output has shape {g.shape}, onnxruntime's {w.shape}")
        scale = max(float(np.abs(w).max(initial=0.0)), 1e-30)
        worst = max(worst, float(np.abs(g.astype(np.float64) - w).max(initial=0.0)) / scale)
    return worst


def predict(net: Network, db: str | os.PathLike[str],
            graph_model: str | os.PathLike[str] | None = None) -> dict:
    """``run-model --predict``: the latency of the network compiled from ``db`` predicted
    before it is compiled (:mod:`probsched.network.latency`: a kernel model fitted on the
    database's records of the model's tasks, the sum over tasks, and the graph model of
    the file ``graph_model`` where given, e.g. the one ``probsched bench --suite latency
    --json`` fits)."""
    from ..network.latency import KernelLatencyModel, LatencyPredictor, tuned_assignment
    from ..network.latency_graph import GraphLatencyModel
    from ..search.database import Database

    graph = GraphLatencyModel.load(graph_model) if graph_model is not None else None
    t = time.perf_counter()
    with Database(db, readonly=True) as opened:
        kernels = KernelLatencyModel.from_database(net, opened)
        assignment = tuned_assignment(net, opened)
    fit_s = time.perf_counter() - t
    pred = LatencyPredictor(kernels, graph).predict(net, assignment)
    return {"predicted_sum_ms": pred.sum_s * 1e3,
            "predicted_graph_ms": None if pred.graph_s is None else pred.graph_s * 1e3,
            "kernel_records": kernels.n_records, "predict_fit_s": fit_s}


def run_model(path: str | os.PathLike[str], db: str | os.PathLike[str] | None, *,
              seed: int = 0, repeats: int = REPEATS, net: Network | None = None,
              layout: str = DEFAULT_LAYOUT, predicted: bool = False,
              graph_model: str | os.PathLike[str] | None = None,
              profile: bool = False) -> dict:
    """Compile the model from ``db`` (None: untuned, the plain lowering) in ``layout`` (or
    ``net``, already imported), time it and onnxruntime on the same inputs, compare their
    outputs; plain JSON values. ``predicted`` (implied by ``graph_model``): first predict
    its latency (:func:`predict`; needs ``db``), and report the prediction's error against
    the time measured. ``profile``: then time each kernel call in graph order and alone
    (:mod:`probsched.network.profile`), one row per task under ``"profile"``."""
    if not os.path.exists(path):
        raise ModelError(f"{path}: no such model file")
    if db is not None and not os.path.exists(db):
        raise ModelError(f"{db}: no such tuning database (run probsched tune-model first)")
    predicted = predicted or graph_model is not None
    if predicted and db is None:
        raise ModelError("predicting the latency needs a tuning database (--db) to fit the "
                         "kernel latency model on")
    net = net or load_onnx(path, layout=layout)
    prediction = predict(net, db, graph_model) if predicted and db is not None else {}
    t = time.perf_counter()
    compiled = net.compile(db=db) if db is not None else net.compile(schedule="naive")
    compile_s = time.perf_counter() - t
    rng = np.random.default_rng(seed)
    feeds = {name: rng.standard_normal(shape).astype(np.float32)
             for name, shape in net.graph.inputs.items()}
    sess = ort_session(path)
    want = sess.run(None, feeds)
    got = compiled(*feeds.values())
    err = max_relative_error(got, want)
    inputs = list(feeds.values())
    ours = median_seconds(lambda: compiled(*inputs), repeats)
    theirs = median_seconds(lambda: sess.run(None, feeds), repeats)
    tuned = len(net.tasks) - len(compiled.fallbacks)
    rows = _profile(compiled, inputs, db) if profile else None
    return {
        "model": str(path), "layout": net.layout, "tasks": len(net.tasks),
        "tuned_tasks": tuned,
        "fallbacks": list(compiled.fallbacks), "compile_s": compile_s,
        "latency_ms": ours * 1e3, "onnxruntime_ms": theirs * 1e3,
        "speedup": theirs / ours, "max_rel_err": err, "correct": err <= RTOL,
        "threads": host().cores, "onnxruntime_threads": ORT_THREADS,
        **prediction, **_prediction_errors(prediction, ours * 1e3),
        **({"profile": [r.as_json() for r in rows]} if rows is not None else {}),
    }


def _profile(compiled, inputs: list[np.ndarray], db: str | os.PathLike[str] | None) -> list:
    from ..network.profile import profile_network
    from ..search.database import Database

    if db is None:
        return profile_network(compiled, inputs)
    with Database(db, readonly=True) as opened:
        return profile_network(compiled, inputs, db=opened)


def _prediction_errors(prediction: dict, measured_ms: float) -> dict:
    out = {}
    for key in ("predicted_sum_ms", "predicted_graph_ms"):
        if prediction.get(key) is not None:
            out[key.replace("_ms", "_err_pct")] = 100 * (prediction[key] / measured_ms - 1)
    return out


def describe(result: dict) -> str:
    """``run_model``'s result as a few lines."""
    return "\n".join([
        f"{result['model']} ({result['layout']}): {result['tuned_tasks']} of "
        f"{result['tasks']} tasks tuned "
        f"(the rest the plain lowering), compiled in {result['compile_s']:.1f} s",
        f"probsched   {result['latency_ms']:9.3f} ms  ({result['threads']} threads)",
        f"onnxruntime {result['onnxruntime_ms']:9.3f} ms  "
        f"({result['onnxruntime_threads']} intra-op threads)",
        f"speedup {result['speedup']:.2f}x onnxruntime; outputs agree within "
        f"{result['max_rel_err']:.2e} (relative; bound {RTOL:g}): "
        f"{'ok' if result['correct'] else 'WRONG'}",
        *_describe_prediction(result),
        *_describe_profile(result),
    ])


def _describe_profile(result: dict) -> list[str]:
    if "profile" not in result:
        return []
    from ..network.profile import TaskProfile, describe_profile

    return ["per task (ms; in graph: the calls' medians in graph order, alone: each call "
            "repeated by itself):",
            describe_profile([TaskProfile(**r) for r in result["profile"]])]


def _describe_prediction(result: dict) -> list[str]:
    if "predicted_sum_ms" not in result:
        return []
    lines = [f"predicted before compiling (kernel model on {result['kernel_records']} "
             f"records): sum {result['predicted_sum_ms']:.3f} ms "
             f"({result['predicted_sum_err_pct']:+.1f}% of the measured)"]
    if result.get("predicted_graph_ms") is not None:
        lines.append(f"  graph model {result['predicted_graph_ms']:.3f} ms "
                     f"({result['predicted_graph_err_pct']:+.1f}%)")
    return lines
