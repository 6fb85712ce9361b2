"""Running spaces: values, rules, addressed random choices, located errors, Python spaces and
the trace printer."""

import numpy as np
import pytest
from hypothesis import given, settings

import probsched as ps
from probsched.errors import ProbschedError, ScheduleError
from probsched.lang import SchedError, format_trace_space
from probsched.lang.strategies import spaces

GMM = """\
workload gmm(n = 16, m = 16, k = 16):
    input A: float32[n, k]
    input B: float32[k, m]
    C[i, j] = sum(A[i, r] * B[r, j])
"""


def module(body: str, rules: str = "") -> ps.lang.Module:
    return ps.parse(GMM + "\nspace s for gmm:\n" + body + "\n" + rules, "t.sched")


def run(mod, seed=0, decisions=None, **params):
    sch = ps.Schedule(mod.workload(**params), seed=seed)
    return sch, mod.space().apply(sch, decisions)


def assert_correct(sch):
    rng = np.random.default_rng(0)
    inputs = [rng.uniform(-1, 1, t.shape).astype(np.float32) for t in sch.workload.inputs]
    (out,) = ps.compile(sch)(*inputs)
    (ref,) = ps.reference(sch.workload, *inputs)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


HEAD = """\
    c = get_block("C")
    i, j, r = get_loops(c)
"""

BRANCHY = HEAD + """\
    t = sample_perfect_tile(i, n=2, max_innermost_factor=16)
    if t[1] >= 4:
        a, b = split(j, [None, 4])
        vectorize(b)
        u = sample_perfect_tile(a, n=2, max_innermost_factor=2)
        split(a, u)
    else:
        a, b = split(r, [None, 2])
        unroll(b)
        w = sample_categorical([1, 2], [0.5, 0.5])
        annotate(a, "w", w)
"""


def test_flipping_a_decision_takes_the_other_branch():
    mod = module(BRANCHY)
    site = "t.sched:9:9"
    sch, first = run(mod, decisions={site: (4, 4)})
    assert list(first) == [site, "t.sched:13:13"]  # the branch's own sampling call
    assert "vectorize" in str(sch.trace)
    flipped = {**first, site: (16, 1)}
    sch2, second = run(mod, seed=5, decisions=flipped)
    assert second[site] == (16, 1) and "t.sched:13:13" not in second
    assert "unroll" in str(sch2.trace) and "vectorize" not in str(sch2.trace)
    assert_correct(sch2)
    # and back: the first branch's decision at its address is reused
    sch3, third = run(mod, seed=9, decisions={**second, **first})
    assert sch3.trace == sch.trace and third == first


def test_addresses_in_loops_and_rule_calls_are_distinct():
    rules = "def pick(l):\n    return sample_perfect_tile(l, n=2, max_innermost_factor=4)\n"
    mod = module(HEAD + """\
    for l in [i, j, r]:
        sample_perfect_tile(l, n=2, max_innermost_factor=4)
    pick(i)
    pick(j)
""", rules)
    _, decisions = run(mod)
    assert list(decisions) == [
        "t.sched:9:5[0] > t.sched:10:9",
        "t.sched:9:5[1] > t.sched:10:9",
        "t.sched:9:5[2] > t.sched:10:9",
        "t.sched:11:5 > t.sched:15:12",
        "t.sched:12:5 > t.sched:15:12",
    ]


def test_replaying_the_decisions_is_trace_replay():
    mod = module(BRANCHY)
    for seed in range(4):
        sch, decisions = run(mod, seed=seed)
        again, same = run(mod, seed=seed + 100, decisions=decisions)
        assert again.trace == sch.trace and same == decisions
        assert str(sch.trace.replay(sch.workload).program) == str(sch.program)


def test_sampled_values_in_arithmetic_stay_variables_in_calls():
    mod = module(HEAD + """\
    t = sample_perfect_tile(i, n=2, max_innermost_factor=4, decision=[4, 4])
    x = t[0] * 10 + t[1] - len(t) + max(t) + min([3, t[1]])
    annotate(i, "x", x)
    annotate(j, "t", t[1])
    annotate(r, "pick", [5, 6, 7, 8, 9][t[0]])
    if t[0] == 4 and not t[1] < 4:
        annotate(r, "yes", 1 // 1 + 7 % 4 - 2 / 2)
""")
    sch, decisions = run(mod)
    assert decisions == {"t.sched:9:9": (4, 4)}
    text = str(sch.trace)
    assert 'annotate(l1, "x", 49)' in text and 'annotate(l2, "t", v5)' in text
    assert 'annotate(l3, "pick", 9)' in text and 'annotate(l3, "yes", 3.0)' in text


