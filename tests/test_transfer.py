"""Transfer across targets: the source GBDT corrected by a residual model on destination
records (search/transfer.py), and the transfer bench's table on synthetic sets."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from probsched.driver.bench import run_suite
from probsched.driver.bench.transfer import bar, evaluate
from probsched.errors import DatasetError, ProbschedError
from probsched.search import pretrained as P
from probsched.search.cost_model import GBDTModel, normalized_throughput, pairwise_accuracy
from probsched.search.transfer import (
    TransferConfig,
    TransferModel,
    residual_columns,
    source_model,
)

WIDTH = len(P.feature_names())


def _set(n_workloads: int, per: int, seed: int, shift: float) -> P.PretrainedSet:
    """Rows whose throughput is a fixed function of a few columns; ``shift`` weighs one
    column more, as another target would (code of other vectors)."""
    rng = np.random.default_rng(seed)
    rows = np.zeros((n_workloads * per, WIDTH), dtype=np.float32)
    rows[:, :30] = rng.random((len(rows), 30))
    group = np.repeat(np.arange(n_workloads, dtype=np.int32), per)
    latency = 1.0 / (0.1 + rows[:, 3] + 2 * rows[:, 10] * rows[:, 20] + shift * rows[:, 5])
    meta = {"workloads": [{"name": f"w{k}", "op": f"OP{k % 2}", "structural_hash": f"h{k}"}
                          for k in range(n_workloads)]}
    return P.PretrainedSet(rows, normalized_throughput(latency, group).astype(np.float32),
                           latency, group, np.zeros(len(rows), dtype=bool), meta)


@pytest.fixture(scope="module")
def source():
    return source_model(_set(4, 60, 0, 0.0))


def test_with_no_destination_records_it_is_the_source_model(source):
    dest = _set(2, 40, 1, 3.0)
    model = TransferModel(source)
    assert not model.adapted and model.n_records == 0
    np.testing.assert_array_equal(model.predict_rows(dest.rows), source.predict_rows(dest.rows))
    few = TransferConfig().min_records - 1  # below min_records: still the source model
    model.add_rows(dest.rows[:few], dest.latency_s[:few], ["h0"] * few)
    assert not model.adapted
    np.testing.assert_array_equal(model.predict_rows(dest.rows), source.predict_rows(dest.rows))


def test_a_source_must_be_fitted():
    with pytest.raises(DatasetError, match="not been fitted"):
        TransferModel(GBDTModel())


def test_adapting_is_deterministic_with_a_seed(source):
    dest = _set(3, 40, 2, 3.0)
    keys = np.array([f"h{k}" for k in dest.workload])
    preds = []
    for _ in range(2):
        model = TransferModel(source, seed=7)
        model.add_rows(dest.rows, dest.latency_s, keys)
        assert model.adapted
        preds.append(model.predict_rows(dest.rows))
    np.testing.assert_array_equal(*preds)


def test_the_correction_learns_what_the_destination_changed(source):
    """The destination weighs a column the source ignores: on a held-out destination
    workload the adapted model ranks better than the source model."""
    dest = _set(5, 60, 3, 4.0)
    train, test = dest.workload < 4, dest.workload == 4
    model = TransferModel(source, seed=0)
    model.add_rows(dest.rows[train], dest.latency_s[train], dest.workload[train].astype(str))
    before = pairwise_accuracy(source.predict_rows(dest.rows[test]), dest.labels[test])
    after = pairwise_accuracy(model.predict_rows(dest.rows[test]), dest.labels[test])
    assert after > before + 0.05


@settings(max_examples=10, deadline=None)
@given(st.lists(st.floats(0.1, 100.0), min_size=3, max_size=3))
def test_a_workloads_time_scale_changes_nothing(source, scales):
    """Labels are per workload, and a workload's residual offset is taken out: timing every
    record of a workload k times slower leaves the adapted scores as they were."""
    dest = _set(3, 30, 4, 3.0)
    keys = dest.workload.astype(str)
    plain, scaled = TransferModel(source, seed=0), TransferModel(source, seed=0)
    plain.add_rows(dest.rows, dest.latency_s, keys)
    scaled.add_rows(dest.rows, dest.latency_s * np.array(scales)[dest.workload], keys)
    np.testing.assert_allclose(plain.predict_rows(dest.rows), scaled.predict_rows(dest.rows))


def test_the_target_residual_features_are_vector_and_register_columns():
    names = P.feature_names()
    cols = residual_columns("target")
    assert residual_columns("all") is None and len(cols)
    picked = [names[k] for k in cols]
    assert "heavy_vec_len" in picked and "sum_flops" not in picked
    assert not any(n.startswith(("p0_", "count_")) for n in picked)
    with pytest.raises(DatasetError, match="residual_features"):
        residual_columns("some")


def test_rows_and_latencies_must_agree(source):
    with pytest.raises(ValueError, match="2 rows, 3 latencies"):
        TransferModel(source).add_rows(np.zeros((2, WIDTH)), [1.0, 2.0, 3.0], ["a", "b"])


def test_the_bench_table_has_every_model_and_the_bar():
    src, dest = _set(4, 40, 5, 0.0), _set(3, 40, 6, 3.0)
    rows = evaluate(src, dest, sizes=(0, 16, 32), scratch_sizes=(32,), prior_sizes=(16,),
                    seeds=(0, 1), prior_seeds=(0,))
    got = {(r["condition"], r["model"], r["dest_records"]) for r in rows}
    for cond in ("source has the workload", "source without the operator"):
        assert {(cond, "scratch", 32), (cond, "source only", 0), (cond, "transfer", 0),
                (cond, "transfer", 32), (cond, "prior", 16)} <= got
    assert all(0 <= r["pairwise_acc"] <= 1 and r["heldout_workloads"] == 3 for r in rows)
    for cond in ("source has the workload", "source without the operator"):
        zero = {r["pairwise_acc"] for r in rows if r["condition"] == cond
                and r["model"] in ("source only", "transfer") and r["dest_records"] == 0}
        assert len(zero) == 1  # transfer at 0 records: the source model, to the digit
    # the bar compares transfer@64 with scratch@256, which this small table lacks
    assert bar(rows) == {}


def test_bench_options_are_refused_by_suites_without_them():
    with pytest.raises(ProbschedError, match="takes no option dest"):
        run_suite("lang", dest="x86-64-v2")


def test_tune_takes_another_targets_set_to_transfer_from():
    from probsched.search.model_choice import make_cost_model

    data = _set(3, 30, 7, 0.0)
    model = make_cost_model("gbdt", 0, 32, data, transfer=True)
    assert isinstance(model, TransferModel) and not model.adapted
    assert isinstance(make_cost_model("gbdt", 0, 32, data), GBDTModel)
    with pytest.raises(ProbschedError, match="transfer: give the other target's set"):
        make_cost_model("gbdt", 0, 32, None, transfer=True)


@pytest.mark.slow  # real builds and timings: ~10 s alone, a minute beside others' timings
def test_a_tune_adapts_the_source_model_to_its_records():
    import probsched as ps

    wl = ps.workloads.gmm(b=1, n=16, m=16, k=16)
    source = source_model(_set(3, 30, 8, 0.0))
    model = TransferModel(source, TransferConfig(min_records=4))
    result = ps.tune(wl, trials=8, db=None, seed=0, progress=False, cost_model=model,
                     reference=False, post_optimization=0.0)
    assert result.trials == 8 and model.n_records == 8 and model.adapted


def test_the_correction_weight_is_one_of_the_shrinkages(source):
    dest = _set(3, 40, 9, 3.0)
    keys = dest.workload.astype(str)
    never = TransferModel(source, TransferConfig(shrinkages=(0.0,)))
    never.add_rows(dest.rows, dest.latency_s, keys)
    assert never.shrinkage == 0.0 and not never.adapted
    np.testing.assert_array_equal(never.predict_rows(dest.rows), source.predict_rows(dest.rows))
    one_workload = TransferModel(source, seed=1)  # a tune's own records: folds by record
    one_workload.add_rows(dest.rows[:40], dest.latency_s[:40], keys[:40])
    assert one_workload.shrinkage in TransferConfig().shrinkages


def test_the_cli_has_the_transfer_options():
    from probsched.driver.cli import build_parser

    args = build_parser().parse_args(["tune", "x.sched", "--trials", "4", "--pretrained",
                                      "--transfer"])
    assert args.transfer is True and args.pretrained is True
    args = build_parser().parse_args(["bench", "--suite", "transfer", "--source",
                                      "x86-64-v3", "--dest", "host", "--data", "d"])
    assert (args.source, args.dest, args.data) == ("x86-64-v3", "host", "d")
