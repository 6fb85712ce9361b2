"""Program features (search/features.py) and trace features (search/trace_features.py) of
hand-made schedules behave: loop kinds show, strides and reuse follow the loop order, the
region analysis agrees, and the arrays keep their shape and stay finite."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import probsched as ps
from probsched.ir import analysis
from probsched.search.features import FEATURE_NAMES, N_BUFFER_SLOTS, N_FEATURES, extract
from probsched.search.trace_features import (
    KINDS,
    extract_trace,
    n_trace_features,
    trace_feature_names,
)
from probsched.testing import schedules
from probsched.workloads import gmm


def raw(row: np.ndarray, name: str) -> float:
    """A feature in its original scale (the arrays hold sign(x) * log2(1 + |x|) in float32:
    integers come back to within float32 rounding, and are rounded)."""
    x = float(row[FEATURE_NAMES.index(name)])
    v = math.copysign(2 ** abs(x) - 1, x)
    r = round(v)
    return float(r) if abs(v - r) <= 1e-5 * max(1.0, abs(v)) else v


def buffer_slots(row: np.ndarray) -> list[dict[str, float]]:
    names = [n[3:] for n in FEATURE_NAMES if n.startswith("b0_")]
    return [{n: raw(row, f"b{k}_{n}") for n in names} for k in range(N_BUFFER_SLOTS)]


def slot(row: np.ndarray, **match) -> dict[str, float]:
    """The buffer slot whose features match ``match`` (e.g. read=1, alloc_bytes=...)."""
    hits = [s for s in buffer_slots(row) if all(s[k] == pytest.approx(v) for k, v in match.items())]
    assert len(hits) == 1, (match, buffer_slots(row))
    return hits[0]


def gmm_schedule(n=64, m=64, k=64):
    sch = ps.Schedule(gmm(b=1, n=n, m=m, k=k), seed=0)
    return sch, sch.get_loops(sch.get_block("C"))


def update_row(sch) -> np.ndarray:
    """The row of the main block's update (the first row whose store is not an init)."""
    x = extract([sch.program])[0]
    return next(r for r in x if raw(r, "is_init") == 0 and raw(r, "is_reduction") == 1)


def test_names_shapes_and_rows():
    assert len(FEATURE_NAMES) == N_FEATURES == len(set(FEATURE_NAMES))
    sch, _ = gmm_schedule()
    (x,) = extract([sch.program])
    assert x.shape == (2, N_FEATURES) and x.dtype == np.float32  # update and init
    update, init = x
    assert raw(update, "iterations") == pytest.approx(64**3)
    assert raw(update, "float_add_sub") == 1 and raw(update, "float_mul") == 1
    assert raw(update, "flops") == pytest.approx(2 * 64**3)
    assert raw(init, "is_init") == 1 and raw(init, "iterations") == pytest.approx(64**2)
    assert raw(init, "flops") == 0
    assert extract([]) == []


def test_vectorize_shows_lanes_and_position():
    sch, (_, i, j, k) = gmm_schedule()
    sch.reorder(i, k, j)
    j0, j1 = sch.split(j, [None, 8])
    before = update_row(sch)
    assert raw(before, "vec_num") == 0 and raw(before, "vec_len") == 0
    sch.vectorize(j1)
    after = update_row(sch)
    assert raw(after, "vec_num") == 1
    assert raw(after, "vec_len") == 8 and raw(after, "vec_prod") == 8
    assert raw(after, "vec_pos") == 0  # the innermost loop
    assert raw(after, "serial_num") == raw(before, "serial_num") - 1
    b = slot(after, read=1, stride=1)  # B[b, k, j]: contiguous lanes
    assert b["vec_stride"] == 1 and b["inner_bytes"] == 32 and b["inner_lines"] == 1


def test_parallel_shows_extent_and_position():
    sch, (_, i, j, k) = gmm_schedule(n=48)
    sch.parallel(i)
    row = update_row(sch)
    assert raw(row, "parallel_num") == 1
    assert raw(row, "parallel_len") == 48 and raw(row, "parallel_prod") == 48
    assert raw(row, "parallel_pos") == 2  # j and k inside (b has extent 1: no loop)
    assert raw(row, "n_loops") == 3


def test_unroll_and_annotations():
    sch, (_, i, j, k) = gmm_schedule()
    k0, k1 = sch.split(k, [None, 4])
    sch.unroll(k1)
    sch.annotate(i, "unroll_max_step", 16)
    row = update_row(sch)
    assert raw(row, "unroll_num") == 1 and raw(row, "unroll_len") == 4
    assert raw(row, "unroll_pos") == 0
    assert raw(row, "unroll_max_step") == 16 and raw(row, "n_annotations") == 1


