"""The graph model of network latency: a linear graph convolution over the network's steps.

Nodes are the kernel calls (the network's steps, in order), edges the data flow (a step
reads the value another writes). Each node has features ``NODE_FEATURES``: the kernel's
predicted seconds (:class:`~probsched.network.latency.KernelLatencyModel`), a 1 (the call
itself), whether its kernel forks threads (a parallel loop), the megabytes it reads of other
steps' values and the model's inputs, of weights (constants), and writes. Two propagation
layers take each node the mean of its producers' features (H1 = A X, H2 = A H1, A the
row-normalized producer matrix), so that a node sees what ran before it and what it hands
on; the readout sums over nodes the features, both layers and the products X * H1 (e.g. a
fork after a fork, the predicted time of a kernel whose producer forked), one row per network
and assignment (``READOUT_NAMES``).

The head is linear, fitted in closed form: with the few dozen measured networks a session
can afford, a linear head over fixed propagation (the simplified graph convolution) is what
the data can fit; the GCN seed's learned nonlinear layers would need thousands. The fit
minimizes squared *relative* error (rows divided by the sum baseline, the readout's first
column) plus a ridge penalty on each weight's distance from the prior "latency = the sum"
(weight 1 on the summed kernel seconds, 0 elsewhere), each column scaled by its spread; the
penalty's strength is the one of ``LAMBDAS`` with the least leave-one-out error. So with no
evidence the model is the sum baseline, and every column it moves is one the measured
networks asked for.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ModelError
from ..ir.program import LoopKind, Program

if TYPE_CHECKING:
    from .network import Network

NODE_FEATURES = ("kernel_s", "calls", "forks", "read_mb", "weight_mb", "write_mb")
LAYERS = ("x", "h1", "h2", "x_h1")
READOUT_NAMES = tuple(f"{layer}.{f}" for layer in LAYERS for f in NODE_FEATURES)
LAMBDAS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
MIN_FRACTION = 0.05
"""A prediction is never below this fraction of the sum baseline (a guard for an
extrapolating head; no measured network came near it)."""


def forks(program: Program) -> bool:
    """Whether the kernel runs a parallel loop (a thread fork-join per call)."""
    return any(loop.kind == LoopKind.PARALLEL and loop.extent > 1 for loop in program.loops())


def node_matrix(net: Network, forked: Mapping[str, bool],
                kernel_s: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """The node features (steps x ``NODE_FEATURES``) and the row-normalized producer
    matrix (steps x steps) of ``net``, given per task hash whether its kernel forks
    (:func:`forks`) and its predicted seconds."""
    graph, steps = net.graph, net.steps
    producer = {st.output: k for k, st in enumerate(steps)}
    n = len(steps)
    x = np.zeros((n, len(NODE_FEATURES)))
    adj = np.zeros((n, n))
    for k, st in enumerate(steps):
        read = weight = 0.0
        for v in st.inputs:
            mb = 4 * math.prod(graph.shape(v)) / 1e6
            if v in graph.constants:
                weight += mb
            else:
                read += mb
            if v in producer:
                adj[k, producer[v]] = 1.0
        write = 4 * math.prod(graph.shape(st.output)) / 1e6
        x[k] = (kernel_s[st.task], 1.0, float(forked[st.task]), read, weight, write)
    deg = adj.sum(axis=1, keepdims=True)
    return x, np.divide(adj, deg, out=np.zeros_like(adj), where=deg > 0)


def readout(x: np.ndarray, adj: np.ndarray) -> np.ndarray:
    """Two propagation layers and the sum over nodes: one row of ``READOUT_NAMES``."""
    h1 = adj @ x
    h2 = adj @ h1
    return np.concatenate([x.sum(0), h1.sum(0), h2.sum(0), (x * h1).sum(0)])


def step_features(net: Network, forked: Mapping[str, bool],
                  kernel_s: Mapping[str, float]) -> np.ndarray:
    """The readout row of one network and assignment; its first entry is the sum baseline."""
    return readout(*node_matrix(net, forked, kernel_s))


class GraphLatencyModel:
    """The linear head over :func:`readout` rows (see the module docstring)."""

    def __init__(self) -> None:
        self.weights: np.ndarray | None = None
        self.lam: float | None = None
        self.n_networks = 0

    @property
    def fitted(self) -> bool:
        return self.weights is not None

    @staticmethod
    def prior() -> np.ndarray:
        w = np.zeros(len(READOUT_NAMES))
        w[0] = 1.0  # x.kernel_s: the sum baseline
        return w

    def fit(self, rows: np.ndarray, measured_s: np.ndarray) -> GraphLatencyModel:
        """Fit on readout rows of measured networks and their measured seconds."""
        z, t = _relative(rows, measured_s)
        scale = np.sqrt((z ** 2).mean(axis=0))
        scale[scale == 0] = 1.0
        w0 = self.prior()
        resid = t - z @ w0
        best = (math.inf, LAMBDAS[0])
        for lam in LAMBDAS:
            v, hat = _ridge(z, resid, lam * scale ** 2)
            loo = (resid - z @ v) / np.maximum(1.0 - np.diag(hat), 1e-9)
            err = float((loo ** 2).mean())
            if err < best[0]:
                best = (err, lam)
        v, _ = _ridge(z, resid, best[1] * scale ** 2)
        self.weights, self.lam, self.n_networks = w0 + v, best[1], len(t)
        return self

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """Predicted seconds per readout row."""
        if self.weights is None:
            raise ModelError("graph latency model: predict before fit (fit it on measured "
                             "networks, or load fitted weights)")
        rows = _check_rows(rows)
        return np.maximum(rows @ self.weights, MIN_FRACTION * rows[:, 0])

    def to_json(self) -> str:
        if self.weights is None:
            raise ModelError("graph latency model: nothing to save before fit")
        return json.dumps({"readout": list(READOUT_NAMES), "weights": self.weights.tolist(),
                           "lambda": self.lam, "networks": self.n_networks}, indent=1)

    @classmethod
    def from_json(cls, text: str, where: str = "<string>") -> GraphLatencyModel:
        try:
            data = json.loads(text)
            names, weights = data["readout"], data["weights"]
        except (ValueError, KeyError, TypeError) as e:
            raise ModelError(f"{where}: not a graph latency model ({e})") from None
        if list(names) != list(READOUT_NAMES) or len(weights) != len(READOUT_NAMES):
            raise ModelError(f"{where}: its readout columns are not this version's "
                             f"({len(READOUT_NAMES)}: {', '.join(READOUT_NAMES[:3])}, ...)")
        model = cls()
        model.weights = np.asarray(weights, dtype=np.float64)
        model.lam, model.n_networks = data.get("lambda"), int(data.get("networks", 0))
        return model

    def save(self, path: str | os.PathLike[str]) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> GraphLatencyModel:
        p = Path(path)
        if not p.is_file():
            raise ModelError(f"{p}: no such graph latency model file")
        return cls.from_json(p.read_text(), str(p))


def _check_rows(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[1] != len(READOUT_NAMES):
        raise ModelError(f"graph latency model: rows of shape {rows.shape}, expected "
                         f"(n, {len(READOUT_NAMES)})")
    if not np.all(rows[:, 0] > 0):
        raise ModelError("graph latency model: a row's summed kernel seconds is not positive")
    return rows


def _relative(rows: np.ndarray, measured_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows = _check_rows(rows)
    y = np.asarray(measured_s, dtype=np.float64)
    if y.shape != (rows.shape[0],) or rows.shape[0] < 2:
        raise ModelError(f"graph latency model: {rows.shape[0]} rows and {y.shape} "
                         "measurements (need one each, at least 2)")
    if not (np.all(np.isfinite(y)) and np.all(y > 0)):
        raise ModelError("graph latency model: a measured latency is not a positive number")
    base = rows[:, :1]
    return rows / base, y / base[:, 0]


def _ridge(z: np.ndarray, t: np.ndarray, penalty: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ridge solution and the hat matrix for per-column penalties."""
    inv = np.linalg.inv(z.T @ z + np.diag(penalty))
    return inv @ z.T @ t, z @ inv @ z.T
