"""Search strategies propose what to measure next: the :class:`SearchStrategy` protocol and
the :class:`Candidate` they propose (plain frozen data: a schedule of the space)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..ir.program import Program
from ..measure import RunResult
from ..schedule import Trace
from .mutators import Choice


@dataclass(frozen=True)
class Candidate:
    """A schedule of the space: its decisions by address (in sampling order), trace, program
    and the key of its decisions (equal keys: the same candidate)."""

    decisions: tuple[tuple[str, Any], ...]
    trace: Trace
    program: Program
    key: str
    choices: tuple[Choice, ...] = field(compare=False, repr=False, default=())


class SearchStrategy(Protocol):
    """What the tuner asks of a search strategy (:class:`~.evolutionary.EvolutionarySearch`
    is the one we ship)."""

    def propose(self, n: int) -> list[Candidate]:
        """Up to ``n`` candidates never measured (fewer, or none, when the space runs out)."""

    def measured(self, candidates: Sequence[Candidate], results: Sequence[RunResult]) -> None:
        """These were measured, with these results (the tuner stored them and told the
        cost model)."""
