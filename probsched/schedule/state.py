"""What a Schedule holds and how every primitive method uses it: the program, the target, the
trace being recorded, the random variables' values, the seeded generator and the decisions
to reuse; argument checks with uniform messages; replay of a trace.

The methods themselves are in :mod:`.queries` and ``methods/`` (by family); :mod:`.schedule`
puts them together.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import ScheduleError
from ..ir import storage, tree
from ..ir.compute import Workload
from ..ir.program import Program, lower
from ..target import CudaTarget, Target, resolve
from ..values import is_int
from .registry import INSTRUCTIONS
from .trace import RV, Decisions, Instruction, Trace, freeze

ROOT = "<root>"
INLINE = "<inline>"
MAX_LOOP_DEPTH = 64  # loops nested in one another in a program (what codegen's stack holds)


class Removed(str):
    """The name of a loop or block that a primitive removed (prints as the name)."""


class ScheduleState:
    """A workload's program under transformation, for a target (the host when None), with
    the decisions to use by address (see :mod:`.trace`); see :class:`~.schedule.Schedule`."""

    def __init__(self, workload: Workload, seed: int = 0, *, program: Program | None = None,
                 target: Target | str | None = None,
                 decisions: Mapping[str, Any] | None = None):
        self.workload = workload
        self.target = resolve(target)
        self.program = program if program is not None else lower(workload)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.decisions: Mapping[str, Any] = decisions or {}
        self.site: str | None = None  # the address of the next sampling call, if given
        self._instructions: list[Instruction] = []
        self._decisions: Decisions = {}  # made so far, by address, in order
        self._values: dict[RV, Any] = {}
        self._next_rv = 0
        loops, blocks = self.program.paths()
        self._alive = loops.keys() | blocks.keys()  # loop and block names after the last step
        self._last_apply: tuple | None = None  # (program, primitive, arguments, result)
        self._dry = False  # a dry run (``legal``): steps are checked and made, not recorded

    # ------------------------------------------------------------ state

    @property
    def trace(self) -> Trace:
        return Trace(tuple(self._instructions), tuple(self._decisions.items()))

    def get(self, rv: RV) -> Any:
        """The value of a random variable: an int, a loop's variable name or a block name."""
        if not isinstance(rv, RV) or rv not in self._values:
            raise ScheduleError(f"get({rv!r}): not a random variable of this schedule")
        return self._values[rv]

    def copy(self):
        other = type(self).__new__(type(self))
        other.__dict__.update(self.__dict__)
        other._instructions = list(self._instructions)
        other._decisions = dict(self._decisions)
        other._values = dict(self._values)
        other.rng = np.random.default_rng(self.rng.bit_generator.random_raw())
        return other

    def __str__(self) -> str:
        return str(self.program)

    def _rv(self, kind: str, value: Any) -> RV:
        rv = RV(kind, self._next_rv)
        self._next_rv += 1
        self._values[rv] = value
        return rv

    def _record(self, kind: str, inputs: tuple, outputs: tuple[RV, ...], attrs=(),
                decision: Any = None, address: str | None = None) -> None:
        if self._dry:
            return
        if not INSTRUCTIONS[kind].pure:
            self._retire_removed(outputs)
        if address is not None:
            if address in self._decisions:
                raise ScheduleError(f"{kind}: a second random choice at address {address!r}")
            self._decisions[address] = freeze(decision)
        self._instructions.append(Instruction(kind, freeze(inputs), tuple(attrs), outputs,
                                              address))

    def _retire_removed(self, fresh: tuple[RV, ...]) -> None:
        """Mark the RVs of loops and blocks a step removed, so that a later loop or block that
        happens to get the same name is never mistaken for them."""
        loops, blocks = self.program.paths()
        alive = loops.keys() | blocks.keys()
        vanished = self._alive - alive
        self._alive = alive
        if not vanished:
            return
        for rv, value in self._values.items():
            if rv.kind in "lb" and isinstance(value, str) and value not in alive and (
                    rv not in fresh and value not in (ROOT, INLINE)):
                self._values[rv] = Removed(value)

    def _choice(self, decision: Any) -> tuple[str, Any]:
        """For the sampling call being made: its address (the ``site`` the caller set, else
        its order, ``#k``) and the decision to use (the schedule's map's for that address,
        else ``decision``; None: sample)."""
        address = self.site if self.site is not None else f"#{len(self._decisions)}"
        self.site = None
        return address, self.decisions.get(address, decision)

    def replay(self, trace: Trace, decisions: Mapping[str, Any] | None = None) -> None:
        """Apply ``trace``'s instructions (from another schedule); its decisions, overridden
        by ``decisions`` (by address)."""
        chosen = {**trace.decision_map, **(decisions or {})}
        rename: dict[RV, RV] = {}

        def mapped(x):
            if isinstance(x, RV):
                return rename[x]
            if isinstance(x, tuple):
                return [mapped(v) for v in x]
            return x

        for inst in trace.instructions:
            kind = INSTRUCTIONS.get(inst.kind)
            if kind is None:
                raise ScheduleError(f"unknown instruction {inst.kind!r} in trace")
            kwargs = {k: mapped(v) for k, v in inst.attrs}
            if kind.sampling:
                address = inst.address
                kwargs["decision"] = None if address is None else chosen.get(address)
                self.site = inst.address
            try:
                out = getattr(self, inst.kind)(*(mapped(x) for x in inst.inputs), **kwargs)
            finally:
                self.site = None
            outs = out if isinstance(out, list | tuple) else ((out,) if out is not None else ())
            for old, new in zip(inst.outputs, outs, strict=True):
                rename[old] = new

    # ------------------------------------------------------------ argument checks

    def _fail(self, prim: str, args: tuple, reason: str) -> ScheduleError:
        shown = ", ".join(self._describe(a) for a in args)
        return ScheduleError(f"{prim}({shown}): {reason}")

    def _describe(self, a: Any) -> str:
        """``a`` for an error message: a random variable with its value; a long list with its
        first and last items and its length (a message stays one readable line)."""
        if isinstance(a, RV) and a in self._values:
            kind = {"b": "block", "l": "loop", "v": "value"}[a.kind]
            return _shorten(f"{a}={kind} {self._values[a]}")
        if isinstance(a, list | tuple):
            if len(a) > 2 * _SHOWN_ITEMS:
                head = ", ".join(self._describe(x) for x in a[:_SHOWN_ITEMS])
                tail = ", ".join(self._describe(x) for x in a[-_SHOWN_ITEMS:])
                return f"[{head}, ... {tail}] ({len(a)} items)"
            return "[" + ", ".join(self._describe(x) for x in a) + "]"
        return _shorten(repr(a))

    def _loop(self, rv: Any, prim: str, args: tuple, position: int) -> str:
        if not isinstance(rv, RV) or rv.kind != "l" or rv not in self._values:
            raise self._fail(prim, args, f"argument {position} is not a loop of this schedule")
        var = self._values[rv]
        if isinstance(var, Removed) or tree.find_loop(self.program, var) is None:
            raise self._fail(prim, args, f"loop {var} no longer exists (a primitive replaced it)")
        return var

    def _block(self, rv: Any, prim: str, args: tuple, position: int) -> str:
        if not isinstance(rv, RV) or rv.kind != "b" or rv not in self._values:
            raise self._fail(prim, args, f"argument {position} is not a block of this schedule")
        name = self._values[rv]
        if isinstance(name, Removed) or tree.find_block(self.program, name) is None:
            raise self._fail(prim, args, f"block {name} no longer exists")
        return name

    def _int(self, x: Any, prim: str, args: tuple, what: str) -> int | None:
        if x is None:
            return None
        if isinstance(x, RV) and x.kind == "v" and x in self._values:
            return self._values[x]
        if is_int(x):
            return int(x)
        raise self._fail(prim, args, f"{what}: expected an integer or a sampled value, got {x!r}")

    def _scope_fits(self, prim: str, args: tuple, scope: object) -> None:
        """A "shared" buffer needs a GPU target."""
        if scope == "shared" and not isinstance(self.target, CudaTarget):
            raise self._fail(prim, args, f"shared memory is a GPU's; the target is "
                             f"{self.target.describe()} (schedule for target='cuda')")

    def _check_shared(self, prim: str, args: tuple, program: Program) -> None:
        """Refuse a program whose shared buffers placed under blockIdx loops need more shared
        memory per block than the device has (above 48 KB it is dynamic, opted in)."""
        if not isinstance(self.target, CudaTarget):
            return
        sizes = storage.shared_bytes(program)
        total = sum(sizes.values())
        most = self.target.shared_bytes_optin
        if total > most:
            shown = " + ".join(f"{n} {b} B" for n, b in sizes.items())
            raise self._fail(prim, args, f"shared memory per block would be {total} bytes "
                             f"({shown}); {self.target.arch} allows at most {most} "
                             f"({most // 1024} KB, dynamic above "
                             f"{self.target.shared_bytes_per_block // 1024} KB)")

    def _apply(self, prim: str, args: tuple, fn, *fn_args):
        """Run a pure primitive; turn its ValueError into a ScheduleError. The last success
        is remembered: rules ask ``legal(prim, ...)`` and then do it, which would otherwise
        run the primitive twice on the same program."""
        program = self.program
        last = self._last_apply
        if last is not None and last[0] is program and last[1] is fn and last[2] == fn_args:
            return last[3]
        try:
            result = fn(program, *fn_args)
        except ValueError as exc:
            raise self._fail(prim, args, str(exc)) from None
        out = result[0] if isinstance(result, tuple) else result
        if isinstance(out, Program) and out is not program:
            depth = max((len(p) for p in out.paths()[0].values()), default=0)
            if depth > MAX_LOOP_DEPTH:
                raise self._fail(prim, args, f"the program would nest {depth} loops, more than "
                                 f"{MAX_LOOP_DEPTH} (the limit)")
        self._last_apply = (program, fn, fn_args, result)
        return result


_SHOWN_ITEMS = 4  # of a long list in an error message, at each end
_SHOWN_CHARS = 120  # of one value in an error message


def _shorten(text: str) -> str:
    if len(text) <= _SHOWN_CHARS:
        return text
    half = _SHOWN_CHARS // 2
    return f"{text[:half]}...{text[-half:]} ({len(text)} characters)"