def test_rules_defaults_keywords_and_returns():
    rules = """\
def tile(loop, inner = 4, n = 2):
    t = sample_perfect_tile(loop, n=n, max_innermost_factor=inner)
    return split(loop, t)

def pair(a, b):
    return a, b
"""
    mod = module(HEAD + """\
    io, ii = tile(i)
    jo, jm, ji = tile(j, n=3, inner=2)
    x, y = pair(1, b=[2])
    annotate(io, "x", x + y[0])
    for k in range(2, 8, 3):
        annotate(ii, "k", k)
""", rules)
    sch, decisions = run(mod)
    assert len(decisions) == 2 and len(sch.get_loops(sch.get_block("C"))) == 6
    assert '"x", 3)' in str(sch.trace) and '"k", 5)' in str(sch.trace)


def error_of(mod_or_body, cls=ProbschedError, rules=""):
    with pytest.raises(cls) as info:
        mod = module(mod_or_body, rules) if isinstance(mod_or_body, str) else mod_or_body
        run(mod)
    err = info.value
    assert err.location is not None, err
    return err


@pytest.mark.parametrize("body, message, line, col", [
    ("    x = y + 1", "name 'y' is not defined", 7, 9),
    ("    b = get_blok(\"C\")", "unknown function 'get_blok'; did you mean 'get_block'?", 7, 9),
    (HEAD + "    split(i)", "split(): missing a required argument: 'factors'", 9, 5),
    (HEAD + "    f(i, 1, 2)", "f(): takes 1 argument, got 3", 9, 5),
    (HEAD + "    f(l=i, x=1)", "f(): no parameter 'x'", 9, 5),
])
def test_static_errors_are_located(body, message, line, col):
    with pytest.raises(SchedError) as info:
        module(body, "def f(l):\n    pass\n")
    err = info.value
    assert err.message.startswith(message) and (err.location.line, err.location.column) == (
        line, col), str(err)


@pytest.mark.parametrize("body, cls, message, line", [
    (HEAD + "    vectorize(r)", ScheduleError, "vectorize(l3=loop r)", 9),
    (HEAD + "    split(i, \"x\")", ScheduleError, "argument 2, 'factors': expected a list", 9),
    (HEAD + "    a, b = [1]", SchedError, "cannot unpack 1 values into 2 names", 9),
    (HEAD + "    x = [1, 2][2]", SchedError, "index 2 out of range", 9),
    (HEAD + "    x = i + 1", SchedError, "unsupported operand types for '+': a loop", 9),
    (HEAD + "    x = 1 // 0", SchedError, "division by zero", 9),
    (HEAD + "    for x in 3:\n        pass", SchedError, "for needs a list", 9),
    (HEAD + "    rec(1)", SchedError, "rules nested more than", 11),
    (HEAD + "    x = range(1000000000)", SchedError, "range() of 1000000000 items", 9),
])
def test_runtime_errors_are_located(body, cls, message, line):
    err = error_of(body, cls, rules="def rec(x):\n    return rec(x)\n")
    assert message in err.message and err.location.line == line, str(err)
    assert str(err).startswith(f"t.sched:{line}:")
    assert "^" in str(err).splitlines()[-1]


def test_space_for_another_workload():
    mod = module(HEAD)
    sch = ps.Schedule(ps.workloads.sfm(n=4, m=4))
    with pytest.raises(SchedError, match="space s is for workload gmm, not sfm"):
        mod.space().apply(sch)


def test_module_access(tmp_path):
    text = GMM + GMM.replace("gmm", "gmm2") + "\nspace a for gmm:\n    pass\nspace b:\n    pass\n"
    mod = ps.parse(text)
    assert mod.workload_names == ["gmm", "gmm2"] and list(mod.spaces) == ["a", "b"]
    with pytest.raises(SchedError, match=r"2 workloads \(gmm, gmm2\); name one"):
        mod.workload()
    with pytest.raises(SchedError, match="no parameter q; parameters: n, m, k"):
        mod.workload("gmm", q=3)
    assert mod.workload("gmm2", n=8).inputs[0].shape == (8, 16)
    assert [s.name for s in mod.spaces_for("gmm2")] == ["b"]
    assert set(mod.workloads) == {"gmm", "gmm2"}
    with pytest.raises(SchedError, match="unknown workload gmm3"):
        ps.parse(GMM + "space a for gmm3:\n    pass\n")
    with pytest.raises(SchedError, match="space a is defined twice"):
        ps.parse("space a:\n    pass\nspace a:\n    pass\n")
    with pytest.raises(SchedError, match="would hide the primitive"):
        ps.parse("def split(a):\n    pass\n")


