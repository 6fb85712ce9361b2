"""What import computes ahead of time: batch norms folded into the convolutions before them
(the weights and bias transformed) and ops whose inputs are all constants evaluated by the
numpy reference into constants."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..ir.reference import reference
from .graph import Emitter, Graph, Op


@dataclass
class RawNode:
    """An ONNX node as plain data: name, op type, input and output names, attributes."""

    name: str
    op_type: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)


def fold_batch_norms(nodes: list[RawNode], constants: dict[str, np.ndarray]) -> list[RawNode]:
    """Each BatchNormalization whose input is a Conv's output read by nothing else, with
    constant weights and statistics, folded into that Conv: ``W' = W * s[m]``,
    ``b' = b * s + t`` where ``s = gamma / sqrt(var + eps)``, ``t = beta - mean * s``."""
    readers: dict[str, int] = {}
    for n in nodes:
        for v in n.inputs:
            readers[v] = readers.get(v, 0) + 1
    producer = {n.outputs[0]: n for n in nodes if n.outputs}
    out: list[RawNode] = []
    for n in nodes:
        conv = producer.get(n.inputs[0]) if n.op_type == "BatchNormalization" else None
        params = n.inputs[1:5]
        if (conv is None or conv.op_type != "Conv" or readers.get(n.inputs[0]) != 1
                or len(params) != 4 or not all(p in constants for p in params)
                or conv.inputs[1] not in constants or int(n.attrs.get("training_mode", 0))
                or len(n.outputs) > 1 and any(readers.get(o) for o in n.outputs[1:])):
            out.append(n)
            continue
        gamma, beta, mean, var = (constants[p].astype(np.float64) for p in params)
        s = gamma / np.sqrt(var + float(n.attrs.get("epsilon", 1e-5)))
        w = constants[conv.inputs[1]].astype(np.float64)
        b = (constants[conv.inputs[2]].astype(np.float64) if len(conv.inputs) > 2
             and conv.inputs[2] else np.zeros(w.shape[0]))
        wname, bname = f"{conv.name}:folded_w", f"{conv.name}:folded_b"
        constants[wname] = (w * s.reshape(-1, *([1] * (w.ndim - 1)))).astype(np.float32)
        constants[bname] = (b * s + beta - mean * s).astype(np.float32)
        folded = RawNode(conv.name, "Conv", [conv.inputs[0], wname, bname], list(n.outputs[:1]),
                         dict(conv.attrs))
        out[out.index(conv)] = folded
    return out


def evaluate(op: Op, graph: Graph) -> np.ndarray:
    """The value of an op whose inputs are all constants (the numpy reference of its
    stages)."""
    em = Emitter("fold")
    tensors = {name: em.input(graph.constants[name].shape) for name in dict.fromkeys(op.inputs)}
    op.emit(em, [tensors[n] for n in op.inputs])
    wl = em.wb.build()
    arrays = [graph.constants[t] for t in tensors]
    return reference(wl, *arrays)[0].astype(np.float32)
