"""Traces: the straight-line instructions a schedule ran, plus the decisions of its sampling
instructions. A trace is plain data: it survives JSON, prints as `.sched` text, and replays onto
a fresh schedule, with some decisions changed if wanted (that is all mutation needs).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ProbschedError


@dataclass(frozen=True, slots=True)
class RV:
    """A random variable of a schedule: a block (``b``), loop (``l``) or integer (``v``)."""

    kind: str
    id: int

    def __str__(self) -> str:
        return f"{self.kind}{self.id}"

    __repr__ = __str__


BlockRV = LoopRV = IntRV = RV


@dataclass(frozen=True, slots=True)
class Instruction:
    kind: str
    inputs: tuple[Any, ...]
    attrs: tuple[tuple[str, Any], ...]
    outputs: tuple[RV, ...]

    def attr(self, name: str, default=None):
        for k, v in self.attrs:
            if k == name:
                return v
        return default


def _freeze(x: Any) -> Any:
    if isinstance(x, list | tuple):
        return tuple(_freeze(v) for v in x)
    return x


@dataclass(frozen=True)
class Trace:
    """Instructions plus decisions keyed by instruction index."""

    instructions: tuple[Instruction, ...]
    decisions: tuple[tuple[int, Any], ...] = ()
    _by_index: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_index.update(self.decisions)

    @property
    def decision_map(self) -> dict[int, Any]:
        return dict(self._by_index)

    def decision(self, index: int) -> Any:
        return self._by_index.get(index)

    def with_decision(self, index: int, decision: Any) -> Trace:
        """The same trace with instruction ``index``'s decision replaced (None: removed, so a
        replay samples it afresh)."""
        if not (0 <= index < len(self.instructions)):
            raise ProbschedError(f"trace has no instruction {index}")
        d = {k: v for k, v in self.decisions if k != index}
        if decision is not None:
            d[index] = _freeze(decision)
        return Trace(self.instructions, tuple(sorted(d.items())))

    def replay(self, workload, decisions: Mapping[int, Any] | None = None, *, seed: int = 0,
               target=None):
        """Run the instructions on a fresh schedule of ``workload`` for ``target``;
        ``decisions`` (by instruction index) override this trace's own. Returns the
        :class:`Schedule`."""
        from .schedule import Schedule

        sch = Schedule(workload, seed=seed, target=target)
        chosen = self.decision_map if decisions is None else {**self.decision_map, **decisions}
        sch.replay_instructions(self.instructions, chosen)
        return sch

    def simplified(self) -> Trace:
        """Drop pure instructions (queries and samplings) whose outputs nothing uses."""
        from .instructions import REGISTRY

        used: set[RV] = set()
        keep = []
        for index in range(len(self.instructions) - 1, -1, -1):
            inst = self.instructions[index]
            if REGISTRY[inst.kind].pure and not (set(inst.outputs) & used):
                continue
            keep.append(index)
            used.update(_rvs(inst.inputs))
        keep.reverse()
        renumber = {old: new for new, old in enumerate(keep)}
        insts = tuple(self.instructions[k] for k in keep)
        decs = tuple((renumber[k], v) for k, v in self.decisions if k in renumber)
        return Trace(insts, decs)

    # ------------------------------------------------------------ JSON

    def to_json(self) -> str:
        insts = [
            [i.kind, _encode(i.inputs), [[k, _encode(v)] for k, v in i.attrs],
             [str(o) for o in i.outputs]]
            for i in self.instructions
        ]
        return json.dumps({"instructions": insts,
                           "decisions": [[k, _encode(v)] for k, v in self.decisions]},
                          separators=(",", ":"))

    @staticmethod
    def from_json(text: str) -> Trace:
        try:
            data = json.loads(text)
            insts = tuple(
                Instruction(kind, _freeze(_decode(inputs)),
                            tuple((k, _freeze(_decode(v))) for k, v in attrs),
                            tuple(_parse_rv(o) for o in outputs))
                for kind, inputs, attrs, outputs in data["instructions"]
            )
            decs = tuple((int(k), _freeze(_decode(v))) for k, v in data["decisions"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ProbschedError(f"not a probsched trace: {exc}") from None
        return Trace(insts, decs)

    # ------------------------------------------------------------ text

    def __str__(self) -> str:
        from .printing import format_trace

        return format_trace(self)

    def __len__(self) -> int:
        return len(self.instructions)


def _rvs(x: Any):
    if isinstance(x, RV):
        yield x
    elif isinstance(x, tuple | list):
        for v in x:
            yield from _rvs(v)


def _encode(x: Any) -> Any:
    if isinstance(x, RV):
        return {"rv": str(x)}
    if isinstance(x, tuple | list):
        return [_encode(v) for v in x]
    return x


def _decode(x: Any) -> Any:
    if isinstance(x, dict):
        return _parse_rv(x["rv"])
    if isinstance(x, list):
        return [_decode(v) for v in x]
    return x


def _parse_rv(text: str) -> RV:
    if not text or text[0] not in "blv" or not text[1:].isdigit():
        raise ValueError(f"bad random variable {text!r}")
    return RV(text[0], int(text[1:]))
