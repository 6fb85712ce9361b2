"""Features of a trace itself (TLP's idea): the sequence of schedule primitives with their
arguments, as one fixed-length vector, no program needed.

Lookups (``get_block``, ``get_loops``, ...: pure, not sampling) are left out: they change
nothing and only use positions up. Each remaining instruction, in order and up to ``max_len``
of them, gets a one-hot of its kind (``KINDS``: the registry's, sorted by name, then
"other") and ``N_ARGS`` numeric arguments:

- ``split``: the extents of the new loops; ``sample_perfect_tile``: the tiles (the decision);
- ``reorder``: the extents of the loops in their new order; ``fuse``: the fused extent and the
  number of loops;
- ``parallel``, ``vectorize``, ``unroll``, ``compute_at``, ``reverse_compute_at``,
  ``decompose_reduction``: the loop's extent and its index among the outputs of the
  instruction that made it (its depth for ``get_loops``); ``annotate``: the value and the
  loop's extent; ``rfactor``: the extent and the factor axis;
- ``sample_categorical``: the chosen value, the decision (index) and the number of
  candidates; ``sample_compute_location``: the decision; ``cache_read``/``cache_write``: the
  scope (1 local, 2 global) and the buffer's read index when given as an integer;
- any other instruction: by the registry's argument kinds, each loop's extent and index,
  each integer's value.

Loop extents are known where the trace says them: a sampled tiling gives the extent of the
loop it tiles, a split the extents of its loops; otherwise 0. Before the positions come the
count of each kind and the length. Values are scaled as ``sign(x) * log2(1 + |x|)``.

>>> import probsched as ps
>>> sch = ps.Schedule(ps.workloads.gmm(b=1, n=64, m=64, k=64), seed=0)
>>> _, i, _, _ = sch.get_loops(sch.get_block("C"))
>>> i0, i1 = sch.split(i, sch.sample_perfect_tile(i, 2, 16))
>>> sch.parallel(i0)
>>> extract_trace([sch.trace]).shape == (1, n_trace_features())
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..schedule.registry import INSTRUCTIONS, trace_kinds
from ..schedule.trace import RV, Instruction, Trace

__all__ = ["KINDS", "N_ARGS", "STEP_WIDTH", "extract_trace", "n_trace_features",
           "trace_feature_names", "trace_sequences"]

KINDS = trace_kinds()
N_ARGS = 4
MAX_LEN = 32
_KIND_INDEX = {k: n for n, k in enumerate(KINDS)}
_NK = len(KINDS) + 1  # + other
_STEP = _NK + N_ARGS
_SCOPES = {"local": 1, "global": 2}
STEP_WIDTH = _STEP
"""The columns of one instruction in :func:`trace_sequences`: kind one-hot, then arguments."""


def n_trace_features(max_len: int = MAX_LEN) -> int:
    return _NK + 1 + max_len * _STEP


def trace_feature_names(max_len: int = MAX_LEN) -> tuple[str, ...]:
    kinds = (*KINDS, "other")
    head = tuple(f"count_{k}" for k in kinds) + ("length",)
    per = [f"p{p}_{k}" for p in range(max_len)
           for k in (*kinds, *(f"arg{a}" for a in range(N_ARGS)))]
    return head + tuple(per)


def extract_trace(traces: Sequence[Trace], max_len: int = MAX_LEN) -> np.ndarray:
    """An ``n x n_trace_features(max_len)`` float32 array, one row per trace."""
    out = np.zeros((len(traces), n_trace_features(max_len)), dtype=np.float64)
    for row, trace in enumerate(traces):
        _encode(trace, out[row], max_len)
    return (np.sign(out) * np.log2(1.0 + np.abs(out))).astype(np.float32)


def trace_sequences(traces: Sequence[Trace], max_len: int = MAX_LEN
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The same encoding as a sequence (TLP's input): per trace the head (the counts per
    kind and the length, ``n x (len(KINDS) + 2)``) and the instructions
    (``n x max_len x STEP_WIDTH``; positions past the trace's end all zero)."""
    flat = extract_trace(traces, max_len)
    return flat[:, :_NK + 1], flat[:, _NK + 1:].reshape(len(traces), max_len, _STEP)


