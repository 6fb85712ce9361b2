"""Loads and stores: element addresses, and vector accesses chosen by lane coefficients.

An access is addressed by its row-major element offset; a compacted intermediate
(:mod:`.buffers`) is indexed relative to its start, bound to offset variables. In vector
context the offset's lane coefficient (:mod:`.lanes`) picks the access: 0, one scalar access
(broadcast for a load; for a reduction's store, the lanes' values combined first); 1, a
contiguous vector access (masked under a vector guard); anything else a gather or scatter.
Every function takes the :class:`~.exprs.ExprEmitter` of the function being emitted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import CodegenError
from ..ir import dtypes, ops
from ..ir import expr as E
from ..ir.program import Block, Store
from .buffers import offset_var
from .irtext import BYTES, Value, const, intrinsic_suffix, vec_type

if TYPE_CHECKING:
    from .exprs import ExprEmitter


def flat_offset(ex: ExprEmitter, buffer: str, indices: tuple[E.Expr, ...],
                clamp: bool = False) -> E.Expr:
    """Row-major element offset; a compacted buffer is indexed relative to its start.
    ``clamp``: each index clamped into what exists of the buffer (a compacted buffer's region,
    not its logical shape), for the arm of a select that is not taken."""
    plan = ex.plans.get(buffer)
    buf = ex.program.buffer(buffer)
    strides = buf.strides if plan is None else plan.strides
    shape = buf.shape if plan is None else plan.shape
    flat: E.Expr = E.Const(0)
    for d, (ix, st) in enumerate(zip(indices, strides, strict=True)):
        if plan is not None and plan.starts is not None:
            ix = E.binary("-", ix, E.Var(offset_var(buffer, d)))
        if clamp:
            ix = ops.maximum(0, ops.minimum(ix, shape[d] - 1))
        flat = E.binary("+", flat, E.binary("*", ix, st))
    return flat


def offsets(ex: ExprEmitter, block: Block) -> list[tuple[str, E.Expr]]:
    """(offset variable, start expression) of the compacted buffers ``block`` touches."""
    out = []
    for name in sorted(_touched(block)):
        plan = ex.plans.get(name)
        if plan is not None and plan.starts is not None:
            out += [(offset_var(name, d), s) for d, s in enumerate(plan.starts)]
    return out


def access_stride(ex: ExprEmitter, buffer: str, indices: tuple[E.Expr, ...]) -> int | None:
    """The lane coefficient of an access's element offset."""
    return ex.coeff(flat_offset(ex, buffer, indices))


def address(ex: ExprEmitter, buffer: str, indices: tuple[E.Expr, ...]) -> str:
    """Pointer (scalar, lane 0) to an element: ``%p``, or ``addrspace(N) %p`` for a buffer
    in another address space (a GPU's), as the type of the load or store that uses it."""
    off = ex.scalar(flat_offset(ex, buffer, indices, clamp=ex.clamp and not ex.lanes),
                    "int64")
    off = ex.convert(off, "int64")
    dt = ex.dtype_of(buffer)
    space = ex.spaces.get(buffer, "")  # the pointer's address space, on a GPU
    ref = ex.fn.op(
        f"getelementptr inbounds {vec_type(dt, 0)}, ptr {space}{ex.ptrs[buffer]}, {off.typed}",
        "int64",
    ).ref
    return f"{space}{ref}"


def _lane_pointers(ex: ExprEmitter, buffer: str, indices: tuple[E.Expr, ...]) -> Value:
    """A vector of per-lane pointers (for gathers and scatters)."""
    flat = flat_offset(ex, buffer, indices)
    off = ex.as_vector(ex.emit(flat, "int64"))
    dt = ex.dtype_of(buffer)
    return ex.fn.op(
        f"getelementptr {vec_type(dt, 0)}, ptr {ex.ptrs[buffer]}, {off.typed}",
        "ptr",
        ex.lanes,
    )


def _mask_or_true(ex: ExprEmitter) -> str:
    return ex.mask.ref if ex.mask is not None else "splat (i1 true)"


