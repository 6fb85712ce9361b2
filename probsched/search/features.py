"""Per-store features of a scheduled Program, in the spirit of Ansor's.

One row per store: every block's body, and a reduction's init as a row of its own (the init
runs once per point of the loops that feed no reduce binding). A row describes

- the arithmetic of the stored value: float add/sub, mul, div, min/max, math calls,
  compares/selects, integer index operations (in indices, bindings and the guard), and the
  float operations of the whole nest;
- the loops around the store (extent-1 loops are left out: codegen emits no loop for them):
  per kind (serial, parallel, vectorized, unrolled) the count and the product of extents, and
  for parallel, vectorized and unrolled loops the extent of the innermost such loop and its
  depth counted from the innermost loop; the innermost extent, the depth, the total
  iteration count, the largest ``unroll_max_step`` annotation;
- up to ``N_BUFFER_SLOTS`` accessed buffers, the most bytes first (zero-padded): access type,
  bytes accessed over the nest, unique bytes (the box covering the affine indices while all
  enclosing loops run: ``probsched.ir.analysis.region`` with every loop inner, capped by the
  buffer's shape) and the 64-byte cache lines it spans, the stride of the innermost loop and
  of the vectorized loop (elements, 0 = broadcast), the bytes and cache lines one run of the
  innermost loop touches, reuse (Ansor's: the innermost loop whose variable the accesses do
  not use gives the reuse count, its extent, and the reuse distance, the iterations and unique
  bytes of the loops inside it; plus accessed / unique bytes over the nest), several accesses
  in one statement, and where the buffer lives (``codegen.buffers.plan_buffers``: an
  intermediate placed inside the nest and compacted, and its allocated bytes);
- arithmetic intensity (nest flops / unique bytes of all buffers) and whether a guard
  (partial tile) or an init applies;
- on a GPU, the kernel's static resources around the store: threads per block and blocks
  (the products of the threadIdx and blockIdx loops' extents) and the program's shared bytes
  per block, which set how many blocks an SM holds at once. (``ptxas``'s register and spill
  report is known only once a candidate is built, after the search ranked it: it is the
  builder's static filter, :func:`probsched.codegen.nvptx.build_cuda`, not a feature.)

Every value is scaled as ``sign(x) * log2(1 + |x|)``. Pure per-expression work (operation
counts, accesses, affine forms of indices and bindings) is cached on the frozen IR nodes, so
featurizing the many programs of one search touches each expression once.

>>> import probsched as ps
>>> sch = ps.Schedule(ps.workloads.gmm(b=1, n=64, m=64, k=64))
>>> _, _, j, _ = sch.get_loops(sch.get_block("C"))
>>> _, j1 = sch.split(j, [None, 8])
>>> sch.vectorize(j1)
>>> x = extract([sch.program])[0]
>>> x.shape == (2, N_FEATURES)   # the update and the init
True
>>> float(2 ** x[0, FEATURE_NAMES.index("vec_len")] - 1)
8.0
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..codegen.buffers import BufferPlan, plan_buffers
from ..ir import storage
from ..ir.program import Block, Loop, LoopKind, Program, Scope, Store
from .store_analysis import (
    StoreInfo,
    binding_forms,
    compose,
    free_vars,
    index_ops,
    store_info,
)

__all__ = ["FEATURE_NAMES", "N_BUFFER_SLOTS", "N_FEATURES", "extract", "program_features"]

CACHE_LINE = 64
N_BUFFER_SLOTS = 5

_STORE_NAMES = (
    "float_add_sub", "float_mul", "float_div", "float_min_max", "float_math", "float_cmp_select",
    "int_ops", "flops",
    "n_loops", "iterations", "innermost_extent",
    "serial_num", "serial_prod",
    "parallel_num", "parallel_prod", "parallel_len", "parallel_pos",
    "vec_num", "vec_prod", "vec_len", "vec_pos",
    "unroll_num", "unroll_prod", "unroll_len", "unroll_pos",
    "unroll_max_step", "n_annotations",
    "is_init", "is_reduction", "has_guard", "n_buffers", "arith_intensity",
    "gpu_threads", "gpu_blocks", "gpu_shared_bytes",
)
_BUFFER_NAMES = (
    "read", "write", "read_write", "bytes", "unique_bytes", "unique_lines", "stride",
    "vec_stride", "inner_bytes", "inner_lines", "reuse_count", "reuse_dist_iters",
    "reuse_dist_bytes", "reuse_ratio", "multi_access", "intermediate", "placed_inside",
    "alloc_bytes",
)
FEATURE_NAMES: tuple[str, ...] = _STORE_NAMES + tuple(
    f"b{k}_{n}" for k in range(N_BUFFER_SLOTS) for n in _BUFFER_NAMES
)
N_FEATURES = len(FEATURE_NAMES)
_BYTES, _UNIQUE = _BUFFER_NAMES.index("bytes"), _BUFFER_NAMES.index("unique_bytes")
_UNROLL_KEYS = ("unroll_max_step", "pragma_auto_unroll_max_step")

_DTYPE_BYTES = {"float32": 4, "float64": 8, "int32": 4, "int64": 8, "bool": 1}


def extract(programs: Sequence[Program]) -> list[np.ndarray]:
    """Per program, an ``n_stores x N_FEATURES`` float32 array (log-scaled)."""
    return [program_features(p) for p in programs]


def program_features(program: Program) -> np.ndarray:
    rows: list[list[float]] = []
    dtypes = tuple((b.name, b.dtype) for b in program.buffers)
    plans = None
    if any(b.scope in (Scope.GLOBAL, Scope.LOCAL) for b in program.buffers):
        plans = plan_buffers(program)
    shared = 0
    if any(b.scope == Scope.SHARED for b in program.buffers):
        shared = sum(storage.shared_bytes(program).values())
    ctx = _Context(program, dtypes, plans, shared)
    _visit(program.body, (), ctx, rows)
    out = np.asarray(rows, dtype=np.float64).reshape(len(rows), N_FEATURES)
    return (np.sign(out) * np.log2(1.0 + np.abs(out))).astype(np.float32)


# ---------------------------------------------------------------- per program


@dataclass
class _Context:
    program: Program
    dtypes: tuple
    plans: dict[str, BufferPlan] | None
    shared_bytes: int = 0  # a GPU program's shared memory per thread block


def _visit(nodes, loops: tuple[Loop, ...], ctx: _Context, rows: list) -> None:
    for node in nodes:
        if isinstance(node, Loop):
            _visit(node.body, loops + (node,) if node.extent > 1 else loops, ctx, rows)
            continue
        info = store_info(node.body, ctx.dtypes)
        rows.append(_row(node, node.body, info, loops, ctx, is_init=False))
        if node.init is not None:
            reduce_vars: set[str] = set()
            for iv, b in zip(node.iter_vars, node.bindings, strict=True):
                if iv.reduce:
                    reduce_vars |= free_vars(b)
            init_loops = tuple(lp for lp in loops if lp.var not in reduce_vars)
            init_info = store_info(node.init, ctx.dtypes)
            rows.append(_row(node, node.init, init_info, init_loops, ctx, is_init=True))


def _row(block: Block, store: Store, info: StoreInfo, loops: tuple[Loop, ...], ctx: _Context,
         *, is_init: bool) -> list[float]:
    ext = {lp.var: lp.extent for lp in loops}
    iters = math.prod(ext.values())
    n = len(loops)
    add, mul, div, mm, fmath, cmp_sel, int_ops = info.ops
    int_ops += sum(index_ops(b) for b in block.bindings)
    if block.predicate is not None:
        int_ops += index_ops(block.predicate)
    flops_one = add + mul + div + mm + fmath + cmp_sel

    kinds: dict[LoopKind, list[tuple[int, int]]] = {k: [] for k in LoopKind}
    for depth, lp in enumerate(loops):
        kinds[lp.kind].append((n - 1 - depth, lp.extent))  # (depth from innermost, extent)

    def kind_features(kind: LoopKind) -> list[float]:
        got = kinds[kind]
        if not got:
            return [0.0] * 4
        pos, length = got[-1]  # the innermost loop of this kind
        return [len(got), math.prod(e for _, e in got), length, pos]

    step: float = 0
    n_ann = 0
    for lp in loops:
        if lp.annotations:
            n_ann += 1
            for key, value in lp.annotations:
                if key in _UNROLL_KEYS and isinstance(value, int | float):
                    step = max(step, value)

    vec = kinds[LoopKind.VECTORIZED]
    vec_var = loops[n - 1 - vec[-1][0]].var if vec else None
    inner_var = loops[-1].var if loops else None
    bind = binding_forms(block)
    slots = []
    unique_total = 0.0
    for name, (reads, write, indices) in info.buffers.items():
        feats = _buffer_features(ctx, name, reads, write, indices, bind, block, loops, ext, iters,
                                 inner_var, vec_var)
        unique_total += feats[_UNIQUE]
        slots.append((feats[_BYTES], name, feats))
    serial = kinds[LoopKind.SERIAL]
    row = [  # in the order of _STORE_NAMES
        add, mul, div, mm, fmath, cmp_sel, int_ops, flops_one * iters,
        n, iters, loops[-1].extent if loops else 1,
        len(serial), math.prod(e for _, e in serial),
        *kind_features(LoopKind.PARALLEL), *kind_features(LoopKind.VECTORIZED),
        *kind_features(LoopKind.UNROLLED),
        step, n_ann,
        float(is_init), float(block.reduction is not None and not is_init),
        float(block.predicate is not None), len(info.buffers),
        flops_one * iters / unique_total if unique_total else 0.0,
        math.prod(lp.extent for lp in loops if lp.kind.is_thread),
        math.prod(lp.extent for lp in loops if lp.kind.is_block),
        ctx.shared_bytes,
    ]
    slots.sort(key=lambda s: (-s[0], s[1]))
    for _, _, feats in slots[:N_BUFFER_SLOTS]:
        row.extend(feats)
    row.extend([0.0] * (N_FEATURES - len(row)))
    return row


def _buffer_features(ctx: _Context, name: str, reads: int, write: bool, indices: list,
                     bind: dict, block: Block, loops: tuple[Loop, ...], ext: dict[str, int],
                     iters: int, inner_var: str | None, vec_var: str | None) -> list[float]:
    program = ctx.program
    buf = program.buffer(name)
    esize = _DTYPE_BYTES.get(buf.dtype, 4)
    plan = ctx.plans.get(name) if ctx.plans else None
    placed = plan is not None and plan.starts is not None
    strides = plan.strides if plan is not None and placed else buf.strides
    alloc = (plan.size if plan is not None else buf.size) * esize
    dims = [compose(idx, bind, block, ext) for idx in indices]  # per access, per dimension
    accessed = (reads + int(write)) * iters * esize

    all_vars = tuple(ext)
    unique_el = _box(dims, all_vars, ext, buf.shape)
    unique = unique_el[0] * esize
    lines = unique_el[1] * max(1, math.ceil(unique_el[2] * esize / CACHE_LINE))

    def flat_stride(var: str | None) -> float:
        if var is None:
            return 0.0
        best = 0.0
        for acc in dims:
            s = sum(unit.get(var, 0) * st for (unit, _, _), st in zip(acc, strides, strict=True))
            if abs(s) > abs(best):
                best = s
        return best

    stride = flat_stride(inner_var)
    vec_stride = flat_stride(vec_var)
    inner_ext = ext[inner_var] if inner_var else 1
    if stride == 0:
        inner_bytes, inner_lines = esize, 1
    else:
        span = abs(stride) * esize
        inner_bytes = inner_ext * esize
        inner_lines = inner_ext if span >= CACHE_LINE else math.ceil(
            (span * (inner_ext - 1) + esize) / CACHE_LINE)

    used: set[str] = set()
    for acc in dims:
        for unit, span_, _ in acc:
            used.update(v for v, c in unit.items() if c)
            used.update(v for v, c in span_.items() if c)
    reuse_count = reuse_iters = reuse_bytes = 0.0
    for k in range(len(loops) - 1, -1, -1):
        lp = loops[k]
        if lp.var not in used:
            inside = tuple(x.var for x in loops[k + 1:])
            reuse_count = lp.extent
            reuse_iters = math.prod(ext[v] for v in inside)
            reuse_bytes = _box(dims, inside, ext, buf.shape)[0] * esize
            break
    mode = (float(reads > 0 and not write), float(write and not reads), float(write and reads > 0))
    return [
        *mode, accessed, unique, lines, stride, vec_stride, inner_bytes, inner_lines,
        reuse_count, reuse_iters, reuse_bytes, accessed / unique if unique else 0.0,
        float(len(indices) > 1), float(buf.scope in (Scope.GLOBAL, Scope.LOCAL)), float(placed),
        alloc,
    ]


def _box(dims: list, inner: tuple[str, ...], ext: dict[str, int], shape: tuple[int, ...]
         ) -> tuple[float, float, float]:
    """Elements of the box covering every access while the ``inner`` loops run (the others
    fixed at 0), capped by ``shape``; also the product of all but the last extent and the
    last extent (for counting cache lines)."""
    if not dims:
        return 0.0, 0.0, 0.0
    ndim = len(shape)
    if ndim == 0:
        return 1.0, 1.0, 1.0
    extents = []
    for d in range(ndim):
        lo: float | None = None
        hi: float | None = None
        for acc in dims:
            _, span, const = acc[d]
            a = b = const
            for v in inner:
                c = span.get(v)
                if c:
                    r = c * (ext[v] - 1)
                    if r < 0:
                        a += r
                    else:
                        b += r
            lo = a if lo is None or a < lo else lo
            hi = b if hi is None or b > hi else hi
        assert lo is not None and hi is not None  # dims is not empty
        extents.append(min(max(1.0, round(hi - lo) + 1.0), shape[d]))
    outer = math.prod(extents[:-1])
    return outer * extents[-1], outer, extents[-1]


class FeatureCache:
    """Store features of candidates (anything with ``key`` and ``program``), by decisions
    key: the strategy ranks with them and the cost model learns from them, so each is
    computed once. ``featurize``: what is kept per program (default the per-store rows of
    :func:`program_features`; a cost model that reads programs otherwise gives its own, e.g.
    the GNN's graphs)."""

    def __init__(self, featurize: Callable[[Program], Any] | None = None) -> None:
        self.featurize: Callable[[Program], Any] = featurize or program_features
        self._rows: dict[str, Any] = {}

    def __call__(self, candidates: Sequence) -> list:
        for c in candidates:
            if c.key not in self._rows:
                self._rows[c.key] = self.featurize(c.program)
        return [self._rows[c.key] for c in candidates]
