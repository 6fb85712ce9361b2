"""compute_at, reverse_compute_at and sample_compute_location: golden programs, one test per
documented error, and compiled results against the reference (partial tiles included)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

import probsched as ps
from probsched.ir import tree
from probsched.ir.reference import check_outputs, random_inputs, reference
from probsched.schedule import INLINE, ROOT
from probsched.schedule.primitives import caching, inlining, location
from probsched.workloads import c2d, cbr, gmm, nrm, sfm


def assert_correct(sch: ps.Schedule, seed: int = 0) -> None:
    inputs = random_inputs(sch.workload, seed=seed)
    ok, err, msg = check_outputs(ps.compile(sch)(*inputs), reference(sch.workload, *inputs))
    assert ok, f"{msg} (max abs err {err})\n{sch.program}"


def small_c2d(seed: int = 0) -> ps.Schedule:
    return ps.Schedule(c2d(n=1, h=6, w=6, ci=2, co=3, kernel=3, stride=2, pad=1), seed=seed)


def small_cbr() -> ps.Schedule:
    return ps.Schedule(cbr(n=1, h=6, w=6, ci=2, co=3, kernel=3, stride=2, pad=1))


def block(sch: ps.Schedule, name: str):
    return tree.node_at(sch.program, tree.find_block(sch.program, name))


def expect_error(sch: ps.Schedule, fn, *args, match: str) -> None:
    before, steps = str(sch.program), len(sch.trace.instructions)
    with pytest.raises(ps.ScheduleError, match=match):
        fn(*args)
    assert str(sch.program) == before and len(sch.trace.instructions) == steps


# ---------------------------------------------------------------- compute_at


def test_compute_at_padding_into_the_convolution(golden):
    sch = small_c2d()
    _, _, w, *_ = sch.get_loops(sch.get_block("C"))
    sch.compute_at(sch.get_block("P"), w)
    golden(str(sch.program))
    assert_correct(sch)


def test_compute_at_partial_tile_gets_a_guard(golden):
    sch = small_c2d()
    _, h, w, *_ = sch.get_loops(sch.get_block("C"))
    ho, _ = sch.split(h, [None, 2])  # 3 rows in tiles of 2: the last tile is partial
    sch.compute_at(sch.get_block("P"), ho)
    golden(str(sch.program))
    # The guard keeps the last tile's halo inside P: rows h_1_0 * 4 + [0, 5) reach row 8,
    # past P's 8 rows.
    assert "where h_1_0 * 4 + ax1 < 8" in str(sch.program)
    assert_correct(sch)


def test_compute_at_without_halo_needs_no_guard():
    sch = small_c2d()
    *_, rc = sch.get_loops(sch.get_block("C"))
    sch.compute_at(sch.get_block("P"), rc)
    # One element of P per innermost iteration, always inside P.
    own_loops = tree.ancestors(sch.program, tree.find_block(sch.program, "P"))[-4:]
    assert [lp.extent for lp in own_loops] == [1, 1, 1, 1]
    assert block(sch, "P").predicate is None
    assert_correct(sch)


def test_compute_at_reduction_keeps_its_init(golden):
    sch = ps.Schedule(sfm(n=5, m=7))
    i, _ = sch.get_loops(sch.get_block("E"))
    sch.compute_at(sch.get_block("M"), i)
    golden(str(sch.program))
    assert block(sch, "M").init is not None
    assert_correct(sch)


def test_compute_at_of_cache_read_copy(golden):
    sch = ps.Schedule(gmm(b=1, n=8, m=8, k=8))
    c = sch.get_block("C")
    _, i, j, k = sch.get_loops(c)
    _, ji = sch.split(j, [None, 4])
    copy = sch.cache_read(c, "B", "local")
    sch.compute_at(copy, k)
    golden(str(sch.program))
    assert_correct(sch)


@pytest.mark.parametrize("factors", [(2, 3), (3, 2), (4, 4), (1, 7)])
def test_compute_at_every_loop_with_partial_tiles(factors):
    """Both spatial output axes split by factors that don't divide 7; P at every loop."""
    wl = c2d(n=1, h=13, w=13, ci=2, co=3, kernel=3, stride=2, pad=1)  # 7 x 7 outputs
    for depth in range(9):
        sch = ps.Schedule(wl)
        c = sch.get_block("C")
        _, h, w, *_ = sch.get_loops(c)
        ho, hi = sch.split(h, [None, factors[0]])
        wo, wi = sch.split(w, [None, factors[1]])
        sch.reorder(ho, wo, hi, wi)
        loop = sch.get_loops(c)[depth]
        sch.compute_at(sch.get_block("P"), loop)
        assert_correct(sch, seed=depth)


