"""decompose_reduction and rfactor: printed programs, legality errors, and results that match
the reference, also after parallelizing, vectorizing and unrolling the new loops."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

import probsched as ps
from probsched.errors import ScheduleError
from probsched.ir import tree
from probsched.ir.expr import Var, free_vars
from probsched.ir.reference import check_outputs, random_inputs, reference
from probsched.schedule.primitives import inlining, reduction
from probsched.workloads import SUITE, c2d, cbr, gmm, nrm, sfm


def assert_correct(sch: ps.Schedule, seed: int = 0) -> None:
    wl = sch.workload
    inputs = random_inputs(wl, seed=seed)
    ok, err, msg = check_outputs(ps.compile(sch)(*inputs), reference(wl, *inputs))
    assert ok, f"{msg} (max abs err {err})\n{sch.program}"


def small(name: str):
    builder, _, shape = SUITE[name]
    return builder(**shape)


def gmm_split_k(n=4, m=4, k=8, factor=4):
    """gmm with its reduce loop split: (schedule, block C, loops b, i, j, k_0, k_1)."""
    sch = ps.Schedule(gmm(b=1, n=n, m=m, k=k))
    c = sch.get_block("C")
    b, i, j, kk = sch.get_loops(c)
    ko, ki = sch.split(kk, [None, factor])
    return sch, c, (b, i, j, ko, ki)


def expect_error(sch: ps.Schedule, prim: str, args: tuple, reason: str) -> None:
    """``prim(*args)`` fails with ``reason`` and leaves the schedule as it was."""
    before, steps = str(sch.program), len(sch.trace.instructions)
    with pytest.raises(ScheduleError, match=re.escape(reason)) as info:
        getattr(sch, prim)(*args)
    assert str(info.value).startswith(f"{prim}(")
    assert str(sch.program) == before and len(sch.trace.instructions) == steps


# ---------------------------------------------------------------- decompose_reduction


@pytest.mark.parametrize("at", [0, 2, 3])  # the b loop, the j loop, the k_0 loop
def test_decompose_reduction_gmm(golden, at):
    sch, c, loops = gmm_split_k()
    init = sch.decompose_reduction(c, loops[at])
    assert sch.get(init) == "C_init"
    golden(str(sch.program))
    assert_correct(sch)


def test_decompose_reduction_keeps_spatial_guards_drops_reduce_guards(golden):
    sch = ps.Schedule(gmm(b=1, n=5, m=3, k=7))
    c = sch.get_block("C")
    _, i, _, kk = sch.get_loops(c)
    sch.split(i, [None, 2])
    sch.split(kk, [None, 4])
    sch.decompose_reduction(c, sch.get_loops(c)[1])  # i_0
    golden(str(sch.program))
    assert_correct(sch)


def test_decompose_reduction_reordered_reduce_loop_outside(golden):
    # k outside j: decomposing at k copies nothing below it that is spatial except j.
    sch = ps.Schedule(gmm(b=1, n=3, m=8, k=5))
    c = sch.get_block("C")
    _, i, j, kk = sch.get_loops(c)
    sch.reorder(kk, j)
    sch.decompose_reduction(c, kk)
    golden(str(sch.program))
    assert_correct(sch)


def test_decompose_reduction_scalar_output(golden):
    sch = ps.Schedule(nrm(n=3, m=4))
    s = sch.get_block("S")
    sch.decompose_reduction(s, sch.get_loops(s)[0])
    golden(str(sch.program))
    assert_correct(sch)


def test_decompose_reduction_guard_mixing_spatial_and_reduce_loops(golden):
    # After rfactor, k_1 is spatial and k_0 reduce in one guard: the init block takes the
    # guard where the init ran, at k_0 = 0.
    sch, c, (b, i, j, ko, ki) = gmm_split_k(n=2, m=3, k=20, factor=8)
    rf = sch.rfactor(ki, 3)
    sch.decompose_reduction(rf, ko)
    golden(str(sch.program))
    assert_correct(sch)


def test_decompose_reduction_then_vectorize_and_unroll():
    sch, c, (b, i, j, ko, ki) = gmm_split_k(n=6, m=16, k=12, factor=3)
    init = sch.decompose_reduction(c, i)
    _, ii, ji = sch.get_loops(init)
    sch.vectorize(ji)
    sch.unroll(ii)
    sch.reorder(ko, ki, j)  # j innermost in the update nest too
    sch.vectorize(j)
    sch.unroll(ki)
    sch.parallel(i)
    assert_correct(sch)


@pytest.mark.parametrize("name", sorted(SUITE))
def test_decompose_reduction_suite_matches_reference(name):
    wl = small(name)
    sch = ps.Schedule(wl)
    for block in [b for b in sch.program.blocks() if b.init is not None]:
        # The innermost legal place: the outermost loop feeding a reduce binding.
        reduce = {v for iv, x in zip(block.iter_vars, block.bindings, strict=True) if iv.reduce
                  for v in free_vars(x)}
        rv = sch.get_block(block.name)
        loop = next(lp for lp in sch.get_loops(rv) if sch.get(lp) in reduce)
        sch.decompose_reduction(rv, loop)
    assert_correct(sch)


def test_decompose_reduction_errors():
    sch, c, (b, i, j, ko, ki) = gmm_split_k()
    expect_error(sch, "decompose_reduction", (c, ki),
                 "loop k_1 is inside loop k_0, which feeds a reduce binding of block C: the "
                 "init would run again on every iteration of k_0; decompose at k_0 or a loop "
                 "outside it")
    sch2 = ps.Schedule(sfm(n=4, m=8))
    m, e = sch2.get_block("M"), sch2.get_block("E")
    expect_error(sch2, "decompose_reduction", (m, sch2.get_loops(e)[0]),
                 "loop i_1 does not enclose block M")
    expect_error(sch2, "decompose_reduction", (e, sch2.get_loops(e)[0]),
                 "block E has no init (not a reduction, or already decomposed)")
    sch.decompose_reduction(c, ko)
    expect_error(sch, "decompose_reduction", (c, b),
                 "block C has no init (not a reduction, or already decomposed)")


# ---------------------------------------------------------------- rfactor


@pytest.mark.parametrize("inner,axis", [(True, 3), (True, 0), (False, 1), (True, -1)])
def test_rfactor_gmm(golden, inner, axis):
    sch, c, (b, i, j, ko, ki) = gmm_split_k()
    rf = sch.rfactor(ki if inner else ko, axis)
    assert sch.get(rf) == "C_rf"
    golden(str(sch.program))
    assert_correct(sch)


def test_rfactor_nrm_unsplit(golden):
    sch = ps.Schedule(nrm(n=4, m=8))
    _, j = sch.get_loops(sch.get_block("S"))
    sch.rfactor(j, 0)
    golden(str(sch.program))
    assert_correct(sch)


def test_rfactor_sfm_max_and_sum(golden):
    sch = ps.Schedule(sfm(n=3, m=8))
    for name in ("M", "S"):
        _, j = sch.get_loops(sch.get_block(name))
        _, ji = sch.split(j, [None, 4])
        sch.rfactor(ji, 1)
    golden(str(sch.program))
    assert_correct(sch)


def test_rfactor_c2d_over_input_channels(golden):
    sch = ps.Schedule(c2d(n=1, h=4, w=4, ci=4, co=2, kernel=3, stride=1, pad=1))
    sch.compute_inline(sch.get_block("P"))
    *_, rc = sch.get_loops(sch.get_block("C"))
    sch.rfactor(rc, 4)
    golden(str(sch.program))
    assert_correct(sch)


def test_rfactor_with_guard_that_initialises_every_slot(golden):
    # k = 20 split by 8: k_0 * 8 + k_1 < 20 holds at k_0 = 0 for every k_1 < 8.
    sch, c, (b, i, j, ko, ki) = gmm_split_k(n=2, m=3, k=20, factor=8)
    sch.rfactor(ki, 3)
    golden(str(sch.program))
    assert_correct(sch)


def test_rfactor_of_fused_reduce_loops():
    sch = ps.Schedule(c2d(n=1, h=5, w=4, ci=3, co=2, kernel=3, stride=1, pad=1))
    c = sch.get_block("C")
    *_, rh, rw, rc = sch.get_loops(c)
    f = sch.fuse(rh, rw, rc)
    fo, fi = sch.split(f, [None, 4])  # 27 = 7 * 4 - 1: a guard over both halves
    rf = sch.rfactor(fi, 4)
    sch.vectorize(sch.get_loops(rf)[-1])
    assert_correct(sch)


def test_rfactor_then_parallel_nrm():
    sch = ps.Schedule(small("NRM"))
    i, j = sch.get_loops(sch.get_block("S"))
    io, _ = sch.split(i, [4, None])
    sch.rfactor(io, 0)
    sch.parallel(io)
    assert_correct(sch)


def test_rfactor_then_vectorize_gmm():
    sch, c, (b, i, j, ko, ki) = gmm_split_k(n=5, m=6, k=32, factor=8)
    rf = sch.rfactor(ki, 3)
    sch.vectorize(ki)
    sch.parallel(i)
    final = sch.get_loops(c)
    sch.vectorize(final[2])  # j of the write-back: the rf dimension is the reduction
    sch.decompose_reduction(rf, ko)
    assert_correct(sch)


def test_rfactor_then_vectorize_sfm():
    sch = ps.Schedule(small("SFM"))
    for name in ("M", "S"):
        block = sch.get_block(name)
        _, j = sch.get_loops(block)
        jo, ji = sch.split(j, [None, 8])
        rf = sch.rfactor(ji, 1)
        _, jo, ji = sch.get_loops(rf)
        sch.reorder(ji, jo)
        sch.vectorize(ji)
        sch.decompose_reduction(rf, sch.get_loops(rf)[0])
    assert_correct(sch)


def test_rfactor_then_parallel_reduce_loop_is_refused_on_original():
    sch, c, (b, i, j, ko, ki) = gmm_split_k()
    expect_error(sch, "parallel", (ko,), "loop k_0 carries the reduction of block C")
    sch.rfactor(ko, 0)
    sch.reorder(ko, b)
    sch.parallel(ko)
    assert_correct(sch)


@pytest.mark.parametrize("name", sorted(SUITE))
def test_rfactor_innermost_reduce_loop_suite_matches_reference(name):
    sch = ps.Schedule(small(name))
    for block in [b for b in sch.program.blocks() if b.init is not None]:
        loops = sch.get_loops(sch.get_block(block.name))
        sch.rfactor(loops[-1], 0)
    assert_correct(sch)


def test_rfactor_errors():
    sch, c, (b, i, j, ko, ki) = gmm_split_k()
    expect_error(sch, "rfactor", (j, 0),
                 "loop j feeds a spatial binding of block C; rfactor needs a loop feeding "
                 "reduce bindings only")
    expect_error(sch, "rfactor", (ki, 4),
                 "factor_axis 4 is out of range for a buffer of 3 dimension(s): expected -4..3")
    expect_error(sch, "rfactor", (ki, -5), "factor_axis -5 is out of range")
    sch.decompose_reduction(c, ko)
    expect_error(sch, "rfactor", (ki, 0),
                 "block C has no init (decomposed?); rfactor before decompose_reduction")
    expect_error(sch, "rfactor", (j, 0), "loop j holds 2 blocks (C_init, C); rfactor needs "
                 "exactly one")

    sch = ps.Schedule(sfm(n=3, m=4))
    expect_error(sch, "rfactor", (sch.get_loops(sch.get_block("E"))[1], 0),
                 "block E is not a sum, max or min reduction")

    sch, c, (b, i, j, ko, ki) = gmm_split_k(n=2, m=2, k=5, factor=8)
    expect_error(sch, "rfactor", (ki, 0),
                 "guard k_0 * 8 + k_1 < 5 of block C (a partial tile) would leave some "
                 "partial results uninitialised")

    sch = ps.Schedule(c2d(n=1, h=4, w=4, ci=2, co=2, kernel=3, stride=1, pad=1))
    c = sch.get_block("C")
    *_, co, rh, rw, rc = sch.get_loops(c)
    sch.fuse(co, rh)
    expect_error(sch, "rfactor", (rc, 0),
                 "loop co_rh_fused feeds both spatial and reduce bindings of block C")


def test_rfactor_error_block_sharing_the_nest():
    # cbr's epilogue placed in the convolution's nest (as reverse_compute_at would).
    program = ps.Schedule(cbr(n=1, h=3, w=3, ci=2, co=2, kernel=3, stride=1, pad=1)).program
    y_path = tree.find_block(program, "Y")
    y = tree.node_at(program, y_path)
    y = replace(y, bindings=(Var("n_1"), Var("h_1"), Var("w_1"), Var("co")))
    program = inlining.remove_block(program, y_path)
    co_path = tree.find_loop(program, "co")
    co = tree.node_at(program, co_path)
    program = tree.replace_at(program, co_path, (replace(co, body=(*co.body, y)),))
    with pytest.raises(ValueError, match="block Y in the same loop nest uses C, which will be "
                       "complete only after that nest"):
        reduction.rfactor(program, "rc", 0)


def test_rfactor_error_loop_feeding_nothing():
    program = ps.Schedule(nrm(n=2, m=3)).program
    s_path = tree.find_block(program, "S")
    s = tree.node_at(program, s_path)
    # S's reduce bindings use only j: the i loop then feeds nothing (an odd but valid program).
    s = replace(s, iter_vars=s.iter_vars[1:], bindings=s.bindings[1:],
                body=replace(s.body, value=s.body.value))
    program = tree.replace_at(program, s_path, (s,))
    with pytest.raises(ValueError, match="loop i feeds no reduce binding of block S"):
        reduction.rfactor(program, "i", 0)


def test_decompose_reduction_refuses_a_loop_that_reruns_the_reduction():
    """Found by fuzzing: S computed at a loop of its consumer that feeds none of S's bindings
    runs the whole reduction on each iteration; moving its init outside that loop made S
    accumulate twice (softmax's rows came out halved)."""
    from probsched.ir.reference import check_outputs, random_inputs, reference

    wl = sfm(n=1, m=2)
    sch = ps.Schedule(wl)
    s = sch.get_block("S")
    _, j = sch.get_loops(sch.get_consumers(s)[0])
    sch.compute_at(s, j)
    i, *_ = sch.get_loops(sch.get_block("S"))
    with pytest.raises(ps.ScheduleError, match="feeds no binding of block S"):
        sch.decompose_reduction(sch.get_block("S"), i)
    inputs = random_inputs(wl)  # and what codegen hoists on its own stays right
    assert check_outputs(ps.compile(sch)(*inputs), reference(wl, *inputs))[0]
