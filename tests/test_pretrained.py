"""Pretrained sets: their files, the feature-version check, and the GBDT fitted on one (the
prior's weight, predictions from the first round, held-out workloads ranked)."""

import json
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import probsched as ps
from probsched.codegen import compile_program
from probsched.driver.bench.costmodel import random_schedules
from probsched.errors import DatasetError, ProbschedError
from probsched.ir.reference import random_inputs
from probsched.search import pretrained as P
from probsched.search.cost_model import (
    GBDTConfig,
    GBDTModel,
    RandomModel,
    normalized_throughput,
    pairwise_accuracy,
    program_rows,
)
from probsched.search.features import extract
from probsched.search.model_choice import make_cost_model

WIDTH = len(P.feature_names())


def _synthetic(n_workloads: int = 4, per: int = 40, seed: int = 0) -> P.PretrainedSet:
    """Rows whose throughput is a fixed function of three columns, in every workload."""
    rng = np.random.default_rng(seed)
    rows = np.zeros((n_workloads * per, WIDTH), dtype=np.float32)
    rows[:, :30] = rng.random((len(rows), 30))  # the rest constant, as many columns are
    group = np.repeat(np.arange(n_workloads, dtype=np.int32), per)
    latency = 1.0 / (0.1 + rows[:, 3] + 2 * rows[:, 10] * rows[:, 20])
    meta = {"workloads": [{"name": f"w{k}", "op": f"OP{k % 2}", "structural_hash": f"h{k}"}
                          for k in range(n_workloads)]}
    return P.PretrainedSet(rows, normalized_throughput(latency, group).astype(np.float32),
                           latency, group, np.zeros(len(rows), dtype=bool), meta)


def test_feature_names_are_the_models_row_layout():
    names = P.feature_names()
    assert len(names) == len(set(names)) == WIDTH
    wl = ps.workloads.gmm(b=1, n=16, m=16, k=16)
    sch = ps.Schedule(wl, seed=0)
    assert program_rows([sch.program], [sch.trace]).shape == (1, WIDTH)
    assert P.feature_version() == P.feature_version() and len(P.feature_version()) == 16
    assert P.feature_version(trace_len=8) != P.feature_version()


def test_save_and_load_round_trip(tmp_path):
    data = _synthetic()
    npz, sidecar = P.save(tmp_path / "set", data)
    assert (npz.name, sidecar.name) == ("set.npz", "set.json")
    meta = json.loads(sidecar.read_text())
    assert meta["feature_version"] == P.feature_version()
    assert meta["feature_names"] == list(P.feature_names())
    back = P.load(tmp_path / "set.npz")
    for name in ("rows", "labels", "latency_s", "workload", "searched"):
        assert np.array_equal(getattr(back, name), getattr(data, name)), name
    assert back.workloads == data.workloads
    assert P.resolve(str(tmp_path / "set")).rows.shape == data.rows.shape
    assert P.resolve(None) is None and P.resolve(False) is None


def test_a_set_of_another_feature_layout_is_refused(tmp_path):
    _, sidecar = P.save(tmp_path / "set", _synthetic())
    meta = json.loads(sidecar.read_text())
    meta["feature_version"] = "0123456789abcdef"
    sidecar.write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match="feature version '0123456789abcdef'.*probsched "
                       "dataset"):
        P.load(tmp_path / "set")


def _older(tmp_path, drop) -> tuple:
    """A saved set as an older probsched would have written it: the columns ``drop`` picks
    absent from its rows and names (and its version the hash of what is left)."""
    import hashlib

    data = _synthetic()
    npz, sidecar = P.save(tmp_path / "set", data)
    names = list(P.feature_names())
    keep = [k for k, n in enumerate(names) if not drop(n)]
    meta = json.loads(sidecar.read_text())
    meta["feature_names"] = [names[k] for k in keep]
    meta["feature_version"] = hashlib.sha256(
        "\n".join(meta["feature_names"]).encode()).hexdigest()[:16]
    sidecar.write_text(json.dumps(meta))
    arrays = dict(np.load(npz))
    arrays["rows"] = arrays["rows"][:, keep]
    np.savez(npz, **arrays)
    return data, keep