# ---------------------------------------------------------------- reverse_compute_at


def test_reverse_compute_at_epilogue(golden):
    sch = small_cbr()
    _, _, w, *_ = sch.get_loops(sch.get_block("C"))
    sch.reverse_compute_at(sch.get_block("Y"), w)
    golden(str(sch.program))
    assert_correct(sch)


def test_reverse_compute_at_epilogue_in_partial_tiles(golden):
    sch = small_cbr()
    c = sch.get_block("C")
    _, _, w, co, *_ = sch.get_loops(c)
    _, coi = sch.split(co, [None, 2])
    wo, _ = sch.split(w, [None, 2])
    sch.reverse_compute_at(sch.get_block("Y"), wo)
    golden(str(sch.program))
    assert_correct(sch)


def test_multi_level_tiling_with_write_cache(golden):
    """MetaSchedule's CPU pattern: tile i and j, accumulate a tile in a local cache, write it
    back under the tile loop."""
    sch = ps.Schedule(gmm(b=1, n=8, m=8, k=8))
    c = sch.get_block("C")
    _, i, j, k = sch.get_loops(c)
    i0, i1 = sch.split(i, [2, 4])
    j0, j1 = sch.split(j, [2, 4])
    sch.reorder(i0, j0, k, i1, j1)
    wb = sch.cache_write(c, "local")
    sch.reverse_compute_at(wb, j0)
    golden(str(sch.program))
    assert_correct(sch)


@pytest.mark.parametrize("tiles", [(3, 5), (4, 4), (2, 7)])
def test_multi_level_tiling_partial_tiles_with_parallel_outer_loop(tiles):
    sch = ps.Schedule(gmm(b=1, n=10, m=13, k=6))
    c = sch.get_block("C")
    _, i, j, k = sch.get_loops(c)
    i0, i1 = sch.split(i, [None, tiles[0]])
    j0, j1 = sch.split(j, [None, tiles[1]])
    sch.reorder(i0, j0, k, i1, j1)
    wb = sch.cache_write(c, "local")
    sch.reverse_compute_at(wb, j0)
    sch.parallel(i0)
    assert block(sch, "C_wb").predicate is not None
    assert_correct(sch)


def test_cache_read_and_write_around_a_tiled_convolution():
    sch = small_cbr()
    c = sch.get_block("C")
    _, h, w, co, *_ = sch.get_loops(c)
    wo, _ = sch.split(w, [None, 2])
    copy = sch.cache_read(c, "P", "local")
    sch.compute_at(copy, wo)
    sch.compute_at(sch.get_block("P"), sch.get_loops(copy)[4])  # P feeds the copy now
    wb = sch.cache_write(c, "local")
    sch.reverse_compute_at(wb, wo)
    sch.reverse_compute_at(sch.get_block("Y"), h)
    assert_correct(sch)


def test_loop_rv_of_a_moved_block_is_not_reused():
    sch = ps.Schedule(gmm(b=1, n=4, m=4, k=4))
    c = sch.get_block("C")
    wb = sch.cache_write(c, "local")
    old = sch.get_loops(wb)
    sch.reverse_compute_at(wb, sch.get_loops(c)[1])
    with pytest.raises(ps.ScheduleError, match="no longer exists"):
        sch.parallel(old[0])


# ---------------------------------------------------------------- compute locations


def test_candidates_are_the_legal_loops_of_the_single_consumer():
    sch = small_c2d()
    assert location.compute_location_candidates(sch.program, "P") == [
        "n_1", "h_1", "w_1", "co", "rh", "rw", "rc"]
    assert location.compute_location_candidates(sch.program, "C") == []  # output
    assert location.compute_location_candidates(ps.lower(sfm(n=3, m=4)), "E") == []  # 2 consumers
    assert location.compute_location_candidates(ps.lower(nrm(n=3, m=4)), "S") == []  # no loops


