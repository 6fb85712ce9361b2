"""Property tests of schedules (hypothesis; examples per test from the profile in conftest):

(a) random legal schedules of every suite operator compile and match the reference;
(b) a trace survives its JSON and text forms, and replay gives the identical program;
(d) with_decision + replay changes exactly that decision's effect;
(e) an illegal primitive call never corrupts the schedule;
and simplified traces replay to the same program.
"""

from __future__ import annotations

import pytest
from hypothesis import assume, event, given, seed, settings
from hypothesis import strategies as st

import probsched as ps
from probsched.ir import expr as E
from probsched.ir import tree
from probsched.ir.program import Block, Loop
from probsched.ir.reference import check_outputs, random_inputs, reference
from probsched.schedule import INSTRUCTIONS as REGISTRY
from probsched.schedule import RV, Trace, sampling
from probsched.testing import STEPS, apply_step, code_size, schedules, traces, workloads
from probsched.workloads import SUITE

LOOP_STEPS = ["annotate", "unroll", "split", "sample_split", "reorder", "fuse", "parallel",
              "vectorize"]


def assert_matches(sch: ps.Schedule) -> None:
    inputs = random_inputs(sch.workload)
    ok, err, msg = check_outputs(ps.compile(sch)(*inputs), reference(sch.workload, *inputs))
    assert ok, f"{msg}\n{sch.program}\n{sch.trace}"


# ---------------------------------------------------------------- (a)


@pytest.mark.parametrize("name", sorted(SUITE))
@given(data=st.data())
def test_random_legal_schedules_match_the_reference(name, data):
    sch = data.draw(schedules(workloads([name])), label="schedule")
    assert_matches(sch)


# ---------------------------------------------------------------- (b)


@given(schedules())
def test_trace_json_and_text_round_trip_and_replay(sch):
    trace = sch.trace
    again = Trace.from_json(trace.to_json())
    assert again == trace and str(again) == str(trace)
    assert again.to_json() == trace.to_json()
    replayed = again.replay(sch.workload)
    assert str(replayed.program) == str(sch.program)
    assert replayed.trace == trace and str(replayed.trace) == str(trace)


def tiled(sch: ps.Schedule) -> None:
    """A space: GMM tiled by sampled factors, the unroll depth sampled too."""
    c = sch.get_block("C")
    _, i, j, k = sch.get_loops(c)
    i0, i1 = sch.split(i, sch.sample_perfect_tile(i, 2, 4))
    j0, j1 = sch.split(j, sch.sample_perfect_tile(j, 2, 8))
    sch.reorder(i0, j0, k, i1, j1)
    sch.annotate(i0, "pragma_auto_unroll_max_step", sch.sample_categorical([0, 16], [0.5, 0.5]))


GMM = SUITE["GMM"][0](**SUITE["GMM"][2])


@given(traces(tiled, GMM))
def test_traces_of_a_space_replay_like_the_space(trace):
    tiles = [trace.decision_at(k) for k, inst in enumerate(trace.instructions)
             if inst.kind == "sample_perfect_tile"]
    assert [_prod(t) for t in tiles] == [GMM.stages[-1].shape[1], GMM.stages[-1].shape[2]]
    again = Trace.from_json(trace.to_json())
    assert str(again.replay(GMM).program) == str(trace.replay(GMM).program)


def test_strategies_are_reproducible_from_hypothesis_draws():
    def collect() -> list[str]:
        out = []

        @seed(1234)
        @settings(max_examples=15, database=None)
        @given(schedules(), traces(tiled, GMM))
        def run(sch, trace):
            out.append(sch.workload.name + sch.trace.to_json() + trace.to_json())

        run()
        return out

    first = collect()
    assert len(set(first)) > 5 and collect() == first


@given(schedules())
def test_simplified_trace_replays_to_the_same_program(sch):
    trace = sch.trace
    simple = trace.simplified()
    assert str(simple.replay(sch.workload).program) == str(sch.program)
    assert len(simple) <= len(trace) and simple.simplified() == simple
    used = {rv for inst in simple.instructions for rv in _rvs(inst.inputs)}
    for inst in simple.instructions:  # every pure instruction left is used
        if REGISTRY[inst.kind].pure:
            assert set(inst.outputs) & used, inst


# ---------------------------------------------------------------- (d)


@st.composite
def sampled_schedules(draw):
    """A schedule made of loop steps with at least one sampled split in it."""
    sch = draw(schedules(workloads(), max_steps=3, steps=LOOP_STEPS))
    apply_step(draw, sch, "sample_split")
    for _ in range(draw(st.integers(0, 3))):
        apply_step(draw, sch, draw(st.sampled_from(LOOP_STEPS)))
    return sch


