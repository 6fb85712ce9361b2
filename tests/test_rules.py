"""The generated design space (probsched/rules/cpu.sched): the queries its rules use, and that
its schedules of every operator compile to correct kernels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import probsched as ps
from probsched.errors import ProbschedError
from probsched.ir.reference import check_outputs, random_inputs
from probsched.lang import format_trace_space
from probsched.rules import generated_space, library
from probsched.testing import schedules, workloads
from probsched.workloads import SUITE

DATA = Path(__file__).resolve().parent / "data"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _correct(sch: ps.Schedule) -> None:
    inputs = random_inputs(sch.workload)
    ok, _, msg = check_outputs(ps.compile(sch)(*inputs), ps.reference(sch.workload, *inputs))
    assert ok, f"{msg}\n{sch.program}"


def _sample(wl: ps.Workload, seed: int) -> ps.Schedule:
    sch = ps.Schedule(wl, seed=seed)
    generated_space().apply(sch)
    return sch


# ---------------------------------------------------------------- queries


def test_get_blocks_is_post_order_and_replays():
    sch = ps.Schedule(ps.workloads.sfm(n=4, m=8))
    blocks = sch.get_blocks()
    assert [sch.get(b) for b in blocks] == ["Y", "S", "E", "M"]
    assert str(sch.trace) == "b0, b1, b2, b3 = get_blocks()"
    assert sch.trace.replay(sch.workload).trace == sch.trace


def test_block_queries():
    sch = ps.Schedule(ps.workloads.c1d(l=8, ci=2, co=4, kernel=3, stride=2, pad=1))
    c, p = sch.get_blocks()
    assert sch.block_name(c) == "C" and sch.is_output(c) and not sch.is_output(p)
    assert sch.is_reduction(c) and not sch.is_reduction(p)
    assert sch.is_injective(p) and not sch.is_injective(c)
    assert sch.has_select(p) and not sch.has_select(c)  # padding is an if-then-else
    assert sch.can_inline(p) and not sch.can_inline(c)
    assert (sch.num_consumers(p), sch.num_producers(c), sch.num_consumers(c)) == (1, 1, 0)
    assert sch.loop_types(c) == ["S", "S", "S", "R", "R"]
    assert sch.reuse_reads(c) == ["P", "W"]  # P misses co, W misses n and l
    loops = sch.get_loops(c)
    assert sch.loop_kind(loops[0]) == "serial" and sch.loop_children(loops[0]) == 1
    sch.compute_inline(p)
    assert not sch.is_alive(p) and sch.is_alive(c) and sch.block_name(p) == "P"
    with pytest.raises(ps.ScheduleError, match="block P no longer exists"):
        sch.is_reduction(p)


def test_fused_loop_is_neither_spatial_nor_reduce():
    sch = ps.Schedule(ps.workloads.gmm(b=1, n=4, m=4, k=4))
    c = sch.get_block("C")
    _, _, j, k = sch.get_loops(c)
    sch.fuse(j, k)
    assert sch.loop_types(c) == ["S", "S", "O"]


def test_legal_leaves_the_schedule_unchanged():
    sch = ps.Schedule(ps.workloads.gmm(b=1, n=4, m=4, k=4))
    c = sch.get_block("C")
    b, i, j, k = sch.get_loops(c)
    before, trace = sch.program, sch.trace
    assert sch.legal("split", i, [2, 2]) and sch.legal("reorder", [k, j])
    assert not sch.legal("parallel", k) and not sch.legal("fuse", i, k)
    assert sch.legal("cache_write", c, "local")
    assert sch.program is before and sch.trace == trace
    io, ii = sch.split(i, [2, 2])  # numbering continues as if nothing was tried
    assert str(sch.trace).splitlines()[-1] == "l5, l6 = split(l2, [2, 2])"
    with pytest.raises(ps.ScheduleError, match="'sample_categorical' is not a primitive"):
        sch.legal("sample_categorical", [1], [1.0])


def test_queries_as_builtins():
    mod = ps.parse('''
workload w(n = 8):
    input A: float32[n]
    B[i] = A[i] * 2.0
    C[i] = B[i] + 1.0

space s for w:
    for b in get_blocks():
        if block_name(b) == "B" and is_injective(b) and can_inline(b):
            compute_inline(b)
    c = get_block("C")
    l = get_loops(c)[0]
    if loop_types(c) == ["S"] and loop_extent(l) == 8 and legal("vectorize", l):
        if vector_lanes() >= 4:
            vectorize(l)
''')
    sch = ps.Schedule(mod.workload())
    mod.space().apply(sch)
    assert [b.name for b in sch.program.blocks()] == ["C"]
    assert "vectorized(8)" in str(sch.program)
    with pytest.raises(ProbschedError, match=r"<string>:2:5: error: is_reduction\(\): too many"):
        ps.parse("space s:\n    is_reduction(1, 2)\n")  # arities of queries are static


def test_builtin_library_path_and_unknown_library(tmp_path):
    assert "multi_level_tiling" in library().rules
    path = tmp_path / "x.sched"
    path.write_text('use "probsched:nope.sched"\n')
    with pytest.raises(ProbschedError, match="no built-in rule library 'nope.sched'") as info:
        ps.load(path)
    assert info.value.location is not None  # the error points at the `use` line
    assert str(info.value).startswith(f"{path}:1:1: error:")


# ---------------------------------------------------------------- the generated space


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workloads(), st.integers(0, 2**32 - 1))
def test_property_generated_space_compiles_and_matches(wl, seed):
    sch = _sample(wl, seed)
    _correct(sch)
    assert str(sch.trace.replay(wl).program) == str(sch.program)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedules(workloads(), max_steps=3))
def test_rules_check_before_they_act_after_random_steps(sch):
    """After arbitrary earlier steps (splits, fusions, caches, inlining...) the rules skip
    what they cannot handle instead of failing."""
    generated_space().apply(sch)
    _correct(sch)


@pytest.mark.parametrize("name", sorted(SUITE))
def test_every_suite_operator_at_small_shapes(name):
    builder, _, small = SUITE[name]
    wl = builder(**small)
    programs = set()
    for seed in range(3):
        sch = ps.Schedule(wl, seed=seed)
        decisions = generated_space().apply(sch)
        _correct(sch)
        programs.add(str(sch.program))
        again = ps.Schedule(wl, seed=seed + 7)  # the decisions by address replay the run
        generated_space().apply(again, decisions)
        assert again.trace == sch.trace
        text = ps.Schedule(wl, seed=seed + 8)  # the trace as text runs to the same trace
        ps.parse(format_trace_space(sch.trace, wl.name), "t.sched").space().apply(text)
        assert text.trace.same_steps(sch.trace) and str(text.program) == str(sch.program)
    assert len(programs) > 1  # the space is a space


def test_shapes_that_defeat_the_rules_still_give_legal_schedules():
    """Prime extents (no vector split), extent-1 loops, a scalar reduction."""
    for wl in (ps.workloads.gmm(b=1, n=1, m=67, k=1), ps.workloads.nrm(n=1, m=1),
               ps.workloads.sfm(n=1, m=97), ps.workloads.dep(h=1, w=1, c=1, kernel=1, pad=0)):
        for seed in range(2):
            _correct(_sample(wl, seed))


# name in tests/data/more_ops.sched -> the suite builder of the same operator
MORE = {
    "batch_matmul_tt": lambda: ps.workloads.batch_matmul(
        b=2, n=12, m=20, k=9, transpose_a=True, transpose_b=True),
    "batch_matmul_ta": lambda: ps.workloads.batch_matmul(b=2, n=7, m=16, k=10, transpose_a=True),
    "grouped_conv2d": lambda: ps.workloads.grouped_conv2d(
        h=9, w=8, ci=4, co=6, kernel=3, stride=2, pad=1, groups=2),
    "dilated_conv2d": lambda: ps.workloads.dilated_conv2d(
        h=11, w=10, ci=3, co=5, kernel=3, stride=1, pad=2, dilation=2),
    "transposed_conv2d": lambda: ps.workloads.transposed_conv2d(
        h=4, w=3, ci=3, co=4, kernel=3, stride=2, pad=1),
    "conv3d": lambda: ps.workloads.conv3d(d=5, h=6, w=5, ci=2, co=4, kernel=3, stride=2, pad=1),
}


@pytest.mark.parametrize("name", sorted(MORE))
def test_more_operators_written_in_sched(name):
    wl = ps.load(DATA / "more_ops.sched").workload(name)
    inputs = random_inputs(wl)
    for ours, theirs in zip(ps.reference(wl, *inputs), ps.reference(MORE[name](), *inputs),
                            strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
    for seed in range(2):
        _correct(_sample(wl, seed))


def test_user_space_overrides_one_block():
    mod = ps.load(EXAMPLES / "custom_rules.sched")
    wl = mod.workload(n=32, m=64, k=24)
    for seed in range(2):
        sch = ps.Schedule(wl, seed=seed)
        mod.space("custom").apply(sch)
        _correct(sch)
        text = str(sch.program)
        assert "block B_global" in text and "for j_0 in parallel(4)" in text  # by hand
        assert "block Y(" in text and "vectorized" in text  # the rest by the rules


def test_file_without_space_gets_the_generated_one():
    mod = ps.parse("workload w(n = 32):\n    input A: float32[n, n]\n"
                   "    B[i, j] = sum(A[i, r] * A[r, j])\n")
    assert mod.space().name == generated_space().name  # wrapped: errors point at the workload
    sch = ps.Schedule(mod.workload(), seed=1)
    mod.space().apply(sch)
    _correct(sch)
    assert "parallel" in str(sch.program)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SUITE))
def test_tune_every_suite_operator_at_small_shapes(name):
    """Acceptance (issue 6): generated space, 16 trials, a correct best kernel."""
    builder, _, small = SUITE[name]
    wl = builder(**small)
    result = ps.tune(wl, generated_space(), trials=16, db=None, seed=0, progress=False,
                     reference=False)
    assert result.trials >= 1 and result.best_trace is not None
    assert result.failures == 0  # every measured candidate compiled, ran and was correct
    best = result.best_trace.replay(wl)
    _correct(best)
    assert ps.measure(best).correct


def test_the_generated_space_follows_the_target():
    """Register-tile rows from the vector registers, reduce tiles from L1: AVX2's 16
    registers give rows up to 8, AVX-512's 32 up to 16; wider vectors, shorter k tiles."""
    from probsched.target import cpu_target

    bounds = {}
    for name in ("x86-64-v3", "x86-64-v4"):
        sch = ps.Schedule(ps.workloads.gmm(b=1, n=256, m=256, k=256), seed=1,
                          target=cpu_target(name))
        generated_space().apply(sch)
        bounds[name] = [dict(i.attrs)["max_innermost_factor"] for i in sch.trace.instructions
                        if i.kind == "sample_perfect_tile"]
    rows3, vecs3, k3 = bounds["x86-64-v3"]
    rows4, vecs4, k4 = bounds["x86-64-v4"]
    assert (rows3, rows4) == (8, 16) and vecs3 == vecs4 == 4
    assert k3 == 2 * k4  # twice the lanes per vector: half the k rows fit


