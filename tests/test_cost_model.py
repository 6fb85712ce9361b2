"""Cost models (search/cost_model.py): the ranking metrics, the label, the GBDT's life cycle,
and the GBDT against the random model on schedules of a small matmul measured for real."""

import math
import time

import numpy as np
import pytest

from probsched.codegen import compile_program
from probsched.driver.bench.costmodel import random_schedules
from probsched.ir.reference import random_inputs
from probsched.search import CostModel, GBDTModel, RandomModel, extract
from probsched.search.cost_model import (
    ROW_WIDTH,
    GBDTConfig,
    normalized_throughput,
    pairwise_accuracy,
    program_row,
    program_rows,
    top_k_score,
)
from probsched.search.features import FEATURE_NAMES, N_FEATURES
from probsched.search.trace_features import n_trace_features
from probsched.workloads import gmm

# ---------------------------------------------------------------- metrics


def test_pairwise_accuracy():
    true = [0.1, 0.5, 0.9, 0.3]
    assert pairwise_accuracy([1, 5, 9, 3], true) == 1.0
    assert pairwise_accuracy([-1, -5, -9, -3], true) == 0.0
    assert pairwise_accuracy([0, 0, 0, 0], true) == 0.5
    # pairs with equal true values are not counted
    assert pairwise_accuracy([1, 2, 3], [0.0, 0.0, 1.0]) == 1.0
    assert math.isnan(pairwise_accuracy([1, 2], [0.5, 0.5]))
    with pytest.raises(ValueError):
        pairwise_accuracy([1, 2], [1, 2, 3])


def test_top_k_score_is_tlps():
    true = np.array([0.2, 1.0, 0.5, 0.8])
    pred = np.array([4.0, 1.0, 3.0, 2.0])  # predicted order: 0, 2, 3, 1
    assert top_k_score(pred, true, 1) == pytest.approx(0.2)
    assert top_k_score(pred, true, 2) == pytest.approx(0.5)
    assert top_k_score(pred, true, 3) == pytest.approx(0.8)
    assert top_k_score(pred, true, 4) == 1.0 == top_k_score(pred, true, 10)
    assert top_k_score(pred, np.zeros(4), 1) == 0.0
    with pytest.raises(ValueError):
        top_k_score(pred, true, 0)


def test_normalized_throughput_per_workload_and_failures():
    lat = np.array([2.0, 1.0, math.inf, 4.0, 8.0, math.nan])
    keys = np.array(["a", "a", "a", "b", "b", "b"])
    y = normalized_throughput(lat, keys)
    assert y.tolist() == [0.5, 1.0, 0.0, 1.0, 0.5, 0.0]


# ---------------------------------------------------------------- rows and life cycle


def _gmm_candidates(n: int, seed: int = 0):
    schs = random_schedules(gmm(b=1, n=16, m=16, k=16), n, seed=seed)
    return [s.program for s in schs], [s.trace for s in schs]


def test_program_row_combines_stores():
    programs, _ = _gmm_candidates(1)
    (stores,) = extract(programs)
    row = program_row(stores)
    assert row.shape == (ROW_WIDTH,) and ROW_WIDTH == 3 * N_FEATURES + 1
    flops = FEATURE_NAMES.index("flops")
    heavy = stores[np.argmax(stores[:, flops])]
    assert np.array_equal(row[2 * N_FEATURES:3 * N_FEATURES], heavy)
    assert np.array_equal(row[N_FEATURES:2 * N_FEATURES], stores.max(axis=0))
    iters = FEATURE_NAMES.index("iterations")
    total = (2.0 ** stores[:, iters] - 1).sum()
    assert 2.0 ** row[iters] - 1 == pytest.approx(total, rel=1e-5)
    x = program_rows(programs, None)
    assert x.shape == (1, ROW_WIDTH + n_trace_features()) and not x[0, ROW_WIDTH:].any()