def load_vector(ex: ExprEmitter, ld: E.Load) -> Value:
    fn, lanes = ex.fn, ex.lanes
    dt = ex.dtype_of(ld.tensor)
    vt = vec_type(dt, lanes)
    stride = access_stride(ex, ld.tensor, ld.indices)
    sfx = intrinsic_suffix(dt, lanes)
    if stride == 0 and ex.mask is None:
        p = address(ex, ld.tensor, ld.indices)
        s = fn.op(f"load {vec_type(dt, 0)}, ptr {p}, align {BYTES[dt]}", dt)
        return ex.splat(s, lanes)
    if stride == 1:
        p = address(ex, ld.tensor, ld.indices)
        if ex.mask is None:
            return fn.op(f"load {vt}, ptr {p}, align {BYTES[dt]}", dt, lanes)
        return _masked_load(ex, p, dt, ex.mask)
    ptrs = _lane_pointers(ex, ld.tensor, ld.indices)
    name = f"llvm.masked.gather.{sfx}.v{lanes}p0"
    ex.module.declare(
        name, f"declare {vt} @{name}(<{lanes} x ptr>, i32, <{lanes} x i1>, {vt})"
    )
    return fn.op(
        f"call {vt} @{name}(<{lanes} x ptr> {ptrs.ref}, i32 {BYTES[dt]}, "
        f"<{lanes} x i1> {_mask_or_true(ex)}, {vt} zeroinitializer)",
        dt,
        lanes,
    )


def _masked_load(ex: ExprEmitter, p: str, dt: str, mask: Value) -> Value:
    """A contiguous masked load of ``ex.lanes`` elements at ``p``. A width that is not a
    power of two is loaded as the next power of two, the extra lanes masked off, and cut
    back: LLVM 22's X86 backend splits a masked load of 8k + 1 lanes into native vectors
    plus one scalar, and may load that last lane unconditionally where the mask has it
    constant false (seen with two loads sharing a mask, and with 17 lanes): memory the mask
    excludes instead of the passthru's zero. A padded depthwise conv of 7 (or 15) columns,
    vectorized over its 9 (17) padded ones, computed wrong results."""
    fn, lanes = ex.fn, ex.lanes
    width = 1 << (lanes - 1).bit_length()
    if width != lanes:
        keep = ", ".join(f"i32 {k}" for k in range(lanes))
        pad = ", ".join([keep] + [f"i32 {lanes}"] * (width - lanes))
        mask = fn.op(f"shufflevector {mask.typed}, <{lanes} x i1> zeroinitializer, "
                     f"<{width} x i32> <{pad}>", "bool", width)
    vt = vec_type(dt, width)
    name = f"llvm.masked.load.{intrinsic_suffix(dt, width)}.p0"
    ex.module.declare(name, f"declare {vt} @{name}(ptr, i32, <{width} x i1>, {vt})")
    v = fn.op(f"call {vt} @{name}(ptr {p}, i32 {BYTES[dt]}, {mask.typed}, {vt} zeroinitializer)",
              dt, width)
    if width == lanes:
        return v
    return fn.op(f"shufflevector {v.typed}, {vt} poison, <{lanes} x i32> <{keep}>", dt, lanes)


def store(ex: ExprEmitter, st: Store, reduction: str | None) -> None:
    """Store in the current context; a lane-invariant reduction update is combined across
    lanes first (``C[i] = C[i] + f(k)`` vectorized over ``k``)."""
    fn = ex.fn
    dt = ex.dtype_of(st.buffer)
    if not ex.lanes:
        v = ex.emit(st.value, dt)
        p = address(ex, st.buffer, st.indices)
        fn.emit(f"store {v.typed}, ptr {p}, align {BYTES[dt]}")
        return
    lanes = ex.lanes
    stride = access_stride(ex, st.buffer, st.indices)
    if stride == 0:
        update = reduction_update(st, reduction)  # None when reduction is None
        if reduction is not None and update is not None and ex.depends(update):
            _store_reduced(ex, st, reduction, update)
            return
        if ex.depends(st.value):
            raise CodegenError("internal: lane-dependent value stored to one address")
        _guarded_scalar_store(ex, st, dt)
        return
    v = ex.as_vector(ex.emit(st.value, dt))
    vt = vec_type(dt, lanes)
    sfx = intrinsic_suffix(dt, lanes)
    if stride == 1:
        p = address(ex, st.buffer, st.indices)
        if ex.mask is None:
            fn.emit(f"store {v.typed}, ptr {p}, align {BYTES[dt]}")
            return
        name = f"llvm.masked.store.{sfx}.p0"
        ex.module.declare(name, f"declare void @{name}({vt}, ptr, i32, <{lanes} x i1>)")
        fn.emit(
            f"call void @{name}({v.typed}, ptr {p}, i32 {BYTES[dt]}, "
            f"<{lanes} x i1> {_mask_or_true(ex)})"
        )
        return
    ptrs = _lane_pointers(ex, st.buffer, st.indices)
    name = f"llvm.masked.scatter.{sfx}.v{lanes}p0"
    ex.module.declare(
        name, f"declare void @{name}({vt}, <{lanes} x ptr>, i32, <{lanes} x i1>)"
    )
    fn.emit(
        f"call void @{name}({v.typed}, <{lanes} x ptr> {ptrs.ref}, i32 {BYTES[dt]}, "
        f"<{lanes} x i1> {_mask_or_true(ex)})"
    )


