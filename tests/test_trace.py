"""Traces: text and JSON forms, replay, decisions (override, with_decision, stale repair),
simplification, and the instruction registry."""

from __future__ import annotations

import json

import pytest

import probsched as ps
from probsched.schedule import INSTRUCTIONS as REGISTRY
from probsched.schedule import QUERIES, RV, Instruction, Trace
from probsched.workloads import gmm


def tiled(sch: ps.Schedule) -> None:
    """A small GMM space with every loop primitive and both tile and categorical samplings."""
    c = sch.get_block("C")
    b, i, j, k = sch.get_loops(c)
    i0, i1, i2 = sch.split(i, sch.sample_perfect_tile(i, 3, 4))
    j0, j1 = sch.split(j, sch.sample_perfect_tile(j, 2, 8))
    k0, k1 = sch.split(k, [None, 3])
    sch.reorder(i0, j0, k0, i1, k1, i2, j1)
    fused = sch.fuse(b, i0, j0)
    sch.parallel(fused)
    sch.vectorize(j1)
    sch.unroll(i2)
    sch.annotate(fused, "pragma_auto_unroll_max_step",
                 sch.sample_categorical([0, 16, 64], [0.2, 0.3, 0.5]))
    sch.get_loops(c)  # unused: simplified() drops it


WL = gmm(b=1, n=32, m=16, k=8)


def sampled(seed: int = 1, wl=WL) -> ps.Schedule:
    sch = ps.Schedule(wl, seed=seed)
    tiled(sch)
    return sch


def test_trace_text(golden):
    golden(str(sampled().trace))


def test_trace_json_is_pinned(golden):
    """The JSON form is what databases store: a format change must be deliberate."""
    data = json.loads(sampled().trace.to_json())
    assert set(data) == {"instructions", "decisions"}
    lines = [json.dumps(inst) for inst in data["instructions"]]
    golden("\n".join(lines + ["decisions: " + json.dumps(data["decisions"])]))


def test_json_round_trip_gives_an_equal_trace():
    trace = sampled().trace
    again = Trace.from_json(trace.to_json())
    assert again == trace and hash(again) == hash(trace)
    assert str(again) == str(trace) and again.to_json() == trace.to_json()
    assert again.decision_map == trace.decision_map


def test_replay_gives_the_same_program_and_trace():
    sch = sampled()
    again = Trace.from_json(sch.trace.to_json()).replay(WL)
    assert str(again.program) == str(sch.program)
    assert again.trace == sch.trace  # same instructions, same random-variable numbering


def test_replay_with_decisions_overrides_the_trace():
    trace = sampled().trace
    address = next(inst.address for inst in trace.instructions
                   if inst.kind == "sample_perfect_tile")
    assert address == "#0"  # not in a space: the choice's order
    sch = trace.replay(WL, decisions={address: (1, 8, 4)})
    assert sch.trace.decision(address) == (1, 8, 4)
    assert "for i_2 in unrolled(4)" in str(sch.program)
    assert trace.with_decision(address, [1, 8, 4]).replay(WL).trace == sch.trace


def test_with_decision_none_samples_afresh_from_the_replay_seed():
    trace = sampled(seed=1).trace
    address = list(trace.decision_map)[-1]  # the categorical
    cleared = trace.with_decision(address, None)
    assert address not in cleared.decision_map and len(cleared) == len(trace)
    decisions = {cleared.replay(WL, seed=s).trace.decision(address) for s in range(12)}
    assert decisions == {0, 1, 2}
    assert cleared.replay(WL, seed=3).trace == cleared.replay(WL, seed=3).trace


def test_with_decision_checks_the_address():
    trace = sampled().trace
    with pytest.raises(ps.ProbschedError, match="no sampling instruction at address '#9'"):
        trace.with_decision("#9", 1)


def test_decisions_are_keyed_by_address_in_json_and_a_stray_one_is_refused():
    trace = sampled().trace
    data = json.loads(trace.to_json())
    assert [a for a, _ in data["decisions"]] == ["#0", "#1", "#2"]
    data["decisions"][0][0] = 2  # an instruction index, as older probsched wrote them
    with pytest.raises(ps.ProbschedError, match="an address is text"):
        Trace.from_json(json.dumps(data))
    data["decisions"][0][0] = "#7"
    with pytest.raises(ps.ProbschedError, match="decisions at '#7', where no sampling"):
        Trace.from_json(json.dumps(data))


