"""Real faults in generated code, for tests of the measurement path: a lowering pass.

A loop annotated ``inject_fault = k`` (``sch.annotate(loop, "inject_fault", k)``) becomes

- k = 1, a crash: a store far outside every buffer (:data:`FAR_BYTES` past an output's,
  or else an input's, start) runs before the loop; the kernel dies of SIGSEGV;
- k = 2, a hang: the loop's body runs :data:`SPIN` times per iteration, each time also
  updating the first element of an input to ``x * 3 + 1`` (a store nothing overwrites, of a
  recurrence no optimizer folds), so LLVM can delete neither; it outlasts any timeout;
- k = 3, wrong results: the loop is dropped, so its stores never happen;
- k = 4, an out-of-bounds store: every store under the loop lands :data:`FAR_BYTES` past
  where it should, its index otherwise kept (so on a GPU each thread still writes its own
  elements: a fault of the launch, not a race the code generator refuses);

and other values of k change nothing. The faults are in the Program, so they reach machine
code the way any schedule does, and the isolated runner meets them for real. Build with
``Builder(passes=faults.PASSES)`` (and ``tune(..., builder=...)``); the pass functions are
module-level, so they travel to the builder's processes by reference.

>>> import probsched as ps
>>> sch = ps.Schedule(ps.workloads.gmm(b=1, n=4, m=4, k=4))
>>> i = sch.get_loops(sch.get_block("C"))[1]
>>> sch.annotate(i, "inject_fault", 2)
>>> print(inject_faults(sch.program))
program gmm(A: float32[1, 4, 4], B: float32[1, 4, 4]) -> C: float32[1, 4, 4]
  for b in range(1):
    for i in range(4) [inject_fault=2]:
      for fault_spin in range(1099511627776):
        for j in range(4):
          for k in range(4):
            block C(b=b, i=i, j=j; sum k=k):
              init C[b, i, j] = 0.0
              C[b, i, j] = C[b, i, j] + A[b, i, k] * B[b, k, j]
        block fault_spin_sum():
          A[0, 0, 0] = A[0, 0, 0] * 3 + 1
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..codegen.passes import Pass
from ..ir import expr as E
from ..ir import tree
from ..ir.program import Block, Loop, Node, Program, Store

FAULT = "inject_fault"
"""The loop annotation that asks for a fault."""

CRASH, HANG, WRONG, OUT_OF_BOUNDS = 1, 2, 3, 4

FAR_BYTES = 2**47
"""How far past a buffer's start the crash stores: x86-64 Linux gives user space 2**47
bytes, so nothing is mapped that far past any pointer a program holds."""

SPIN = 2**40
"""Iterations of a hang: at a nanosecond each, 18 minutes; the measurement's timeouts are
seconds."""


def inject_faults(program: Program) -> Program:
    """``program`` with the faults its loops' ``inject_fault`` annotations ask for."""
    taken = tree.loop_vars(program) | {b.name for b in program.blocks()}
    return program.with_body(_nodes(program, program.body, taken))


PASSES: tuple[Pass, ...] = (("inject_faults", inject_faults),)
"""The passes to append to the standard ones (``Builder(passes=PASSES)``)."""


def _nodes(program: Program, nodes: tuple[Node, ...], taken: set[str]) -> tuple[Node, ...]:
    out: list[Node] = []
    for node in nodes:
        if isinstance(node, Block):
            out.append(node)
            continue
        node = tree.with_body(node, _nodes(program, node.body, taken))
        kind = dict(node.annotations).get(FAULT)
        if kind == CRASH:
            out += [_crash(program, taken), node]
        elif kind == HANG:
            out.append(_hang(program, node, taken))
        elif kind == OUT_OF_BOUNDS:
            out.append(_shifted(program, node))
        elif kind != WRONG:
            out.append(node)
    return tuple(out)


def _crash(program: Program, taken: set[str]) -> Block:
    """A block storing 0 at :data:`FAR_BYTES` past a kernel argument's start (an argument,
    whose object size LLVM does not know, so it cannot call the store dead)."""
    args = [program.buffer(n) for n in (*program.outputs, *program.inputs)]
    buf = next((b for b in args if b.shape), None)
    if buf is None:
        raise ValueError("inject_fault = 1 needs a kernel argument with a dimension")
    elements = FAR_BYTES // np.dtype(buf.dtype).itemsize
    index = (E.Const(-(-elements // buf.strides[0])),) + (E.Const(0),) * (len(buf.shape) - 1)
    return Block(_fresh("fault_crash", taken), (), (), Store(buf.name, index, E.Const(0)))


def _shifted(program: Program, node: Node) -> Node:
    """``node`` with each store's first index moved :data:`FAR_BYTES` on."""
    if isinstance(node, Block):
        buf = program.buffer(node.body.buffer)
        far = -(-(FAR_BYTES // np.dtype(buf.dtype).itemsize) // max(1, buf.strides[0]))
        first, *rest = node.body.indices
        body = replace(node.body, indices=(E.binary("+", first, far), *rest))
        return replace(node, body=body)
    return tree.with_body(node, tuple(_shifted(program, n) for n in node.body))


def _hang(program: Program, loop: Loop, taken: set[str]) -> Loop:
    """``loop`` with its body run :data:`SPIN` times per iteration, and a recurrence in an
    input beside it: the body alone may be invariant in the new loop, and LLVM would hoist
    it and delete the empty loop (it does, for an elementwise body)."""
    numbers = [n for n in program.inputs if program.buffer(n).dtype != "bool"]
    body = loop.body
    if numbers:
        buf = program.buffer(numbers[0])
        first = (E.Const(0),) * len(buf.shape)
        x = E.Load(buf.name, first)
        bump = Store(buf.name, first, E.binary("+", E.binary("*", x, 3), 1))
        body += (Block(_fresh("fault_spin_sum", taken), (), (), bump),)
    return replace(loop, body=(Loop(_fresh("fault_spin", taken), SPIN, body),))


def _fresh(name: str, taken: set[str]) -> str:
    """A loop or block name the program does not use yet."""
    new = tree.fresh_name(name, taken)
    taken.add(new)
    return new