def test_a_set_made_before_an_instruction_kind_loads_with_its_columns_zero(tmp_path):
    def kind(n: str) -> bool:  # transform_layout's count and one-hots
        return n == "count_transform_layout" or n.endswith("_transform_layout")

    data, keep = _older(tmp_path, kind)
    assert len(keep) < len(P.feature_names())
    back = P.load(tmp_path / "set")
    assert back.rows.shape == data.rows.shape
    names = P.feature_names()
    gone = [k for k, n in enumerate(names) if kind(n)]
    assert not back.rows[:, gone].any()
    assert np.array_equal(back.rows[:, keep], data.rows[:, keep])


def test_a_set_lacking_another_column_is_refused(tmp_path):
    _older(tmp_path, lambda n: n == "sum_" + P.feature_names()[0].removeprefix("sum_"))
    with pytest.raises(DatasetError, match="feature version"):
        P.load(tmp_path / "set")


def test_missing_and_damaged_sets_are_refused(tmp_path):
    with pytest.raises(DatasetError, match="no such file"):
        P.load(tmp_path / "nothing")
    npz, sidecar = P.save(tmp_path / "set", _synthetic())
    npz.write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="not a pretrained set's arrays"):
        P.load(npz)
    sidecar.write_text("{")
    with pytest.raises(DatasetError, match="sidecar"):
        P.load(npz)
    sidecar.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(DatasetError, match="format 'something else'"):
        P.load(npz)


def test_without_drops_held_out_workloads():
    data = _synthetic()
    rest = data.without(ops=("OP0",))
    assert set(rest.ops()) == {"OP1"} and len(rest) == len(data) // 2
    assert set(data.without(hashes=("h1",)).workload) == {0, 2, 3}


@given(st.integers(0, 2000), st.integers(1, 500))
def test_the_prior_weighs_less_as_own_records_come(n_own, half):
    prior = _synthetic(2, 10)
    model = GBDTModel(GBDTConfig(prior_half=half), prior=(prior.rows, prior.labels))
    if n_own:
        model._rows = list(np.zeros((n_own, WIDTH), dtype=np.float32))
        model._latencies = [1.0] * n_own
        model._keys = ["own"] * n_own
    x, y, w = model._training_data()
    assert len(x) == len(y) == len(w) == len(prior) + n_own
    assert w.sum() == pytest.approx(len(w))
    assert w[:len(prior)].sum() / w.sum() == pytest.approx(half / (half + n_own))
    if n_own:
        assert np.all(w[len(prior):] == w[-1])  # own records weigh alike


def test_a_prior_gives_predictions_from_the_first_round():
    prior = _synthetic()
    a = GBDTModel(seed=1, prior=(prior.rows, prior.labels))
    b = GBDTModel(seed=2, prior=(prior.rows, prior.labels))
    x = _synthetic(seed=5).rows[:30]
    pa, pb = a.predict_rows(x), b.predict_rows(x)
    assert a.fitted and np.allclose(pa, pb)  # a fitted model, not seeded random scores
    assert not GBDTModel(seed=1).fitted


def test_a_prior_of_another_width_is_refused():
    with pytest.raises(DatasetError, match=r"rows of \d+ features.*shape \(5, 10\)"):
        GBDTModel(prior=(np.zeros((5, 10)), np.zeros(5)))  # wrong width given
    with pytest.raises(ProbschedError, match="pretrained set is for the gbdt"):
        make_cost_model("random", 0, 32, pretrained=_synthetic())


def test_synthetic_held_out_workload_is_ranked_from_the_prior_alone():
    data = _synthetic(5, 60)
    train = data.without(hashes=("h4",))
    test = data.select(data.workload == 4)
    model = GBDTModel(prior=(train.rows, train.labels))
    assert pairwise_accuracy(model.predict_rows(test.rows), test.labels) > 0.8


