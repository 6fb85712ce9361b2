"""A scheduled Program as a graph, for the message-passing cost model (:mod:`.gnn_model`).

The GNN TPU cost model's idea: rather than flattening a program into one row, keep its
structure and let a network learn how the parts combine. Nodes, one feature vector each
(``NODE_WIDTH`` columns, a node type's columns zero for the others):

- a **loop** (extent-1 loops are left out, as codegen emits none): its extent, its kind
  (serial, parallel, vectorized, unrolled, bound to a GPU axis), its depth, its
  ``unroll_max_step`` and how many annotations it has;
- a **store**: a block's statement, and a reduction's init as a store of its own, with the
  per-store features of :mod:`.features` as its payload (the same rows, in the same order);
- a **buffer**: its bytes, rank and scope (input, output, global, local, shared).

Edges, each of a type (``EDGE_TYPES``): a loop to what it directly contains (a loop or a
store) and back, a buffer to a store that reads or writes it and back. Each edge carries the
weight 1 / (the in-degree of its target for its type), so that a message is a mean over
neighbours of one type. Values are scaled as ``sign(x) * log2(1 + |x|)``, as the other
features are.

>>> import probsched as ps
>>> sch = ps.Schedule(ps.workloads.gmm(b=1, n=64, m=64, k=64))
>>> g = program_graph(sch.program)
>>> g.node_type.tolist()   # loops i, j, k (b, of one iteration, is left out); init, update; A, B, C
[0, 0, 0, 1, 1, 2, 2, 2]
>>> g.x.shape == (8, NODE_WIDTH)
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..ir.program import Block, Loop, LoopKind, Program, Scope
from . import features as F
from .store_analysis import store_info

__all__ = ["COLUMNS", "EDGE_TYPES", "NODE_WIDTH", "GraphBatch", "ProgramGraph", "batch_graphs",
           "program_graph"]

EDGE_TYPES = ("contains", "inside", "accessed_by", "accesses")
_LOOP_KINDS = (LoopKind.SERIAL, LoopKind.PARALLEL, LoopKind.VECTORIZED, LoopKind.UNROLLED)
_SCOPES = (Scope.INPUT, Scope.OUTPUT, Scope.GLOBAL, Scope.LOCAL, Scope.SHARED)
_LOOP_WIDTH = 1 + len(_LOOP_KINDS) + 1 + 3  # extent, kinds + GPU-bound, depth, step, count
_BUF_WIDTH = 2 + len(_SCOPES)
_LOOP_AT = 3
_STORE_AT = _LOOP_AT + _LOOP_WIDTH
_BUF_AT = _STORE_AT + F.N_FEATURES
NODE_WIDTH = _BUF_AT + _BUF_WIDTH
COLUMNS = ((_LOOP_AT, _STORE_AT), (_STORE_AT, _BUF_AT), (_BUF_AT, NODE_WIDTH))
"""Per node type (loop, store, buffer), the columns that are its own."""
_DTYPE_BYTES = {"float32": 4, "float64": 8, "int32": 4, "int64": 8, "bool": 1}
_UNROLL_KEYS = ("unroll_max_step", "pragma_auto_unroll_max_step")


class _Batching(NamedTuple):
    """A graph's share of a batch: ``parts``, the node count per type, the edges as one
    int32 table (src, dst, type, the src's node type, the dst's) ordered by dst, and their
    weights in that order."""

    parts: tuple[np.ndarray, ...]
    counts: np.ndarray
    edges: np.ndarray
    weights: np.ndarray


@dataclass(frozen=True)
class ProgramGraph:
    """One program's graph: node features ``x`` (float32, nodes x ``NODE_WIDTH``, log-scaled),
    ``node_type`` (0 loop, 1 store, 2 buffer; the nodes numbered by type: loops, then stores,
    then buffers), and edges ``src`` -> ``dst`` of type ``edge_type`` (an index into
    ``EDGE_TYPES``) with ``edge_weight``."""

    x: np.ndarray
    node_type: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    edge_type: np.ndarray
    edge_weight: np.ndarray

    @property
    def n_nodes(self) -> int:
        return len(self.x)

    @property
    def parts(self) -> tuple[np.ndarray, ...]:
        """Per node type, its nodes' own columns (``COLUMNS``), made once."""
        return self._batching().parts

    def _batching(self) -> _Batching:
        """What :func:`batch_graphs` takes from this graph, made once (a search round
        scores thousands)."""
        got = self.__dict__.get("_batch")
        if got is None:
            parts = tuple(np.ascontiguousarray(self.x[self.node_type == t, lo:hi])
                          for t, (lo, hi) in enumerate(COLUMNS))
            counts = np.bincount(self.node_type, minlength=len(COLUMNS))[:len(COLUMNS)]
            by_dst = np.argsort(self.dst, kind="stable")
            src, dst = self.src[by_dst], self.dst[by_dst]
            table = np.stack([src, dst, self.edge_type[by_dst], self.node_type[src],
                              self.node_type[dst]]).astype(np.int32)
            got = _Batching(parts, counts, table.reshape(5, -1),
                            self.edge_weight[by_dst].astype(np.float32, copy=False))
            object.__setattr__(self, "_batch", got)
        return got


@dataclass(frozen=True)
class GraphBatch:
    """Graphs side by side, their nodes numbered by type across the batch (every graph's
    loops, then every graph's stores, then buffers): ``parts`` the nodes' own columns per
    type (``COLUMNS``), ``graph`` the graph of each node, edges renumbered and ordered by
    their target (``dst``), as a sparse row-major adjacency wants them."""

    parts: tuple[np.ndarray, ...]
    graph: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    edge_type: np.ndarray
    edge_weight: np.ndarray
    n_graphs: int


