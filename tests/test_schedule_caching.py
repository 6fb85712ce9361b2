"""cache_read and cache_write: golden programs, one test per documented error, and compiled
results against the reference on the suite."""

from __future__ import annotations

from dataclasses import replace

import pytest

import probsched as ps
from probsched.ir import tree
from probsched.ir.expr import Var
from probsched.ir.reference import check_outputs, random_inputs, reference
from probsched.schedule.primitives import caching
from probsched.workloads import SUITE, c2d, cbr, gmm, nrm


def assert_correct(sch: ps.Schedule, seed: int = 0) -> None:
    inputs = random_inputs(sch.workload, seed=seed)
    ok, err, msg = check_outputs(ps.compile(sch)(*inputs), reference(sch.workload, *inputs))
    assert ok, f"{msg} (max abs err {err})\n{sch.program}"


def small_gmm() -> ps.Schedule:
    return ps.Schedule(gmm(b=1, n=8, m=8, k=8))


def small_c2d():
    return c2d(n=1, h=6, w=6, ci=2, co=3, kernel=3, stride=2, pad=1)


# ---------------------------------------------------------------- golden programs


def test_cache_read_by_name(golden):
    sch = small_gmm()
    copy = sch.cache_read(sch.get_block("C"), "B", "local")
    assert sch.get(copy) == "B_local"
    golden(str(sch.program))
    assert_correct(sch)


def test_cache_read_by_index_counts_reads_in_order_of_appearance():
    sch = small_gmm()
    c = sch.get_block("C")
    assert caching.reads_in_order(tree.node_at(sch.program, tree.find_block(sch.program, "C"))) \
        == ["A", "B"]
    assert sch.get(sch.cache_read(c, 0, "local")) == "A_local"
    assert sch.get(sch.cache_read(c, 1, "global")) == "B_global"
    assert_correct(sch)


def test_cache_read_global_of_intermediate(golden):
    sch = ps.Schedule(small_c2d())
    copy = sch.cache_read(sch.get_block("C"), "P", "global")
    assert sch.get(copy) == "P_global"
    golden(str(sch.program))
    assert_correct(sch)


def test_cache_read_of_scalar_buffer_is_a_block_without_loops(golden):
    sch = ps.Schedule(nrm(n=3, m=5))
    sch.cache_read(sch.get_block("Y"), "S", "local")
    golden(str(sch.program))
    assert_correct(sch)


def test_cache_read_twice_gets_fresh_names():
    sch = small_gmm()
    c = sch.get_block("C")
    assert sch.get(sch.cache_read(c, "A", "local")) == "A_local"
    # C now reads A_local; caching that again makes a copy of the copy.
    assert sch.get(sch.cache_read(c, "A_local", "local")) == "A_local_local"
    assert_correct(sch)


def test_cache_write(golden):
    sch = small_gmm()
    wb = sch.cache_write(sch.get_block("C"), "local")
    assert sch.get(wb) == "C_wb"
    golden(str(sch.program))
    assert_correct(sch)


def test_cache_write_of_intermediate_global(golden):
    sch = ps.Schedule(cbr(n=1, h=6, w=6, ci=2, co=3, kernel=3, stride=2, pad=1))
    wb = sch.cache_write(sch.get_block("P"), "global")
    assert sch.get(wb) == "P_wb"
    golden(str(sch.program))
    assert_correct(sch)


def test_cache_read_and_write_are_recorded_and_replay():
    sch = small_gmm()
    c = sch.get_block("C")
    sch.cache_read(c, 1, "local")
    sch.cache_write(c, "local")
    text = str(sch.trace)
    assert 'cache_read(b0, 1, "local")' in text and 'cache_write(b0, "local")' in text
    again = ps.Trace.from_json(sch.trace.to_json()).replay(sch.workload)
    assert str(again.program) == str(sch.program)


# ---------------------------------------------------------------- errors


def expect_error(sch: ps.Schedule, fn, *args, match: str) -> None:
    before = str(sch.program)
    with pytest.raises(ps.ScheduleError, match=match):
        fn(*args)
    assert str(sch.program) == before


def test_cache_read_of_a_buffer_not_read():
    sch = small_gmm()
    c = sch.get_block("C")
    expect_error(sch, sch.cache_read, c, "X", "local",
                 match=r"cache_read\(b0=block C, 'X', 'local'\): block C does not read buffer "
                       r"'X'; it reads A, B")


