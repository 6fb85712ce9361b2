"""What a newcomer met writing operators from docs/language.md, each with its fix in the
language or the message: `over` on the line after a multi-line stage, advice in .sched terms,
`require`, and `probsched check` dry-running the space a file without one gets."""

from __future__ import annotations

import pytest

import probsched as ps
from probsched.driver.cli import main

CONV = """\
workload c1d(l = 12, ci = 3, co = 4, kernel = 3):
    input X: float32[l + kernel - 1, ci]
    input W: float32[kernel, ci, co]
    C[y, o]: float32[l, co] = sum(
        X[y + r, c] * W[r, c, o]){over}
"""


def test_over_may_go_on_the_next_line_indented():
    one_line = ps.parse(CONV.format(over=" over r < kernel")).workload()
    next_line = ps.parse(CONV.format(over="\n        over r < kernel")).workload()
    continued = ps.parse(CONV.format(over=" \\\n        over r < kernel")).workload()
    assert one_line.text() == next_line.text() == continued.text()
    assert "over r < 3" in one_line.text()


@pytest.mark.parametrize("over, message, line", [
    ("\n    over r < kernel", "an 'over' clause goes at the end of its stage, or on the next "
     "line indented under the stage", 6),
    ("\n        D[y] = 1.0", "unexpected indentation (only an 'over' clause continues a stage "
     "on the next line)", 6),
])
def test_a_misplaced_over_says_where_it_goes(over, message, line):
    with pytest.raises(ps.SchedSyntaxError) as info:
        ps.parse(CONV.format(over=over))
    assert info.value.message.startswith(message) and info.value.location.line == line


@pytest.mark.parametrize("stage, message", [
    ("Y[i] = A[i + 1]",
     "stage Y: cannot infer the extent of axis i: it indexes no tensor directly; give the "
     "stage's type and shape: Y[i]: float32[N] = ..."),
    ("Y[i, j]: int32 = A[i * 2 + j] + A[j]",
     "stage Y: cannot infer the extent of axis i: it indexes no tensor directly; give the "
     "stage's type and shape: Y[i, j]: int32[N, <extent of j>] = ..."),
    ("Y[i]: float32[4] = sum(A[i * 2 + r])",
     "stage Y: cannot infer the extent of reduction axis r: it indexes no tensor directly; "
     "give it after the value: Y[i] = ... over r < N"),
])
def test_extents_that_cannot_be_inferred_are_given_the_sched_way(stage, message):
    with pytest.raises(ps.WorkloadError) as info:
        ps.parse(f"workload w(n = 8):\n    input A: float32[n]\n    {stage}\n").workload()
    assert info.value.message.splitlines()[0] == message
    assert "shape=" not in info.value.message and "extents=" not in info.value.message


GROUPED = """\
workload grouped_conv(h = 6, ci = 8, co = 8, groups = 4):
    require ci % groups == 0 and co % groups == 0
    input X: float32[h, ci]
    input W: float32[ci // groups, co]
    C[y, o] = sum(X[y, o // (co // groups) * (ci // groups) + rc] * W[rc, o])
        over rc < ci // groups
"""


def test_require_states_what_the_parameters_must_satisfy():
    mod = ps.parse(GROUPED, "g.sched")
    assert mod.workload().output.shape == (6, 8)
    with pytest.raises(ps.WorkloadError) as info:
        mod.workload(ci=6)
    assert str(info.value).splitlines()[:2] == [
        "g.sched:2:5: error: workload grouped_conv: requirement ci % groups == 0 and "
        "co % groups == 0 fails for ci=6, groups=4, co=8",
        "        require ci % groups == 0 and co % groups == 0",
    ]
    text = ("workload w(n = 8, m = 3):\n    require (n >\n        m) or not n < 100  # both\n"
            "    input A: float32[n]\n    B[i] = A[i]\n")
    with pytest.raises(ps.WorkloadError, match=r"requirement \(n > m\) or not n < 100 fails "
                       r"for n=2, m=3"):
        ps.parse(text).workload(n=2)
    assert ps.parse(text).workload(n=200).output.shape == (200,)


@pytest.mark.parametrize("cond, message", [
    ("k > 1", "unknown parameter 'k'"),
    ("1 > 2", "workload w: requirement 1 > 2 fails"),
    ("n // 0 == 1", "division by zero"),
])
def test_require_errors(cond, message):
    with pytest.raises(ps.WorkloadError, match=message):
        ps.parse(f"workload w(n = 8):\n    require {cond}\n    input A: float32[n]\n"
                 "    B[i] = A[i]\n").workload()


def test_the_suites_sched_workloads_require_what_their_builders_check():
    from pathlib import Path

    mod = ps.load(Path(__file__).parent / "data" / "more_ops.sched")
    with pytest.raises(ps.WorkloadError, match="requirement ci % groups == 0"):
        mod.workload("grouped_conv2d", ci=6, groups=4)
    with pytest.raises(ps.WorkloadError, match="must divide"):
        ps.workloads.grouped_conv2d(ci=6, groups=4)
    with pytest.raises(ps.WorkloadError, match="requirement pad >= 0 and pad <= kernel - 1"):
        mod.workload("transposed_conv2d", pad=3)


def test_check_dry_runs_the_generated_space_of_a_file_without_one(tmp_path, monkeypatch,
                                                                   capsys):
    seen = []

    @ps.space
    def recording(sch):
        seen.append((sch.workload.name, sch.seed))
        if sch.workload.name == "b":
            sch.get_block("nope")

    monkeypatch.setattr(ps.lang.loader, "generated_space", lambda: recording)
    path = tmp_path / "two.sched"
    path.write_text("workload a(n = 8):\n    input X: float32[n]\n    Y[i] = X[i] * 2.0\n"
                    "workload b(n = 8):\n    input X: float32[n]\n    Y[i] = X[i] + 1.0\n")
    assert main(["check", str(path)]) == 1
    assert seen == [("a", 0), ("b", 0)]  # each workload once, seed 0
    assert "get_block('nope'): no block 'nope'" in capsys.readouterr().err
