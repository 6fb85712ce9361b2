"""Fuzzing the language: programs generated from the grammar and mutated example files go
through parse and check. Each one parses (and checks) or raises the project's syntax or
semantic error with a location; nothing else escapes.

The default profile runs a few dozen inputs; ``-m slow`` runs over 2,000.
"""

import re
from pathlib import Path

import lark
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark

import probsched as ps
from probsched.errors import ProbschedError
from probsched.lang.grammar import grammar_text

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
FILES = sorted(EXAMPLES.glob("*.sched")) + sorted(EXAMPLES.glob("rules/*.sched"))

_NAMES = ["x", "i", "j", "c", "l1", "A", "C", "n", "tile", "get_block", "get_loops", "split",
          "sample_perfect_tile", "annotate", "len", "range", "sum", "select", "exp", "true"]


def _program_strategy():
    grammar = lark.Lark(grammar_text(), parser="lalr")
    explicit = {
        "_INDENT": st.just("\x01"),
        "_DEDENT": st.just("\x02"),
        "_NL": st.sampled_from(["\n", "  # note\n", "\n\n"]),
        "NAME": st.sampled_from(_NAMES).map(lambda s: f" {s} "),
        "INT": st.sampled_from(["0", "1", "2", "8", "16", "1024", "99999999999"]),
        "FLOAT": st.sampled_from(["0.5", "1e-05", "2.0"]),
        "STRING": st.sampled_from(['"C"', '"A"', '"tag"', '"rules/none.sched"', "'x'"]),
        "DTYPE": st.sampled_from([" float32 ", " int32 "]),
    }
    for term in grammar.terminals:  # keywords need spaces around them
        if term.pattern.type == "str" and term.pattern.value.isalpha():
            explicit[term.name] = st.just(f" {term.pattern.value} ")
    return from_lark(grammar, explicit=explicit).map(_indent)


def _indent(raw: str) -> str:
    """Turn the generator's indent/dedent markers into indentation, four spaces a level."""
    depth, out = 0, []
    for line in raw.split("\n"):
        line = line.lstrip(" \t\f")
        while line[:1] in ("\x01", "\x02") and line:
            depth += 1 if line[0] == "\x01" else -1
            line = line[1:].lstrip(" \t\f")
        out.append("    " * max(depth, 0) + line.replace("\x01", "").replace("\x02", ""))
    return "\n".join(out)


PROGRAMS = _program_strategy()


@st.composite
def mutated_examples(draw):
    path = draw(st.sampled_from(FILES))
    text = path.read_text()
    for _ in range(draw(st.integers(1, 3))):
        tokens = re.findall(r"\s+|\w+|[^\w\s]", text)
        kind = draw(st.sampled_from(["delete", "duplicate", "swap"]))
        if draw(st.booleans()):  # characters instead of tokens
            tokens = list(text)
        k = draw(st.integers(0, len(tokens) - 2))
        if kind == "delete":
            del tokens[k]
        elif kind == "duplicate":
            tokens.insert(k, tokens[k])
        else:
            tokens[k], tokens[k + 1] = tokens[k + 1], tokens[k]
        text = "".join(tokens)
    return str(path), text


def feed(text: str, filename: str = "fuzz.sched") -> None:
    try:
        ps.parse(text, filename).check()
    except ProbschedError as exc:
        assert exc.location is not None, f"{type(exc).__name__} without a location: {exc}"
        assert str(exc).startswith(f"{exc.location.file}:{exc.location.line}:")


_FAST = settings(deadline=None, suppress_health_check=list(HealthCheck))
_FULL = settings(max_examples=1100, deadline=None, suppress_health_check=list(HealthCheck))


@_FAST
@given(PROGRAMS)
def test_generated_programs(text):
    feed(text)


@_FAST
@given(mutated_examples())
def test_mutated_examples(case):
    feed(case[1], case[0])


@pytest.mark.slow
@_FULL
@given(PROGRAMS)
def test_generated_programs_full(text):
    feed(text)


@pytest.mark.slow
@_FULL
@given(mutated_examples())
def test_mutated_examples_full(case):
    feed(case[1], case[0])


def test_the_generator_reaches_past_the_parser():
    """The generated programs are not all syntax errors (the fuzzing exercises the checks)."""
    parsed = 0

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck),
              database=None)
    @given(PROGRAMS)
    def count(text):
        nonlocal parsed
        try:
            ps.lang.parser.parse(text)
            parsed += 1
        except ps.SchedSyntaxError:
            pass

    count()
    assert parsed >= 10