def test_gbdt_is_random_until_enough_records_then_fits_when_data_grows():
    programs, traces = _gmm_candidates(40)
    lat = np.linspace(1e-3, 5e-3, 40)
    model = GBDTModel(GBDTConfig(min_records=30, retrain_growth=0.5, max_iter=10), seed=3)
    assert isinstance(model, CostModel) and isinstance(RandomModel(), CostModel)
    first = model.predict(programs, traces)
    again = GBDTModel(GBDTConfig(min_records=30), seed=3).predict(programs, traces)
    assert np.array_equal(first, again) and ((0 <= first) & (first < 1)).all()
    model.update(programs[:20], traces[:20], lat[:20], "gmm")
    assert not model.fitted
    model.update(extract(programs[20:30]), traces[20:30], lat[20:30], "gmm")  # features too
    assert model.fitted and model.n_records == 30
    fitted = model._model
    model.update(programs[30:40], traces[30:40], [math.inf] * 10, "gmm")  # failures: 0
    assert model._model is fitted  # 40 < 30 * 1.5: no refit yet
    pred = model.predict(programs, traces)
    assert pred.shape == (40,) and np.isfinite(pred).all()
    assert np.array_equal(pred, model.predict(programs, traces))  # deterministic once fitted
    assert model.predict([], []).shape == (0,)
    with pytest.raises(ValueError):
        model.update(programs[:2], traces[:2], [1.0], "gmm")


def test_random_model_is_seeded():
    a, b = RandomModel(seed=1), RandomModel(seed=1)
    assert np.array_equal(a.predict([None] * 5, None), b.predict([None] * 5, None))


# ---------------------------------------------------------------- the GBDT beats chance


def _measure(programs, workload, budget_s: float = 0.004) -> np.ndarray:
    """Best-of-repeats seconds per call, in this process (single-threaded schedules)."""
    inputs = random_inputs(workload)
    out = []
    for program in programs:
        kernel = compile_program(program)
        kernel(*inputs)
        runs, start = [], time.perf_counter()
        while len(runs) < 3 or (time.perf_counter() - start < budget_s and len(runs) < 50):
            t = time.perf_counter()
            kernel(*inputs)
            runs.append(time.perf_counter() - t)
        out.append(min(runs))
    return np.array(out)


def _cross_validate(n: int, folds: int = 5) -> dict[str, float]:
    """Measure ``n`` random schedules of GMM 64^3; per fold, train on 80 %, rank the other
    20 %. Random-model scores are averaged over 20 seeds per fold (its expected score)."""
    wl = gmm(b=1, n=64, m=64, k=64)
    schs = random_schedules(wl, n, seed=0, parallel=False)  # threads are noisy on a busy box
    programs, traces = [s.program for s in schs], [s.trace for s in schs]
    feats = extract(programs)
    lat = _measure(programs, wl)
    true = normalized_throughput(lat, np.array(["gmm"] * len(lat)))
    perm = np.random.default_rng(0).permutation(len(programs))
    scores = {"gbdt_pairwise": [], "random_pairwise": [], "gbdt_top5": [], "random_top5": []}
    for f in range(folds):
        test = perm[f::folds]
        train = np.setdiff1d(perm, test)
        model = GBDTModel(GBDTConfig(min_records=16))
        model.update([feats[k] for k in train], [traces[k] for k in train], lat[train], "gmm")
        pred = model.predict([feats[k] for k in test], [traces[k] for k in test])
        scores["gbdt_pairwise"].append(pairwise_accuracy(pred, true[test]))
        scores["gbdt_top5"].append(top_k_score(pred, true[test], 5))
        for seed in range(20):
            rnd = RandomModel(seed=seed).predict([feats[k] for k in test], None)
            scores["random_pairwise"].append(pairwise_accuracy(rnd, true[test]))
            scores["random_top5"].append(top_k_score(rnd, true[test], 5))
    return {k: float(np.mean(v)) for k, v in scores.items()}


def _check(scores: dict[str, float]) -> None:
    assert scores["gbdt_pairwise"] > scores["random_pairwise"] + 0.1, scores
    assert scores["gbdt_pairwise"] > 0.65, scores
    assert scores["gbdt_top5"] >= scores["random_top5"], scores


def test_gbdt_ranks_measured_matmul_schedules_better_than_random():
    _check(_cross_validate(120))


@pytest.mark.slow
def test_gbdt_ranks_measured_matmul_schedules_better_than_random_large():
    _check(_cross_validate(400))


def test_suite_shapes_featurize():
    """Programs of GMM and C2D at DESIGN.md's shapes featurize (no measurement)."""
    from probsched.driver.bench.costmodel import bench_workloads

    for wl in bench_workloads().values():
        schs = random_schedules(wl, 3)
        x = program_rows([s.program for s in schs], [s.trace for s in schs])
        assert x.shape[0] == len(schs) == 3 and np.isfinite(x).all()
