"""A message-passing cost model over the program's loop tree (the GNN TPU cost model's idea;
PyTorch, the ``dl`` extra; ``tune(cost_model="gnn")``).

Each candidate is its :func:`~.graph_features.program_graph`: loops, stores (with their
per-store features) and buffers as nodes, nesting and accesses as typed edges. The network:
node features standardized and embedded (a linear layer, ReLU); ``rounds`` rounds of message
passing, each node taking per edge type the mean of its neighbours' states, concatenated with
its own and mapped back to ``hidden`` (a linear layer, ReLU, added to the state: residual);
then per graph the mean and the max of its nodes' states, and a small MLP to the score. A
batch of graphs is one big graph (node indices offset), so a round's messages are one sparse
matrix product (the batch's adjacency, a row per node, a column per neighbour and edge type)
and pooling is ``index_add`` / ``scatter_reduce`` over all of it at once: no Python loop over
nodes or graphs, in training or in prediction. Training, labels and the loss: :mod:`.neural`.

The tuner hands models the features its :class:`~.features.FeatureCache` made with the
model's :meth:`GNNModel.featurize` (graphs, made once per candidate); :meth:`GNNModel.encode`
takes graphs or programs.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..ir.program import Program
from ..schedule.trace import Trace
from .graph_features import COLUMNS, EDGE_TYPES, ProgramGraph, batch_graphs, program_graph
from .neural import NeuralConfig, NeuralModel

__all__ = ["GNN_CONFIG", "GNNModel"]

GNN_CONFIG = NeuralConfig(hidden=16, rounds=2)
"""The GNN's defaults: 16 wide, two rounds of message passing (wider scores more slowly
than the 2,000 candidates in 50 ms that a search round needs)."""


class GNNModel(NeuralModel):
    """Message passing over loops, stores and buffers; see the module docstring."""

    name = "gnn"

    def __init__(self, config: NeuralConfig | None = None, *, seed: int | None = None):
        super().__init__(config or GNN_CONFIG, seed=seed)

    @staticmethod
    def featurize(program: Program) -> ProgramGraph:
        """What the tuner's feature cache keeps per candidate: its graph."""
        return program_graph(program)

    def encode(self, programs_or_features: Sequence[Any], traces: Sequence[Trace] | None
               ) -> list[ProgramGraph]:
        out = []
        for x in programs_or_features:
            if isinstance(x, ProgramGraph):
                out.append(x)
            elif isinstance(x, Program):
                out.append(program_graph(x))
            else:
                raise TypeError(f"the gnn cost model takes programs or their graphs "
                                f"(GNNModel.featurize), not {type(x).__name__}")
        return out

    def collate(self, items: Sequence[ProgramGraph]) -> tuple:
        torch = self.torch
        b = batch_graphs(items)
        n = len(b.graph)
        # the messages as one sparse matrix, a row per target node and a column per (source,
        # edge type): the batch orders edges by target, as row-major storage wants them
        rows = np.concatenate([[0], np.cumsum(np.bincount(b.dst, minlength=n))])
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta")
            adjacency = torch.sparse_csr_tensor(
                torch.from_numpy(rows), torch.from_numpy(b.src * len(EDGE_TYPES) + b.edge_type),
                torch.from_numpy(b.edge_weight), size=(n, n * len(EDGE_TYPES)),
                check_invariants=False)
        return (tuple(torch.from_numpy(p) for p in b.parts), torch.from_numpy(b.graph),
                adjacency, b.n_graphs)

    def statistics(self, items: Sequence[ProgramGraph]) -> dict[str, np.ndarray]:
        x = np.concatenate([g.x for g in items]).astype(np.float64)
        kind = np.concatenate([g.node_type for g in items])
        out = {}
        for t, (lo, hi) in enumerate(COLUMNS):  # per node type, over its nodes
            mine = x[kind == t, lo:hi] if (kind == t).any() else np.zeros((1, hi - lo))
            std = mine.std(axis=0)
            out[f"mean{t}"], out[f"std{t}"] = mine.mean(axis=0), np.where(std > 1e-6, std, 1.0)
        return out

    def network(self, stats: dict[str, np.ndarray]) -> Any:
        return _network(self.torch, stats, self.config)


def _network(torch: Any, stats: dict[str, np.ndarray], c: NeuralConfig) -> Any:
    nn = torch.nn
    types = len(EDGE_TYPES)

    class MessagePassing(nn.Module):  # type: ignore[name-defined]  # torch: imported lazily
        def __init__(self) -> None:
            super().__init__()
            for name, value in stats.items():
                self.register_buffer(name, torch.tensor(value, dtype=torch.float32))
            # one embedding per node type, on that type's own columns
            self.embed = nn.ModuleList(nn.Linear(hi - lo, c.hidden) for lo, hi in COLUMNS)
            self.own = nn.ModuleList(nn.Linear(c.hidden, c.hidden) for _ in range(c.rounds))
            self.messages = nn.ModuleList(nn.Linear(types * c.hidden, c.hidden, bias=False)
                                          for _ in range(c.rounds))
            self.head = nn.Sequential(nn.Linear(2 * c.hidden, c.hidden), nn.ReLU(),
                                      nn.Linear(c.hidden, 1))

        def forward(self, parts, graph, adjacency, n_graphs: int):
            h = torch.cat([torch.relu(embed((x - getattr(self, f"mean{t}"))
                                            / getattr(self, f"std{t}")))
                           for t, (x, embed) in enumerate(zip(parts, self.embed, strict=True))])
            n, d = h.shape
            for own, messages in zip(self.own, self.messages, strict=True):
                # each node's state mapped once per edge type (messages' weight is one d x d
                # block per type), then summed into the targets: by linearity the same as
                # mapping the per-type means, and one sparse product
                per_type = (h @ messages.weight.view(d, types, d).permute(2, 1, 0)
                            .reshape(d, types * d)).view(n * types, d)
                h = h + torch.relu(own(h) + adjacency @ per_type)
            count = h.new_zeros(n_graphs).index_add_(0, graph, h.new_ones(n)).clamp(min=1)
            mean = h.new_zeros(n_graphs, d).index_add_(0, graph, h) / count[:, None]
            top = h.new_zeros(n_graphs, d).scatter_reduce(
                0, graph[:, None].expand(n, d), h, reduce="amax", include_self=False)
            return self.head(torch.cat([mean, top], dim=1)).squeeze(1)

    return MessagePassing()