def program_graph(program: Program, store_rows: np.ndarray | None = None) -> ProgramGraph:
    """The graph of ``program`` (see the module docstring); ``store_rows``: its per-store
    features when computed already (``features.program_features``)."""
    stores = F.program_features(program) if store_rows is None else store_rows
    dtypes = tuple((b.name, b.dtype) for b in program.buffers)
    nodes: list[tuple[int, list[float]]] = []
    edges: list[tuple[int, int, int]] = []  # (src, dst, type)
    buffer_node: dict[str, int] = {}
    for buf in program.buffers:
        buffer_node[buf.name] = len(nodes)
        size = math.prod(buf.shape) * _DTYPE_BYTES.get(buf.dtype, 4)
        nodes.append((2, [size, len(buf.shape), *(float(buf.scope == s) for s in _SCOPES)]))
    n_store = 0

    def link(parent: int | None, child: int) -> None:
        if parent is not None:
            edges.append((parent, child, 0))
            edges.append((child, parent, 1))

    def store(block: Block, which, parent: int | None) -> None:
        nonlocal n_store
        me = len(nodes)
        row = stores[n_store] if n_store < len(stores) else np.zeros(F.N_FEATURES)
        nodes.append((1, list(row)))
        n_store += 1
        link(parent, me)
        for name in store_info(which, dtypes).buffers:
            if name in buffer_node:
                edges.append((buffer_node[name], me, 2))
                edges.append((me, buffer_node[name], 3))

    def visit(body, parent: int | None, depth: int) -> None:
        for node in body:
            if isinstance(node, Loop):
                if node.extent <= 1:
                    visit(node.body, parent, depth)
                    continue
                me = len(nodes)
                step = max((float(v) for k, v in node.annotations
                            if k in _UNROLL_KEYS and isinstance(v, int | float)), default=0.0)
                nodes.append((0, [node.extent, *(float(node.kind == k) for k in _LOOP_KINDS),
                                  float(node.kind.is_bound), depth, step,
                                  len(node.annotations)]))
                link(parent, me)
                visit(node.body, me, depth + 1)
            else:
                store(node, node.body, parent)
                if node.init is not None:
                    store(node, node.init, parent)

    visit(program.body, None, 0)
    x = np.zeros((len(nodes), NODE_WIDTH), dtype=np.float64)
    kind = np.array([t for t, _ in nodes], dtype=np.int64)
    for k, (t, vals) in enumerate(nodes):
        x[k, t] = 1.0
        at = (_LOOP_AT, _STORE_AT, _BUF_AT)[t]
        x[k, at:at + len(vals)] = vals
    raw = np.ones(NODE_WIDTH, dtype=bool)  # the store payload is log-scaled already
    raw[_STORE_AT:_BUF_AT] = False
    x[:, raw] = np.sign(x[:, raw]) * np.log2(1.0 + np.abs(x[:, raw]))
    order = np.argsort(kind, kind="stable")
    renumber = np.empty(len(nodes), dtype=np.int64)
    renumber[order] = np.arange(len(nodes))
    e = np.array(edges, dtype=np.int64).reshape(-1, 3)
    e[:, :2] = renumber[e[:, :2]]
    return ProgramGraph(x[order].astype(np.float32), kind[order], e[:, 0], e[:, 1], e[:, 2],
                        _mean_weights(e, len(nodes)))


def _mean_weights(edges: np.ndarray, n_nodes: int) -> np.ndarray:
    """1 / in-degree of each edge's target among the edges of its type."""
    if not len(edges):
        return np.zeros(0, dtype=np.float32)
    slot = edges[:, 1] * len(EDGE_TYPES) + edges[:, 2]
    degree = np.bincount(slot, minlength=n_nodes * len(EDGE_TYPES))
    return (1.0 / degree[slot]).astype(np.float32)


def batch_graphs(graphs: Sequence[ProgramGraph]) -> GraphBatch:
    """``graphs`` as one batch (their order kept; see :class:`GraphBatch`)."""
    n = len(graphs)
    types = len(COLUMNS)
    made = [g._batching() for g in graphs]
    count = np.array([m.counts for m in made], dtype=np.int64).reshape(n, types)
    # where graph k's nodes of type t start: in the batch, and in the graph itself; a node's
    # batch index is its own plus the difference, picked by its type
    batch_start = np.cumsum(count, axis=0) - count + np.concatenate(
        [[0], np.cumsum(count.sum(axis=0))[:-1]])[None, :]
    shift = batch_start - (np.cumsum(count, axis=1) - count)
    if n:
        table = np.concatenate([m.edges for m in made], axis=1)
        weight = np.concatenate([m.weights for m in made])
    else:
        table, weight = np.zeros((5, 0), dtype=np.int32), np.zeros(0, np.float32)
    owner = np.repeat(np.arange(n), [m.edges.shape[1] for m in made])
    # each graph's edges are ordered by dst, and the batch numbers nodes by type, then
    # graph: a stable sort on the dst's type (three values: a radix sort) orders them all
    by_dst = np.argsort(table[4].astype(np.int8), kind="stable")
    table, weight, owner = table[:, by_dst], weight[by_dst], owner[by_dst]
    src = table[0] + shift[owner, table[3]]
    dst = table[1] + shift[owner, table[4]]
    parts = tuple(
        np.concatenate([m.parts[t] for m in made]) if n
        else np.zeros((0, hi - lo), dtype=np.float32) for t, (lo, hi) in enumerate(COLUMNS))
    graph = np.concatenate([np.repeat(np.arange(n), count[:, t]) for t in range(types)])
    return GraphBatch(parts, graph, src, dst, np.ascontiguousarray(table[2]), weight, n)
