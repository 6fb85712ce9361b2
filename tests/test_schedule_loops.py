"""Loop primitives and queries: golden before/after programs, one test per documented error,
and illegal steps leaving the schedule as it was."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

import probsched as ps
from probsched.ir.compute import WorkloadBuilder, axes
from probsched.ir.ops import reduce_sum
from probsched.ir.reference import check_outputs, random_inputs, reference
from probsched.schedule import RV
from probsched.workloads import gmm, sfm


def assert_matches(sch: ps.Schedule) -> None:
    inputs = random_inputs(sch.workload)
    ok, err, msg = check_outputs(ps.compile(sch)(*inputs), reference(sch.workload, *inputs))
    assert ok, f"{msg}\n{sch.program}"


def check_step(golden, wl, step) -> ps.Schedule:
    """Run ``step(sch, *loops of the last block)``; golden: its trace and the program before
    and after. The result must still match the reference."""
    sch = ps.Schedule(wl, seed=0)
    before = str(sch.program)
    step(sch)
    golden(f"trace:\n{sch.trace}\n\nbefore:\n{before}\n\nafter:\n{sch.program}")
    assert_matches(sch)
    return sch


def gmm_loops(sch):
    return sch.get_loops(sch.get_block("C"))


# ---------------------------------------------------------------- queries


def test_get_block_and_get_loops(golden):
    sch = ps.Schedule(gmm(b=1, n=8, m=6, k=4))
    before = str(sch.program)
    c = sch.get_block("C")
    loops = sch.get_loops(c)
    assert [sch.get(lp) for lp in loops] == ["b", "i", "j", "k"]
    assert sch.get(c) == "C" and str(sch.program) == before  # queries change nothing
    golden(str(sch.trace))


def test_get_producers_and_get_consumers(golden):
    sch = ps.Schedule(sfm(n=4, m=6))
    names = {}
    for stage in ("M", "E", "S", "Y"):
        b = sch.get_block(stage)
        names[stage] = ([sch.get(p) for p in sch.get_producers(b)],
                        [sch.get(c) for c in sch.get_consumers(b)])
    assert names == {
        "M": ([], ["E"]),
        "E": (["M"], ["S", "Y"]),
        "S": (["E"], ["Y"]),
        "Y": (["E", "S"], []),
    }
    golden(str(sch.trace))


# ---------------------------------------------------------------- loop primitives


def test_split_dividing(golden):
    def step(sch):
        _, i, j, _ = gmm_loops(sch)
        sch.split(i, [None, 4])
        sch.split(j, [3, 1, 2])

    check_step(golden, gmm(b=1, n=8, m=6, k=4), step)


def test_split_partial_tile_is_guarded(golden):
    def step(sch):
        _, i, j, k = gmm_loops(sch)
        sch.split(i, [None, 3])  # 7 = 3 * 3 - 2: a guard
        sch.split(k, [2, None, 2])  # 5 -> 2 * 2 * 2
        sch.split(j, [4, 2])  # 6 < 8: a guard

    check_step(golden, gmm(b=1, n=7, m=6, k=5), step)


def test_split_by_sampled_tiles(golden):
    def step(sch):
        _, i, _, _ = gmm_loops(sch)
        sch.split(i, sch.sample_perfect_tile(i, 3, 4, decision=[2, 2, 4]))

    check_step(golden, gmm(b=1, n=16, m=3, k=2), step)


def test_fuse(golden):
    def step(sch):
        b, i, j, _ = gmm_loops(sch)
        sch.fuse(b, i, j)

    check_step(golden, gmm(b=2, n=3, m=5, k=4), step)


def test_reorder(golden):
    def step(sch):
        _, i, j, k = gmm_loops(sch)
        sch.reorder(k, j, i)  # the reduction loop outermost: init still runs first

    check_step(golden, gmm(b=1, n=3, m=5, k=4), step)


def test_parallel(golden):
    def step(sch):
        _, i, j, _ = gmm_loops(sch)
        sch.parallel(sch.fuse(i, j))

    check_step(golden, gmm(b=1, n=6, m=5, k=4), step)


def test_vectorize(golden):
    def step(sch):
        _, _, j, _ = gmm_loops(sch)
        _, ji = sch.split(j, [None, 8])
        sch.vectorize(ji)

    check_step(golden, gmm(b=1, n=3, m=20, k=4), step)


def test_unroll(golden):
    def step(sch):
        _, i, _, k = gmm_loops(sch)
        sch.unroll(k)
        sch.unroll(i)

    check_step(golden, gmm(b=1, n=3, m=2, k=4), step)


def test_annotate(golden):
    def step(sch):
        _, i, j, _ = gmm_loops(sch)
        sch.annotate(i, "pragma_auto_unroll_max_step", 16)
        sch.annotate(i, "note", "hot")
        sch.annotate(i, "pragma_auto_unroll_max_step", 4)  # a key set again is replaced
        sch.annotate(j, "unroll_max_step", sch.sample_categorical([2, 4], [0.5, 0.5],
                                                                  decision=0))

    check_step(golden, gmm(b=1, n=3, m=2, k=4), step)


def test_a_tiled_gmm(golden):
    """The primitives together: a register tile, parallel, vectorized, unrolled."""

    def step(sch):
        b, i, j, k = gmm_loops(sch)
        io, ii = sch.split(i, [None, 4])
        jo, ji = sch.split(j, [None, 8])
        ko, ki = sch.split(k, [None, 2])
        sch.reorder(io, jo, ko, ki, ii, ji)
        sch.parallel(sch.fuse(b, io, jo))
        sch.unroll(ii)
        sch.vectorize(ji)

    check_step(golden, gmm(b=1, n=10, m=19, k=5), step)


# ---------------------------------------------------------------- errors


def two_statement_program():
    """SFM's E and Y nests under E's loop ``i_1`` (hand-built: a loop holding two loops)."""
    wl = sfm(n=4, m=6)
    prog = ps.lower(wl)
    e_nest, y_nest = prog.body[1], prog.body[3]  # loops i_1 and i_3
    y_j = ps.ir.tree.substitute_loops(y_nest.body[0], {"i_3": ps.ir.expr.Var("i_1")})
    merged = replace(e_nest, body=(*e_nest.body, y_j))
    return wl, prog.with_body((prog.body[0], merged, prog.body[2]))


def _wl():
    return gmm(b=1, n=16, m=12, k=8)


def _removed_by_split(sch, loops):
    sch.split(loops[1], [None, 4])
    return loops[1]


def _split_deeper_than_64(sch, loops):
    inner = loops[3]
    for _ in range(60):  # 4 loops, one more per split: 64
        inner = sch.split(inner, [None, 1])[1]
    sch.split(inner, [None, 1])


# (id, call on (sch, block C, loops [b, i, j, k]), expected message)
ERRORS = [
    ("split-too-small", lambda s, c, lp: s.split(lp[1], [3, 4]),
     "split(l2=loop i, [3, 4]): factors [3, 4] multiply to 12 < extent 16"),
    ("split-zero-factor", lambda s, c, lp: s.split(lp[1], [0, None]),
     "split(l2=loop i, [0, None]): factor 0 is not a positive integer"),
    ("split-negative-factor", lambda s, c, lp: s.split(lp[1], [4, -4]),
     "split(l2=loop i, [4, -4]): factor -4 is not a positive integer"),
    ("split-float-factor", lambda s, c, lp: s.split(lp[1], [2.5, None]),
     "split(l2=loop i, [2.5, None]): argument 2, 'factors': expected an integer or a sampled "
     "value, got 2.5"),
    ("split-bool-factor", lambda s, c, lp: s.split(lp[1], [True, None]),
     "expected an integer or a sampled value, got True"),
    ("split-two-nones", lambda s, c, lp: s.split(lp[1], [None, None]),
     "split(l2=loop i, [None, None]): at most one factor may be None"),
    ("split-one-factor", lambda s, c, lp: s.split(lp[1], [16]),
     "split(l2=loop i, [16]): split needs at least two factors"),
    ("split-not-a-list", lambda s, c, lp: s.split(lp[1], 4),
     "split(l2=loop i, 4): argument 2, 'factors': expected a list"),
    ("split-block-as-loop", lambda s, c, lp: s.split(c, [None, 2]),
     "split(b0=block C, [None, 2]): argument 1 is not a loop of this schedule"),
    ("fuse-one-loop", lambda s, c, lp: s.fuse(lp[1]),
     "fuse(l2=loop i): fuse needs at least two loops"),
    ("fuse-twice", lambda s, c, lp: s.fuse(lp[1], lp[1]),
     "fuse(l2=loop i, l2=loop i): a loop is given twice"),
    ("fuse-not-adjacent", lambda s, c, lp: s.fuse(lp[0], lp[2]),
     "fuse(l1=loop b, l3=loop j): fused loops must be given outermost first, each directly "
     "inside the previous one"),
    ("fuse-inner-first", lambda s, c, lp: s.fuse(lp[2], lp[1]),
     "fuse(l3=loop j, l2=loop i): fused loops must be given outermost first"),
    ("reorder-twice", lambda s, c, lp: s.reorder(lp[3], lp[3]),
     "reorder(l4=loop k, l4=loop k): a loop is given twice"),
    ("parallel-reduction", lambda s, c, lp: s.parallel(lp[3]),
     "parallel(l4=loop k): loop k carries the reduction of block C; it cannot be parallel"),
    ("vectorize-reduction", lambda s, c, lp: s.vectorize(lp[3]),
     "vectorize(l4=loop k): loop k carries the reduction of block C; it cannot be vectorized"),
    ("parallel-fused-reduction", lambda s, c, lp: s.parallel(s.fuse(lp[2], lp[3])),
     "parallel(l5=loop j_k_fused): loop j_k_fused carries the reduction of block C"),
    ("parallel-in-vectorized", lambda s, c, lp: (s.vectorize(lp[1]), s.parallel(lp[2])),
     "parallel(l3=loop j): loop j is inside vectorized loop i"),
    ("loop-removed-by-split", lambda s, c, lp: s.parallel(_removed_by_split(s, lp)),
     "parallel(l2=loop i): loop i no longer exists (a primitive replaced it)"),
    ("loop-removed-by-fuse", lambda s, c, lp: (s.fuse(lp[1], lp[2]), s.reorder(lp[2], lp[3])),
     "reorder(l3=loop j, l4=loop k): loop j no longer exists"),
    ("annotate-bad-key", lambda s, c, lp: s.annotate(lp[0], "a b", 1),
     "annotate(l1=loop b, 'a b', 1): argument 2, 'key': expected a name"),
    ("annotate-bad-value", lambda s, c, lp: s.annotate(lp[0], "x", [1]),
     "annotate(l1=loop b, 'x', [1]): argument 3, 'value': expected a number or text"),
    ("get-block-unknown", lambda s, c, lp: s.get_block("D"),
     "get_block('D'): no block 'D'; blocks: C"),
    ("get-loops-of-a-loop", lambda s, c, lp: s.get_loops(lp[0]),
     "get_loops(l1=loop b): argument 1 is not a block of this schedule"),
    ("rv-of-another-schedule", lambda s, c, lp: s.unroll(RV("l", 99)),
     "unroll(l99): argument 1 is not a loop of this schedule"),
    ("sample-tile-bad-n", lambda s, c, lp: s.sample_perfect_tile(lp[1], 0),
     "sample_perfect_tile(l2=loop i, 0, 16): argument 2, 'n': expected n >= 1"),
    ("sample-tile-too-many", lambda s, c, lp: s.sample_perfect_tile(lp[1], 65),
     "argument 2, 'n': 65 tiles, more than 64 (the limit: a loop nest holds that many)"),
    ("split-too-many", lambda s, c, lp: s.split(lp[1], [None] + [1] * 64),
     "argument 2, 'factors': 65 factors, more than 64 (the limit"),
    ("split-deeper-than-64", lambda s, c, lp: _split_deeper_than_64(s, lp),
     "the program would nest 65 loops, more than 64 (the limit)"),
    ("split-huge-factor", lambda s, c, lp: s.split(lp[1], [None, 2**62]),
     "factors [1, 4611686018427387904] multiply to 2**62 or more; loops run fewer than 2**62"),
    ("sample-tile-bad-max", lambda s, c, lp: s.sample_perfect_tile(lp[1], 2, 0),
     "argument 3, 'max_innermost_factor': expected a positive integer"),
    ("sample-categorical-lengths", lambda s, c, lp: s.sample_categorical([1, 2], [0.5]),
     "sample_categorical([1, 2], [0.5]): candidates and probs must be non-empty and of equal "
     "length"),
    ("sample-categorical-zero", lambda s, c, lp: s.sample_categorical([1, 2], [0, 0]),
     "probs must be finite numbers >= 0, not all 0"),
    ("sample-categorical-inf", lambda s, c, lp: s.sample_categorical([1, 2], [math.inf, 1]),
     "sample_categorical([1, 2], [inf, 1]): probs must be finite numbers >= 0"),
]


@pytest.mark.parametrize("call,message", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_documented_error(call, message):
    sch = ps.Schedule(_wl())
    c = sch.get_block("C")
    loops = sch.get_loops(c)
    tracking = _Tracking(sch)
    with pytest.raises(ps.ScheduleError) as info:
        call(tracking, c, loops)
    assert message in str(info.value)
    # The failing call (the last one) left the program and the trace as they were before it.
    assert sch.program is tracking.program and sch.trace == tracking.trace


class _Tracking:
    """Forwards primitive calls to a schedule, remembering its program and trace before each
    (so a test can check that the failing call changed neither)."""

    def __init__(self, sch: ps.Schedule):
        self._sch = sch
        self.program, self.trace = sch.program, sch.trace

    def __getattr__(self, name):
        method = getattr(self._sch, name)

        def call(*args, **kwargs):
            self.program, self.trace = self._sch.program, self._sch.trace
            return method(*args, **kwargs)

        return call


def test_fuse_and_reorder_of_loops_in_different_nests():
    sch = ps.Schedule(sfm(n=4, m=6))
    m = sch.get_loops(sch.get_block("M"))
    e = sch.get_loops(sch.get_block("E"))
    before, trace = str(sch.program), sch.trace
    with pytest.raises(ps.ScheduleError, match=r"^fuse\(l1=loop i, l5=loop j_1\): the loops "
                                               r"are not nested in one another$"):
        sch.fuse(m[0], e[1])
    with pytest.raises(ps.ScheduleError, match=r"^reorder\(l1=loop i, l4=loop i_1\): the loops "
                                               r"are not nested in one another$"):
        sch.reorder(m[0], e[0])
    assert str(sch.program) == before and sch.trace == trace


def test_fuse_and_reorder_across_a_loop_holding_two_statements():
    wl, program = two_statement_program()
    sch = ps.Schedule(wl, program=program)
    e = sch.get_loops(sch.get_block("E"))
    before = str(sch.program)
    with pytest.raises(ps.ScheduleError, match=r"loop i_1 holds more than one statement"):
        sch.fuse(*e)
    with pytest.raises(ps.ScheduleError, match=r"loop i_1 holds more than one statement"):
        sch.reorder(e[1], e[0])
    assert str(sch.program) == before and len(sch.trace) == 2


def test_an_rv_of_a_removed_loop_never_refers_to_a_new_loop_of_the_same_name():
    sch = ps.Schedule(sfm(n=4, m=6))
    m = sch.get_loops(sch.get_block("M"))
    e = sch.get_loops(sch.get_block("E"))
    sch.split(e[0], [None, 2])  # E's loop i_1 becomes i_1_0, i_1_1
    sch.split(m[0], [None, 2])  # M's loop i becomes i_0 and (again) i_1
    with pytest.raises(ps.ScheduleError, match="no longer exists"):
        sch.unroll(e[0])


def test_a_fused_loop_runs_fewer_than_2_to_the_62_iterations():
    """Loop counters and index arithmetic are 64-bit; a fuse beyond that is refused."""
    wb = WorkloadBuilder("big")
    A, B, C = wb.input("A", (2**20,)), wb.input("B", (2**20,)), wb.input("C", (2**40,))
    i, j, r = axes("i j r")
    wb.compute("S", (i, j), reduce_sum(A[i] * B[j] * C[r]))
    sch = ps.Schedule(wb.build())
    loops = sch.get_loops(sch.get_block("S"))
    with pytest.raises(ps.ScheduleError, match=r"would run 1208925819614629174706176 iterations; "
                       r"loops run fewer than 2\*\*62"):
        sch.fuse(*loops)
    assert sch.get(sch.fuse(loops[0], loops[1])) == "i_j_fused"