def test_use_libraries_and_cycles(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "tiles.sched").write_text(
        'use "more.sched"\ndef tile(l):\n    return split(l, [None, half(4)])\n')
    (tmp_path / "lib" / "more.sched").write_text("def half(x):\n    return x // 2\n")
    main = tmp_path / "main.sched"
    main.write_text(GMM + 'use "lib/tiles.sched"\nspace s for gmm:\n'
                    '    tile(get_loops(get_block("C"))[0])\n')
    mod = ps.load(main)
    assert set(mod.rules) == {"tile", "half"}
    sch = ps.Schedule(mod.workload(), seed=0)
    mod.space().apply(sch)
    assert "split(l1, [None, 2])" in str(sch.trace)

    (tmp_path / "lib" / "more.sched").write_text('use "tiles.sched"\n')
    with pytest.raises(SchedError) as info:
        ps.load(main)
    assert "use cycle: tiles.sched -> more.sched -> tiles.sched" in info.value.message
    assert info.value.location.file.endswith("more.sched")

    main.write_text('use "nowhere.sched"\n')
    with pytest.raises(SchedError, match="cannot use 'nowhere.sched': no such file") as info:
        ps.load(main)
    assert info.value.location.line == 1


def test_workload_errors_are_located():
    with pytest.raises(ps.WorkloadError) as info:
        ps.parse("workload w(n = 4):\n    input A: float32[n]\n    B[i]: float32[n] = A[i + 1]\n"
                 ).workload()
    assert info.value.location.line == 3 and "out of bounds" in info.value.message
    with pytest.raises(ProbschedError) as info:
        ps.parse("workload w(n = 4):\n    input A: float32[n, q]\n").workload()
    assert info.value.location.line == 2 and "unknown parameter 'q'" in info.value.message


def test_workload_language():
    mod = ps.parse("""\
workload w(n = 6, half = n // 2):
    input X: float32[n]
    input I: int32[n]
    P[h]: float32[n + 2] = select(h >= 1 and h <= n, X[h - 1], 0.0)
    Y[i]: float32[half] = sum(P[i * 2 + r]) over r < 3
    Z[i] = max(Y[i], 0.0) + exp(-abs(Y[i])) + float32(I[i * 2]) + min(sqrt(abs(Y[i])), 1.0)
    M[] = max(Z[i])
    N[] = log(M[] + 2.0) + -inf * 0.0 * 0.0 + select(not true or false, 1.0, 2.0)
""")
    wl = mod.workload()
    assert [s.name for s in wl.stages] == ["P", "Y", "Z", "M", "N"]
    assert wl.stage("Y").reduce_axes == (("r", 3),) and wl.stage("Y").shape == (3,)
    assert ps.parse(wl.text()).workload().text() == wl.text()
    assert mod.workload(n=10).stage("Y").shape == (5,)


def test_python_space_addresses_by_order():
    @ps.space(workload="gmm")
    def tiled(sch):
        c = sch.get_block("C")
        i, j, r = sch.get_loops(c)
        sch.split(i, sch.sample_perfect_tile(i, n=2, max_innermost_factor=4))
        if sch.get(sch.sample_categorical([1, 2], [0.5, 0.5])) == 2:
            sch.unroll(j)

    assert isinstance(tiled, ps.Space) and tiled.name == "tiled"
    wl = module("    pass").workload()
    sch = ps.Schedule(wl, seed=3)
    decisions = tiled.apply(sch)
    assert list(decisions) == ["#0", "#1"] and "sample_perfect_tile" not in sch.__dict__
    again = ps.Schedule(wl, seed=77)
    assert tiled.apply(again, decisions) == decisions and again.trace == sch.trace
    flipped = ps.Schedule(wl, seed=77)
    tiled.apply(flipped, {**decisions, "#1": 1 - decisions["#1"]})
    assert ("unroll" in str(flipped.trace)) != ("unroll" in str(sch.trace))


def round_trip(mod, sch):
    """The trace as a space parses and runs to the same trace and program; so does its JSON."""
    text = format_trace_space(sch.trace, sch.workload.name)
    replayed = ps.Schedule(sch.workload, seed=12345)
    ps.parse(text, "trace.sched").space().apply(replayed)
    assert replayed.trace.same_steps(sch.trace)
    assert str(replayed.program) == str(sch.program)
    back = ps.Trace.from_json(sch.trace.to_json())
    assert str(back.replay(sch.workload).program) == str(sch.program)


def test_trace_text_round_trip():
    mod = module(BRANCHY)
    for seed in range(3):
        sch, _ = run(mod, seed=seed)
        round_trip(mod, sch)
    empty = ps.Schedule(mod.workload())
    assert format_trace_space(empty.trace, None) == "space trace:\n    pass\n"


@settings(max_examples=15, deadline=None)
@given(spaces())
def test_generated_spaces_run_replay_and_round_trip(text):
    mod = ps.parse(text, "gen.sched")
    sch, decisions = run(mod, seed=1)
    again, same = run(mod, seed=2, decisions=decisions)
    assert again.trace == sch.trace and same == decisions
    round_trip(mod, sch)