@given(sampled_schedules(), st.data())
def test_with_decision_changes_exactly_that_decisions_effect(sch, data):
    trace = sch.trace
    used = {rv for inst in trace.instructions for rv in _rvs(inst.inputs)}
    choices = [k for k, inst in enumerate(trace.instructions)
               if inst.kind in ("sample_perfect_tile", "sample_categorical")
               and set(inst.outputs) & used]
    assume(choices)
    index = data.draw(st.sampled_from(choices), label="instruction")
    inst = trace.instructions[index]
    new = _new_decision(data, inst, trace.decision_at(index))
    event(f"{inst.kind}: decision {'changed' if new != trace.decision_at(index) else 'kept'}")
    changed = trace.with_decision(inst.address, new)
    try:
        other = changed.replay(sch.workload)
    except ps.ScheduleError:
        # A fixed split of a loop whose extent grew may no longer cover it: an illegal trace.
        assume(False)
    loops, annotated, repaired = _affected(other, changed, index)
    # The same instructions; the new decision is used as given; no other decision moves but
    # the tiles of loops whose extents changed (repaired to fit them).
    assert other.trace.instructions == changed.instructions
    assert other.trace.decision_at(index) == changed.decision_at(index)
    for k, later in changed.sampling():
        if k not in repaired:
            assert other.trace.decision(later.address) == changed.decision(later.address), k
    _assert_same_except(sch.program.body, other.program.body, loops, annotated)
    assert sch.program.buffers == other.program.buffers
    if inst.kind == "sample_perfect_tile":  # the split's own loops take the new tiles
        for later in changed.instructions[index + 1:]:
            if later.kind == "split" and tuple(later.inputs[1]) == inst.outputs:
                for rv, tile in zip(later.outputs, new, strict=True):
                    path = tree.find_loop(other.program, other.get(rv))
                    if path is not None:
                        assert tree.node_at(other.program, path).extent == tile
    if new == trace.decision_at(index):
        assert str(other.program) == str(sch.program)


def _new_decision(data, inst, old):
    """Another valid decision when there is one (else the same)."""
    if inst.kind == "sample_categorical":
        choices = [k for k, p in enumerate(inst.attr("probs")) if p > 0]
    else:
        choices = _tilings(_prod(old), inst.attr("n"), inst.attr("max_innermost_factor"))
    others = [c for c in choices if c != old]
    return data.draw(st.sampled_from(others), label="decision") if others else old


