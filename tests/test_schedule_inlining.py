"""compute_inline and reverse_compute_inline: printed programs, legality errors, and results
that match the reference."""

from __future__ import annotations

from dataclasses import replace

import pytest

import probsched as ps
from probsched.errors import ScheduleError
from probsched.ir import tree
from probsched.ir.compute import WorkloadBuilder, axes
from probsched.ir.expr import Var
from probsched.ir.ops import exp, maximum
from probsched.ir.program import Loop
from probsched.ir.reference import check_outputs, random_inputs, reference
from probsched.schedule.primitives import inlining
from probsched.workloads import SUITE, c1d, c2d, cbr, gmm, sfm


def assert_correct(sch: ps.Schedule, seed: int = 0) -> None:
    wl = sch.workload
    inputs = random_inputs(wl, seed=seed)
    ok, err, msg = check_outputs(ps.compile(sch)(*inputs), reference(wl, *inputs))
    assert ok, f"{msg} (max abs err {err})\n{sch.program}"


def chain(n: int = 4, m: int = 6, *, transpose: bool = False, c_shape=None):
    """``B = A * 2``, then ``C = max(B + bias, 0)`` (``C[j, i]`` when ``transpose``)."""
    wb = WorkloadBuilder("chain", {"n": n, "m": m})
    A, bias = wb.input("A", (n, m)), wb.input("bias", (m,))
    i, j = axes("i j")
    B = wb.compute("B", (i, j), A[i, j] * 2.0)
    index = (j, i) if transpose else (i, j)
    wb.compute("C", index, maximum(B[i, j] + bias[j], 0.0), shape=c_shape)
    return wb.build()


def three_stage(shared: bool):
    """``B = A * 2``, ``C = B + 1``, then ``D = C * B`` (``shared``) or ``D = C * A``."""
    wb = WorkloadBuilder("three")
    A = wb.input("A", (3, 5))
    i, j = axes("i j")
    B = wb.compute("B", (i, j), A[i, j] * 2.0)
    C = wb.compute("C", (i, j), B[i, j] + 1.0)
    wb.compute("D", (i, j), C[i, j] * (B[i, j] if shared else A[i, j]))
    return wb.build()


def small(name: str):
    builder, _, shape = SUITE[name]
    return builder(**shape)


def tiny_c2d():
    return c2d(n=1, h=5, w=5, ci=2, co=3, kernel=3, stride=1, pad=1)


# ---------------------------------------------------------------- compute_inline


def test_compute_inline_c2d_padding(golden):
    sch = ps.Schedule(tiny_c2d())
    sch.compute_inline(sch.get_block("P"))
    golden(str(sch.program))
    assert_correct(sch)


def test_compute_inline_into_two_readers(golden):
    sch = ps.Schedule(sfm(n=4, m=8))
    sch.compute_inline(sch.get_block("E"))  # read by the reduction S and by Y
    golden(str(sch.program))
    assert_correct(sch)


def test_compute_inline_of_split_producer_removes_its_loops(golden):
    sch = ps.Schedule(c1d(n=1, l=7, ci=2, co=3, kernel=3, stride=2, pad=1))
    p = sch.get_block("P")
    _, lv, _ = sch.get_loops(p)
    sch.split(lv, [None, 4])  # a guarded partial tile
    sch.compute_inline(p)
    golden(str(sch.program))
    assert_correct(sch)


def test_compute_inline_chain_of_elementwise_stages(golden):
    sch = ps.Schedule(three_stage(shared=True))
    sch.compute_inline(sch.get_block("B"))
    sch.compute_inline(sch.get_block("C"))
    golden(str(sch.program))
    assert_correct(sch)


@pytest.mark.parametrize("name", ["C1D", "C2D", "DEP", "CBR"])
def test_compute_inline_padding_matches_reference(name):
    sch = ps.Schedule(small(name))
    sch.compute_inline(sch.get_block("P"))
    assert "P" not in {b.name for b in sch.program.buffers}
    assert_correct(sch)


def test_compute_inline_then_vectorize_and_parallel():
    sch = ps.Schedule(small("SFM"))
    sch.compute_inline(sch.get_block("E"))
    i, j = sch.get_loops(sch.get_block("Y"))
    sch.parallel(i)
    sch.vectorize(j)
    assert_correct(sch)


@pytest.mark.parametrize(
    "make,block,reason",
    [
        (lambda: sfm(n=4, m=8), "M", "block M is a reduction; only non-reduction blocks"),
        (lambda: sfm(n=4, m=8), "Y", "block Y writes the output Y; only intermediates"),
        (lambda: gmm(b=1, n=2, m=2, k=2), "C", "block C writes the output C"),
    ],
)
def test_compute_inline_errors(make, block, reason):
    sch = ps.Schedule(make())
    b = sch.get_block(block)
    before, steps = str(sch.program), len(sch.trace.instructions)
    with pytest.raises(ScheduleError, match=f"compute_inline\\(b0=block {block}\\): {reason}"):
        sch.compute_inline(b)
    assert str(sch.program) == before and len(sch.trace.instructions) == steps
    assert not inlining.can_inline(sch.program, block)


