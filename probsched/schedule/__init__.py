"""How a Program is transformed: the Schedule, its primitives and sampling instructions, and
traces that record and replay them."""

from .schedule import INLINE, ROOT, Schedule
from .trace import RV, Instruction, Trace

__all__ = ["INLINE", "ROOT", "RV", "Instruction", "Schedule", "Trace"]
