"""The registry declares every instruction and query once; the interpreter, the checker, the
trace features and docs/language.md's tables are derived from it."""

import re
from pathlib import Path

import pytest

import probsched as ps
from probsched.lang.builtins import BUILTINS, FUNCTIONS
from probsched.schedule import INSTRUCTIONS, QUERIES
from probsched.schedule.registry import (
    ARG_KINDS,
    instruction_table,
    query_table,
    trace_kinds,
)
from probsched.search.trace_features import KINDS

DOC = Path(__file__).resolve().parent.parent / "docs" / "language.md"
TABLES = {"queries": query_table, "primitives": instruction_table}


def _section(text: str, name: str) -> tuple[int, int]:
    start = re.search(rf"<!-- generated: {name} .*?-->\n", text)
    end = text.find(f"<!-- end: {name} -->")
    assert start and end > 0, f"docs/language.md lacks the markers of the {name} table"
    return start.end(), end


@pytest.mark.parametrize("name", sorted(TABLES))
def test_the_docs_tables_are_the_registrys(name, request):
    text = DOC.read_text(encoding="utf-8")
    start, end = _section(text, name)
    table = TABLES[name]() + "\n"
    if request.config.getoption("--update-golden") and text[start:end] != table:
        DOC.write_text(text[:start] + table + text[end:], encoding="utf-8")
        return
    assert text[start:end] == table, (
        f"docs/language.md's {name} table differs from the registry; rerun with "
        "--update-golden to rewrite it")


def test_the_interpreter_and_the_features_derive_from_the_registry():
    assert set(BUILTINS) == set(FUNCTIONS) | set(QUERIES)
    assert not set(FUNCTIONS) & (set(QUERIES) | set(INSTRUCTIONS))
    assert KINDS == trace_kinds()
    assert "get_blocks" not in KINDS and "get_blocks" in INSTRUCTIONS  # a lookup, not "other"
    lookups = {k for k, v in INSTRUCTIONS.items() if v.pure and not v.sampling}
    assert lookups == {"get_block", "get_blocks", "get_loops", "get_producers",
                       "get_consumers"}
    assert set(KINDS) == set(INSTRUCTIONS) - lookups


def test_every_declaration_is_complete():
    for decl in (*INSTRUCTIONS.values(), *QUERIES.values()):
        params = [p for p in decl.signature.parameters if p != "decision"]
        assert len(decl.args) == len(params), decl.name
        assert all(a in ARG_KINDS for a in decl.args), decl.name
        assert decl.doc and decl.doc.endswith((".", ")")), decl.name
        assert hasattr(ps.Schedule, decl.name)
    sampling = {k for k, v in INSTRUCTIONS.items() if v.sampling}
    assert all("decision" in INSTRUCTIONS[k].signature.parameters for k in sampling)


def test_a_query_called_with_the_wrong_arity_is_refused_before_running():
    with pytest.raises(ps.ProbschedError, match=r"<string>:2:5: error: loop_extent\(\): missing"):
        ps.parse("space s:\n    loop_extent()\n")


def test_a_bad_declaration_is_refused_at_import():
    from probsched.schedule.registry import instruction

    with pytest.raises(TypeError, match="argument kinds"):
        @instruction("loop")
        def two(self, loop, factor): ...
    with pytest.raises(TypeError, match="returns"):
        @instruction("loop", returns="banana")
        def one(self, loop): ...
