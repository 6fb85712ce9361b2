"""The limits of the .sched language (probsched/lang/limits.py): each one is a located error
that names it, reached before time, memory or Python's stack run out; what stays within them
still works."""

from __future__ import annotations

import os
import re
import time

import pytest

import probsched as ps
from probsched.lang import limits

W = "workload w(n = 8):\n    input A: float32[n]\n    B[i] = A[i] * 2.0\n\n"
LOOP = 'get_loops(get_block("B"))[0]'


def space(body: str, rules: str = "") -> str:
    return W + rules + "space s for w:\n" + body


def error_of(text: str, filename: str = "t.sched") -> ps.ProbschedError:
    with pytest.raises(ps.ProbschedError) as info:
        ps.parse(text, filename).check()
    return info.value


def located(text: str, pattern: str) -> ps.ProbschedError:
    """The error ``text`` raises; it is located, and its message matches ``pattern``."""
    exc = error_of(text)
    assert exc.location is not None, exc
    assert re.search(pattern, exc.message), exc.message
    return exc


# ---------------------------------------------------------------- nesting


@pytest.mark.parametrize("expr, depth", [
    ("- " * 500 + "1", 500),
    ("not " * 500 + "True", 500),
    ("len(" * 300 + "[1]" + ")" * 300, 301),
    ("+".join(["1"] * 1000), 999),
    (" and ".join(["True"] * 1000), 999),
])
def test_deep_expressions_are_refused_at_the_limit(expr, depth):
    exc = located(space(f"    x = {expr}\n"),
                  rf"nested {depth} deep, more than 100 \(the limit\): blocks, calls")
    assert exc.location.line == 6
    # The source line shown is cut around the caret, not the whole (long) line.
    assert max(len(line) for line in str(exc).splitlines()[1:]) < 120


def test_deep_square_brackets_stop_the_lexer_at_the_first_too_deep():
    """A file of many deeply bracketed lines is refused at its first, not parsed through
    (299 lines of 300 brackets took 14 s to parse before the nesting check saw them)."""
    line = "    x = " + "[" * 300 + "1" + "]" * 300 + "\n"
    exc = located(space(line * 299), r"square brackets nested more than 100 deep")
    assert (exc.location.line, exc.location.column) == (6, 9 + 100)


def test_a_file_of_too_many_tokens_is_refused_as_it_is_lexed():
    exc = located(space("    y = 1\n" * 40_000),
                  r"a file of more than 100000 tokens \(the limit\)")
    assert exc.location.line > 6


def test_deep_blocks_and_a_1_mb_line_are_refused():
    deep_if = "".join("  " * (k + 1) + "if True:\n" for k in range(250)) + "  " * 251 + "pass\n"
    exc = located(space(deep_if), r"nested 250 deep, more than 100")
    assert exc.location.line == 5 + 101  # the first block beyond the limit
    start = time.perf_counter()  # a line of a megabyte stops at the token limit
    exc = located(space("    x = " + "+".join(["1"] * 500_000) + "\n"),
                  r"a line of more than 20000 tokens \(the limit\)")
    assert (exc.location.line, exc.location.column) == (6, 5)
    assert time.perf_counter() - start < 5


def test_workload_expressions_and_defaults_nest_within_the_limit():
    located("workload w(n = 8):\n    input A: float32[n]\n    B[i] = "
            + " + ".join(["A[i]"] * 500) + "\n", r"nested 500 deep")
    located("workload w(n = " + "+".join(["1"] * 400) + "):\n    input A: float32[n]\n"
            "    B[i] = A[i]\n", r"nested 399 deep")
    # Up to the limit, a workload goes through every pass (the generated space, codegen).
    wl = ps.parse("workload w(n = 8):\n    input A: float32[n]\n    B[i] = "
                  + "exp(" * 99 + "A[i]" + ")" * 99 + "\n").workload()
    sch = ps.Schedule(wl, seed=0)
    ps.lang.generated_space().apply(sch)
    assert ps.measure(sch).correct


def test_parentheses_alone_do_not_nest():
    ps.parse(space("    x = " + "(" * 1000 + "1" + ")" * 1000 + "\n")).check()


