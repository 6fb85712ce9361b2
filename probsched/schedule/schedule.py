"""The Schedule: a program being transformed, the trace of what was done, and a seeded random
state. Every primitive is a method that checks its arguments, applies a pure function of the
program (``primitives/``), and records an instruction. An illegal step raises ScheduleError
naming the primitive, its arguments and the reason, and leaves the schedule unchanged.

>>> import probsched as ps
>>> sch = ps.Schedule(ps.workloads.gmm(b=1, n=64, m=64, k=64), seed=0)
>>> b, i, j, k = sch.get_loops(sch.get_block("C"))
>>> io, ii = sch.split(i, [None, 8])
>>> sch.get(io), sch.get(ii)
('i_0', 'i_1')
>>> print(sch.trace)
b0 = get_block("C")
l1, l2, l3, l4 = get_loops(b0)
l5, l6 = split(l2, [None, 8])
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import ScheduleError
from ..ir import analysis
from ..ir import expr as E
from ..ir.compute import Workload
from ..ir.program import Block, LoopKind, Program, lower
from ..target import Target, resolve
from . import sampling, tree
from .instructions import REGISTRY, instruction
from .primitives import caching, inlining, location, loops, reduction
from .trace import RV, Instruction, Trace

ROOT = "<root>"
INLINE = "<inline>"


class Schedule:
    """A workload's program under transformation, for a target (the host when None).
    Primitives are methods; ``trace`` records them; ``get(rv)`` gives a random variable's
    value; queries such as ``vector_lanes()`` read the target."""

    def __init__(self, workload: Workload, seed: int = 0, *, program: Program | None = None,
                 target: Target | str | None = None):
        self.workload = workload
        self.target = resolve(target)
        self.program = program if program is not None else lower(workload)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self._instructions: list[Instruction] = []
        self._decisions: dict[int, Any] = {}
        self._values: dict[RV, Any] = {}
        self._next_rv = 0
        loops, blocks = self.program.paths()
        self._alive = loops.keys() | blocks.keys()  # loop and block names after the last step
        self._last_apply: tuple | None = None  # (program, primitive, arguments, result)

    # ------------------------------------------------------------ state

    @property
    def trace(self) -> Trace:
        return Trace(tuple(self._instructions), tuple(sorted(self._decisions.items())))

    def get(self, rv: RV) -> Any:
        """The value of a random variable: an int, a loop's variable name or a block name."""
        if not isinstance(rv, RV) or rv not in self._values:
            raise ScheduleError(f"get({rv!r}): not a random variable of this schedule")
        return self._values[rv]

    def loop_extent(self, loop: RV) -> int:
        """The current extent of a loop (a query of the program, not an instruction)."""
        var = self._loop(loop, "loop_extent", (loop,), 1)
        return tree.node_at(self.program, tree.find_loop(self.program, var)).extent

    def copy(self) -> Schedule:
        other = Schedule.__new__(Schedule)
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
                decision: Any = None) -> None:
        if not REGISTRY[kind].pure:
            self._retire_removed(outputs)
        self._instructions.append(Instruction(kind, _freeze(inputs), tuple(attrs), outputs))
        if decision is not None:
            self._decisions[len(self._instructions) - 1] = _freeze(decision)

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
                self._values[rv] = _Removed(value)

    def replay_instructions(self, instructions: Sequence[Instruction],
                            decisions: Mapping[int, Any]) -> None:
        """Apply ``instructions`` (from another schedule) with the given decisions."""
        rename: dict[RV, RV] = {}

        def mapped(x):
            if isinstance(x, RV):
                return rename[x]
            if isinstance(x, tuple):
                return [mapped(v) for v in x]
            return x

        for index, inst in enumerate(instructions):
            kind = REGISTRY.get(inst.kind)
            if kind is None:
                raise ScheduleError(f"unknown instruction {inst.kind!r} in trace")
            kwargs = {k: mapped(v) for k, v in inst.attrs}
            if kind.sampling:
                kwargs["decision"] = decisions.get(index)
            out = getattr(self, inst.kind)(*(mapped(x) for x in inst.inputs), **kwargs)
            outs = out if isinstance(out, list | tuple) else ((out,) if out is not None else ())
            for old, new in zip(inst.outputs, outs, strict=True):
                rename[old] = new

    # ------------------------------------------------------------ argument checks

    def _fail(self, prim: str, args: tuple, reason: str) -> ScheduleError:
        shown = ", ".join(self._describe(a) for a in args)
        return ScheduleError(f"{prim}({shown}): {reason}")

    def _describe(self, a: Any) -> str:
        if isinstance(a, RV) and a in self._values:
            kind = {"b": "block", "l": "loop", "v": "value"}[a.kind]
            return f"{a}={kind} {self._values[a]}"
        if isinstance(a, list | tuple):
            return "[" + ", ".join(self._describe(x) for x in a) + "]"
        return repr(a)

    def _loop(self, rv: Any, prim: str, args: tuple, position: int) -> str:
        if not isinstance(rv, RV) or rv.kind != "l" or rv not in self._values:
            raise self._fail(prim, args, f"argument {position} is not a loop of this schedule")
        var = self._values[rv]
        if isinstance(var, _Removed) or tree.find_loop(self.program, var) is None:
            raise self._fail(prim, args, f"loop {var} no longer exists (a primitive replaced it)")
        return var

    def _block(self, rv: Any, prim: str, args: tuple, position: int) -> str:
        if not isinstance(rv, RV) or rv.kind != "b" or rv not in self._values:
            raise self._fail(prim, args, f"argument {position} is not a block of this schedule")
        name = self._values[rv]
        if isinstance(name, _Removed) or tree.find_block(self.program, name) is None:
            raise self._fail(prim, args, f"block {name} no longer exists")
        return name

    def _int(self, x: Any, prim: str, args: tuple, what: str) -> int | None:
        if x is None:
            return None
        if isinstance(x, RV) and x.kind == "v" and x in self._values:
            return self._values[x]
        if isinstance(x, int) and not isinstance(x, bool):
            return x
        raise self._fail(prim, args, f"{what}: expected an integer or a sampled value, got {x!r}")

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
        self._last_apply = (program, fn, fn_args, result)
        return result

    # ------------------------------------------------------------ queries

    @instruction("get_block", pure=True)
    def get_block(self, name: str) -> RV:
        """The block named ``name`` (blocks are named after their stage)."""
        if tree.find_block(self.program, name) is None:
            names = ", ".join(b.name for b in self.program.blocks())
            raise self._fail("get_block", (name,), f"no block {name!r}; blocks: {names}")
        rv = self._rv("b", name)
        self._record("get_block", (name,), (rv,))
        return rv

    @instruction("get_loops", pure=True)
    def get_loops(self, block: RV) -> list[RV]:
        """The loops around ``block``, outermost first."""
        name = self._block(block, "get_loops", (block,), 1)
        path = tree.find_block(self.program, name)
        rvs = [self._rv("l", lp.var) for lp in tree.ancestors(self.program, path)]
        self._record("get_loops", (block,), tuple(rvs))
        return rvs

    def _related(self, prim: str, block: RV, fn) -> list[RV]:
        name = self._block(block, prim, (block,), 1)
        blk = tree.node_at(self.program, tree.find_block(self.program, name))
        rvs = [self._rv("b", b.name) for b in fn(self.program, blk)]
        self._record(prim, (block,), tuple(rvs))
        return rvs

    @instruction("get_producers", pure=True)
    def get_producers(self, block: RV) -> list[RV]:
        """Blocks writing what ``block`` reads."""
        return self._related("get_producers", block, analysis.producers)

    @instruction("get_consumers", pure=True)
    def get_consumers(self, block: RV) -> list[RV]:
        """Blocks reading what ``block`` writes."""
        return self._related("get_consumers", block, analysis.consumers)

    @instruction("get_blocks", pure=True)
    def get_blocks(self) -> list[RV]:
        """Every block in post-order: consumers before their producers (the reverse of
        program order), the order in which generated spaces apply their rules."""
        rvs = [self._rv("b", b.name) for b in reversed(list(self.program.blocks()))]
        self._record("get_blocks", (), tuple(rvs))
        return rvs

    # ------------------------------------------------------------ plain queries
    # Deterministic functions of the current program, returning plain values (no trace
    # entry): the .sched builtins of the same names call them (see docs/language.md).

    def _node(self, block: RV, prim: str) -> Block:
        name = self._block(block, prim, (block,), 1)
        return tree.node_at(self.program, tree.find_block(self.program, name))

    def block_name(self, block: RV) -> str:
        """The name of ``block`` (also of a removed one)."""
        if not isinstance(block, RV) or block.kind != "b" or block not in self._values:
            raise self._fail("block_name", (block,), "argument 1 is not a block of this schedule")
        return str(self._values[block])

    def is_alive(self, block: RV) -> bool:
        """Whether ``block`` still exists (inlining removes blocks)."""
        if not isinstance(block, RV) or block.kind != "b" or block not in self._values:
            raise self._fail("is_alive", (block,), "argument 1 is not a block of this schedule")
        name = self._values[block]
        return not isinstance(name, _Removed) and tree.find_block(self.program, name) is not None

    def is_reduction(self, block: RV) -> bool:
        """Whether ``block`` reduces (has reduce iteration variables)."""
        return inlining._is_reduction(self._node(block, "is_reduction"))

    def is_injective(self, block: RV) -> bool:
        """Whether ``block`` is spatial-only and reads every buffer at indices affine in its
        iteration variables (elementwise, padding, transposes, broadcasts)."""
        blk = self._node(block, "is_injective")
        if inlining._elementwise_error(blk, "block") is not None:
            return False
        return all(analysis.affine(i) is not None for ld in E.loads(blk.body.value)
                   for i in ld.indices)

    def has_select(self, block: RV) -> bool:
        """Whether ``block``'s value has a ``select`` (an if-then-else, e.g. padding)."""
        blk = self._node(block, "has_select")
        return any(isinstance(e, E.Select) for e in E.walk(blk.body.value))

    def can_inline(self, block: RV) -> bool:
        """Whether compute_inline(block) would succeed."""
        return inlining.can_inline(self.program, self._block(block, "can_inline", (block,), 1))

    def is_output(self, block: RV) -> bool:
        """Whether ``block`` writes an output of the program."""
        return self._node(block, "is_output").body.buffer in self.program.outputs

    def num_consumers(self, block: RV) -> int:
        """How many blocks read what ``block`` writes."""
        return len(analysis.consumers(self.program, self._node(block, "num_consumers")))

    def num_producers(self, block: RV) -> int:
        """How many blocks write what ``block`` reads."""
        return len(analysis.producers(self.program, self._node(block, "num_producers")))

    def loop_types(self, block: RV) -> list[str]:
        """Per loop of get_loops(block): "S" when it feeds only spatial iteration variables,
        "R" when only reduce ones, "O" otherwise (both or none)."""
        blk = self._node(block, "loop_types")
        path = tree.find_block(self.program, blk.name)
        spatial, reduce = set(), set()
        for iv, b in zip(blk.iter_vars, blk.bindings, strict=True):
            (reduce if iv.reduce else spatial).update(E.free_vars(b))
        out = []
        for lp in tree.ancestors(self.program, path):
            s, r = lp.var in spatial, lp.var in reduce
            out.append("S" if s and not r else "R" if r and not s else "O")
        return out

    def reuse_reads(self, block: RV) -> list[str]:
        """The buffers ``block`` reads at indices missing one of its spatial iteration
        variables (each element is reused across that variable): candidates for tiling and
        for cache_read. In order of first read."""
        blk = self._node(block, "reuse_reads")
        spatial = {iv.name for iv in blk.iter_vars if not iv.reduce}
        out: list[str] = []
        stores = [blk.body] + ([blk.init] if blk.init is not None else [])
        for st in stores:
            for ld in E.loads(st.value):
                if ld.tensor == st.buffer or ld.tensor in out:
                    continue
                used = set().union(*(E.free_vars(i) for i in ld.indices)) if ld.indices else set()
                if spatial - used:
                    out.append(ld.tensor)
        return out

    def loop_kind(self, loop: RV) -> str:
        """How ``loop`` runs: "serial", "parallel", "vectorized" or "unrolled"."""
        var = self._loop(loop, "loop_kind", (loop,), 1)
        return tree.node_at(self.program, tree.find_loop(self.program, var)).kind.value

    def loop_children(self, loop: RV) -> int:
        """How many statements (loops and blocks) ``loop``'s body holds directly."""
        var = self._loop(loop, "loop_children", (loop,), 1)
        return len(tree.node_at(self.program, tree.find_loop(self.program, var)).body)

    # Queries of the target (a space sizes its tiles by them).

    def vector_lanes(self, dtype: str = "float32") -> int:
        """Lanes of ``dtype`` in one vector register of the target."""
        return self.target.vector_lanes(dtype)

    def vector_registers(self) -> int:
        """How many vector registers the target has (16 with AVX2, 32 with AVX-512)."""
        return self.target.vector_registers

    def cache_bytes(self, level: int) -> int:
        """The size in bytes of the target's level-``level`` data cache (1, 2 or 3; L1 and
        L2 per core)."""
        return self.target.cache_bytes(level)

    def num_cores(self) -> int:
        """How many cores the target's code runs on."""
        return self.target.cores

    def legal(self, prim: str, *args: Any) -> bool:
        """Whether primitive ``prim`` (not a sampler) would accept ``args`` now; the schedule
        is left unchanged either way. Lets rules check a step before taking it."""
        kind = REGISTRY.get(prim)
        if kind is None or kind.sampling or not hasattr(self, prim):
            raise self._fail("legal", (prim,), f"{prim!r} is not a primitive")
        method = getattr(self, prim)
        if len(args) == 1 and isinstance(args[0], list | tuple) and _variadic(prim):
            args = tuple(args[0])  # legal("reorder", order), as the interpreter spreads it
        saved = (self.program, len(self._instructions), dict(self._values), self._next_rv,
                 self._alive)
        try:
            method(*args)
            return True
        except ScheduleError:
            return False
        finally:
            self.program, n, self._values, self._next_rv, self._alive = saved
            del self._instructions[n:]

    # ------------------------------------------------------------ loops

    @instruction("split")
    def split(self, loop: RV, factors: Sequence[int | RV | None]) -> list[RV]:
        """Split ``loop`` into ``len(factors)`` nested loops; one factor may be None (inferred).
        Factors that do not divide the extent give a guarded partial last tile.

        >>> import probsched as ps
        >>> sch = ps.Schedule(ps.workloads.gmm(b=1, n=10, m=4, k=4))
        >>> _, i, _, _ = sch.get_loops(sch.get_block("C"))
        >>> _ = sch.split(i, [None, 4])
        >>> print(sch.program)
        program gmm(A: float32[1, 10, 4], B: float32[1, 4, 4]) -> C: float32[1, 10, 4]
          for b in range(1):
            for i_0 in range(3):
              for i_1 in range(4):
                for j in range(4):
                  for k in range(4):
                    block C(b=b, i=i_0 * 4 + i_1, j=j; sum k=k):
                      where i_0 * 4 + i_1 < 10
                      init C[b, i, j] = 0.0
                      C[b, i, j] = C[b, i, j] + A[b, i, k] * B[b, k, j]
        """
        args = (loop, list(factors) if isinstance(factors, list | tuple) else factors)
        if not isinstance(factors, list | tuple):
            raise self._fail("split", args, "argument 2, 'factors': expected a list")
        var = self._loop(loop, "split", args, 1)
        values = [self._int(f, "split", args, "argument 2, 'factors'") for f in factors]
        program, names = self._apply("split", args, loops.split, var, values)
        self.program = program
        rvs = [self._rv("l", n) for n in names]
        self._record("split", (loop, tuple(factors)), tuple(rvs))
        return rvs

    @instruction("fuse")
    def fuse(self, *loop_rvs: RV) -> RV:
        """Fuse directly nested loops (outermost first) into one loop."""
        vars_ = [self._loop(lp, "fuse", loop_rvs, k + 1) for k, lp in enumerate(loop_rvs)]
        program, name = self._apply("fuse", loop_rvs, loops.fuse, vars_)
        self.program = program
        rv = self._rv("l", name)
        self._record("fuse", loop_rvs, (rv,))
        return rv

    @instruction("reorder")
    def reorder(self, *loop_rvs: RV) -> None:
        """Put the given loops (all in one nest) in this order, in the places they occupy."""
        vars_ = [self._loop(lp, "reorder", loop_rvs, k + 1) for k, lp in enumerate(loop_rvs)]
        self.program = self._apply("reorder", loop_rvs, loops.reorder, vars_)
        self._record("reorder", loop_rvs, ())

    def _kind(self, prim: str, loop: RV, kind: LoopKind) -> None:
        var = self._loop(loop, prim, (loop,), 1)
        self.program = self._apply(prim, (loop,), loops.set_kind, var, kind)
        self._record(prim, (loop,), ())

    @instruction("parallel")
    def parallel(self, loop: RV) -> None:
        """Run ``loop``'s iterations on all threads (libgomp)."""
        self._kind("parallel", loop, LoopKind.PARALLEL)

    @instruction("vectorize")
    def vectorize(self, loop: RV) -> None:
        """Run ``loop`` as vector instructions (its extent is the vector width)."""
        self._kind("vectorize", loop, LoopKind.VECTORIZED)

    @instruction("unroll")
    def unroll(self, loop: RV) -> None:
        """Unroll ``loop`` completely in the generated code."""
        self._kind("unroll", loop, LoopKind.UNROLLED)

    @instruction("annotate")
    def annotate(self, loop: RV, key: str, value: int | float | str | RV) -> None:
        """Attach ``key = value`` to ``loop`` (e.g. ``unroll_max_step``)."""
        args = (loop, key, value)
        var = self._loop(loop, "annotate", args, 1)
        if not isinstance(key, str) or not key.isidentifier():
            raise self._fail("annotate", args, "argument 2, 'key': expected a name")
        v = self._int(value, "annotate", args, "argument 3") if isinstance(value, RV) else value
        if not isinstance(v, int | float | str) or isinstance(v, bool):
            raise self._fail("annotate", args, "argument 3, 'value': expected a number or text")
        self.program = self._apply("annotate", args, loops.annotate, var, key, v)
        self._record("annotate", args, ())

    # ------------------------------------------------------------ caching, location, inlining

    @instruction("cache_read")
    def cache_read(self, block: RV, buffer: str | int, scope: str = "local") -> RV:
        """Copy the buffer ``block`` reads (by name, or by index among the buffers it reads in
        order of appearance) into a new ``scope`` buffer ("local" or "global") of the same
        shape, in a nest placed before ``block``'s; ``block`` (only it) reads the copy.
        Returns the copying block, named after the new buffer; compute_at moves it next to
        its use.

        >>> import probsched as ps
        >>> sch = ps.Schedule(ps.workloads.gmm(b=1, n=2, m=2, k=3))
        >>> a = sch.cache_read(sch.get_block("C"), "A", "local")
        >>> print(sch.program)
        program gmm(A: float32[1, 2, 3], B: float32[1, 3, 2]) -> C: float32[1, 2, 2]
          local A_local: float32[1, 2, 3]
          for v0 in range(1):
            for v1 in range(2):
              for v2 in range(3):
                block A_local(v0=v0, v1=v1, v2=v2):
                  A_local[v0, v1, v2] = A[v0, v1, v2]
          for b in range(1):
            for i in range(2):
              for j in range(2):
                for k in range(3):
                  block C(b=b, i=i, j=j; sum k=k):
                    init C[b, i, j] = 0.0
                    C[b, i, j] = C[b, i, j] + A_local[b, i, k] * B[b, k, j]
        """
        args = (block, buffer, scope)
        name = self._block(block, "cache_read", args, 1)
        program, new = self._apply("cache_read", args, caching.cache_read, name, buffer, scope)
        self.program = program
        rv = self._rv("b", new)
        self._record("cache_read", (block, buffer, scope), (rv,))
        return rv

    @instruction("cache_write")
    def cache_write(self, block: RV, scope: str = "local") -> RV:
        """``block`` writes (init and body) a new ``scope`` buffer ("local" or "global") of
        the same shape; a new write-back block ``<block>_wb``, in a nest placed after
        ``block``'s, copies it to the original. Returns the write-back block;
        reverse_compute_at moves it next to the computation.

        >>> import probsched as ps
        >>> sch = ps.Schedule(ps.workloads.gmm(b=1, n=2, m=2, k=3))
        >>> wb = sch.cache_write(sch.get_block("C"), "local")
        >>> print(sch.program)
        program gmm(A: float32[1, 2, 3], B: float32[1, 3, 2]) -> C: float32[1, 2, 2]
          local C_local: float32[1, 2, 2]
          for b in range(1):
            for i in range(2):
              for j in range(2):
                for k in range(3):
                  block C(b=b, i=i, j=j; sum k=k):
                    init C_local[b, i, j] = 0.0
                    C_local[b, i, j] = C_local[b, i, j] + A[b, i, k] * B[b, k, j]
          for v0 in range(1):
            for v1 in range(2):
              for v2 in range(2):
                block C_wb(v0=v0, v1=v1, v2=v2):
                  C[v0, v1, v2] = C_local[v0, v1, v2]
        """
        args = (block, scope)
        name = self._block(block, "cache_write", args, 1)
        program, new = self._apply("cache_write", args, caching.cache_write, name, scope)
        self.program = program
        rv = self._rv("b", new)
        self._record("cache_write", (block, scope), (rv,))
        return rv

    @instruction("compute_at")
    def compute_at(self, block: RV, loop: RV) -> None:
        """Move producer ``block`` (alone in its loop nest) to the start of ``loop``'s body,
        computing per iteration only the region its consumers under ``loop`` read: new
        loops ``ax<k>`` over that region, guarded where it may leave the buffer. Every
        consumer must be under ``loop``. A loop from ``sample_compute_location`` may be the
        root (no change) or inline (compute_inline).

        >>> import probsched as ps
        >>> sch = ps.Schedule(ps.workloads.c1d(l=4, ci=1, co=2, kernel=3, stride=1, pad=1))
        >>> print(sch.program)
        program c1d(X: float32[1, 4, 1], W: float32[3, 1, 2]) -> C: float32[1, 4, 2]
          global P: float32[1, 6, 1]
          for n in range(1):
            for l in range(6):
              for c in range(1):
                block P(n=n, l=l, c=c):
                  P[n, l, c] = select(l >= 1 and l < 5, X[n, l - 1, c], 0.0)
          for n_1 in range(1):
            for l_1 in range(4):
              for co in range(2):
                for rl in range(3):
                  for rc in range(1):
                    block C(n=n_1, l=l_1, co=co; sum rl=rl, rc=rc):
                      init C[n, l, co] = 0.0
                      C[n, l, co] = C[n, l, co] + P[n, l + rl, rc] * W[rl, rc, co]
        >>> _, l, _, _, _ = sch.get_loops(sch.get_block("C"))
        >>> sch.compute_at(sch.get_block("P"), l)
        >>> print(sch.program)
        program c1d(X: float32[1, 4, 1], W: float32[3, 1, 2]) -> C: float32[1, 4, 2]
          global P: float32[1, 6, 1]
          for n_1 in range(1):
            for l_1 in range(4):
              for ax0 in range(1):
                for ax1 in range(3):
                  for ax2 in range(1):
                    block P(n=n_1 + ax0, l=l_1 + ax1, c=ax2):
                      P[n, l, c] = select(l >= 1 and l < 5, X[n, l - 1, c], 0.0)
              for co in range(2):
                for rl in range(3):
                  for rc in range(1):
                    block C(n=n_1, l=l_1, co=co; sum rl=rl, rc=rc):
                      init C[n, l, co] = 0.0
                      C[n, l, co] = C[n, l, co] + P[n, l + rl, rc] * W[rl, rc, co]
        """
        args = (block, loop)
        if isinstance(loop, RV) and self._values.get(loop) == ROOT:
            self._block(block, "compute_at", args, 1)
            self._record("compute_at", args, ())
            return
        if isinstance(loop, RV) and self._values.get(loop) == INLINE:
            name = self._block(block, "compute_at", args, 1)
            self.program = self._apply("compute_at", args, inlining.compute_inline, name)
            self._record("compute_at", args, ())
            return
        name = self._block(block, "compute_at", args, 1)
        var = self._loop(loop, "compute_at", args, 2)
        self.program = self._apply("compute_at", args, location.compute_at, name, var)
        self._record("compute_at", args, ())

    @instruction("reverse_compute_at")
    def reverse_compute_at(self, block: RV, loop: RV) -> None:
        """Move consumer ``block`` (alone in its loop nest) to the end of ``loop``'s body,
        consuming per iteration only what the producers under ``loop`` wrote: new loops
        ``ax<k>`` over that region. ``block`` must read the produced buffer at its own
        iteration point (write-back blocks and elementwise epilogues do), and ``loop`` must
        not carry a producer's reduction.

        >>> import probsched as ps
        >>> sch = ps.Schedule(ps.workloads.gmm(b=1, n=2, m=2, k=3))
        >>> c = sch.get_block("C")
        >>> wb = sch.cache_write(c, "local")
        >>> _, i, _, _ = sch.get_loops(c)
        >>> sch.reverse_compute_at(wb, i)
        >>> print(sch.program)
        program gmm(A: float32[1, 2, 3], B: float32[1, 3, 2]) -> C: float32[1, 2, 2]
          local C_local: float32[1, 2, 2]
          for b in range(1):
            for i in range(2):
              for j in range(2):
                for k in range(3):
                  block C(b=b, i=i, j=j; sum k=k):
                    init C_local[b, i, j] = 0.0
                    C_local[b, i, j] = C_local[b, i, j] + A[b, i, k] * B[b, k, j]
              for ax0 in range(1):
                for ax1 in range(1):
                  for ax2 in range(2):
                    block C_wb(v0=b + ax0, v1=i + ax1, v2=ax2):
                      C[v0, v1, v2] = C_local[v0, v1, v2]
        """
        args = (block, loop)
        name = self._block(block, "reverse_compute_at", args, 1)
        var = self._loop(loop, "reverse_compute_at", args, 2)
        self.program = self._apply("reverse_compute_at", args, location.reverse_compute_at,
                                   name, var)
        self._record("reverse_compute_at", args, ())

    @instruction("compute_inline")
    def compute_inline(self, block: RV) -> None:
        """Replace every read of ``block``'s buffer by the block's expression (its iteration
        variables replaced by the read's indices); the block, the loops holding only it and
        its buffer disappear. ``block`` must be a non-reduction block, the only writer of an
        intermediate buffer, storing at its iteration variables (each once, in any order).

        >>> import probsched as ps
        >>> from probsched.ir.compute import WorkloadBuilder, axes
        >>> from probsched.ir.expr import maximum
        >>> wb = WorkloadBuilder("scale_relu")
        >>> A, (i, j) = wb.input("A", (2, 8)), axes("i j")
        >>> B = wb.compute("B", (i, j), A[i, j] * 2.0)
        >>> _ = wb.compute("C", (i, j), maximum(B[i, j], 0.0))
        >>> sch = ps.Schedule(wb.build())
        >>> print(sch.program)
        program scale_relu(A: float32[2, 8]) -> C: float32[2, 8]
          global B: float32[2, 8]
          for i in range(2):
            for j in range(8):
              block B(i=i, j=j):
                B[i, j] = A[i, j] * 2.0
          for i_1 in range(2):
            for j_1 in range(8):
              block C(i=i_1, j=j_1):
                C[i, j] = max(B[i, j], 0.0)
        >>> sch.compute_inline(sch.get_block("B"))
        >>> print(sch.program)
        program scale_relu(A: float32[2, 8]) -> C: float32[2, 8]
          for i_1 in range(2):
            for j_1 in range(8):
              block C(i=i_1, j=j_1):
                C[i, j] = max(A[i, j] * 2.0, 0.0)
        """
        name = self._block(block, "compute_inline", (block,), 1)
        self.program = self._apply("compute_inline", (block,), inlining.compute_inline, name)
        self._record("compute_inline", (block,), ())

    @instruction("reverse_compute_inline")
    def reverse_compute_inline(self, block: RV) -> None:
        """Fold elementwise consumer ``block`` into the block producing what it reads: the
        producer stores into ``block``'s buffer what ``block`` computes, its own value in
        place of the reads; ``block``, the loops holding only it and the intermediate buffer
        disappear. ``block`` must read that buffer at its iteration variables (each once, in
        any order) over the producer's domain; the producer must not be a reduction (use
        reverse_compute_at) and ``block`` must be the buffer's only reader. Same program as
        in :meth:`compute_inline`:

        >>> import probsched as ps
        >>> from probsched.ir.compute import WorkloadBuilder, axes
        >>> from probsched.ir.expr import maximum
        >>> wb = WorkloadBuilder("scale_relu")
        >>> A, (i, j) = wb.input("A", (2, 8)), axes("i j")
        >>> B = wb.compute("B", (i, j), A[i, j] * 2.0)
        >>> _ = wb.compute("C", (i, j), maximum(B[i, j], 0.0))
        >>> sch = ps.Schedule(wb.build())
        >>> sch.reverse_compute_inline(sch.get_block("C"))
        >>> print(sch.program)
        program scale_relu(A: float32[2, 8]) -> C: float32[2, 8]
          for i in range(2):
            for j in range(8):
              block B(i=i, j=j):
                C[i, j] = max(A[i, j] * 2.0, 0.0)
        """
        name = self._block(block, "reverse_compute_inline", (block,), 1)
        self.program = self._apply("reverse_compute_inline", (block,),
                                   inlining.reverse_compute_inline, name)
        self._record("reverse_compute_inline", (block,), ())

    # ------------------------------------------------------------ reductions

    @instruction("decompose_reduction")
    def decompose_reduction(self, block: RV, loop: RV) -> RV:
        """Move ``block``'s init into a block of its own, ``<block>_init``, placed just before
        ``loop``; returns it. ``loop`` must enclose ``block`` and be outside every loop that
        feeds a reduce binding. The loops from ``loop`` inwards that feed a spatial binding
        are copied (serial, named ``<loop>_init``) around the init block.

        >>> import probsched as ps
        >>> sch = ps.Schedule(ps.workloads.gmm(b=1, n=2, m=8, k=4))
        >>> c = sch.get_block("C")
        >>> b, i, j, k = sch.get_loops(c)
        >>> init = sch.decompose_reduction(c, i)
        >>> print(sch.program)
        program gmm(A: float32[1, 2, 4], B: float32[1, 4, 8]) -> C: float32[1, 2, 8]
          for b in range(1):
            for i_init in range(2):
              for j_init in range(8):
                block C_init(b=b, i=i_init, j=j_init):
                  C[b, i, j] = 0.0
            for i in range(2):
              for j in range(8):
                for k in range(4):
                  block C(b=b, i=i, j=j; sum k=k):
                    C[b, i, j] = C[b, i, j] + A[b, i, k] * B[b, k, j]
        """
        args = (block, loop)
        name = self._block(block, "decompose_reduction", args, 1)
        var = self._loop(loop, "decompose_reduction", args, 2)
        program, new = self._apply("decompose_reduction", args, reduction.decompose_reduction,
                                   name, var)
        self.program = program
        rv = self._rv("b", new)
        self._record("decompose_reduction", args, (rv,))
        return rv

    @instruction("rfactor")
    def rfactor(self, loop: RV, factor_axis: int = 0) -> RV:
        """Reduce in two steps: partial results per iteration of reduce loop ``loop`` into a
        new buffer ``<buf>_rf`` (the loop's dimension inserted at ``factor_axis``, negative
        counting from the end), then a reduction of those in a new nest after the block's.
        Returns the partial-results block ``<block>_rf``, where ``loop`` is spatial: it can be
        parallelized or vectorized. ``loop`` must hold one sum/max/min reduction block with
        its init and feed only reduce bindings.

        >>> import probsched as ps
        >>> sch = ps.Schedule(ps.workloads.nrm(n=4, m=8))
        >>> print(sch.program)
        program nrm(A: float32[4, 8]) -> Y: float32[]
          global S: float32[]
          for i in range(4):
            for j in range(8):
              block S(sum i=i, j=j):
                init S[] = 0.0
                S[] = S[] + A[i, j] * A[i, j]
          block Y():
            Y[] = sqrt(S[])
        >>> i, j = sch.get_loops(sch.get_block("S"))
        >>> rf = sch.rfactor(j, 0)
        >>> print(sch.program)
        program nrm(A: float32[4, 8]) -> Y: float32[]
          global S: float32[]
          global S_rf: float32[8]
          for i in range(4):
            for j in range(8):
              block S_rf(j=j; sum i=i):
                init S_rf[j] = 0.0
                S_rf[j] = S_rf[j] + A[i, j] * A[i, j]
          for ax0 in range(8):
            block S(sum j=ax0):
              init S[] = 0.0
              S[] = S[] + S_rf[j]
          block Y():
            Y[] = sqrt(S[])
        """
        args = (loop, factor_axis)
        var = self._loop(loop, "rfactor", args, 1)
        axis = self._int(factor_axis, "rfactor", args, "argument 2, 'factor_axis'")
        program, new = self._apply("rfactor", args, reduction.rfactor, var, axis)
        self.program = program
        rv = self._rv("b", new)
        self._record("rfactor", args, (rv,))
        return rv

    # ------------------------------------------------------------ sampling

    @instruction("sample_perfect_tile", sampling=True)
    def sample_perfect_tile(self, loop: RV, n: int, max_innermost_factor: int = 16,
                            decision: Sequence[int] | None = None) -> list[RV]:
        """``n`` tile sizes multiplying to ``loop``'s extent, the innermost at most
        ``max_innermost_factor``. A given ``decision`` is used (repaired if it no longer
        fits the extent)."""
        args = (loop, n, max_innermost_factor)
        var = self._loop(loop, "sample_perfect_tile", args, 1)
        if not isinstance(n, int) or n < 1:
            raise self._fail("sample_perfect_tile", args, "argument 2, 'n': expected n >= 1")
        if not isinstance(max_innermost_factor, int) or max_innermost_factor < 1:
            raise self._fail("sample_perfect_tile", args,
                             "argument 3, 'max_innermost_factor': expected a positive integer")
        extent = tree.node_at(self.program, tree.find_loop(self.program, var)).extent
        if decision is None:
            tiles = sampling.sample_perfect_tile(self.rng, extent, n, max_innermost_factor)
        else:
            if not isinstance(decision, list | tuple) or not all(
                    _is_int(x) and x > 0 for x in decision):
                raise self._fail("sample_perfect_tile", args,
                                 f"decision {decision!r} is not a list of positive integers")
            tiles = list(decision)
            if len(tiles) != n:
                raise self._fail("sample_perfect_tile", args,
                                 f"decision {tiles} has {len(tiles)} tiles, not {n}")
            if _prod(tiles) != extent or tiles[-1] > max_innermost_factor:
                tiles = sampling.repair_perfect_tile(tiles, extent, max_innermost_factor)
        rvs = [self._rv("v", t) for t in tiles]
        self._record("sample_perfect_tile", (loop,), tuple(rvs),
                     attrs=(("n", n), ("max_innermost_factor", max_innermost_factor)),
                     decision=tiles)
        return rvs

    @instruction("sample_categorical", sampling=True)
    def sample_categorical(self, candidates: Sequence[int], probs: Sequence[float],
                           decision: int | None = None) -> RV:
        """One of ``candidates`` with probabilities ``probs``; the decision is the index."""
        args = (list(candidates), list(probs))
        if not candidates or len(candidates) != len(probs):
            raise self._fail("sample_categorical", args,
                             "candidates and probs must be non-empty and of equal length")
        if not all(_is_int(c) for c in candidates):
            raise self._fail("sample_categorical", args, "candidates must be integers")
        if not all(_is_number(p) and p >= 0 for p in probs) or sum(probs) <= 0:
            raise self._fail("sample_categorical", args, "probs must be numbers >= 0, not all 0")
        if decision is not None and not _is_int(decision):
            raise self._fail("sample_categorical", args,
                             f"decision {decision!r} is not a candidate index")
        if decision is None or not (0 <= decision < len(candidates)):
            decision = sampling.sample_categorical(self.rng, list(probs))
        rv = self._rv("v", candidates[int(decision)])
        self._record("sample_categorical", (), (rv,),
                     attrs=(("candidates", tuple(candidates)), ("probs", tuple(probs))),
                     decision=int(decision))
        return rv

    @instruction("sample_compute_location", sampling=True)
    def sample_compute_location(self, block: RV, decision: int | None = None) -> RV:
        """Where ``block`` could be computed: one of its consumer's loops where compute_at is
        legal, the root (-1) or inline (-2, when the block can be inlined). The decision
        ``k >= 0`` is the k-th legal loop, outermost first. A stale decision falls back to
        the nearest valid location before it. Pass the result to compute_at.

        >>> import probsched as ps
        >>> sch = ps.Schedule(ps.workloads.c1d(l=4, ci=1, co=2, kernel=3, stride=1, pad=1))
        >>> p = sch.get_block("P")
        >>> loc = sch.sample_compute_location(p, decision=1)
        >>> sch.get(loc)
        'l_1'
        >>> sch.compute_at(p, loc)
        >>> print(sch.trace)
        b0 = get_block("P")
        l1 = sample_compute_location(b0, decision=1)
        compute_at(b0, l1)
        """
        name = self._block(block, "sample_compute_location", (block,), 1)
        cands = location.compute_location_candidates(self.program, name)
        choices = [-1] + list(range(len(cands)))
        if inlining.can_inline(self.program, name):
            choices = [-2] + choices
        if decision is not None and not _is_int(decision):
            raise self._fail("sample_compute_location", (block,),
                             f"decision {decision!r} is not a location index")
        if decision is None:
            decision = choices[int(self.rng.integers(len(choices)))]
        elif decision not in choices:
            decision = max(c for c in choices if c <= decision) if decision > -2 else -1
        value = {-2: INLINE, -1: ROOT}.get(decision) or cands[decision]
        rv = self._rv("l", value)
        self._record("sample_compute_location", (block,), (rv,), decision=int(decision))
        return rv


@functools.cache
def _variadic(prim: str) -> bool:
    """Whether Schedule method ``prim`` takes ``*args`` (fuse, reorder)."""
    params = inspect.signature(getattr(Schedule, prim)).parameters.values()
    return any(p.kind == p.VAR_POSITIONAL for p in params)


def _is_int(x: Any) -> bool:
    return isinstance(x, int | np.integer) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float | np.integer | np.floating) and not isinstance(x, bool)


class _Removed(str):
    """The name of a loop or block that a primitive removed (prints as the name)."""


def _prod(xs) -> int:
    out = 1
    for x in xs:
        out *= x
    return out


def _freeze(x: Any) -> Any:
    if isinstance(x, list | tuple):
        return tuple(_freeze(v) for v in x)
    return x