def _permuted(program, name):
    """The block ``name`` with its iteration variables listed in reverse order: the same
    meaning, but its store indices are its iteration variables in another order."""
    path = tree.find_block(program, name)
    b = tree.node_at(program, path)
    new = replace(b, iter_vars=b.iter_vars[::-1], bindings=b.bindings[::-1])
    return tree.replace_at(program, path, (new,))


def _diagonal(program, name):
    """The block ``name`` storing at ``[i, i]``: not its iteration variables each once."""
    path = tree.find_block(program, name)
    b = tree.node_at(program, path)
    i = b.body.indices[0]
    new = replace(b, body=replace(b.body, indices=(i, i)))
    return tree.replace_at(program, path, (new,))


def test_compute_inline_store_in_another_order(golden):
    wl = sfm(n=3, m=5)
    program = inlining.compute_inline(_permuted(ps.Schedule(wl).program, "E"), "E")
    golden(str(program))
    assert_correct(ps.Schedule(wl, program=program))


def test_compute_inline_error_store_not_iter_vars():
    program = _diagonal(ps.Schedule(sfm(n=4, m=4)).program, "E")
    with pytest.raises(ValueError, match="block E stores E at indices that are not its "
                       "iteration variables, each once"):
        inlining.compute_inline(program, "E")


def test_compute_inline_error_second_writer():
    program = ps.Schedule(sfm(n=4, m=8)).program
    path = tree.find_block(program, "E")
    nest = program.body[path[0]]
    copy = tree.map_blocks(nest, lambda b: replace(b, name="E2"))
    program = tree.insert_at(program, (path[0] + 1,), (copy,))
    with pytest.raises(ValueError, match="buffer E is also written by block E2"):
        inlining.compute_inline(program, "E")


def test_compute_inline_unknown_block():
    with pytest.raises(ValueError, match="no block Q"):
        inlining.compute_inline(ps.Schedule(sfm(n=2, m=2)).program, "Q")


def test_can_inline_matches_compute_inline():
    for name, (builder, _, shape) in SUITE.items():
        program = ps.Schedule(builder(**shape)).program
        for block in program.blocks():
            ok = inlining.can_inline(program, block.name)
            try:
                inlining.compute_inline(program, block.name)
                done = True
            except ValueError:
                done = False
            assert ok == done, (name, block.name)


def test_sample_compute_location_offers_inline():
    sch = ps.Schedule(tiny_c2d())
    loc = sch.sample_compute_location(sch.get_block("P"), decision=-2)
    assert sch.get(loc) == ps.schedule.INLINE
    sch.compute_at(sch.get_block("P"), loc)
    assert [b.name for b in sch.program.blocks()] == ["C"]
    assert_correct(sch)


# ---------------------------------------------------------------- reverse_compute_inline


def test_reverse_compute_inline_epilogue(golden):
    sch = ps.Schedule(chain())
    sch.reverse_compute_inline(sch.get_block("C"))
    golden(str(sch.program))
    assert_correct(sch)


def test_reverse_compute_inline_transposed_store(golden):
    sch = ps.Schedule(chain(n=3, m=5, transpose=True))
    sch.reverse_compute_inline(sch.get_block("C"))
    golden(str(sch.program))
    assert_correct(sch)


def test_reverse_compute_inline_keeps_producer_loops_and_guards(golden):
    sch = ps.Schedule(chain(n=5, m=7))
    b, c = sch.get_block("B"), sch.get_block("C")
    _, j = sch.get_loops(b)
    jo, ji = sch.split(j, [None, 4])
    ci, cj = sch.get_loops(c)
    sch.split(ci, [None, 2])  # the consumer's loops go away whatever they are
    sch.reverse_compute_inline(c)
    golden(str(sch.program))
    sch.vectorize(ji)
    assert_correct(sch)


def test_reverse_compute_inline_reads_an_earlier_intermediate(golden):
    # D reads C (the producer) and A; after inlining B, C, D fold into one stage.
    sch = ps.Schedule(three_stage(shared=False))
    sch.reverse_compute_inline(sch.get_block("D"))
    sch.reverse_compute_inline(sch.get_block("C"))
    golden(str(sch.program))
    assert_correct(sch)


def test_reverse_compute_inline_cbr_after_inlining_padding_matches_reference():
    # cbr's epilogue consumes the convolution, a reduction: refused; the padding folds.
    sch = ps.Schedule(small("CBR"))
    with pytest.raises(ScheduleError, match="producer C is a reduction: cannot fold"):
        sch.reverse_compute_inline(sch.get_block("Y"))
    sch.compute_inline(sch.get_block("P"))
    assert_correct(sch)


