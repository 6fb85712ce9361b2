"""The layout pass: a graph's 4-D convolutions, and the ops between them, run channels-last
(NHWC, the layout the CPU rules tune convolutions in), ONNX's NCHW kept at the model's
inputs and outputs and wherever an op needs it, with explicit transforms between the two.

Which ops run NHWC (their stages emitted by :mod:`.channels_last`):

- ``conv`` and ``conv_transpose`` with 4-D outputs (grouped and depthwise too), always;
  their weights are transformed once, here, into new constants: OIHW -> HWIO for Conv,
  IOHW -> HWOI for ConvTranspose (a weight that is not a constant gets a transform op);
- the ``FOLLOWERS`` (elementwise ops, batch norms, pools, softmax, reductions, layer norm,
  concat, slice) when an op running NHWC wrote one of their inputs (one reading only the
  model's inputs stays NCHW, with no transform to pay); their axes need no
  remapping (the channels-last emission keeps them logical), so this is correct for any
  axis, the channel one included; a 4-D constant operand is transformed once, like a weight;
- everything else (reshape, flatten, squeeze, unsqueeze, transpose, matmul, gemm) reads
  NCHW: an NHWC input reaches it through a transform.

The transforms are :class:`~.graph.PermuteOp`\\ s of the injective family (``to_nhwc``,
``to_nchw``), not numpy steps of the compiled network: fusion folds each into the task next
to it (the first convolution reads the NCHW input, the global pool writes NCHW), so no extra
pass over memory; one that cannot fold is a task of its own, a transpose kernel, planned by
the buffer plan like any step. Numpy steps would need a second kind of step in the compiled
network and in the plan, and would run outside the tuned kernels.

Names: ``v:nhwc`` is value ``v`` stored NHWC; the plain name is always the NCHW value, so
the graph's inputs and outputs keep theirs. Transformed constants are ``w:hwio``,
``w:hwoi``, ``c:nhwc``. Afterwards, adjacent transposes that undo each other cancel
(:func:`cancel_inverse_transposes`; a model converted from NHWC brings its own).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..errors import ModelError
from .channels_last import NHWC, Perm, channels_last_emit, inverse, permutation, permuted
from .graph import Graph, Op, PermuteOp
from .ops_layout import permute_op
from .weight_blocking import block_weights

LAYOUTS = ("nhwc", "nchw")
"""``nhwc``: this pass, and the matmuls' and convolutions' constant weights blocked
(:mod:`.weight_blocking`); ``nchw``: ONNX's layout everywhere, the graph as imported."""

WEIGHT_LAYOUTS = {"conv": ("OIHW", "HWIO"), "conv_transpose": ("IOHW", "HWOI")}
"""Anchors that run NHWC: (the layout of their weights, input 1, and the layout used)."""

FOLLOWERS = frozenset({
    "add", "sub", "mul", "div", "pow", "relu", "clip", "sigmoid", "tanh", "erf", "exp",
    "sqrt", "neg", "abs", "copy", "bn", "maxpool", "avgpool", "gavgpool", "gmaxpool",
    "softmax", "reducesum", "reducemean", "reducemax", "layernorm", "concat", "slice"})
"""Ops that run NHWC when an op running NHWC wrote one of their inputs."""


def apply_layout(graph: Graph, layout: str) -> Graph:
    """``graph`` in ``layout`` (one of :data:`LAYOUTS`); the graph itself for ``nchw``."""
    if layout not in LAYOUTS:
        raise ModelError(f"layout {layout!r} is not supported (one of {', '.join(LAYOUTS)})")
    if layout == "nchw":
        return graph
    return without_unused_constants(
        block_weights(cancel_inverse_transposes(channels_last(graph))))


def channels_last(graph: Graph) -> Graph:
    """The graph with its convolutions and the ops between them NHWC (see the module)."""
    return _ChannelsLast(graph).run()


