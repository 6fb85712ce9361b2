"""A program as a graph (search/graph_features.py): nodes and edges of a known loop nest,
the store payload shared with the per-store features, and batching (no torch needed)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from probsched.driver.bench.costmodel import random_schedules
from probsched.schedule import Schedule
from probsched.search.features import program_features
from probsched.search.graph_features import (
    COLUMNS,
    EDGE_TYPES,
    NODE_WIDTH,
    batch_graphs,
    program_graph,
)
from probsched.workloads import gmm, sfm

_WL = gmm(b=1, n=32, m=32, k=32)
_GRAPHS = [program_graph(s.program) for s in random_schedules(_WL, 6, seed=3)]


def test_untransformed_matmul_graph():
    sch = Schedule(_WL)
    g = program_graph(sch.program)
    # loops i, j, k (b has extent 1: no loop is emitted for it), the update and the init
    # stores, buffers A, B, C
    assert g.node_type.tolist() == [0, 0, 0, 1, 1, 2, 2, 2]
    assert g.x.shape == (8, NODE_WIDTH) and g.x.dtype == np.float32
    lo, hi = COLUMNS[1]
    np.testing.assert_array_equal(g.x[3:5, lo:hi], program_features(sch.program))
    edges = set(zip(g.src.tolist(), g.dst.tolist(), g.edge_type.tolist(), strict=True))
    contains, inside = EDGE_TYPES.index("contains"), EDGE_TYPES.index("inside")
    assert (0, 1, contains) in edges and (1, 0, inside) in edges  # i holds j
    assert (2, 3, contains) in edges  # k holds the update
    # the update reads A, B and C (the accumulator) and writes C
    accessed = {s for s, d, t in edges if d == 3 and t == EDGE_TYPES.index("accessed_by")}
    assert accessed == {5, 6, 7}
    # each edge's weight makes a mean over the neighbours of its type
    for t in range(len(EDGE_TYPES)):
        for node in range(g.n_nodes):
            w = g.edge_weight[(g.dst == node) & (g.edge_type == t)]
            assert not len(w) or np.isclose(w.sum(), 1.0)


def test_every_store_of_a_multi_stage_program_is_a_node():
    sch = Schedule(sfm(n=8, m=16))
    g = program_graph(sch.program)
    assert (g.node_type == 1).sum() == len(program_features(sch.program))
    assert (g.node_type == 2).sum() == len(sch.program.buffers)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, len(_GRAPHS) - 1), min_size=1, max_size=8))
def test_a_batch_is_its_graphs_side_by_side(picks):
    graphs = [_GRAPHS[k] for k in picks]
    b = batch_graphs(graphs)
    assert b.n_graphs == len(graphs)
    sizes = [g.n_nodes for g in graphs]
    assert len(b.graph) == sum(sizes) == sum(len(p) for p in b.parts)
    assert np.bincount(b.graph, minlength=len(graphs)).tolist() == sizes
    # every edge stays inside its graph and is one of its graph's edges, renumbered; the
    # batch orders them by target
    local = np.concatenate([np.flatnonzero(g.node_type == t) for t in range(len(COLUMNS))
                            for g in graphs])  # each batch node's number in its own graph
    assert (b.graph[b.src] == b.graph[b.dst]).all()
    got = sorted(zip(b.graph[b.src].tolist(), local[b.src].tolist(), local[b.dst].tolist(),
                     b.edge_type.tolist(), b.edge_weight.tolist(), strict=True))
    want = sorted((k, int(s), int(d), int(e), float(w)) for k, g in enumerate(graphs)
                  for s, d, e, w in zip(g.src, g.dst, g.edge_type, g.edge_weight, strict=True))
    assert got == want
    assert (np.diff(b.dst) >= 0).all()
    # a node's own columns land in its type's part, in graph order
    for t, (lo, hi) in enumerate(COLUMNS):
        np.testing.assert_array_equal(
            b.parts[t], np.concatenate([g.x[g.node_type == t, lo:hi] for g in graphs]))
