"""Fuzzing the language: programs generated from the grammar and mutated example files go
through parse and check. Each one parses (and checks) or raises the project's syntax or
semantic error with a location; nothing else escapes.

The default profile runs a few dozen inputs; ``-m slow`` runs over 2,000 in process, and
10,000 (generated, and mutated from the examples, the rule library and the hostile files of
tests/data/hostile/) through ``check`` and ``run``'s front end in a worker process limited in
time and memory (tests/sched_sandbox.py; counts and timings in docs/benchmarks.md).
"""

import collections
import random
import re
import time
from pathlib import Path

import lark
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark
from sched_mutations import mutate
from sched_sandbox import Sandbox

import probsched as ps
from probsched.errors import ProbschedError
from probsched.lang.grammar import grammar_text
from probsched.lang.strategies import spaces

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


# ---------------------------------------------------------------- at scale, in a sandbox

ROOT = EXAMPLES.parent
SEEDS = FILES + [ROOT / "probsched" / "rules" / "cpu.sched", ROOT / "tests" / "data" /
                 "more_ops.sched"] + sorted((ROOT / "tests" / "data" / "hostile").glob("*.sched"))
SCALE = {"grammar": 2_500, "spaces": 500, "mutated": 7_000}  # 10,000 inputs


def _drawn(strategy, n: int) -> list[str]:
    out: list[str] = []

    @settings(max_examples=n, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(text):
        out.append(text)

    collect()
    return out[:n]


def _scale_inputs() -> list[tuple[str, str, str]]:
    """(origin, filename, text) of every input, the same each run."""
    seeds = [(str(p), p.read_text(encoding="utf-8", errors="replace")) for p in SEEDS]
    texts = [t for _, t in seeds]
    rng = random.Random(0)
    inputs = [("grammar", "fuzz.sched", t) for t in _drawn(PROGRAMS, SCALE["grammar"])]
    inputs += [("spaces", "fuzz.sched", t) for t in _drawn(spaces(), SCALE["spaces"])]
    for _ in range(SCALE["mutated"]):
        name, text = rng.choice(seeds)
        inputs.append(("mutated", name, mutate(rng, text, texts)))
    return inputs


@pytest.mark.slow
def test_fuzz_at_scale_in_a_sandbox():
    """Every input ends in success or a located error (no traceback), within 10 s of CPU and 1 GB
    more than the worker holds; a summary is printed (``-s``) for docs/benchmarks.md."""
    inputs = _scale_inputs()
    outcomes: collections.Counter = collections.Counter()
    problems, slowest, peak = [], (0.0, ""), 0.0
    start = time.perf_counter()
    with Sandbox(memory_mb=1024, timeout_s=10) as sandbox:
        for k, (origin, filename, text) in enumerate(inputs):
            answer = sandbox.run({"text": text, "filename": filename, "compile": k % 10 == 0})
            rc, out = answer["rc"], answer["out"]
            first = next((line for line in out.splitlines() if line.strip()), "")
            if rc == 1 and re.match(r"[^\n]+?:\d+:\d+: error: ", first):
                outcomes[f"{origin}: located error"] += 1
            elif rc == 1 and _RUN_USAGE.search(first):
                outcomes[f"{origin}: run needs a choice"] += 1
            elif rc == 0:
                outcomes[f"{origin}: ok"] += 1
            else:
                outcomes[f"{origin}: problem"] += 1
                problems.append(f"input {k} ({origin}, {filename}): rc={rc}\n{out[-2000:]}\n"
                                f"--- input ---\n{text[:3000]}")
            slowest = max(slowest, (answer["seconds"], f"input {k} ({origin}, {filename})"))
            peak = max(peak, answer["peak_mb"] or 0.0)
    wall = time.perf_counter() - start
    print(f"\n{len(inputs)} inputs in {wall:.0f} s; slowest {slowest[0]:.2f} s ({slowest[1]}); "
          f"peak worker memory {peak:.0f} MB; worker restarts {sandbox.restarts}")
    for key in sorted(outcomes):
        print(f"  {key}: {outcomes[key]}")
    assert len(inputs) == sum(SCALE.values())
    listed = "\n".join(p.split("\n", 2)[0][:200] + " | " + p.split("\n", 2)[1][:200]
                       for p in problems)
    assert not problems, f"{len(problems)} problems:\n{listed}\n\nthe first:\n" + "\n\n".join(
        problems[:3])


# `run` with several workloads or spaces asks for one (an error about the command line).
_RUN_USAGE = re.compile(r"\(unlocated\) .*(name one|pick one with --space)")