def test_loop_order_sets_strides_and_reuse():
    sch, (_, i, j, k) = gmm_schedule()
    ijk = update_row(sch)
    # k innermost: A[b, i, k] contiguous, B[b, k, j] a row apart, C reused along k.
    assert slot(ijk, read=1, stride=1)["reuse_count"] == 64  # A: j does not index it
    b = slot(ijk, read=1, stride=64)
    assert b["inner_lines"] == 64 and b["reuse_count"] == 64 and b["reuse_dist_iters"] == 64**2
    c = slot(ijk, read_write=1)
    assert c["stride"] == 0 and c["inner_bytes"] == 4 and c["inner_lines"] == 1
    assert c["reuse_count"] == 64 and c["reuse_dist_iters"] == 1
    sch.reorder(i, k, j)
    ikj = update_row(sch)
    # j innermost: A broadcast, B and C contiguous; C's reuse now spans a whole row of j.
    a = slot(ikj, read=1, stride=0)
    assert a["reuse_count"] == 64 and a["reuse_dist_iters"] == 1
    c = slot(ikj, read_write=1)
    assert c["stride"] == 1 and c["reuse_dist_iters"] == 64 and c["reuse_dist_bytes"] == 256
    assert raw(ikj, "flops") == raw(ijk, "flops")


def test_tiling_shortens_reuse_distance():
    sch, (_, i, j, k) = gmm_schedule()
    sch.reorder(i, k, j)
    far = slot(update_row(sch), read_write=1)["reuse_dist_bytes"]
    j0, j1 = sch.split(j, [None, 8])
    sch.reorder(j0, k, j1)
    near = slot(update_row(sch), read_write=1)
    assert near["reuse_dist_bytes"] == 32 < far
    assert near["unique_bytes"] == 64 * 64 * 4  # the whole nest still writes all of C


def test_guard_and_split_that_does_not_divide():
    sch, (_, i, _, _) = gmm_schedule(n=10)
    sch.split(i, [None, 4])
    row = update_row(sch)
    assert raw(row, "has_guard") == 1
    assert raw(row, "iterations") == pytest.approx(12 * 64 * 64)
    assert slot(row, read_write=1)["unique_bytes"] == 10 * 64 * 4  # capped by the shape


def test_intermediate_placed_inside_the_nest():
    sch, (_, i, j, k) = gmm_schedule()
    i0, i1 = sch.split(i, [None, 8])
    j0, j1 = sch.split(j, [None, 8])
    sch.reorder(i0, j0, k, i1, j1)
    try:
        wb = sch.cache_write(sch.get_block("C"), "local")
        sch.reverse_compute_at(wb, j0)
    except ps.ScheduleError as exc:  # primitives still being finished
        pytest.skip(f"cache_write / reverse_compute_at: {exc}")
    row = update_row(sch)
    local = slot(row, read_write=1)
    assert local["intermediate"] == 1 and local["placed_inside"] == 1
    assert local["alloc_bytes"] == 8 * 8 * 4
    assert raw(row, "arith_intensity") > 0


def test_sfm_math_and_compares_are_counted():
    from probsched.workloads import sfm

    (x,) = extract([ps.lower(sfm(n=8, m=16))])
    assert x.shape[0] == 6  # M, E, S, Y and the inits of M and S
    assert sum(raw(r, "float_math") for r in x) == 1  # exp
    assert sum(raw(r, "float_min_max") for r in x) == 1  # M's max
    assert sum(raw(r, "float_div") for r in x) == 1  # E / S


def test_padding_select_counts_int_compares():
    from probsched.workloads import SUITE

    fn, _, small = SUITE["C2D"]
    (x,) = extract([ps.lower(fn(**small))])
    pad = x[0]  # P comes first
    assert raw(pad, "float_cmp_select") == 1 and raw(pad, "int_ops") >= 4


def test_equal_programs_equal_features_and_cache_is_pure():
    a, (_, i, _, _) = gmm_schedule()
    a.split(i, [None, 4])
    b = a.trace.replay(a.workload)
    assert b.program is not a.program
    (xa,), (xb,) = extract([a.program]), extract([b.program])
    assert np.array_equal(xa, xb)


def _region_bytes(program, block, buffer, loops) -> float:
    """Unique bytes by probsched.ir.analysis.region with every enclosing loop inner."""
    idx = analysis.accesses(block, buffer)
    reg = analysis.region(idx, {lp.var: lp.extent for lp in loops if lp.extent > 1})
    buf = program.buffer(buffer)
    return math.prod(min(e, s) for e, s in zip(reg.extents, buf.shape, strict=True)) * 4


_GMM_STEPS = ["split", "sample_split", "reorder", "fuse", "parallel", "vectorize", "unroll",
              "annotate"]