def test_rule_calls_nest_within_the_stack():
    """Each active call adds its body's nesting and 2; endless recursion ends in an error of
    the interpreter, whatever the body, never in Python's RecursionError."""
    shallow = "def f(k):\n    if k > 0:\n        return f(k - 1)\n    return 0\n\n"
    ps.parse(space("    f(38)\n", shallow)).check()  # 5 + 38 * 5 = 195 levels
    located(space("    f(39)\n", shallow), r"rule calls nested too deeply: with this call of f, "
            r"the space and the rules running nest 201 levels in all, more than 200")
    deep = "def f(x):\n    return f(" + " + ".join(["x"] * 60) + ")\n\n"
    located(space("    f(0)\n", deep), r"nest 249 levels in all")  # 1 + 3 * 62 fit
    endless = "def f(x):\n    return f(x)\n\n"
    located(space("    f(0)\n", endless), r"rules nested more than 64 deep \(endless recursion")


# ---------------------------------------------------------------- running a space


RUN_LIMITS = [
    ("    for k in range(1000000000000000000000000000000):\n        pass\n",
     r"range\(\) of 1000000000000000000000000000000 items is longer than 100000 \(the limit\)"),
    ("    xs = [1]\n    for k in range(100):\n        xs = xs + xs\n",
     r"a list of 131072 items is longer than 100000 \(the limit\)"),
    ('    s = "ab"\n    for k in range(100):\n        s = s + s\n',
     r"a string of 131072 characters is longer than 100000 \(the limit\)"),
    ("    for a in range(100000):\n        x = len(range(100000))\n",
     r"built or compared more than 1000000 list items and string characters in all"),
    ("    xs = [1]\n    ys = [1]\n    for k in range(60):\n        xs = [xs, xs]\n"
     "        ys = [ys, ys]\n    z = xs == ys\n",
     r"built or compared more than 1000000 list items"),
    ("    for a in range(100000):\n        for b in range(100000):\n            pass\n",
     r"the space ran more than 100000 statements \(the limit\)"),
    ("    x = " + "9" * 100 + "\n" + "    x = x * x\n",
     r"an integer of more than 100 digits \(the limit\)"),
    ("    x = int64(1e308)\n", r"an integer of more than 100 digits"),
    ("    x = [1] < [2]\n", r"lists compare with '==' and '!=' only, not '<'"),
    ("    xs = [[1]]\n    split(" + LOOP + ", xs)\n", r"split\(\) takes no list of lists"),
    ('    b = get_block("B")\n    for k in range(5000):\n        c = cache_read(b, 0)\n',
     r"went over more than 1000000 loops and blocks in all \(the limit"),
]


@pytest.mark.parametrize("body, pattern", RUN_LIMITS, ids=[
    "range-1e30", "list-doubling", "string-doubling", "lists-built", "lists-compared",
    "statements", "integer-digits", "integer-from-float", "list-ordering", "list-of-lists",
    "program-work"])
def test_a_run_stays_within_its_limits(body, pattern):
    start = time.perf_counter()
    located(space(body), pattern)
    assert time.perf_counter() - start < 15


def test_deep_lists_compare_without_recursion():
    body = ("    xs = [1]\n    ys = [1]\n    for k in range(20000):\n        xs = [xs]\n"
            "        ys = [ys]\n    if xs == ys and xs != [ys, 1] and [1, [2]] == [1, [2]]:\n"
            "        split(" + LOOP + ", [None, 2])\n")
    ps.parse(space(body)).check()


# ---------------------------------------------------------------- lexical structure


@pytest.mark.parametrize("text, line, col, word", [
    ("workload w(n = 8):\n    input for: float32[n]\n    B[i] = A[i]\n", 2, 11, "for"),
    (W + "def if(x):\n    pass\n", 5, 5, "if"),
    ("workload w(in = 8):\n    input A: float32[in]\n    B[i] = A[i]\n", 1, 12, "in"),
    (W + "space for for w:\n    pass\n", 5, 7, "for"),
    (space("    use = 1\n"), 6, 5, "use"),
    (space("    require = 1\n"), 6, 5, "require"),
    (space("    x = len(pass)\n"), 6, 13, "pass"),
    ("workload w(n = 8):\n    input A: float32[n]\n    B[None] = A[0]\n", 3, 7, "None"),
])
def test_keywords_are_not_names(text, line, col, word):
    exc = error_of(text)
    assert isinstance(exc, ps.SchedSyntaxError)
    assert (exc.location.line, exc.location.column) == (line, col)
    assert f"'{word}' is a keyword; it cannot be used as a name" in exc.message