@pytest.mark.parametrize(
    "make,block,reason",
    [
        (lambda: cbr(n=1, h=5, w=5, ci=2, co=3, kernel=3, stride=1, pad=1), "Y",
         "producer C is a reduction: cannot fold into a reduction; use reverse_compute_at"),
        (lambda: sfm(n=4, m=8), "S", "block S is a reduction; only an elementwise consumer"),
        (lambda: sfm(n=4, m=8), "M", "block M is a reduction"),
        (lambda: chain(), "B", "block B reads no buffer written by another block"),
        (lambda: three_stage(shared=True), "C", "buffer B is also read by block D"),
        (lambda: chain(c_shape=(3, 6)), "C",
         "iteration variable i of C has extent 3 but i of B has 4"),
    ],
)
def test_reverse_compute_inline_errors(make, block, reason):
    sch = ps.Schedule(make())
    b = sch.get_block(block)
    before, steps = str(sch.program), len(sch.trace.instructions)
    with pytest.raises(ScheduleError, match=f"reverse_compute_inline\\(b0=block {block}\\): "
                       + reason.replace("(", "\\(").replace(")", "\\)")):
        sch.reverse_compute_inline(b)
    assert str(sch.program) == before and len(sch.trace.instructions) == steps


def test_reverse_compute_inline_error_decomposed_reduction():
    sch = ps.Schedule(cbr(n=1, h=5, w=5, ci=2, co=3, kernel=3, stride=1, pad=1))
    c = sch.get_block("C")
    sch.decompose_reduction(c, sch.get_loops(c)[0])
    with pytest.raises(ScheduleError, match="producer C is a reduction"):
        sch.reverse_compute_inline(sch.get_block("Y"))


def _consumer_reading(expr_of):
    """A chain whose consumer C computes ``expr_of(B, A, i, j)``."""
    wb = WorkloadBuilder("odd")
    A = wb.input("A", (4, 4))
    i, j = axes("i j")
    B = wb.compute("B", (i, j), A[i, j] * 2.0)
    wb.compute("C", (i, j), expr_of(B, A, i, j))
    return wb.build()


@pytest.mark.parametrize(
    "expr_of,reason",
    [
        (lambda B, A, i, j: B[i, j] + B[j, i], "block C reads B at different indices"),
        (lambda B, A, i, j: B[j, j] + A[i, j], r"block C reads B\[j, j\]: the indices must be"),
        (lambda B, A, i, j: B[i, 0] + A[i, j], r"block C reads B\[i, 0\]: the indices must be"),
    ],
)
def test_reverse_compute_inline_errors_on_indexing(expr_of, reason):
    program = ps.Schedule(_consumer_reading(expr_of)).program
    with pytest.raises(ValueError, match=reason):
        inlining.reverse_compute_inline(program, "C")


def test_reverse_compute_inline_error_producer_store_not_iter_vars():
    program = _diagonal(ps.Schedule(chain(n=4, m=4)).program, "B")
    with pytest.raises(ValueError, match="producer B stores B at indices that are not its "
                       "iteration variables, each once"):
        inlining.reverse_compute_inline(program, "C")


def test_reverse_compute_inline_twice_through_transposes(golden):
    # B[i, j]; C[j, i] = exp(B[i, j]) + bias[j]; D[i, j] = max(C[j, i], 0) + A[i, j]:
    # after the first fold, B's block stores C transposed; the second fold follows that.
    wb = WorkloadBuilder("transposes")
    A, bias = wb.input("A", (3, 5)), wb.input("bias", (5,))
    i, j = axes("i j")
    B = wb.compute("B", (i, j), A[i, j] * 2.0)
    C = wb.compute("C", (j, i), exp(B[i, j]) + bias[j])
    wb.compute("D", (i, j), maximum(C[j, i], 0.0) + A[i, j])
    sch = ps.Schedule(wb.build())
    sch.reverse_compute_inline(sch.get_block("C"))
    sch.reverse_compute_inline(sch.get_block("D"))
    golden(str(sch.program))
    assert_correct(sch)


def test_reverse_compute_inline_into_permuted_producer(golden):
    wl = chain(n=3, m=5)
    program = inlining.reverse_compute_inline(_permuted(ps.Schedule(wl).program, "B"), "C")
    golden(str(program))
    assert_correct(ps.Schedule(wl, program=program))


def test_reverse_compute_inline_error_other_read_not_complete():
    # D reads B and C; put C's block inside B's nest (as compute_at would): then B is not
    # complete before C's nest starts.
    wb = WorkloadBuilder("late")
    A = wb.input("A", (3, 4))
    i, j = axes("i j")
    B = wb.compute("B", (i, j), A[i, j] * 2.0)
    C = wb.compute("C", (i, j), A[i, j] + 1.0)
    wb.compute("D", (i, j), B[i, j] * C[i, j])
    program = ps.Schedule(wb.build()).program
    c_path = tree.find_block(program, "C")
    c = tree.node_at(program, c_path)
    c = replace(c, bindings=(Var("i"), Var("j")))
    program = inlining.remove_block(program, c_path)
    j_loop = tree.node_at(program, (0, 0))
    assert isinstance(j_loop, Loop) and j_loop.var == "j"
    program = tree.replace_at(program, (0, 0), (replace(j_loop, body=(*j_loop.body, c)),))
    with pytest.raises(ValueError, match="block D also reads B, written by block B not before "
                       "producer C's loop nest"):
        inlining.reverse_compute_inline(program, "D")