@given(schedules(gmm(b=1, n=12, m=20, k=8), max_steps=8, steps=_GMM_STEPS))
def test_random_gmm_schedules_give_stable_finite_features(sch):
    (x,) = extract([sch.program])
    assert x.shape == (2, N_FEATURES) and x.dtype == np.float32
    assert np.isfinite(x).all()
    update = next(r for r in x if raw(r, "is_init") == 0)
    assert raw(update, "iterations") >= 12 * 20 * 8
    assert raw(update, "flops") == pytest.approx(2 * raw(update, "iterations"), rel=1e-5)
    # Unique bytes agree with the region analysis when the bindings are affine.
    from probsched.ir.program import walk

    for node, loops in walk(sch.program.body):
        if not isinstance(node, ps.ir.Block):
            continue
        if any(analysis.affine(b) is None for b in node.bindings):
            continue
        expected = sorted(_region_bytes(sch.program, node, name, loops) for name in "ABC")
        got = sorted(s["unique_bytes"] for s in buffer_slots(update)[:3])
        assert got == pytest.approx(expected, rel=1e-5)


# ---------------------------------------------------------------- trace features


def _tname(name: str, max_len: int = 32) -> int:
    return trace_feature_names(max_len).index(name)


def test_trace_features_encode_kinds_and_decisions():
    sch, (_, i, j, _) = gmm_schedule()
    tiles = sch.sample_perfect_tile(i, 2, 16)
    i0, i1 = sch.split(i, tiles)
    sch.parallel(i0)
    sch.vectorize(j)
    t = extract_trace([sch.trace])
    assert t.shape == (1, n_trace_features()) and len(trace_feature_names()) == t.shape[1]
    decided = sch.trace.decision_at(2)  # get_block, get_loops, then the sampling
    row = 2 ** t[0] - 1
    assert row[_tname("length")] == pytest.approx(4)  # queries are left out
    assert row[_tname("p0_sample_perfect_tile")] == 1
    assert row[_tname("p0_arg0")] == pytest.approx(decided[0])
    assert row[_tname("p1_split")] == 1 and row[_tname("p1_arg1")] == pytest.approx(decided[1])
    assert row[_tname("p2_parallel")] == 1
    assert row[_tname("p2_arg0")] == pytest.approx(decided[0])  # extent known from the split
    assert row[_tname("p3_vectorize")] == 1 and row[_tname("p3_arg0")] == 0  # unknown extent
    assert row[_tname("p3_arg1")] == pytest.approx(2)  # j is loop 2 of get_loops


def test_trace_features_differ_with_decisions_and_cap_length():
    sch, (_, i, _, _) = gmm_schedule()
    sch.split(i, sch.sample_perfect_tile(i, 2, 16))
    idx = next(k for k, inst in enumerate(sch.trace.instructions)
               if inst.kind == "sample_perfect_tile")
    other = sch.trace.with_decision(sch.trace.instructions[idx].address, [2, 32])
    a, b = extract_trace([sch.trace, other])
    if tuple(sch.trace.decision_at(idx)) != (2, 32):
        assert not np.array_equal(a, b)
    short = extract_trace([sch.trace], max_len=1)
    assert short.shape == (1, n_trace_features(1))
    assert extract_trace([]).shape == (0, n_trace_features())
    assert "split" in KINDS


@given(schedules(gmm(b=1, n=12, m=20, k=8), max_steps=10), st.integers(1, 40))
def test_trace_features_of_random_schedules_are_finite(sch, max_len):
    t = extract_trace([sch.trace], max_len=max_len)
    assert t.shape == (1, n_trace_features(max_len)) and np.isfinite(t).all()


def test_trace_features_name_unknown_kinds_other():
    from probsched.schedule.trace import Instruction, Trace

    tr = Trace((Instruction("future_primitive", (), (), ()),))
    row = 2 ** extract_trace([tr])[0] - 1
    assert row[_tname("count_other")] == 1 and row[_tname("p0_other")] == 1


def test_a_gpu_store_knows_its_threads_blocks_and_shared_memory():
    from gpu_schedules import gpu_matmul

    sch = gpu_matmul(n=64, m=64, k=64, ty=8, ri=4, tx=8, rj=4, kt=8)  # 2 x 2 blocks of 8 x 8
    rows = extract([sch.program])[0]
    update = next(r for r in rows if raw(r, "is_reduction") == 1)
    assert raw(update, "gpu_threads") == 64 and raw(update, "gpu_blocks") == 4
    # A's and B's tiles per step: 32 x 8 and 8 x 32 floats
    assert raw(update, "gpu_shared_bytes") == 2 * 32 * 8 * 4
    cpu = extract([ps.Schedule(gmm(b=1, n=16, m=16, k=16)).program])[0]
    assert all(raw(r, "gpu_threads") == 1 and raw(r, "gpu_shared_bytes") == 0 for r in cpu)
