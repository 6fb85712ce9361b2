"""Running a GPU kernel plan on the CPU, thread by thread, to check it without a GPU.

The plan (:mod:`.gpu_plan`) is what NVPTX emission executes: the same grid, thread indices,
cooperative copies, barriers and compacted buffers. Here each thread of a block is a Python
generator that runs the plan's body until its next barrier; the block's threads run one
after another to the barrier, all must reach the same one (else the kernel would hang),
then all go on. Shared buffers start as NaN in every block, local ones in every thread.

What a missing barrier would break is caught as it happens: between two barriers a thread
may not read a shared element another thread wrote, nor write one another thread read or
wrote; no two threads may write one element of the output; every access must fall inside
its (compacted) buffer. Each is a :class:`~probsched.errors.CodegenError` naming the buffer,
the block and the threads. The outputs can then be compared with the numpy reference.

It interprets every element in Python: for small shapes (a 32x32x32 matmul in about a
second), which is what tests of bind, cache_read and barrier placement need.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..errors import CodegenError
from ..ir import expr as E
from ..ir.program import Block, LoopKind, Program, Scope, Store
from ..target import CudaTarget, resolve
from .gpu_nodes import KAllReduce, KBarrier, KBlock, KCoop, KLoop, KNode, KPrefetch, KThread
from .gpu_plan import KernelPlan, plan_kernels
from .passes import PASSES, Pass, apply_passes
from .runtime import NP_DTYPES

Env = dict[str, Any]
Thread = tuple[int, int, int]
_THREAD_AXES = (LoopKind.THREAD_X, LoopKind.THREAD_Y, LoopKind.THREAD_Z)


def emulate(program: Program, inputs: list[np.ndarray] | tuple[np.ndarray, ...],
            target: CudaTarget | str = "cuda", *,
            passes: tuple[Pass, ...] = PASSES) -> tuple[np.ndarray, ...]:
    """The outputs of ``program``'s kernel for ``target`` on ``inputs`` (numpy arrays in
    input order), computed by running its plan thread by thread."""
    t = resolve(target)
    if not isinstance(t, CudaTarget):
        raise CodegenError(f"emulate runs cuda kernels, not {t.describe()}")
    arrays: dict[str, np.ndarray] = {}  # inputs, outputs and the workspace, kernel to kernel
    outs: tuple[np.ndarray, ...] = ()
    for plan in plan_kernels(apply_passes(program, passes), t):
        outs = Emulator(plan).run(inputs, arrays)
    return outs


class _Memory:
    """Buffers as flat arrays, compacted ones relative to their starts, with the access log
    of the current barrier interval."""

    def __init__(self, plan: KernelPlan, arrays: dict[str, np.ndarray]):
        self.plan = plan
        self.program = plan.program
        self.arrays = arrays
        self.starts: dict[str, tuple[int, ...]] = {}
        self.thread: tuple = ()
        self.shared_w: dict[tuple[str, int], tuple] = {}
        self.shared_r: dict[tuple[str, int], set[tuple]] = {}
        self.out_w: dict[tuple[str, int], tuple] = {}
        self.block_name = ""

    def flat(self, name: str, idx: tuple[int, ...]) -> int:
        plan = self.plan.plans.get(name)
        buf = self.program.buffer(name)
        shape = buf.shape if plan is None else plan.shape
        strides = buf.strides if plan is None else plan.strides
        starts = self.starts.get(name)
        off = 0
        for d, (i, n) in enumerate(zip(idx, shape, strict=True)):
            j = i - starts[d] if starts is not None else i
            if not 0 <= j < n:
                raise CodegenError(f"block {self.block_name} accesses {name}"
                                   f"[{', '.join(map(str, idx))}], outside the {shape} region "
                                   f"of it that exists here (dimension {d})")
            off += j * strides[d]
        return off

    def load(self, name: str, idx: tuple[int, ...]) -> float:
        f = self.flat(name, idx)
        if self.program.buffer(name).scope == Scope.SHARED:
            key = (name, f)
            w = self.shared_w.get(key)
            if w is not None and w != self.thread:
                raise CodegenError(f"block {self.block_name} in thread {self.thread} reads "
                                   f"{name}[{', '.join(map(str, idx))}], which thread {w} wrote "
                                   "since the last barrier (a missing barrier)")
            self.shared_r.setdefault(key, set()).add(self.thread)
        return self.arrays[name][f]

    def store(self, name: str, idx: tuple[int, ...], value: Any) -> None:
        f = self.flat(name, idx)
        scope = self.program.buffer(name).scope
        key = (name, f)
        if scope == Scope.SHARED:
            w = self.shared_w.get(key)
            readers = self.shared_r.get(key, set()) - {self.thread}
            if (w is not None and w != self.thread) or readers:
                other = w if w is not None and w != self.thread else min(readers)
                raise CodegenError(f"block {self.block_name} in thread {self.thread} writes "
                                   f"{name}[{', '.join(map(str, idx))}], which thread {other} "
                                   "used since the last barrier (a race)")
            self.shared_w[key] = self.thread
        elif scope in (Scope.OUTPUT, Scope.GLOBAL):
            w = self.out_w.get(key)
            if w is not None and w != self.thread:
                raise CodegenError(f"block {self.block_name} in thread {self.thread} writes "
                                   f"{name}[{', '.join(map(str, idx))}], which thread {w} "
                                   "also wrote (a race)")
            self.out_w[key] = self.thread
        self.arrays[name][f] = value

    def barrier(self) -> None:
        self.shared_w.clear()
        self.shared_r.clear()


class Emulator:
    """Runs one kernel plan (see the module's doc)."""

    def __init__(self, plan: KernelPlan):
        self.plan = plan
        self.program = plan.program
        self._compiled: dict[str, tuple] = {}

    def run(self, inputs: list[np.ndarray] | tuple[np.ndarray, ...],
            arrays: dict[str, np.ndarray] | None = None) -> tuple[np.ndarray, ...]:
        """The outputs; ``arrays``: the device memory a kernel before this one left (its
        outputs and global intermediates), updated in place."""
        program = self.program
        if len(inputs) != len(program.inputs):
            raise CodegenError(f"kernel {program.name} takes {len(program.inputs)} inputs, "
                               f"got {len(inputs)}")
        arrays = {} if arrays is None else arrays
        for name, x in zip(program.inputs, inputs, strict=True):
            buf = program.buffer(name)
            arrays[name] = np.ascontiguousarray(x, dtype=NP_DTYPES[buf.dtype]).reshape(-1)
        for buf in program.buffers:
            if (buf.scope in (Scope.OUTPUT, Scope.GLOBAL) and buf.name not in arrays):
                arrays[buf.name] = np.full(buf.size, np.nan, dtype=NP_DTYPES[buf.dtype])
        mem = _Memory(self.plan, arrays)
        gx, gy, gz = self.plan.grid
        for bz, by, bx in itertools.product(range(gz), range(gy), range(gx)):
            self._thread_block(mem, (bx, by, bz))
        return tuple(arrays[n].reshape(program.buffer(n).shape) for n in program.outputs)

    def _thread_block(self, mem: _Memory, ctaid: Thread) -> None:
        plan = self.plan
        for a in plan.shared:
            if a.name in plan.plans:  # not the all-reduce scratch: all-reduces run below
                dt = self.program.buffer(a.name).dtype
                mem.arrays[a.name] = np.full(plan.plans[a.name].size, np.nan,
                                             dtype=NP_DTYPES[dt])
        env0: Env = {v: 0 for v in plan.fixed_vars}
        for var, axis in plan.grid_vars:
            env0[var] = ctaid[(LoopKind.BLOCK_X, LoopKind.BLOCK_Y, LoopKind.BLOCK_Z).index(axis)]
        tx, ty, tz = plan.block
        runs = []
        for z, y, x in itertools.product(range(tz), range(ty), range(tx)):
            tid = (x, y, z)
            locals_ = {n: np.full(plan.plans[n].size, np.nan,
                                  dtype=NP_DTYPES[self.program.buffer(n).dtype])
                       for n in plan.local}
            gen = self._nodes(plan.body, dict(env0), mem, tid, locals_)
            runs.append(((ctaid, tid), gen, locals_))
        live = runs
        while live:
            reached: list[tuple[Any, Any]] = []
            for who, gen, locals_ in live:
                mem.thread = who
                mem.arrays.update(locals_)
                reached.append((who, next(gen, None)))
            stops = {id(_stop(b)) for _, b in reached}
            if len(stops) > 1:
                ended = [w for w, b in reached if b is None]
                waiting = [w for w, b in reached if b is not None]
                raise CodegenError(f"kernel {self.program.name}: threads {waiting[:2]} wait at "
                                   f"a barrier that threads {ended[:2]} never reach (a hang)"
                                   if ended else f"kernel {self.program.name}: threads reach "
                                   "different barriers (a hang)")
            stop = reached[0][1]
            if isinstance(stop, tuple):  # an all-reduce, which is no barrier
                self._all_reduce(mem, stop[0], [(w, env, loc) for (w, (_, env)), (_, _, loc)
                                                in zip(reached, live, strict=True)])
                continue
            mem.barrier()
            if stop is None:
                break

    # ------------------------------------------------------------ nodes

    def _all_reduce(self, mem: _Memory, node: KAllReduce, threads: list) -> None:
        """Combine the threads' copies of ``node``'s elements across its axis."""
        block = node.block
        name = block.body.buffer
        k = _THREAD_AXES.index(node.axis)
        starts = self.plan.plans[name].starts
        combine = _COMBINE[node.reduction]
        groups: dict[tuple, list[tuple[np.ndarray, int]]] = {}
        for (_, tid), env, loc in threads:
            mem.starts[name] = tuple(int(_expr(s)(env)) for s in starts or ())
            if starts is None:
                mem.starts.pop(name, None)
            mem.block_name = block.name
            for point in itertools.product(*(range(n) for _, n in node.loops)):
                env2 = {**env, **{v: p for (v, _), p in zip(node.loops, point, strict=True)}}
                idx = tuple(int(_expr(b)(env2)) for b in block.bindings)
                key = (tid[:k] + tid[k + 1:], point)
                groups.setdefault(key, []).append((loc[name], mem.flat(name, idx)))
        for copies in groups.values():
            total = copies[0][0][copies[0][1]]
            for arr, f in copies[1:]:
                total = combine(total, arr[f])
            for arr, f in copies:
                arr[f] = total

    def _nodes(self, nodes: tuple[KNode, ...], env: Env, mem: _Memory, tid: Thread,
               locals_: dict[str, np.ndarray]) -> Iterator[KBarrier | tuple]:
        for node in nodes:
            if isinstance(node, KBarrier):
                yield node
            elif isinstance(node, KAllReduce):
                yield (node, dict(env))
            elif isinstance(node, KBlock):
                self._block(node.block, env, mem)
            elif isinstance(node, KThread):
                env[node.var] = tid[_THREAD_AXES.index(node.axis)]
                yield from self._nodes(node.body, env, mem, tid, locals_)
            elif isinstance(node, KCoop):
                self._coop(node, env, mem, tid)
            elif isinstance(node, KPrefetch):
                # The global loads (of inputs, which nothing writes) happen at the store: the
                # same values, and the shared accesses are where the kernel makes them.
                if node.phase == "store" and env[node.var] + 1 < node.extent:
                    self._coop(node.coop, {**env, node.var: env[node.var] + 1}, mem, tid)
            else:
                yield from self._loop(node, env, mem, tid, locals_)

    def _loop(self, node: KLoop, env: Env, mem: _Memory, tid: Thread,
              locals_: dict[str, np.ndarray]) -> Iterator[KBarrier | tuple]:
        for v in range(node.extent):
            env[node.var] = v
            yield from self._nodes(node.body, env, mem, tid, locals_)

    def _coop(self, node: KCoop, env: Env, mem: _Memory, tid: Thread) -> None:
        tx, ty, _ = self.plan.block
        rank = tid[0] + tx * (tid[1] + ty * tid[2])
        n = self.plan.threads
        loops = node.loops[:-1] if node.vector > 1 else node.loops
        for f in range(rank, node.groups, n):
            rest = f
            for var, extent in reversed(loops):
                env[var] = rest % extent
                rest //= extent
            if node.vector == 1:
                self._block(node.block, env, mem)
                continue
            for lane in range(node.vector):
                env[node.loops[-1][0]] = lane
                self._block(node.block, env, mem)

    # ------------------------------------------------------------ blocks

    def _block(self, block: Block, env: Env, mem: _Memory) -> None:
        pred, bindings, starts, init, body = self._compile(block)
        if pred is not None and not pred(env):
            return
        mem.block_name = block.name
        for name, fns in starts:
            mem.starts[name] = tuple(int(s(env)) for s in fns)
        ivs: Env = {iv.name: int(b(env)) for iv, b in zip(block.iter_vars, bindings,
                                                          strict=True)}
        if init is not None and all(ivs[iv.name] == 0 for iv in block.iter_vars if iv.reduce):
            init(ivs, mem)
        body(ivs, mem)

    def _compile(self, block: Block) -> tuple:
        got = self._compiled.get(block.name)
        if got is None:
            touched = {block.body.buffer} | {ld.tensor for st in (block.body, block.init)
                                              if st is not None for ld in E.loads(st.value)}
            starts = []
            for name in sorted(touched):
                p = self.plan.plans.get(name)
                if p is not None and p.starts is not None:
                    starts.append((name, tuple(_expr(s) for s in p.starts)))
            got = (None if block.predicate is None else _expr(block.predicate),
                   tuple(_expr(b) for b in block.bindings), tuple(starts),
                   None if block.init is None else _store(block.init, self.program),
                   _store(block.body, self.program))
            self._compiled[block.name] = got
        return got


def _stop(reached: KBarrier | tuple | None) -> object:
    """Where a thread stopped: a barrier, an all-reduce (with the thread's variables) or its
    end (None)."""
    return reached[0] if isinstance(reached, tuple) else reached


# ---------------------------------------------------------------- expressions

_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "/": lambda a, b: a / b, "//": lambda a, b: a // b, "%": lambda a, b: a % b,
    "min": min, "max": max,
}
_COMBINE: dict[str, Callable[[Any, Any], Any]] = {
    "sum": lambda a, b: a + b, "max": max, "min": min,
}
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
}
_CALLS: dict[str, Callable[[float], float]] = {
    "exp": math.exp, "log": math.log, "sqrt": math.sqrt, "abs": abs, "tanh": math.tanh,
    "erf": math.erf,
}