def test_cache_read_of_own_output_is_not_a_read():
    sch = small_gmm()
    expect_error(sch, sch.cache_read, sch.get_block("C"), "C", "local",
                 match="block C does not read buffer 'C'")


def test_cache_read_index_out_of_range():
    sch = small_gmm()
    expect_error(sch, sch.cache_read, sch.get_block("C"), 2, "local",
                 match=r"cache_read\(.*\): block C reads 2 buffer\(s\) \(A, B\); there is no "
                       "read 2")


@pytest.mark.parametrize("prim", ["cache_read", "cache_write"])
def test_unknown_scope(prim):
    sch = small_gmm()
    c = sch.get_block("C")
    args = (c, "A", "texture") if prim == "cache_read" else (c, "texture")
    expect_error(sch, getattr(sch, prim), *args,
                 match=rf"{prim}\(.*'texture'\): unknown scope 'texture'; expected one of "
                       "local, global, shared")


def test_cache_read_of_buffer_written_in_the_same_nest():
    sch = ps.Schedule(small_c2d())
    c = sch.get_block("C")
    sch.compute_at(sch.get_block("P"), sch.get_loops(c)[2])
    expect_error(sch, sch.cache_read, c, "P", "local",
                 match=r"cache_read\(.*\): P is written by block P in the loop nest of block C; "
                       "the copy would come before it")


def test_cache_write_of_buffer_written_by_another_block():
    sch = small_gmm()
    c = sch.get_block("C")
    sch.decompose_reduction(c, sch.get_loops(c)[3])
    expect_error(sch, sch.cache_write, c, "local",
                 match=r"cache_write\(.*\): C is also written by block C_init")


def test_cache_write_of_buffer_read_in_the_same_nest():
    sch = ps.Schedule(cbr(n=1, h=6, w=6, ci=2, co=3, kernel=3, stride=2, pad=1))
    c = sch.get_block("C")
    sch.reverse_compute_at(sch.get_block("Y"), sch.get_loops(c)[2])
    expect_error(sch, sch.cache_write, c, "local",
                 match=r"cache_write\(.*\): block Y reads C in the loop nest of block C, "
                       "before the write-back")


def test_cache_write_of_a_block_writing_an_input():
    # No schedule makes such a block; the pure function still refuses it.
    program = ps.lower(gmm(b=1, n=2, m=2, k=2))
    path = tree.find_block(program, "C")
    block = tree.node_at(program, path)
    bad = replace(block, body=replace(block.body, buffer="A"), init=None, reduction=None)
    program = tree.replace_at(program, path, (bad,))
    with pytest.raises(ValueError, match="block C writes input A"):
        caching.cache_write(program, "C", "local")


def test_unknown_block():
    with pytest.raises(ValueError, match="no block Z"):
        caching.cache_write(ps.lower(gmm(b=1, n=2, m=2, k=2)), "Z", "local")


# ---------------------------------------------------------------- semantics on the suite


@pytest.mark.parametrize("name", sorted(SUITE))
def test_cache_every_read_and_write_of_the_suite(name):
    builder, _, small = SUITE[name]
    sch = ps.Schedule(builder(**small))
    stages = [s.name for s in sch.workload.stages]
    for stage in stages:
        block = sch.get_block(stage)
        blk = tree.node_at(sch.program, tree.find_block(sch.program, stage))
        for k in range(len(caching.reads_in_order(blk))):
            sch.cache_read(block, k, "local" if k % 2 == 0 else "global")
        sch.cache_write(block, "local")
    originals = {t.name for t in sch.workload.inputs} | set(stages)
    for stage in stages:  # every stage now reads copies and writes a cache
        blk = tree.node_at(sch.program, tree.find_block(sch.program, stage))
        assert blk.body.buffer not in originals
        assert not set(caching.reads_in_order(blk)) & originals
    assert_correct(sch)


def test_copy_blocks_store_at_their_iteration_variables():
    sch = small_gmm()
    c = sch.get_block("C")
    for new in (sch.cache_read(c, 0, "local"), sch.cache_write(c, "local")):
        blk = tree.node_at(sch.program, tree.find_block(sch.program, sch.get(new)))
        assert blk.body.indices == tuple(Var(iv.name) for iv in blk.iter_vars)