def _tilings(extent: int, n: int, max_innermost: int) -> list[tuple[int, ...]]:
    """Every perfect tiling of ``extent`` into ``n`` tiles, the innermost <= max."""
    if n == 1:
        return [(extent,)] if extent <= max_innermost else []
    out = []
    for d in sampling.divisors(extent):
        out += [(d, *rest) for rest in _tilings(extent // d, n - 1, max_innermost)]
    return out


def _affected(sch: ps.Schedule, trace: Trace, index: int):
    """What decision ``index`` may change: loops whose extents it sets (the loops split by its
    values, and every loop split or fused from those), loops annotated with its values, and
    the later tile samplings of those loops (their decisions are repaired to fit)."""
    values = set(trace.instructions[index].outputs)
    loops: set[str] = set()
    annotated: set[str] = set()
    repaired: set[int] = set()
    for k in range(index + 1, len(trace)):
        inst = trace.instructions[k]
        ins = list(_rvs(inst.inputs))
        hit = any(rv in values or (rv.kind == "l" and sch.get(rv) in loops) for rv in ins)
        if inst.kind in ("split", "fuse") and hit:
            loops |= {sch.get(rv) for rv in inst.outputs}
        if inst.kind == "sample_perfect_tile" and hit:
            values |= set(inst.outputs)
            repaired.add(k)
        if inst.kind == "annotate" and inst.inputs[2] in values:
            annotated.add(sch.get(inst.inputs[0]))
    return loops, annotated, repaired


def _assert_same_except(a_nodes, b_nodes, loops: set[str], annotated: set[str]) -> None:
    """The two loop trees are the same but for the extents of ``loops`` (and what follows
    from them: constants in bindings and guards on those loops) and the annotation values
    of ``annotated``."""
    assert len(a_nodes) == len(b_nodes)
    for a, b in zip(a_nodes, b_nodes, strict=True):
        assert type(a) is type(b)
        if isinstance(a, Loop):
            assert (a.var, a.kind) == (b.var, b.kind)
            assert a.extent == b.extent or a.var in loops, a.var
            if a.var in annotated:
                assert [k for k, _ in a.annotations] == [k for k, _ in b.annotations]
            else:
                assert a.annotations == b.annotations
            _assert_same_except(a.body, b.body, loops, annotated)
            continue
        assert isinstance(a, Block)
        assert (a.name, a.iter_vars, a.body, a.init, a.reduction) == (
            b.name, b.iter_vars, b.body, b.init, b.reduction)
        for x, y in zip(a.bindings, b.bindings, strict=True):
            if E.free_vars(x) & loops or E.free_vars(y) & loops:
                # (A loop of extent 1 may fold away: fused % 1 is 0.)
                assert E.free_vars(x) - loops == E.free_vars(y) - loops
            else:
                assert x == y
        fixed_a = [c for c in tree.conjuncts(a.predicate) if not E.free_vars(c) & loops]
        fixed_b = [c for c in tree.conjuncts(b.predicate) if not E.free_vars(c) & loops]
        assert fixed_a == fixed_b


# ---------------------------------------------------------------- (e)


def _rv_args(rvs):
    return st.sampled_from(rvs + [RV("l", 999), RV("b", 999), RV("v", 999)])


def _random_call(draw, sch: ps.Schedule):
    """A primitive and random arguments: often illegal (stale or wrong-kind random variables,
    bad factors, loops of other nests), sometimes legal."""
    rvs = [rv for inst in sch.trace.instructions for rv in inst.outputs]
    rv = _rv_args(rvs)
    ints = st.integers(-2, 20)
    names = [b.name for b in sch.program.blocks()] + [b.name for b in sch.program.buffers]
    scope = st.sampled_from(["local", "global", "shared", 3])
    loops = st.lists(rv, max_size=4)
    args = {
        "get_block": lambda: (draw(st.sampled_from(names + ["nope", 3])),),
        "get_blocks": lambda: (),
        "split": lambda: (draw(rv), draw(st.lists(st.one_of(st.none(), ints, rv), max_size=4))),
        "fuse": lambda: tuple(draw(loops)),
        "reorder": lambda: tuple(draw(loops)),
        "annotate": lambda: (draw(rv), draw(st.sampled_from(["k", "bad key", "", 3])),
                             draw(st.one_of(ints, st.sampled_from([2.5, "t", None, [1]]), rv))),
        "cache_read": lambda: (draw(rv), draw(st.one_of(st.sampled_from(names + ["nope"]),
                                                        st.integers(-1, 3))), draw(scope)),
        "cache_write": lambda: (draw(rv), draw(scope)),
        "set_scope": lambda: (draw(rv), draw(scope)),
        "storage_align": lambda: (draw(rv), draw(st.integers(-3, 3)), draw(st.integers(-1, 33)),
                                  draw(st.integers(-1, 33))),
        "transform_layout": lambda: (draw(rv), draw(st.lists(st.integers(-1, 3), max_size=4))),
        "bind": lambda: (draw(rv), draw(st.sampled_from(["threadIdx.x", "blockIdx.y", "vthread",
                                                         "warp", 3]))),
        "rfactor": lambda: (draw(rv), draw(st.integers(-1, 3))),
        "sample_perfect_tile": lambda: (draw(rv), draw(st.integers(-1, 4)),
                                        draw(st.integers(-1, 32))),
        "sample_categorical": lambda: (draw(st.lists(ints, max_size=3)),
                                       draw(st.lists(st.sampled_from([-1.0, 0.0, 0.5]),
                                                     max_size=3))),
    }
    two = ("compute_at", "reverse_compute_at", "decompose_reduction")
    one = [k for k in REGISTRY if k not in args and k not in two]
    name = draw(st.sampled_from(sorted(REGISTRY)))
    if name in two:
        return name, (draw(rv), draw(rv))
    if name in one:
        return name, (draw(rv),)
    return name, args[name]()


@given(schedules(), st.data())
def test_an_illegal_call_never_corrupts_the_schedule(sch, data):
    failed = 0
    for _ in range(data.draw(st.integers(1, 4), label="calls")):
        name, args = _random_call(data.draw, sch)
        program, trace, text = sch.program, sch.trace, str(sch.program)
        try:
            getattr(sch, name)(*args)
        except ps.ScheduleError as exc:
            failed += 1
            assert str(exc).startswith(f"{name}("), str(exc)
            assert sch.program is program and str(sch.program) == text
            assert sch.trace == trace
    # The schedule still replays from its trace and (when cheap to build) computes the same.
    assert str(sch.trace.replay(sch.workload).program) == str(sch.program)
    if code_size(sch.program) <= 256:
        assert_matches(sch)


def test_the_step_catalogue_names_primitives():
    for name in STEPS:
        base = name.removeprefix("sample_")
        assert base in REGISTRY or name in REGISTRY, name


def _prod(xs):
    out = 1
    for x in xs:
        out *= x
    return out


def _rvs(x):
    if isinstance(x, RV):
        yield x
    elif isinstance(x, tuple | list):
        for v in x:
            yield from _rvs(v)