def test_a_buffer_read_along_the_reduction_may_be_packed_transposed():
    """TBG's B[b, j, k] is read along k in its last axis while j is vectorized: some samples
    pack it transposed (B_global[b, k, j], whole-vector loads instead of gathers), others
    keep its layout; both compute the reference."""
    from probsched.workloads.more_ops import batch_matmul

    wl = batch_matmul(b=2, n=16, m=16, k=8, transpose_b=True)
    layouts = {}
    for seed in range(24):
        sch = _sample(wl, seed)
        transposed = "transform_layout" in {i.kind for i in sch.trace.instructions}
        if transposed not in layouts:
            _correct(sch)
            layouts[transposed] = sch
    assert set(layouts) == {True, False}


POOL = """
workload pool(h = 9, w = 9, c = 32):
    input X: float32[1, h, w, c]
    P[n, i, j, k]: float32[1, 4, 4, c] = max(X[n, i * 2 + r, j * 2 + s, k]) over r < 3, s < 3
"""


def test_a_window_reduction_vectorizes_its_channels():
    """Pooling in NHWC: the 3 x 3 window's loops go outside the channel loop, which is then
    vectorized (with the window innermost, it would run one lane at a time)."""
    wl = ps.parse(POOL).workload()
    for seed in range(4):
        sch = _sample(wl, seed)
        *_, last = sch.get_loops(sch.get_block("P"))
        assert sch.loop_kind(last) == "vectorized", sch.program
        _correct(sch)
