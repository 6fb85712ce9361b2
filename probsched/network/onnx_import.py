"""ONNX to a :class:`~.graph.Graph` (the ``onnx`` extra: ``pip install probsched[onnx]``).

Opset 13 and later of the default domain; float32 activations with static shapes (or
``shapes=`` for the inputs); initializers and Constant nodes become constants, batch norms
after convolutions fold into them, and an op whose inputs are all constants is evaluated at
import. An op or attribute no translator supports is a :class:`~probsched.errors.ModelError`
naming the node, the op and what is supported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError, ResourceError
from . import ops_conv, ops_elementwise, ops_layout, ops_linear, ops_pool, ops_reduce  # noqa: F401
from .folding import RawNode, evaluate, fold_batch_norms
from .graph import Graph, Op
from .node import ATTRIBUTES, TRANSLATORS, NodeContext

MIN_OPSET = 13


def onnx_module():
    """The onnx package, or a ResourceError saying how to install it."""
    try:
        import onnx
    except ImportError:
        raise ResourceError("importing ONNX models needs the onnx package: "
                            "pip install 'probsched[onnx]'") from None
    return onnx


def import_model(model: Any, shapes: Mapping[str, Sequence[int]] | None = None) -> Graph:
    """The graph of an ONNX ``model`` (a ModelProto or a path)."""
    onnx = onnx_module()
    stem = None if isinstance(model, onnx.ModelProto) else Path(str(model)).stem
    if not isinstance(model, onnx.ModelProto):
        try:
            model = onnx.load(str(model))
        except Exception as exc:  # onnx raises OSError, DecodeError, ...
            raise ModelError(f"{model}: cannot read an ONNX model: {exc}") from None
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < MIN_OPSET:
        raise ModelError(f"the model's opset is {opset}; {MIN_OPSET} and later are supported "
                         "(onnx.version_converter can convert it)")
    g = model.graph
    graph = Graph(name=stem or g.name or "model")
    for init in g.initializer:
        graph.constants[init.name] = _array(onnx.numpy_helper.to_array(init))
    for vi in g.input:
        if vi.name in graph.constants:
            continue
        graph.inputs[vi.name] = _input_shape(vi, shapes or {})
    nodes = [RawNode(n.name or f"{n.op_type}_{k}", n.op_type, list(n.input), list(n.output),
                     {a.name: _attr(onnx, a) for a in n.attribute})
             for k, n in enumerate(g.node)]
    for n in nodes:
        if n.op_type == "Constant":
            graph.constants[n.outputs[0]] = _constant(n)
    nodes = fold_batch_norms([n for n in nodes if n.op_type != "Constant"], graph.constants)
    used = {v for n in nodes for v in n.inputs} | {o.name for o in g.output}
    for n in nodes:
        _translate(n, graph, opset, used)
    for o in g.output:
        if o.name not in graph.constants and o.name not in graph.inputs:
            graph.outputs.append(o.name)
        else:
            raise ModelError(f"output {o.name!r} is a constant or an input; nothing computes it")
    return graph


def _translate(n: RawNode, graph: Graph, opset: int, used: set[str]) -> None:
    fn = TRANSLATORS.get(n.op_type)
    if fn is None:
        raise ModelError(f"node {n.name!r}: op {n.op_type} is not supported; supported ops: "
                         f"{', '.join(sorted(TRANSLATORS))}")
    extra = [o for o in n.outputs[1:] if o and o in used]
    if extra:
        raise ModelError(f"node {n.name!r} ({n.op_type}): only its first output is supported, "
                         f"but {', '.join(extra)} is used")
    ctx = NodeContext(n.name, n.op_type, n.inputs, n.outputs[0], n.attrs, graph, opset)
    for i, v in enumerate(n.inputs):
        if v and v not in graph.constants and v not in graph.inputs and \
                not any(op.output == v for op in graph.ops):
            raise ModelError(f"node {n.name!r} ({n.op_type}): input {i} {v!r} is not defined")
    result = fn(ctx)
    unread = ctx.unread_attributes()
    if unread:
        supported = ", ".join(ATTRIBUTES[n.op_type]) or "none"
        raise ModelError(f"node {n.name!r} ({n.op_type}): attribute {', '.join(unread)} is not "
                         f"supported (supported: {supported})")
    if isinstance(result, Op) and all(v in graph.constants for v in result.inputs):
        result = evaluate(result, graph)
    if isinstance(result, Op):
        graph.ops.append(result)
    else:
        graph.constants[n.outputs[0]] = result


def _array(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32) if a.dtype.kind == "f" else np.asarray(a)


def _input_shape(vi, shapes: Mapping[str, Sequence[int]]) -> tuple[int, ...]:
    if vi.name in shapes:
        return tuple(int(s) for s in shapes[vi.name])
    t = vi.type.tensor_type
    if t.elem_type != 1:  # TensorProto.FLOAT
        raise ModelError(f"input {vi.name!r}: element type {t.elem_type} is not supported "
                         "(float32 is)")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
    if any(d is None or d <= 0 for d in dims):
        raise ModelError(f"input {vi.name!r} has a dynamic shape {dims}; give shapes="
                         f"{{{vi.name!r}: (...)}}")
    return tuple(int(d) for d in dims)  # type: ignore[arg-type]


def _attr(onnx, a) -> Any:
    v = onnx.helper.get_attribute_value(a)
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, onnx.TensorProto):
        return _array(onnx.numpy_helper.to_array(v))
    return list(v) if isinstance(v, list | tuple) else v


def _constant(n: RawNode) -> np.ndarray:
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in n.attrs:
            return _array(np.asarray(n.attrs[key]))
    raise ModelError(f"node {n.name!r} (Constant): attribute {', '.join(n.attrs)} is not "
                     "supported (value, value_float(s), value_int(s) are)")