# ---------------------------------------------------------------- measured: held-out shapes


def _seconds(programs, workload) -> np.ndarray:
    """Best of a few calls per program, in this process (single-threaded schedules)."""
    inputs = random_inputs(workload)
    out = []
    for program in programs:
        kernel = compile_program(program)
        kernel(*inputs)
        runs = []
        for _ in range(5):
            t = time.perf_counter()
            kernel(*inputs)
            runs.append(time.perf_counter() - t)
        out.append(min(runs))
    return np.array(out)


def test_pretrained_rows_of_other_workloads_rank_a_held_out_one_better_than_random():
    shapes = [(48, 64, 32), (64, 32, 64), (32, 64, 96), (64, 64, 64)]  # the last is held out
    rows, labels, group = [], [], []
    for k, (n, m, kk) in enumerate(shapes):
        wl = ps.workloads.gmm(b=1, n=n, m=m, k=kk)
        schs = random_schedules(wl, 30, seed=100 * k, parallel=False)
        lat = _seconds([s.program for s in schs], wl)
        rows.append(program_rows(extract([s.program for s in schs]), [s.trace for s in schs]))
        labels.append(normalized_throughput(lat, np.zeros(len(lat))))
        group += [k] * len(lat)
    g = np.array(group)
    x, y = np.vstack(rows), np.concatenate(labels)
    model = GBDTModel(GBDTConfig(min_samples_leaf=3), prior=(x[g != 3], y[g != 3]))
    pred = model.predict_rows(x[g == 3])
    ours = pairwise_accuracy(pred, y[g == 3])
    chance = np.mean([pairwise_accuracy(RandomModel(seed=s).predict(list(range(30)), None),
                                        y[g == 3]) for s in range(20)])
    assert ours > chance + 0.1 and ours > 0.62, (ours, chance)


def test_costmodel_bench_holds_out_each_operator_of_a_set():
    from probsched.driver.bench.costmodel import held_out_operators

    rows = held_out_operators(_synthetic(4, 50))
    assert [(r["workload"], r["model"]) for r in rows] == [
        ("held-out OP0", "GBDT"), ("held-out OP0", "random"),
        ("held-out OP1", "GBDT"), ("held-out OP1", "random")]
    for gbdt, rnd in zip(rows[::2], rows[1::2], strict=True):
        assert gbdt["records"] == gbdt["train_rows"] == 100
        assert gbdt["pairwise_acc"] > max(0.75, rnd["pairwise_acc"] + 0.1), (gbdt, rnd)
        assert gbdt["update_s"] > 0 and 0 < gbdt["top5"] <= 1


def test_pretrained_start_bench_summary():
    from probsched.driver.bench.pretrained_start import summarize

    rows = [{"ratio": 1.0}, {"ratio": 0.9}, {"ratio": 0.97}, {"ratio": None}]
    assert summarize(rows) == {
        "median ratio (pretrained at 32 % of the trials / from scratch)": "0.970",
        "bar >= 0.95": "True"}


# ---------------------------------------------------------------- the shipped set


def test_the_shipped_set_loads_and_names_its_cpu():
    npz = P.shipped_path()
    assert npz.stat().st_size + npz.with_suffix(".json").stat().st_size < 5 * 2**20
    data = P.load(npz)  # the feature version is this probsched's
    target = data.meta["target"]
    assert (target["vendor"], target["family"], target["model"]) == ("AuthenticAMD", "25", "1")
    assert "avx2" in target["vector_isa"] and "avx512f" not in target["vector_isa"]
    assert target["llvm_cpu"] == "znver3"
    shapes = {(w["op"], w["shape"]) for w in data.workloads}
    assert {op for op, _ in shapes} == set(ps.workloads.SUITE)
    assert len(data) == data.meta["counts"]["rows"] and data.searched.any()
    for k in range(len(data.workloads)):
        assert data.labels[data.workload == k].max() == pytest.approx(1.0)
