"""The .sched parser: the syntax tree, workloads built from it, and syntax errors with their
friendly labels."""

import pytest

import probsched as ps
from probsched.errors import SchedSyntaxError
from probsched.lang import ast
from probsched.lang.parser import parse
from probsched.lang.syntax_errors import CATALOGUE
from probsched.workloads import more_ops, suite

EXAMPLE = '''\
# the brief's example
workload gmm(n = 128, m = 128, k = 128):
    input A: float32[n, k]
    input B: float32[k, m]
    C[i, j] = sum(A[i, r] * B[r, j])

space tiled for gmm:                 # a comment
    b = get_block("C")
    i, j, k = get_loops(b)
    ti = sample_perfect_tile(i, n=2, max_innermost_factor=16)
    io, ii = split(i, ti)
    if ti[1] > 4:
        unroll(ii)
    elif ti[1] == 2 and not ti[0] < 3:
        pass
    else:
        annotate(ii, "small", -1)
    for l in [io,
              ii]:                   # newlines inside brackets are free
        annotate(l, "tag", 1)
    tile2d(b, 8)

def tile2d(block, f = 4):
    loops = get_loops(block)
    return split(loops[1], [None, f])
'''


def test_example_tree():
    mod = parse(EXAMPLE, "ex.sched")
    wl, space, rule = mod.items
    assert isinstance(wl, ast.WorkloadDef) and [p.name for p in wl.params] == ["n", "m", "k"]
    stage = wl.items[2]
    assert isinstance(stage, ast.StageDecl) and stage.axes == ("i", "j")
    assert isinstance(stage.value, ast.Call) and stage.value.func == "sum"
    assert space.name == "tiled" and space.workload == "gmm"
    assign = space.body[2]
    assert assign.targets == ("ti",) and assign.value.kwargs[0][0] == "n"
    branch = space.body[4]
    assert isinstance(branch, ast.If) and len(branch.branches) == 2 and branch.orelse
    loop = space.body[5]
    assert isinstance(loop, ast.For) and loop.loc.line == 18 and loop.loc.column == 5
    assert rule.name == "tile2d" and rule.params[1].default.value == 4
    assert isinstance(rule.body[-1], ast.Return)


def test_precedence():
    (space,) = parse("space s:\n    x = 1 + 2 * -3 < 4 or not a and b\n").items
    e = space.body[0].value
    assert isinstance(e, ast.BoolOp) and e.op == "or"
    cmp_ = e.left
    assert isinstance(cmp_, ast.Compare) and cmp_.left.op == "+"
    assert cmp_.left.right.op == "*" and cmp_.left.right.right.op == "-"
    assert e.right.op == "and" and e.right.left.op == "not"


def test_literals_and_strings():
    text = "space s:\n    x = [1, 2.5, 1e-05, \"a\\\"b\\u00e9\", 'c', True, False, None, []]\n"
    (space,) = parse(text).items
    values = [c.value if isinstance(c, ast.Const) else c for c in space.body[0].value.items]
    assert values[:8] == [1, 2.5, 1e-05, 'a"bé', "c", True, False, None]


@pytest.mark.parametrize("name", sorted(suite.SUITE))
def test_printed_workloads_parse_back(name):
    fn, _, small = suite.SUITE[name]
    wl = fn(**small)
    again = ps.parse(wl.text()).workload()
    assert again.text() == wl.text()
    assert again.structural_hash == wl.structural_hash


@pytest.mark.parametrize("fn", [more_ops.batch_matmul, more_ops.grouped_conv2d,
                                more_ops.dilated_conv2d, more_ops.transposed_conv2d,
                                more_ops.conv3d])
def test_more_operators_parse_back(fn):
    small = {"conv3d": dict(d=4, h=6, w=6, ci=2, co=3, kernel=3),
             "transposed_conv2d": dict(ci=4, co=3)}.get(fn.__name__, {})
    base = dict(h=10, w=9, ci=8, co=8) if "conv2d" in fn.__name__ else {}
    if fn is more_ops.batch_matmul:
        base = dict(n=8, m=6, k=4, transpose_a=True)
    wl = fn(**{**base, **small})
    assert ps.parse(wl.text()).workload().text() == wl.text()


def _error(text: str, filename: str = "f.sched") -> SchedSyntaxError:
    with pytest.raises(SchedSyntaxError) as info:
        parse(text, filename)
    return info.value


@pytest.mark.parametrize("text, label, line, col", [
    ("space s\n    pass\n", "missing ':'", 1, 8),
    ("def f(a, b)\n    return a\n", "missing ':'", 1, 12),
    ("space s:\n    for l in [1, 2]\n        pass\n", "missing ':'", 2, 20),
    ("space s:\n    x = 1\n    if x = 1:\n        pass\n", "'=' assigns; compare with '=='", 3, 10),
    ("workload w(n = 4):\n    input A: float16[n]\n", "unknown dtype", 2, 14),
    ("space s:\n    x = 1\n        y = 2\n", "unexpected indentation", 3, 9),
    ("space s:\nx = 1\n", "expected an indented block", 2, 1),
    ("x = 1\n", "statements belong inside a space or a def", 1, 1),
    ("space s:\n    f(a b)\n", "missing ','", 2, 9),
    ("workload w():\n    C[i + 1] = 1.0\n", "a stage's left side lists axis names", 2, 9),
])
def test_catalogue_labels(text, label, line, col):
    err = _error(text)
    assert err.location.line == line and err.location.column == col, str(err)
    first, source_line, caret = str(err).splitlines()
    assert first.startswith(f"f.sched:{line}:{col}: error: {label}")
    assert source_line.strip() == text.splitlines()[line - 1].strip()
    assert caret.index("^") - 4 == col - 1


def test_catalogue_snippets_all_fail():
    for label, snippets in CATALOGUE.items():
        for snippet in snippets:
            with pytest.raises(SchedSyntaxError):
                parse(snippet)
            assert label


def test_unclosed_bracket_points_at_the_bracket():
    err = _error("space s:\n    x = split(l, [None, 8\n    y = 2\n")
    assert "'[' at line 2, column 18 is never closed" in str(err)
    assert "expected ',', ']'" in _error("space s:\n    x = split(l, [None, 8)\n").message
    err = _error("space s:\n    x = f(1, 2\n    y = 2\n")
    assert err.location.line == 2 and "never closed" in err.message


def test_inconsistent_dedent_and_strings():
    err = _error("space s:\n    if x:\n        pass\n      y = 1\n")
    assert err.location.line == 4 and "indentation" in err.message
    assert "unterminated string" in _error('space s:\n    b = get_block("C)\n').message
    assert "escape" in _error('space s:\n    b = get_block("\\q")\n').message


def test_argument_order_and_duplicates():
    assert "positional argument after" in _error("space s:\n    f(a=1, 2)\n").message
    assert "given twice" in _error("space s:\n    f(a=1, a=2)\n").message
    assert "given twice" in _error("def f(a, a):\n    pass\n").message


def test_comments_blank_lines_and_no_final_newline():
    text = "# head\n\n\nspace s:  # c\n\n    # odd indent comment\n  # another\n    pass"
    (space,) = parse(text).items
    assert isinstance(space.body[0], ast.Pass)


def test_parse_is_remembered():
    assert parse(EXAMPLE, "ex.sched") is parse(EXAMPLE, "ex.sched")