def test_candidates_stop_above_a_fused_reduction():
    # Region analysis needs the inner loops to enter linearly; a fused rh/rw loop does not,
    # so the loops outside it are no candidates; the fused loop and those inside it are.
    sch = small_c2d()
    c = sch.get_block("C")
    _, h, w, co, rh, rw, rc = sch.get_loops(c)
    fused = sch.fuse(rh, rw)
    cands = location.compute_location_candidates(sch.program, "P")
    assert cands == [sch.get(fused), sch.get(rc)]


def test_sample_compute_location_then_compute_at():
    seen = set()
    for seed in range(8):
        sch = small_c2d(seed)
        p = sch.get_block("P")
        loc = sch.sample_compute_location(p)
        seen.add(sch.get(loc))
        sch.compute_at(p, loc)
        assert_correct(sch)
        again = ps.Trace.from_json(sch.trace.to_json()).replay(sch.workload)
        assert str(again.program) == str(sch.program)
    assert len(seen) >= 4


def test_compute_at_root_changes_nothing():
    sch = small_c2d()
    before = str(sch.program)
    p = sch.get_block("P")
    loc = sch.sample_compute_location(p, decision=-1)
    assert sch.get(loc) == ROOT
    sch.compute_at(p, loc)
    assert str(sch.program) == before
    assert str(sch.trace).splitlines()[-1] == "compute_at(b0, l1)"


def test_compute_at_inline_inlines():
    sch = small_c2d()
    if not inlining.can_inline(sch.program, "P"):
        pytest.skip("compute_inline not available")
    p = sch.get_block("P")
    loc = sch.sample_compute_location(p, decision=-2)
    assert sch.get(loc) == INLINE
    sch.compute_at(p, loc)
    assert tree.find_block(sch.program, "P") is None
    assert_correct(sch)


def test_stale_decision_falls_back_to_the_last_valid_location():
    sch = small_c2d()
    loc = sch.sample_compute_location(sch.get_block("P"), decision=100)
    assert sch.get(loc) == "rc"
    assert sch.trace.decision_at(1) == 6


# ---------------------------------------------------------------- compute_at errors


def test_compute_at_block_not_alone_in_its_nest():
    sch = small_c2d()
    c = sch.get_block("C")
    p = sch.get_block("P")
    n, h, w, *_ = sch.get_loops(c)
    sch.compute_at(p, w)
    expect_error(sch, sch.compute_at, p, h,
                 match=r"compute_at\(b1=block P, l3=loop h_1\): block P is not alone in its "
                       r"loop nest \(it shares it with C\)")


def test_compute_at_loop_without_consumer():
    sch = small_cbr()
    y = sch.get_block("Y")
    expect_error(sch, sch.compute_at, sch.get_block("P"), sch.get_loops(y)[1],
                 match=r"compute_at\(.*\): loop h_2 does not enclose any consumer of block P")


def test_compute_at_consumer_outside_the_loop():
    sch = ps.Schedule(sfm(n=3, m=4))
    s = sch.get_block("S")
    expect_error(sch, sch.compute_at, sch.get_block("E"), sch.get_loops(s)[0],
                 match=r"compute_at\(.*\): consumer Y of block E is not under loop i_2 \(it "
                       "would read uncomputed data\\)")


def test_compute_at_under_its_own_loop():
    sch = small_c2d()
    p = sch.get_block("P")
    expect_error(sch, sch.compute_at, p, sch.get_loops(p)[1],
                 match=r"compute_at\(.*\): block P is under loop h already")


def test_compute_at_non_affine_region():
    # A fused loop inside the target makes the read index non-linear in an inner loop.
    sch = small_c2d()
    c = sch.get_block("C")
    _, h, w, _, rh, rw, _ = sch.get_loops(c)
    sch.fuse(rh, rw)
    expect_error(sch, sch.compute_at, sch.get_block("P"), w,
                 match=r"compute_at\(.*\): the region of P read under loop w_1 is "
                       "not affine with constant extent")


def test_compute_at_under_a_fused_loop_is_legal():
    # Fused outer loops make the region's start non-affine (hw // W), which is fine.
    sch = small_c2d()
    c = sch.get_block("C")
    _, h, w, *_ = sch.get_loops(c)
    hw = sch.fuse(h, w)
    sch.compute_at(sch.get_block("P"), hw)
    assert_correct(sch)