def test_stale_tile_decisions_are_repaired_on_another_shape():
    trace = sampled().trace  # made for i = 32, j = 16
    sch = trace.replay(gmm(b=1, n=24, m=12, k=8))
    for index, inst in enumerate(trace.instructions):
        if inst.kind == "sample_perfect_tile":
            old, new = trace.decision_at(index), sch.trace.decision_at(index)
            extent = 24 if inst.attr("n") == 3 else 12
            assert _prod(new) == extent and new[-1] <= inst.attr("max_innermost_factor")
            assert old[-1] % new[-1] == 0  # the innermost keeps what still divides


def test_simplified_drops_unused_queries_and_samplings(golden):
    sch = ps.Schedule(WL, seed=0)
    c = sch.get_block("C")
    _, i, j, _ = sch.get_loops(c)
    sch.sample_perfect_tile(j, 2, 4)  # unused
    sch.get_loops(sch.get_block("C"))  # unused
    sch.split(i, sch.sample_perfect_tile(i, 2, 4))
    sch.sample_categorical([1, 2], [0.5, 0.5])  # unused
    trace = sch.trace
    simple = trace.simplified()
    assert [inst.kind for inst in simple.instructions] == [
        "get_block", "get_loops", "sample_perfect_tile", "split"]
    assert simple.decision_at(2) == trace.decision_at(5) == trace.decision("#1")
    assert list(simple.decision_map) == ["#1"]
    assert str(simple.replay(WL).program) == str(sch.program)
    assert simple.simplified() == simple
    golden(str(simple))


def test_simplified_keeps_a_space_equivalent():
    trace = sampled().trace
    simple = trace.simplified()
    assert len(simple) == len(trace) - 1  # only the last get_loops goes
    assert str(simple.replay(WL).program) == str(trace.replay(WL).program)


@pytest.mark.parametrize("text", [
    "", "{}", "[1, 2]", '{"instructions": [["split"]], "decisions": []}',
    '{"instructions": [["get_block", ["C"], [], ["x0"]]], "decisions": []}',
    '{"instructions": [], "decisions": [["a", 1]]}',
])
def test_from_json_rejects_what_is_not_a_trace(text):
    with pytest.raises(ps.ProbschedError, match="not a probsched trace"):
        Trace.from_json(text)


def test_replay_of_an_unknown_instruction():
    trace = Trace((Instruction("tile_everything", (), (), ()),))
    with pytest.raises(ps.ScheduleError, match="unknown instruction 'tile_everything'"):
        trace.replay(WL)


def test_replay_of_an_illegal_trace_names_the_primitive():
    c, loops = RV("b", 0), tuple(RV("l", n) for n in range(1, 5))
    trace = Trace((
        Instruction("get_block", ("C",), (), (c,)),
        Instruction("get_loops", (c,), (), loops),
        Instruction("parallel", (loops[3],), (), ()),
    ))
    with pytest.raises(ps.ScheduleError, match=r"parallel\(l4=loop k\): loop k carries"):
        trace.replay(WL)


def test_every_primitive_is_a_registered_instruction():
    public = {name for name in dir(ps.Schedule) if not name.startswith("_")}
    not_declared = public - set(REGISTRY) - set(QUERIES) - {
        "get", "copy", "trace", "replay", "workload", "program", "target", "seed", "rng",
        "decisions", "site"}
    assert not_declared == set(), "every public method is an instruction or a query"
    assert set(REGISTRY) <= public and set(QUERIES) <= public
    assert {k for k, v in REGISTRY.items() if v.sampling} == {
        "sample_perfect_tile", "sample_categorical", "sample_compute_location"}
    assert {k for k, v in REGISTRY.items() if v.pure and not v.sampling} == {
        "get_block", "get_loops", "get_producers", "get_consumers", "get_blocks"}


def _prod(xs):
    out = 1
    for x in xs:
        out *= x
    return out


def test_one_output_of_a_list_instruction_prints_as_an_index():
    from probsched.lang import format_trace_space

    wl = ps.workloads.sfm(n=4, m=8)
    sch = ps.Schedule(wl)
    sch.get_consumers(sch.get_block("M"))
    sch.get_loops(sch.get_block("M"))
    assert str(sch.trace).splitlines()[1] == "b1 = get_consumers(b0)[0]"
    again = ps.Schedule(wl)
    ps.parse(format_trace_space(sch.trace, "sfm"), "t.sched").space().apply(again)
    assert again.trace == sch.trace
