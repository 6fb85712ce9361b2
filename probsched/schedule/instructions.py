"""The instruction registry: what each instruction kind is (pure? sampling?) and the Schedule
method that applies it. Replay calls the method by name, so a primitive has one
implementation, used alike by people, by spaces and by replay.

Extending: a new primitive is a Schedule method plus ``@instruction("name")`` on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class InstructionKind:
    name: str
    pure: bool  # no effect on the program: dropping it (when unused) changes nothing
    sampling: bool  # draws a decision
    returns_list: bool = False  # a list of RVs (so one output prints as ``x = kind(...)[0]``)


REGISTRY: dict[str, InstructionKind] = {}


def instruction(name: str, *, pure: bool = False, sampling: bool = False) -> Callable:
    """Register a Schedule method as the instruction kind ``name``."""

    def register(method: Callable) -> Callable:
        returns = str(getattr(method, "__annotations__", {}).get("return", ""))
        REGISTRY[name] = InstructionKind(name, pure or sampling, sampling,
                                         returns.startswith("list"))
        method.instruction_kind = name
        return method

    return register
