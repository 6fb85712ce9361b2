"""How a Program is transformed: the Schedule, its primitives and sampling instructions, the
registry that declares them, and traces that record and replay them."""

from .registry import INSTRUCTIONS, QUERIES, InstructionKind, QueryKind
from .schedule import Schedule
from .state import INLINE, ROOT
from .trace import RV, Instruction, Trace, decisions_key

__all__ = [
    "INLINE", "INSTRUCTIONS", "QUERIES", "ROOT", "RV", "Instruction", "InstructionKind",
    "QueryKind", "Schedule", "Trace", "decisions_key",
]
