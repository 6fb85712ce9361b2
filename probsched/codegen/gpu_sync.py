"""Barrier placement in a GPU kernel plan (:mod:`.gpu_plan`).

A barrier goes before a block that reads a shared buffer written since the last barrier,
and before one that writes a shared buffer read since then; a loop whose accesses conflict
with what came before gets one barrier before it (not one per iteration inside it), and the
body of a loop is placed again starting from the state its previous iteration left, so a
copy at the top of a loop waits for the reads of the iteration before. Loops run alike in
every thread and guards are on blocks only, so every thread reaches every barrier.
"""

from __future__ import annotations

from dataclasses import replace

from ..ir import analysis
from ..ir.program import Program, Scope
from .gpu_nodes import KAllReduce, KBarrier, KBlock, KCoop, KNode, KPrefetch, KThread, walk


def place_barriers(nodes: tuple[KNode, ...], program: Program) -> tuple[KNode, ...]:
    """``nodes`` (a kernel body) with its barriers."""
    return _sync(nodes, program, frozenset(), frozenset())[0]



def _shared_io(node: KNode, program: Program) -> tuple[set[str], set[str]]:
    """(shared buffers read, shared buffers written) anywhere in ``node``."""
    reads: set[str] = set()
    writes: set[str] = set()
    for n in walk((node,)):
        if isinstance(n, KBlock | KCoop):
            reads |= {b for b in analysis.buffers_read(n.block)
                      if program.buffer(b).scope == Scope.SHARED}
            if program.buffer(n.block.body.buffer).scope == Scope.SHARED:
                writes.add(n.block.body.buffer)
    return reads, writes


def _sync(nodes: tuple[KNode, ...], program: Program, dirty: frozenset[str],
          read: frozenset[str]) -> tuple[tuple[KNode, ...], tuple[frozenset, frozenset]]:
    """``nodes`` with barriers where a shared buffer written since the last barrier is read
    (or one read is written); ``dirty`` and ``read`` are what happened since then before
    ``nodes``. Returns the nodes and the state after them."""
    out: list[KNode] = []
    for node in nodes:
        if isinstance(node, KBlock | KCoop):
            r, w = _shared_io(node, program)
            hazard = (r & dirty) | (w & read)
            if hazard:
                why = "; ".join(sorted(
                    [f"{b} written, then read by {node.block.name}" for b in r & dirty]
                    + [f"{b} read, then written by {node.block.name}" for b in w & read]))
                out.append(KBarrier(why))
                dirty, read = frozenset(), frozenset()
            out.append(node)
            dirty, read = dirty | w, read | r
            continue
        if isinstance(node, KBarrier):
            out.append(node)
            dirty, read = frozenset(), frozenset()
            continue
        if isinstance(node, KAllReduce | KPrefetch):  # placed with their own barriers
            out.append(node)
            continue
        r, w = _shared_io(node, program)
        if not (r or w):
            out.append(node)
            continue
        if (r & dirty) | (w & read):
            # One barrier before the loop, not one per iteration inside it.
            out.append(KBarrier("; ".join(
                sorted([f"{b} written, then read in loop {node.var}" for b in r & dirty]
                       + [f"{b} read, then written in loop {node.var}" for b in w & read]))))
            dirty, read = frozenset(), frozenset()
        body, (d1, r1) = _sync(node.body, program, dirty, read)
        if not isinstance(node, KThread) and node.extent > 1:
            # Later iterations start from what the one before left.
            body, (d1, r1) = _sync(node.body, program, dirty | d1, read | r1)
        out.append(replace(node, body=body))
        dirty, read = d1, r1
    return tuple(out), (dirty, read)