def _encode(trace: Trace, row: np.ndarray, max_len: int) -> None:
    values: dict[RV, Any] = {}  # integer RVs -> value
    extent: dict[RV, int] = {}  # loop RVs -> extent, where known
    origin: dict[RV, int] = {}  # loop RVs -> index among their instruction's outputs
    pos = 0
    for inst in trace.instructions:
        decision = trace.decision(inst.address) if inst.address is not None else None
        for k, o in enumerate(inst.outputs):
            origin[o] = k
        args = _arguments(inst, decision, values, extent, origin)
        if inst.kind not in _KIND_INDEX:
            declared = INSTRUCTIONS.get(inst.kind)
            if declared is not None and declared.pure and not declared.sampling:
                continue  # a lookup
        kind = _KIND_INDEX.get(inst.kind, _NK - 1)
        row[kind] += 1
        row[_NK] += 1
        if pos < max_len:
            base = _NK + 1 + pos * _STEP
            row[base + kind] = 1.0
            for a, v in enumerate(args[:N_ARGS]):
                row[base + _NK + a] = v
        pos += 1


def _arguments(inst: Instruction, decision: Any, values: dict, extent: dict,
               origin: dict) -> list[float]:
    """The numeric arguments of ``inst``; records what it tells of values and extents."""
    kind, ins, outs = inst.kind, inst.inputs, inst.outputs

    def val(x) -> float:
        if isinstance(x, RV):
            return float(values.get(x, 0))
        return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else 0.0

    def loop(x) -> list[float]:
        return [float(extent.get(x, 0)), float(origin.get(x, 0))] if isinstance(x, RV) else []

    if kind == "sample_perfect_tile":
        tiles = [int(t) for t in decision] if decision is not None else []
        for o, t in zip(outs, tiles, strict=False):
            values[o] = t
        if ins and tiles:
            extent[ins[0]] = int(np.prod(tiles))
        return [float(t) for t in tiles]
    if kind == "sample_categorical":
        cands = inst.attr("candidates", ())
        if decision is not None and 0 <= int(decision) < len(cands):
            values[outs[0]] = cands[int(decision)]
            return [val(outs[0]), float(decision), float(len(cands))]
        return [0.0, 0.0, float(len(cands))]
    if kind == "sample_compute_location":
        return [float(decision)] if decision is not None else []
    if kind == "split":
        factors = [val(f) if f is not None else None for f in (ins[1] if len(ins) > 1 else ())]
        parent = extent.get(ins[0]) if ins else None
        if None in factors and parent and all(f for f in factors if f is not None):
            known = float(np.prod([f for f in factors if f is not None]))
            factors = [-(-parent // known) if f is None else f for f in factors]
        ext = [f or 0.0 for f in factors]
        for o, e in zip(outs, ext, strict=False):
            if e:
                extent[o] = int(e)
        return ext
    if kind == "fuse":
        sizes = [extent.get(x) for x in ins]
        known_sizes = [s for s in sizes if s is not None]
        total = float(np.prod(known_sizes)) if all(sizes) else 0.0
        if total:
            extent[outs[0]] = int(total)
        return [total, float(len(ins))]
    if kind == "reorder":
        return [float(extent.get(x, 0)) for x in ins]
    if kind == "annotate":
        return [val(ins[2]) if len(ins) > 2 else 0.0, *loop(ins[0])[:1]]
    if kind == "rfactor":
        return [*loop(ins[0])[:1], val(ins[1]) if len(ins) > 1 else 0.0]
    if kind in ("cache_read", "cache_write"):
        scope = ins[-1] if ins else None
        code = float(_SCOPES.get(scope, 0)) if isinstance(scope, str) else 0.0
        buf = val(ins[1]) if kind == "cache_read" and len(ins) > 2 else 0.0
        return [code, buf]
    declared = INSTRUCTIONS.get(kind)
    out: list[float] = []
    for arg_kind, x in zip(declared.args if declared else (), ins, strict=False):
        if arg_kind == "loop":
            out += loop(x)
        elif arg_kind in ("int", "value"):
            out.append(val(x))
    return out