def test_a_byte_order_mark_is_dropped(tmp_path):
    path = tmp_path / "bom.sched"
    path.write_bytes(b"\xef\xbb\xbf" + W.encode())
    assert ps.load(path).workload_names == ["w"]
    assert ps.parse("\ufeff" + W).workload_names == ["w"]


# ---------------------------------------------------------------- files


def test_files_are_read_with_a_bound(tmp_path):
    for device in ("/dev/zero", "/dev/urandom"):
        if os.path.exists(device):
            with pytest.raises(ps.ProbschedError, match=r"longer than 1 MB \(the limit"):
                ps.load(device)
            exc = located(f'use "{device}"\n' + W, r"cannot use .*longer than 1 MB \(the limit")
            assert (exc.location.line, exc.location.column) == (1, 1)
    big = tmp_path / "big.sched"
    big.write_text("#" * limits.MAX_FILE_BYTES + "\n")
    with pytest.raises(ps.ProbschedError, match="longer than 1 MB"):
        ps.load(big)
    fits = tmp_path / "fits.sched"
    fits.write_text("#" * (limits.MAX_FILE_BYTES - 1) + "\n")
    assert ps.load(fits).workload_names == []


def test_odd_use_targets_are_located_errors(tmp_path):
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    (tmp_path / "bin.sched").write_bytes(bytes(range(256)))
    cases = [
        ("loop", "cannot use 'loop'"),
        ("bin.sched", "cannot use 'bin.sched': 'utf-8' codec can't decode"),
        (".", "cannot use '.': a folder, not a file"),
        ("a\\u0000b", "cannot use 'a\\x00b': embedded null byte"),
        ("missing.sched", "cannot use 'missing.sched': no such file"),
    ]
    for target, message in cases:
        main = tmp_path / "main.sched"
        main.write_text(f'use "{target}"\n')
        with pytest.raises(ps.ProbschedError) as info:
            ps.load(main)
        assert str(info.value).startswith(f"{main}:1:1: error: {message}"), str(info.value)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_pipe_nobody_writes_to_reads_as_empty(tmp_path):
    os.mkfifo(tmp_path / "pipe.sched")
    (tmp_path / "main.sched").write_text('use "pipe.sched"\n' + W)
    assert ps.load(tmp_path / "main.sched").workload_names == ["w"]


def test_chains_of_uses_are_bounded(tmp_path):
    for k in range(40):
        (tmp_path / f"f{k}.sched").write_text(f'use "f{k + 1}.sched"\n')
    (tmp_path / "f40.sched").write_text("def r():\n    pass\n")
    with pytest.raises(ps.ProbschedError, match=r"more than 32 files in a chain of uses"):
        ps.load(tmp_path / "f0.sched")
    assert list(ps.load(tmp_path / "f10.sched").rules) == ["r"]


def test_the_language_doc_states_the_limits():
    from pathlib import Path

    doc = (Path(__file__).parent.parent / "docs" / "language.md").read_text(encoding="utf-8")
    rows = {
        "file size": f"{limits.MAX_FILE_BYTES // 2**20} MB",
        "`use` chain": f"{limits.MAX_USE_DEPTH} files",
        "line": f"{limits.MAX_STATEMENT_TOKENS:,} tokens",
        "nesting": f"{limits.MAX_NESTING} levels",
        "statements": f"{limits.MAX_STEPS:,}",
        "lists and strings": f"{limits.MAX_ITEMS:,} items",
        "items built": f"{limits.MAX_ITEM_WORK:,}",
        "integers": f"{limits.MAX_INT_DIGITS} digits",
        "rule calls": f"{limits.MAX_CALL_DEPTH} deep",
        "run nesting": f"{limits.MAX_RUN_NESTING} levels",
        "program work": f"{limits.MAX_PROGRAM_WORK:,}",
    }
    for name, value in rows.items():
        assert f"| {name} | {value} |" in doc, name
