"""Traces: the straight-line instructions a schedule ran, plus the decisions of its sampling
instructions, keyed by address. A trace is plain data: it survives JSON, prints as `.sched`
text, and replays onto a fresh schedule, with some decisions changed if wanted (that is all
mutation needs).

**Addresses.** Every sampling instruction has one: where the choice was made. A space written
in `.sched` gives the call site and the dynamic path to it
(``matmul.sched:14:5[2] > rules/common.sched:3:10``, see :mod:`probsched.lang.interpreter`);
elsewhere (Python spaces, direct calls) it is the choice's order, ``#0``, ``#1``, ... A
trace's ``decisions`` map addresses to decisions; databases store that map, and search
mutates it and runs the space again with it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ProbschedError
from . import registry

Decisions = dict[str, Any]


@dataclass(frozen=True, slots=True)
class RV:
    """A random variable of a schedule: a block (``b``), loop (``l``) or integer (``v``)."""

    kind: str
    id: int

    def __str__(self) -> str:
        return f"{self.kind}{self.id}"

    __repr__ = __str__


@dataclass(frozen=True, slots=True)
class Instruction:
    """One step: its kind, inputs (RVs and plain values), attributes and output RVs; a
    sampling instruction also has its ``address``."""

    kind: str
    inputs: tuple[Any, ...]
    attrs: tuple[tuple[str, Any], ...]
    outputs: tuple[RV, ...]
    address: str | None = None

    def attr(self, name: str, default=None):
        for k, v in self.attrs:
            if k == name:
                return v
        return default


def freeze(x: Any) -> Any:
    """Lists become tuples, recursively: instructions and decisions are hashable."""
    if isinstance(x, list | tuple):
        return tuple(freeze(v) for v in x)
    return x


def decisions_key(decisions: Mapping[str, Any]) -> str:
    """The canonical JSON of a decision map: equal for two maps exactly when their decisions
    are (databases index records by it)."""
    items = sorted((str(a), _encode(d)) for a, d in decisions.items())
    return json.dumps(items, separators=(",", ":"))


@dataclass(frozen=True)
class Trace:
    """Instructions plus the decisions of the sampling ones, by address."""

    instructions: tuple[Instruction, ...]
    decisions: tuple[tuple[str, Any], ...] = ()
    _by_address: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_address.update(self.decisions)

    @property
    def decision_map(self) -> Decisions:
        """Address -> decision, in the order the choices were made."""
        return dict(self._by_address)

    def decision(self, address: str) -> Any:
        """The decision made at ``address`` (None: none recorded)."""
        return self._by_address.get(address)

    def decision_at(self, index: int) -> Any:
        """The decision of instruction ``index`` (None: not a sampling instruction)."""
        address = self.instructions[index].address
        return None if address is None else self._by_address.get(address)

    def sampling(self) -> Iterator[tuple[int, Instruction]]:
        """The sampling instructions with their index."""
        for index, inst in enumerate(self.instructions):
            if inst.address is not None:
                yield index, inst

    def same_steps(self, other: Trace) -> bool:
        """The same instructions with the same decisions, wherever the choices were made (a
        trace printed as `.sched` and run again has the new file's addresses)."""
        def steps(t: Trace) -> list[tuple]:
            return [(i.kind, i.inputs, i.attrs, i.outputs,
                     None if i.address is None else t.decision(i.address))
                    for i in t.instructions]

        return steps(self) == steps(other)

    @property
    def key(self) -> str:
        """:func:`decisions_key` of this trace's decisions."""
        return decisions_key(self._by_address)

    def with_decision(self, address: str, decision: Any) -> Trace:
        """The same trace with the decision at ``address`` replaced (None: removed, so a
        replay samples it afresh)."""
        if address not in {inst.address for _, inst in self.sampling()}:
            raise ProbschedError(f"trace has no sampling instruction at address {address!r}")
        d = dict(self.decisions)
        d.pop(address, None)
        if decision is not None:
            d[address] = freeze(decision)
        order = [inst.address for _, inst in self.sampling()]
        return Trace(self.instructions, tuple((a, d[a]) for a in order if a in d))

    def replay(self, workload, decisions: Mapping[str, Any] | None = None, *, seed: int = 0,
               target=None):
        """Run the instructions on a fresh schedule of ``workload`` for ``target``;
        ``decisions`` (by address) override this trace's own. Returns the Schedule."""
        sch = registry.new_schedule(workload, seed=seed, target=target)
        sch.replay(self, decisions)
        return sch

    def simplified(self) -> Trace:
        """Drop pure instructions (lookups and samplings) whose outputs nothing uses."""
        used: set[RV] = set()
        keep = []
        for index in range(len(self.instructions) - 1, -1, -1):
            inst = self.instructions[index]
            if registry.INSTRUCTIONS[inst.kind].pure and not (set(inst.outputs) & used):
                continue
            keep.append(index)
            used.update(_rvs(inst.inputs))
        insts = tuple(self.instructions[k] for k in reversed(keep))
        kept = {inst.address for inst in insts if inst.address is not None}
        return Trace(insts, tuple((a, d) for a, d in self.decisions if a in kept))

    # ------------------------------------------------------------ JSON

    def to_json(self) -> str:
        insts = []
        for i in self.instructions:
            row = [i.kind, _encode(i.inputs), [[k, _encode(v)] for k, v in i.attrs],
                   [str(o) for o in i.outputs]]
            if i.address is not None:
                row.append(i.address)
            insts.append(row)
        return json.dumps({"instructions": insts,
                           "decisions": [[a, _encode(v)] for a, v in self.decisions]},
                          separators=(",", ":"))

    @staticmethod
    def from_json(text: str) -> Trace:
        try:
            data = json.loads(text)
            insts = tuple(_instruction(row) for row in data["instructions"])
            decs = tuple((_address(a), freeze(_decode(v))) for a, v in data["decisions"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ProbschedError(f"not a probsched trace: {exc}") from None
        addresses = {inst.address for inst in insts}
        stray = [a for a, _ in decs if a not in addresses]
        if stray:
            raise ProbschedError(f"not a probsched trace: decisions at {stray[0]!r}, where no "
                                 "sampling instruction is (a trace of an older probsched?)")
        return Trace(insts, decs)

    # ------------------------------------------------------------ text

    def __str__(self) -> str:
        """One instruction a line, ``outputs = kind(inputs, attrs, decision=...)``: the form
        `.sched` spaces use, decisions pinned."""
        lines = []
        for inst in self.instructions:
            args = [format_value(x) for x in inst.inputs]
            args += [f"{k}={format_value(v)}" for k, v in inst.attrs]
            if inst.address is not None and self.decision(inst.address) is not None:
                args.append(f"decision={format_value(self.decision(inst.address))}")
            call = f"{inst.kind}({', '.join(args)})"
            kind = registry.INSTRUCTIONS.get(inst.kind)
            if len(inst.outputs) == 1 and kind is not None and kind.returns_list:
                call = f"{inst.outputs[0]} = {call}[0]"  # a list of one
            elif inst.outputs:
                call = ", ".join(str(o) for o in inst.outputs) + " = " + call
            lines.append(call)
        return "\n".join(lines)

    def __len__(self) -> int:
        return len(self.instructions)


def format_value(x: Any) -> str:
    """A value as `.sched` writes it."""
    if isinstance(x, RV):
        return str(x)
    if isinstance(x, str):
        return json.dumps(x)
    if isinstance(x, bool):
        return "true" if x else "false"
    if x is None:
        return "None"
    if isinstance(x, list | tuple):
        return "[" + ", ".join(format_value(v) for v in x) + "]"
    return repr(x)


def _instruction(row: list) -> Instruction:
    if len(row) not in (4, 5):
        raise ValueError(f"an instruction has 4 or 5 fields, not {len(row)}")
    kind, inputs, attrs, outputs = row[:4]
    address = _address(row[4]) if len(row) == 5 else None
    return Instruction(kind, freeze(_decode(inputs)),
                       tuple((k, freeze(_decode(v))) for k, v in attrs),
                       tuple(_parse_rv(o) for o in outputs), address)


def _address(a: Any) -> str:
    if not isinstance(a, str):
        raise ValueError(f"an address is text, not {a!r}")
    return a


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