def test_compute_at_output_block():
    sch = small_cbr()
    c = sch.get_block("C")
    expect_error(sch, sch.compute_at, sch.get_block("Y"), sch.get_loops(c)[1],
                 match=r"compute_at\(b1=block Y, l3=loop h_1\): block Y writes output Y; "
                       "computing only what consumers read would leave parts of it unwritten")


def test_compute_at_block_not_storing_at_its_iteration_variables():
    # No schedule makes such a producer; the pure function still refuses it.
    program = ps.lower(small_c2d().workload)
    path = tree.find_block(program, "P")
    p = tree.node_at(program, path)
    flipped = replace(p.body, indices=tuple(reversed(p.body.indices)))
    program = tree.replace_at(program, path, (replace(p, body=flipped),))
    with pytest.raises(ValueError, match="block P does not store P at its spatial iteration "
                                         "variables in order"):
        location.compute_at(program, "P", "w_1")


def test_compute_at_of_buffer_with_two_writers():
    # No schedule makes two writers of a copy; the pure function still refuses it. (The
    # second writer is a bare block at the root: only the check is exercised.)
    program, _ = caching.cache_read(ps.lower(gmm(b=1, n=2, m=2, k=2)), "C", "A", "local")
    path = tree.find_block(program, "A_local")
    copy = tree.node_at(program, path)
    program = tree.insert_at(program, (path[0] + 1,), (replace(copy, name="A_local_2"),))
    with pytest.raises(ValueError, match="A_local is also written by block A_local_2"):
        location.compute_at(program, "A_local", "k")


# ---------------------------------------------------------------- reverse_compute_at errors


def test_reverse_compute_at_epilogue_reading_a_unit_axis_at_zero():
    """An ONNX bias add reads the matmul at ``M[0, i, j]``: the batch axis has one value,
    so that read is the epilogue's own point, and the epilogue fuses into the tile."""
    from probsched.ir.compute import WorkloadBuilder, axes
    from probsched.ir.ops import reduce_sum

    wb = WorkloadBuilder("bmm_bias")
    a, w, bias = wb.input("A", (1, 8, 6)), wb.input("W", (6, 16)), wb.input("bias", (16,))
    b0, i, j, r = axes("b0 i j r")
    m = wb.compute("M", (b0, i, j), reduce_sum(a[0, i, r] * w[r, j]), shape=(1, 8, 16))
    wb.compute("Y", (b0, i, j), m[0, i, j] + bias[j], shape=(1, 8, 16))
    sch = ps.Schedule(wb.build())
    i_loop = sch.get_loops(sch.get_block("M"))[1]
    sch.reverse_compute_at(sch.get_block("Y"), i_loop)
    # under b0 and i, then its own loops over the region one row of i writes: 1 x 1 x 16
    assert len(sch.get_loops(sch.get_block("Y"))) == 5
    assert_correct(sch)


def test_reverse_compute_at_loop_without_producer():
    sch = small_cbr()
    p = sch.get_block("P")
    expect_error(sch, sch.reverse_compute_at, sch.get_block("Y"), sch.get_loops(p)[1],
                 match=r"reverse_compute_at\(.*\): loop h does not enclose any producer of "
                       "block Y")


def test_reverse_compute_at_non_elementwise_consumer():
    sch = small_c2d()
    p = sch.get_block("P")
    expect_error(sch, sch.reverse_compute_at, sch.get_block("C"), sch.get_loops(p)[1],
                 match=r"reverse_compute_at\(.*\): block C does not read P at its spatial "
                       r"iteration variables in order \(an elementwise consumer is needed\)")


def test_reverse_compute_at_loop_carrying_the_reduction():
    sch = small_cbr()
    c = sch.get_block("C")
    rh = sch.get_loops(c)[4]
    expect_error(sch, sch.reverse_compute_at, sch.get_block("Y"), rh,
                 match=r"reverse_compute_at\(.*\): loop rh carries the reduction of block C; "
                       "block Y would read partial results")


def test_reverse_compute_at_input_computed_after_the_loop():
    sch = ps.Schedule(sfm(n=3, m=4))
    e = sch.get_block("E")
    expect_error(sch, sch.reverse_compute_at, sch.get_block("Y"), sch.get_loops(e)[0],
                 match=r"reverse_compute_at\(.*\): block Y reads S, which block S computes "
                       "after loop i_1")