def _guarded_scalar_store(ex: ExprEmitter, st: Store, dt: str) -> None:
    fn = ex.fn
    mask = ex.mask
    saved_lanes, ex.lanes, ex.mask = ex.lanes, 0, None
    try:
        if mask is None:
            store(ex, st, None)
            return
        ex.lanes = saved_lanes
        any_ = ex.intrinsic(
            f"llvm.vector.reduce.or.v{saved_lanes}i1", "i1", [mask], dtype="bool"
        )
        ex.lanes = 0
        then_l, end_l = fn.label("st"), fn.label("st_end")
        fn.emit(f"br i1 {any_.ref}, label %{then_l}, label %{end_l}")
        fn.start_block(then_l)
        store(ex, st, None)
        fn.emit(f"br label %{end_l}")
        fn.start_block(end_l)
    finally:
        ex.lanes, ex.mask = saved_lanes, mask


def _store_reduced(ex: ExprEmitter, st: Store, reduction: str, update: E.Expr) -> None:
    fn, lanes = ex.fn, ex.lanes
    dt = ex.dtype_of(st.buffer)
    is_float = dt in ("float32", "float64")
    part = ex.as_vector(ex.emit(update, dt))
    if ex.mask is not None:
        ident = const(dtypes.identity_of(reduction, dt), dt)
        part = fn.op(
            f"select {ex.mask.typed}, {part.typed}, {ex.splat(ident, lanes).typed}",
            dt,
            lanes,
        )
    sfx = intrinsic_suffix(dt, lanes)
    p = address(ex, st.buffer, st.indices)
    old = fn.op(f"load {vec_type(dt, 0)}, ptr {p}, align {BYTES[dt]}", dt)
    scalar = Value("", dt).ty
    if reduction == "sum" and is_float:
        name = f"llvm.vector.reduce.fadd.{sfx}"
        ex.module.declare(name, f"declare {scalar} @{name}({scalar}, {part.ty})")
        new = fn.op(f"call reassoc {scalar} @{name}({old.typed}, {part.typed})", dt)
    else:
        kind = {"sum": "add", "max": "smax", "min": "smin"}[reduction]
        if is_float:
            kind = {"max": "fmax", "min": "fmin"}[reduction]
        r = ex.intrinsic(f"llvm.vector.reduce.{kind}.{sfx}", scalar, [part], dtype=dt)
        op = {"sum": "+", "max": "max", "min": "min"}[reduction]
        new = ex.arith(op, old, r)
    fn.emit(f"store {new.typed}, ptr {p}, align {BYTES[dt]}")


def reduction_update(st: Store, reduction: str | None) -> E.Expr | None:
    """For ``C[x] = C[x] op rest`` in a reduction block, ``rest``; else None."""
    if reduction is None:
        return None
    v = st.value
    op = {"sum": "+", "max": "max", "min": "min"}[reduction]
    if isinstance(v, E.Binary) and v.op == op:
        own = E.Load(st.buffer, st.indices)
        if v.a == own and own not in E.walk(v.b):
            return v.b
        if v.b == own and own not in E.walk(v.a):
            return v.a
    return None


def _touched(block: Block) -> set[str]:
    out = {block.body.buffer}
    for st in (block.body, block.init):
        if st is not None:
            out.update(ld.tensor for ld in E.loads(st.value))
    return out
