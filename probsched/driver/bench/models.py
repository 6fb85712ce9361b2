"""Whole models (``probsched bench --suite models``; issue 14): ResNet-18, MobileNet-V2 and
a BERT-base encoder layer (probsched/network/models.py, random weights) tuned for
``--trials`` trials each (default 2,000) with the gradient task scheduler in a temporary
database, then compiled from it and timed against onnxruntime in the same process
(:mod:`probsched.driver.run_model`: 2 intra-op threads, median of up to 50 calls, outputs
checked). Then the curves: ResNet-18 tuned again with round-robin and UCB (fresh databases;
the gradient run above is the third), each strategy's end-to-end estimate (sum of weight x
best latency) after a quarter, half, three quarters and all of the trials.

``--suite models-resnet18`` is the same for ResNet-18 alone (a smaller run). The networks
are in the default layout (:mod:`probsched.network.layout`), which each row names.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

from ...network import load_onnx
from ...network.models import bert_layer, mobilenet_v2, resnet18
from ...network.scheduler import STRATEGIES
from ..run_model import run_model
from . import suite

DEFAULT_TRIALS = 2000
MODELS = {"resnet18": resnet18, "mobilenet_v2": mobilenet_v2, "bert_layer": bert_layer}
BARS = {"resnet18": 1.0, "mobilenet_v2": 1.2, "bert_layer": 1.0}
"""Issue 14's bars: speedup over onnxruntime at 2,000 trials."""
CURVE_MODEL = "resnet18"


def _estimate_at(curve, n: int) -> float | None:
    """The end-to-end estimate (ms) once ``n`` trials were done (None: not all tasks had a
    correct candidate yet)."""
    got = [e for done, e in curve if done <= n]
    return got[-1] * 1e3 if got and math.isfinite(got[-1]) else None


def _curve_row(model: str, strategy: str, result, trials: int) -> dict:
    row: dict = {"model": model, "strategy": strategy, "trials": result.trials,
                 "tune_s": result.wall_s}
    for q in (0.25, 0.5, 0.75, 1.0):
        row[f"estimate ms @{int(trials * q)}"] = _estimate_at(result.curve, int(trials * q))
    return row


def models_bench(trials: int, names, progress) -> dict:
    """Tune and time each model of ``names``; the three strategies' curves on ResNet-18."""
    import onnx

    rows, curves = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            path = Path(tmp) / f"{name}.onnx"
            onnx.save(MODELS[name](), str(path))
            net = load_onnx(str(path))
            db = str(Path(tmp) / f"{name}-gradient.db")
            progress(f"{name}: {len(net.tasks)} tasks, tuning {trials} trials (gradient)")
            tuned = net.tune(trials=trials, db=db, strategy="gradient", progress=False)
            timed = run_model(path, db, net=net)
            rows.append({
                "model": name, "layout": net.layout, "tasks": len(net.tasks),
                "trials": tuned.trials,
                "tune_s": tuned.wall_s, "estimate_ms": _estimate_at(tuned.curve, trials),
                "probsched_ms": timed["latency_ms"], "onnxruntime_ms": timed["onnxruntime_ms"],
                "speedup": timed["speedup"], "correct": timed["correct"],
                "untuned tasks": len(timed["fallbacks"]), "bar": BARS[name],
                "met": timed["correct"] and timed["speedup"] >= BARS[name]})
            progress(f"{name}: {timed['latency_ms']:.3f} ms vs onnxruntime "
                     f"{timed['onnxruntime_ms']:.3f} ms")
            if name == CURVE_MODEL:
                curves.append(_curve_row(name, "gradient", tuned, trials))
                for strategy in STRATEGIES:
                    if strategy == "gradient":
                        continue
                    progress(f"{name}: tuning {trials} trials ({strategy})")
                    res = load_onnx(str(path)).tune(
                        trials=trials, db=str(Path(tmp) / f"{name}-{strategy}.db"),
                        strategy=strategy, progress=False)
                    curves.append(_curve_row(name, strategy, res, trials))
    summary = {f"{c['strategy']} estimate ms @{trials}": c[f"estimate ms @{trials}"]
               for c in curves}
    return {"rows": rows + curves, "summary": summary}


@suite("models")
def models(trials: int | None, progress) -> dict:
    return models_bench(trials or DEFAULT_TRIALS, list(MODELS), progress)


@suite("models-resnet18")
def models_resnet18(trials: int | None, progress) -> dict:
    return models_bench(trials or DEFAULT_TRIALS, [CURVE_MODEL], progress)