def test_reverse_compute_at_under_its_own_loop():
    sch = small_cbr()
    y = sch.get_block("Y")
    expect_error(sch, sch.reverse_compute_at, y, sch.get_loops(y)[0],
                 match=r"reverse_compute_at\(.*\): block Y is under loop n_2 already")


def test_reverse_compute_at_not_alone():
    sch = small_cbr()
    c = sch.get_block("C")
    y = sch.get_block("Y")
    _, h, w, *_ = sch.get_loops(c)
    sch.reverse_compute_at(y, w)
    expect_error(sch, sch.reverse_compute_at, y, h,
                 match=r"reverse_compute_at\(.*\): block Y is not alone in its loop nest")


def test_reverse_compute_at_block_whose_buffer_has_another_writer():
    # No schedule makes that either (decompose_reduction keeps the init in the nest); the
    # pure function refuses it.
    program = ps.lower(cbr(n=1, h=6, w=6, ci=2, co=3, kernel=3, stride=2, pad=1))
    path = tree.find_block(program, "Y")
    y = tree.node_at(program, path)
    program = tree.insert_at(program, (0,), (replace(y, name="Y_other"),))
    with pytest.raises(ValueError, match="Y is also written by block Y_other"):
        location.reverse_compute_at(program, "Y", "w_1")


def test_reverse_compute_at_buffer_written_outside_the_loop():
    sch = ps.Schedule(gmm(b=1, n=4, m=4, k=4))
    c = sch.get_block("C")
    wb = sch.cache_write(c, "local")
    sch.decompose_reduction(c, sch.get_loops(c)[3])
    k = sch.get_loops(c)[3]
    # C_init writes C_local outside k (C at k carries its reduction too; that is checked
    # after who writes the buffer).
    expect_error(sch, sch.reverse_compute_at, wb, k,
                 match=r"reverse_compute_at\(.*\): C_local is also written by block C_init, "
                       "outside loop k")


# ---------------------------------------------------------------- property


@given(
    st.integers(1, 7), st.integers(1, 8), st.sampled_from(["none", "reorder", "fuse"]),
    st.integers(0, 100), st.integers(0, 3),
)
def test_random_tiles_and_padding_location_compile_and_match(fh, fw, order, pick, shape):
    """Random split factors of the convolution's output rows and columns (tile loops
    reordered outside, or fused too), then the padding computed at a random loop of the
    convolution when that is legal (and refused when it is not)."""
    h, w, kernel, stride = [(9, 11, 3, 2), (8, 7, 3, 1), (10, 10, 5, 2), (7, 12, 2, 3)][shape]
    sch = ps.Schedule(c2d(n=1, h=h, w=w, ci=2, co=3, kernel=kernel, stride=stride, pad=1))
    c = sch.get_block("C")
    _, lh, lw, *_ = sch.get_loops(c)
    ho, hi = sch.split(lh, [None, fh])
    wo, wi = sch.split(lw, [None, fw])
    if order != "none":
        sch.reorder(ho, wo, hi, wi)
    if order == "fuse":
        sch.fuse(ho, wo)
    loops = sch.get_loops(c)
    legal = location.compute_location_candidates(sch.program, "P")
    for lp in loops:  # the candidates are exactly the loops compute_at accepts
        try:
            location.compute_at(sch.program, "P", sch.get(lp))
        except ValueError:
            assert sch.get(lp) not in legal
        else:
            assert sch.get(lp) in legal
    loop = loops[pick % len(loops)]
    if sch.get(loop) in legal:
        sch.compute_at(sch.get_block("P"), loop)
    else:
        with pytest.raises(ps.ScheduleError):
            sch.compute_at(sch.get_block("P"), loop)
    assert_correct(sch, seed=pick)


def test_reverse_compute_at_refuses_a_region_with_holes():
    # An inner tile loop reordered outside its outer one: per iteration of that loop the
    # written columns are strided, and copying their bounding box would copy garbage.
    sch = ps.Schedule(ps.workloads.gmm(b=1, n=8, m=32, k=4))
    c = sch.get_block("C")
    _, i, j, _ = sch.get_loops(c)
    j0, j1, j2 = sch.split(j, [2, 2, 8])
    sch.reorder(j1, i, j0)
    wb = sch.cache_write(c, "local")
    expect_error(sch, sch.reverse_compute_at, wb, j1, match="has holes")