def _expr(e: E.Expr, mem_ref: list | None = None) -> Callable[..., Any]:
    """``e`` as a function of (variables, memory); loads read through the memory."""
    if isinstance(e, E.Const):
        v = e.value
        return lambda env, mem=None: v
    if isinstance(e, E.Var):
        n = e.name
        return lambda env, mem=None: env[n]
    if isinstance(e, E.Load):
        tensor = e.tensor
        idx = tuple(_expr(i) for i in e.indices)
        return lambda env, mem: mem.load(tensor, tuple(int(i(env, mem)) for i in idx))
    if isinstance(e, E.Binary):
        fa, fb, op = _expr(e.a), _expr(e.b), _BINARY[e.op]
        if e.op == "/":
            return lambda env, mem=None: float(fa(env, mem)) / float(fb(env, mem))
        return lambda env, mem=None: op(fa(env, mem), fb(env, mem))
    if isinstance(e, E.Compare):
        fa, fb, cmp = _expr(e.a), _expr(e.b), _COMPARE[e.op]
        return lambda env, mem=None: cmp(fa(env, mem), fb(env, mem))
    if isinstance(e, E.Logical):
        fa = _expr(e.a)
        if e.b is None:
            return lambda env, mem=None: not fa(env, mem)
        fb = _expr(e.b)
        if e.op == "and":
            return lambda env, mem=None: fa(env, mem) and fb(env, mem)
        return lambda env, mem=None: fa(env, mem) or fb(env, mem)
    if isinstance(e, E.Call):
        fx, call = _expr(e.args[0]), _CALLS[e.fn]
        return lambda env, mem=None: call(fx(env, mem))
    if isinstance(e, E.Cast):
        fv = _expr(e.value)
        conv: Callable[[Any], Any] = float if e.dtype.startswith("float") else (
            bool if e.dtype == "bool" else int)
        return lambda env, mem=None: conv(fv(env, mem))
    if isinstance(e, E.Select):
        fc, fa, fb = _expr(e.cond), _expr(e.a), _expr(e.b)
        return lambda env, mem=None: fa(env, mem) if fc(env, mem) else fb(env, mem)
    raise CodegenError(f"the emulator cannot evaluate {e}")


def _store(st: Store, program: Program) -> Callable[[Env, _Memory], None]:
    idx = tuple(_expr(i) for i in st.indices)
    value = _expr(st.value)
    name = st.buffer

    def run(env: Env, mem: _Memory) -> None:
        mem.store(name, tuple(int(i(env, mem)) for i in idx), value(env, mem))

    return run