class _ChannelsLast:
    """The rewrite in one pass over the ops in order: each value exists NCHW (its plain
    name), NHWC (``v:nhwc``) or both, the other made by a transform where an op needs it."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.constants = dict(graph.constants)
        self.ops: list[Op] = []
        self.plain: set[str] = set(graph.inputs) | set(graph.constants)
        self.nhwc: dict[str, str] = {}  # value -> the name of its NHWC copy
        self.made_nhwc: set[str] = set()  # values an op running NHWC wrote
        self.weights: dict[str, str] = {}

    def run(self) -> Graph:
        for op in self.graph.ops:
            if self._runs_nhwc(op):
                self._add_nhwc(op)
            else:
                self.ops.append(_with_inputs(op, tuple(self._as_nchw(v) for v in op.inputs)))
                self.plain.add(op.output)
        for v in self.graph.outputs:
            self._as_nchw(v)
        return Graph(dict(self.graph.inputs), self.constants, self.ops,
                     list(self.graph.outputs), self.graph.name)

    def _rank(self, v: str) -> int:
        return len(self.graph.shape(v))

    def _runs_nhwc(self, op: Op) -> bool:
        if op.kind in WEIGHT_LAYOUTS:
            return len(op.shape) == 4
        return op.kind in FOLLOWERS and any(v in self.made_nhwc for v in op.inputs)

    def _add_nhwc(self, op: Op) -> None:
        inputs, perms = [], []
        for i, v in enumerate(op.inputs):
            perm: Perm | None
            if i == 1 and op.kind in WEIGHT_LAYOUTS:
                name, perm = self._weight(op, v), permutation(*WEIGHT_LAYOUTS[op.kind])
            elif self._rank(v) == 4:
                name, perm = self._as_nhwc(v), NHWC
            else:
                name, perm = v, None
            inputs.append(name)
            perms.append(perm)
        out, shape = op.output, op.shape
        if len(shape) == 4:
            out, shape = f"{op.output}:nhwc", permuted(shape, NHWC)
            self.nhwc[op.output] = out
            self.made_nhwc.add(op.output)
        else:
            self.plain.add(out)
        self.ops.append(Op(op.node, op.kind, op.family, tuple(inputs), out, shape,
                           channels_last_emit(op, perms)))

    def _as_nhwc(self, v: str) -> str:
        """The name of ``v`` stored NHWC, transformed here if it is not yet."""
        if v not in self.nhwc:
            self.nhwc[v] = self._permuted(v, f"{v}:nhwc", "to_nhwc", NHWC)
        return self.nhwc[v]

    def _as_nchw(self, v: str) -> str:
        """``v`` itself, stored NCHW, transformed back here if only its NHWC copy exists."""
        if v not in self.plain:
            source = self.nhwc[v]
            self.ops.append(permute_op(f"{v}:to_nchw", "to_nchw", source, v,
                                       self._shape(source), inverse(NHWC)))
            self.plain.add(v)
        return v

    def _weight(self, op: Op, v: str) -> str:
        """The name of ``op``'s weights ``v`` in the layout it runs in (the translators
        checked that they have as many dimensions as the layout has letters)."""
        src, dst = WEIGHT_LAYOUTS[op.kind]
        if v not in self.weights:
            name = f"{v}:{dst.lower()}"
            self.weights[v] = self._permuted(self._as_nchw(v), name, f"to_{dst.lower()}",
                                             permutation(src, dst))
        return self.weights[v]

    def _permuted(self, v: str, name: str, kind: str, perm: Perm) -> str:
        """``name``, ``v`` transposed by ``perm``: a constant transformed now, else a
        transform op."""
        if v in self.constants:
            self.constants[name] = np.ascontiguousarray(self.constants[v].transpose(perm))
        else:
            self.ops.append(permute_op(f"{v}:{kind}", kind, v, name, self._shape(v), perm))
        return name

    def _shape(self, v: str) -> tuple[int, ...]:
        for op in reversed(self.ops):
            if op.output == v:
                return op.shape
        return self.graph.shape(v)


def _with_inputs(op: Op, inputs: tuple[str, ...]) -> Op:
    return op if inputs == op.inputs else replace(op, inputs=inputs)


def cancel_inverse_transposes(graph: Graph) -> Graph:
    """The graph without pairs of adjacent transposes that undo each other (a transform the
    pass inserted, or one of the model's own): the second one's readers read the first
    one's input, and the first one goes where nothing else reads it. Where the second
    writes a graph output, the op before the pair writes it instead (a graph input or
    constant can't, so such a pair stays)."""
    ops, outputs = list(graph.ops), set(graph.outputs)
    while (pair := _inverse_pair(ops, outputs)) is not None:
        k, source, target = pair
        del ops[k]
        ops = _renamed(ops, source, target) if target in outputs else \
            _renamed(ops, target, source, reads_only=True)
        ops = _without_dead_transposes(ops, outputs)
    return Graph(dict(graph.inputs), dict(graph.constants), ops, list(graph.outputs),
                 graph.name)


def _inverse_pair(ops: list[Op], outputs: set[str]) -> tuple[int, str, str] | None:
    """(index of the second transpose, the first one's input, the second one's output) of
    the first pair that undo each other and can go."""
    made_by = {op.output: op for op in ops}
    for k, second in enumerate(ops):
        if not isinstance(second, PermuteOp):
            continue
        first = made_by.get(second.inputs[0])
        if not isinstance(first, PermuteOp):
            continue
        composed = [first.perm[p] for p in second.perm]  # second(first(x)) = x.transpose(.)
        if composed != list(range(len(composed))):
            continue
        source = first.inputs[0]
        if second.output in outputs and (source not in made_by or source in outputs):
            continue
        return k, source, second.output
    return None


def _renamed(ops: list[Op], old: str, new: str, reads_only: bool = False) -> list[Op]:
    """``ops`` reading (and, unless ``reads_only``, writing) ``new`` where they had ``old``."""
    out = []
    for op in ops:
        inputs = tuple(new if v == old else v for v in op.inputs)
        output = new if op.output == old and not reads_only else op.output
        out.append(op if (inputs, output) == (op.inputs, op.output)
                   else replace(op, inputs=inputs, output=output))
    return out


def _without_dead_transposes(ops: list[Op], outputs: set[str]) -> list[Op]:
    """``ops`` without the transposes whose outputs nothing reads (nor is a graph output)."""
    while True:
        read = {v for op in ops for v in op.inputs} | outputs
        kept = [op for op in ops if not isinstance(op, PermuteOp) or op.output in read]
        if len(kept) == len(ops):
            return ops
        ops = kept


def without_unused_constants(graph: Graph) -> Graph:
    """The graph keeping only the constants its ops read (a weight replaced by its
    transformed copy is dropped)."""
    read = {v for op in graph.ops for v in op.inputs}
    return Graph(dict(graph.inputs), {k: c for k, c in graph.constants.items() if k in read},
                 list(graph.ops), list(graph.outputs), graph.name)
