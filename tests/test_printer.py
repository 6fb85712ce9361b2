"""The one printer: golden text of workloads and their untransformed programs."""

from __future__ import annotations

import pytest

from probsched.driver.bench.programs import tiled_matmul
from probsched.ir import lower
from probsched.ir.expr import Var
from probsched.ir.ops import all_of, eq, exp, maximum, select
from probsched.ir.printer import format_expr
from probsched.ir.program import LoopKind
from probsched.workloads import SUITE


@pytest.mark.parametrize("name", sorted(SUITE))
def test_suite_operator_workload_and_program(name, golden):
    make, _, small = SUITE[name]
    wl = make(**small)
    golden(wl.text() + "\n\n" + str(lower(wl)))


def test_loop_kinds_guards_and_annotations_are_printed(golden):
    kinds = {"io": LoopKind.PARALLEL, "ii": LoopKind.UNROLLED, "ji": LoopKind.VECTORIZED}
    _, prog = tiled_matmul(10, 20, 8, 4, 8, kinds)
    golden(str(prog))


@pytest.mark.parametrize(
    "expr,text",
    [
        ((Var("a") + Var("b")) * Var("c"), "(a + b) * c"),
        (Var("a") - (Var("b") - Var("c")), "a - (b - c)"),
        (Var("a") - Var("b") - Var("c"), "a - b - c"),
        (Var("i") * 4 + Var("j") // 2 % 3, "i * 4 + j // 2 % 3"),
        (all_of(Var("i") >= 1, Var("i") < 5), "i >= 1 and i < 5"),
        (
            select(eq(Var("i") % 2, 0), exp(Var("x")), maximum(Var("y"), 0.0)),
            "select(i % 2 == 0, exp(x), max(y, 0.0))",
        ),
        (-Var("x"), "0 - x"),
    ],
)
def test_expression_precedence(expr, text):
    assert format_expr(expr) == text
