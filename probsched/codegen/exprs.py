"""Expressions, loads and stores to LLVM IR, in scalar or vector (``lanes > 0``) context.

In a vectorized loop every variable is known by its lane-0 value and its *lane coefficient*
(how it grows per lane: 1 for the vectorized loop variable, 0 for loop-invariant ones, None
when not affine). That decides each memory access: coefficient 0 is one scalar access, 1 a
contiguous vector access, anything else a gather or scatter. Lane-invariant subexpressions
are computed once as scalars and broadcast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import CodegenError
from ..ir import expr as E
from ..ir.program import Program, Store
from .buffers import BufferPlan, offset_var
from .irtext import BYTES, Function, Module, Value, const, intrinsic_suffix, vec_type
from .mathfns import exp_f32


@dataclass
class VarInfo:
    """A variable's lane-0 value (i64), lane coefficient and, in vector context, its vector;
    ``align``: a number the lane-0 value is known to be a multiple of (0: it is 0)."""

    base: Value
    coeff: int | None = 0
    vec: Value | None = None
    align: int = 1


class ExprEmitter:
    """Emits expressions of one function body; ``lanes``/``mask`` describe the vector context."""

    def __init__(self, fn: Function, module: Module, program: Program, ptrs: dict[str, str],
                 plans: dict[str, BufferPlan] | None = None):
        self.fn = fn
        self.module = module
        self.program = program
        self.ptrs = ptrs
        self.plans = plans or {}
        self.vars: dict[str, VarInfo] = {}
        self.lanes = 0
        self.mask: Value | None = None
        self.fp_flags = "contract"
        self.clamp = False  # clamp load indices into their buffer (both arms of a select)

    # ------------------------------------------------------------ analysis

    def dtype_of(self, name: str) -> str:
        return self.program.buffer(name).dtype

    def coeff(self, e: E.Expr) -> int | None:
        """How ``e`` grows per vector lane (0 when invariant), None when not affine."""
        if isinstance(e, E.Const):
            return 0
        if isinstance(e, E.Var):
            return self.vars[e.name].coeff
        if isinstance(e, E.Binary) and e.op in ("+", "-", "*"):
            ca, cb = self.coeff(e.a), self.coeff(e.b)
            if ca is None or cb is None:
                return None
            if e.op == "+":
                return ca + cb
            if e.op == "-":
                return ca - cb
            if ca == 0 and cb == 0:
                return 0
            ka, kb = _int_const(e.a), _int_const(e.b)
            if kb is not None:
                return ca * kb
            if ka is not None:
                return cb * ka
            return None
        if isinstance(e, E.Binary) and e.op in ("//", "%") and self.lanes:
            return self._coeff_divmod(e)
        return 0 if all(self.coeff(k) == 0 for k in E.children(e)) else None

    def _coeff_divmod(self, e: E.Binary) -> int | None:
        """``x // d`` and ``x % d`` when the lanes of ``x`` never cross a multiple of ``d``:
        then ``x // d`` is the same in every lane and ``x % d`` grows as ``x`` does. That
        holds when ``d`` is a multiple of the vector's span (lanes x step) and lane 0 of ``x``
        is too (a fused or reshaped index, e.g. ``(i * 64 + v) % 256``)."""
        c, d = self.coeff(e.a), _int_const(e.b)
        if c is None or d is None or d <= 0:
            return None
        if c == 0:
            return 0 if self.coeff(e.b) == 0 else None
        span = self.lanes * c
        if c < 0 or d % span or self.align(e.a) % span:
            return None
        return 0 if e.op == "//" else c

    def align(self, e: E.Expr) -> int:
        """A number the lane-0 value of integer ``e`` is a multiple of (0 when it is 0)."""
        if isinstance(e, E.Const):
            k = _int_const(e)
            return abs(k) if k is not None else 1
        if isinstance(e, E.Var):
            return self.vars[e.name].align
        if isinstance(e, E.Binary) and e.op in ("+", "-"):
            return math.gcd(self.align(e.a), self.align(e.b))
        if isinstance(e, E.Binary) and e.op == "*":
            return self.align(e.a) * self.align(e.b)
        return 1

    def depends(self, e: E.Expr) -> bool:
        """True when ``e`` may differ between lanes."""
        if isinstance(e, E.Var):
            return self.vars[e.name].coeff != 0
        return any(self.depends(k) for k in E.children(e))

    # ------------------------------------------------------------ entry points

    def emit(self, e: E.Expr, dtype: str) -> Value:
        """``e`` converted to ``dtype``: a vector in vector context unless lane-invariant."""
        if self.lanes and (self.depends(e) or (self.mask is not None and _has_load(e))):
            v = self._vector(e)
        else:
            v = self._scalar(e, dtype)
        return self.convert(v, dtype)

    def as_vector(self, v: Value) -> Value:
        return v if v.lanes or not self.lanes else self.splat(v, self.lanes)

    # ------------------------------------------------------------ scalar

    def _natural(self, e: E.Expr) -> str:
        return E.infer_dtype(e, self.dtype_of)

    def _scalar(self, e: E.Expr, want: str) -> Value:
        fn = self.fn
        if isinstance(e, E.Const):
            if e.dtype is not None:
                return self.convert(const(e.value, e.dtype), want)
            if isinstance(e.value, bool):
                return const(e.value, "bool")
            if isinstance(e.value, float) and want not in ("float32", "float64"):
                return const(e.value, "float32")
            return const(e.value, want)
        if isinstance(e, E.Var):
            return self.vars[e.name].base
        if isinstance(e, E.Load):
            dt = self.dtype_of(e.tensor)
            p = self.address(e.tensor, e.indices)
            return fn.op(f"load {vec_type(dt, 0)}, ptr {p}, align {BYTES[dt]}", dt)
        return self._compound(e, want, self._scalar_child)

    def _scalar_child(self, e: E.Expr, dtype: str) -> Value:
        return self.convert(self._scalar(e, dtype), dtype)

    # ------------------------------------------------------------ vector

    def _vector(self, e: E.Expr) -> Value:
        if isinstance(e, E.Var):
            info = self.vars[e.name]
            if info.vec is None:
                raise CodegenError(f"internal: no vector value for {e.name}")
            return info.vec
        if isinstance(e, E.Load):
            return self.load_vector(e)
        return self._compound(e, self._natural(e), self.emit)

    # ------------------------------------------------------------ shared

    def _compound(self, e: E.Expr, want: str, child) -> Value:
        fn = self.fn
        if isinstance(e, E.Binary):
            t = self._natural(e)
            if e.op == "/" and t not in ("float32", "float64"):
                t = "float32"
            a, b = self._pair(child(e.a, t), child(e.b, t))
            return self.arith(e.op, a, b)
        if isinstance(e, E.Compare):
            t = E.join_dtype(e.a, e.b, self.dtype_of)
            a, b = self._pair(child(e.a, t), child(e.b, t))
            return self.compare(e.op, a, b)
        if isinstance(e, E.Logical):
            a = child(e.a, "bool")
            if e.b is None:
                return fn.op(f"xor {a.typed}, {self._ones(a)}", "bool", a.lanes)
            a, b = self._pair(a, child(e.b, "bool"))
            return fn.op(f"{e.op} {a.typed}, {b.ref}", "bool", a.lanes)
        if isinstance(e, E.Cast):
            return self.convert(child(e.value, self._natural(e.value)), e.dtype)
        if isinstance(e, E.Call):
            t = self._natural(e)
            return self.call(e.fn, child(e.args[0], t))
        if isinstance(e, E.Select):
            return self.select(e, child)
        raise CodegenError(f"cannot generate code for {e}")

    def _pair(self, a: Value, b: Value) -> tuple[Value, Value]:
        if a.lanes == b.lanes:
            return a, b
        lanes = max(a.lanes, b.lanes)
        return (a if a.lanes else self.splat(a, lanes)), (b if b.lanes else self.splat(b, lanes))

    def _ones(self, v: Value) -> str:
        return "splat (i1 true)" if v.lanes else "true"

    def select(self, e: E.Select, child) -> Value:
        fn = self.fn
        t = E.join_dtype(e.a, e.b, self.dtype_of)
        cond = child(e.cond, "bool")
        if cond.lanes or (self.lanes and (self.depends(e.a) or self.depends(e.b))):
            # Vector select: each arm's loads are masked by the lanes that take it.
            cond = self.as_vector(cond)
            saved = self.mask
            not_cond = fn.op(f"xor {cond.typed}, splat (i1 true)", "bool", cond.lanes)
            self.mask = self._and_mask(saved, cond)
            a = self.as_vector(self.emit(e.a, t))
            self.mask = self._and_mask(saved, not_cond)
            b = self.as_vector(self.emit(e.b, t))
            self.mask = saved
            return fn.op(f"select {cond.typed}, {a.typed}, {b.typed}", t, a.lanes)
        if not (_has_load(e.a) or _has_load(e.b)):
            a, b = self._pair(child(e.a, t), child(e.b, t))
            return fn.op(f"select {cond.typed}, {a.typed}, {b.typed}", t, a.lanes)
        if not (_may_trap(e.a) or _may_trap(e.b)):
            # Both arms evaluated with their loads' indices clamped into the buffer (what the
            # taken arm reads is in bounds anyway): a select instead of a branch per element
            # keeps the code straight-line, which LLVM optimizes faster and better.
            saved, self.clamp = self.clamp, True
            try:
                a, b = self._pair(child(e.a, t), child(e.b, t))
            finally:
                self.clamp = saved
            return fn.op(f"select {cond.typed}, {a.typed}, {b.typed}", t, a.lanes)
        # Only the taken arm may be evaluated: its loads can be out of bounds otherwise.
        then_l, else_l, join_l = fn.label("sel_a"), fn.label("sel_b"), fn.label("sel_end")
        fn.emit(f"br i1 {cond.ref}, label %{then_l}, label %{else_l}")
        fn.start_block(then_l)
        a = child(e.a, t)
        a_end = fn.block
        fn.emit(f"br label %{join_l}")
        fn.start_block(else_l)
        b = child(e.b, t)
        b_end = fn.block
        fn.emit(f"br label %{join_l}")
        fn.start_block(join_l)
        return fn.op(f"phi {a.ty} [ {a.ref}, %{a_end} ], [ {b.ref}, %{b_end} ]", t)

    def _and_mask(self, mask: Value | None, cond: Value) -> Value:
        if mask is None:
            return cond
        return self.fn.op(f"and {mask.typed}, {cond.ref}", "bool", cond.lanes)

    # ------------------------------------------------------------ instructions

    def splat(self, v: Value, lanes: int) -> Value:
        fn = self.fn
        vt = vec_type(v.dtype, lanes)
        ins = fn.op(f"insertelement {vt} poison, {v.typed}, i64 0", v.dtype, lanes)
        return fn.op(
            f"shufflevector {vt} {ins.ref}, {vt} poison, <{lanes} x i32> zeroinitializer",
            v.dtype,
            lanes,
        )

    def iota(self, lanes: int) -> Value:
        return Value("<" + ", ".join(f"i64 {k}" for k in range(lanes)) + ">", "int64", lanes)

    def intrinsic(
        self,
        name: str,
        ret: Value | str,
        args: list[Value],
        flags: str = "",
        extra_decl: str = "",
        dtype: str | None = None,
        lanes: int = 0,
    ) -> Value:
        rty = ret if isinstance(ret, str) else ret.ty
        decl_args = ", ".join(a.ty for a in args)
        if extra_decl:
            decl_args = extra_decl
        self.module.declare(name, f"declare {rty} @{name}({decl_args})")
        call_args = ", ".join(a.typed for a in args)
        if isinstance(ret, Value):
            dtype, lanes = ret.dtype, ret.lanes
        flag = f"{flags} " if flags else ""
        return self.fn.op(f"call {flag}{rty} @{name}({call_args})", dtype, lanes)

    def arith(self, op: str, a: Value, b: Value) -> Value:
        fn, t, lanes = self.fn, a.dtype, a.lanes
        is_float = t in ("float32", "float64")
        sfx = intrinsic_suffix(t, lanes)
        if op in ("min", "max"):
            name = (
                ("minnum" if op == "min" else "maxnum")
                if is_float
                else ("smin" if op == "min" else "smax")
            )
            return self.intrinsic(f"llvm.{name}.{sfx}", a, [a, b])
        if is_float:
            ins = {"+": "fadd", "-": "fsub", "*": "fmul", "/": "fdiv"}.get(op)
            if ins is not None:
                return fn.op(f"{ins} {self.fp_flags} {a.typed}, {b.ref}", t, lanes)
            q = fn.op(f"fdiv {a.typed}, {b.ref}", t, lanes)
            q = self.intrinsic(f"llvm.floor.{sfx}", a, [q])
            if op == "//":
                return q
            m = fn.op(f"fmul {q.typed}, {b.ref}", t, lanes)
            return fn.op(f"fsub {a.typed}, {m.ref}", t, lanes)
        ins = {"+": "add", "-": "sub", "*": "mul"}.get(op)
        if ins is not None:
            return fn.op(f"{ins} {a.typed}, {b.ref}", t, lanes)
        if op in ("//", "%"):
            # Floor semantics (Python's): adjust when the remainder's sign differs from b's.
            q = fn.op(f"sdiv {a.typed}, {b.ref}", t, lanes)
            r = fn.op(f"srem {a.typed}, {b.ref}", t, lanes)
            zero = "zeroinitializer" if lanes else "0"
            rneg = fn.op(f"icmp slt {r.typed}, {zero}", "bool", lanes)
            bneg = fn.op(f"icmp slt {b.typed}, {zero}", "bool", lanes)
            rnz = fn.op(f"icmp ne {r.typed}, {zero}", "bool", lanes)
            diff = fn.op(f"xor {rneg.typed}, {bneg.ref}", "bool", lanes)
            adj = fn.op(f"and {diff.typed}, {rnz.ref}", "bool", lanes)
            if op == "//":
                one = fn.op(f"zext {adj.typed} to {q.ty}", t, lanes)
                return fn.op(f"sub {q.typed}, {one.ref}", t, lanes)
            return fn.op(f"select {adj.typed}, {self._add_text(r, b)}, {r.typed}", t, lanes)
        if op == "/":
            raise CodegenError("integer '/' reached codegen; use '//' for floor division")
        raise CodegenError(f"unknown operator {op!r}")

    def _add_text(self, r: Value, b: Value) -> str:
        s = self.fn.op(f"add {r.typed}, {b.ref}", r.dtype, r.lanes)
        return s.typed

    def compare(self, op: str, a: Value, b: Value) -> Value:
        if a.dtype in ("float32", "float64"):
            pred = {"<": "olt", "<=": "ole", ">": "ogt", ">=": "oge", "==": "oeq", "!=": "une"}
            ins = f"fcmp {pred[op]}"
        else:
            pred = {"<": "slt", "<=": "sle", ">": "sgt", ">=": "sge", "==": "eq", "!=": "ne"}
            ins = f"icmp {pred[op]}"
        return self.fn.op(f"{ins} {a.typed}, {b.ref}", "bool", a.lanes)

    def call(self, name: str, x: Value) -> Value:
        sfx = intrinsic_suffix(x.dtype, x.lanes)
        if x.dtype not in ("float32", "float64"):
            if name == "abs":
                return self.intrinsic(
                    f"llvm.abs.{sfx}", x, [x, const(False, "bool")], extra_decl=f"{x.ty}, i1"
                )
            x = self.convert(x, "float32")
            sfx = intrinsic_suffix(x.dtype, x.lanes)
        if name == "exp" and x.dtype == "float32":
            return exp_f32(self, x)  # inline: llvm.exp.* would be one libm call per lane
        llvm_name = {"exp": "exp", "log": "log", "sqrt": "sqrt", "abs": "fabs"}.get(name)
        if llvm_name is None:
            raise CodegenError(f"unknown function {name!r}")
        return self.intrinsic(f"llvm.{llvm_name}.{sfx}", x, [x], flags=self.fp_flags)

    def convert(self, v: Value, to: str) -> Value:
        frm = v.dtype
        if frm == to:
            return v
        fn, lanes = self.fn, v.lanes
        fl = ("float32", "float64")
        tt = vec_type(to, lanes)
        if to == "bool":
            zero = "zeroinitializer" if lanes else ("0.0" if frm in fl else "0")
            ins = "fcmp une" if frm in fl else "icmp ne"
            return fn.op(f"{ins} {v.typed}, {zero}", "bool", lanes)
        if frm == "bool":
            ins = "uitofp" if to in fl else "zext"
        elif frm in fl and to in fl:
            ins = "fpext" if to == "float64" else "fptrunc"
        elif frm in fl:
            ins = "fptosi"
        elif to in fl:
            ins = "sitofp"
        else:
            ins = "sext" if BYTES[to] > BYTES[frm] else "trunc"
        if v.ref[0] != "%" and not lanes and frm != "bool" and to in fl and frm not in fl:
            return const(int(v.ref), to)
        return fn.op(f"{ins} {v.typed} to {tt}", to, lanes)

    # ------------------------------------------------------------ memory

    def flat_offset(self, buffer: str, indices: tuple[E.Expr, ...]) -> E.Expr:
        """Row-major element offset; a compacted buffer is indexed relative to its start."""
        plan = self.plans.get(buffer)
        strides = self.program.buffer(buffer).strides if plan is None else plan.strides
        flat: E.Expr = E.Const(0)
        for d, (ix, st) in enumerate(zip(indices, strides, strict=True)):
            if plan is not None and plan.starts is not None:
                ix = E.binary("-", ix, E.Var(offset_var(buffer, d)))
            flat = E.binary("+", flat, E.binary("*", ix, st))
        return flat

    def offsets(self, block) -> list[tuple[str, E.Expr]]:
        """(offset variable, start expression) of the compacted buffers ``block`` touches."""
        out = []
        for name in sorted(_touched(block)):
            plan = self.plans.get(name)
            if plan is not None and plan.starts is not None:
                out += [(offset_var(name, d), s) for d, s in enumerate(plan.starts)]
        return out

    def offset_names(self, block) -> list[str]:
        return [name for name, _ in self.offsets(block)]

    def address(self, buffer: str, indices: tuple[E.Expr, ...]) -> str:
        """Pointer (scalar, lane 0) to an element."""
        if self.clamp and not self.lanes:
            shape = self.program.buffer(buffer).shape
            indices = tuple(
                E.maximum(0, E.minimum(ix, n - 1)) for ix, n in zip(indices, shape, strict=True)
            )
        off = self._scalar(self.flat_offset(buffer, indices), "int64")
        off = self.convert(off, "int64")
        dt = self.dtype_of(buffer)
        return self.fn.op(
            f"getelementptr inbounds {vec_type(dt, 0)}, ptr {self.ptrs[buffer]}, {off.typed}",
            "int64",
        ).ref

    def _lane_pointers(self, buffer: str, indices: tuple[E.Expr, ...]) -> Value:
        """A vector of per-lane pointers (for gathers and scatters)."""
        flat = self.flat_offset(buffer, indices)
        off = self.as_vector(self.emit(flat, "int64"))
        dt = self.dtype_of(buffer)
        return self.fn.op(
            f"getelementptr {vec_type(dt, 0)}, ptr {self.ptrs[buffer]}, {off.typed}",
            "ptr",
            self.lanes,
        )

    def access_stride(self, buffer: str, indices: tuple[E.Expr, ...]) -> int | None:
        return self.coeff(self.flat_offset(buffer, indices))

    def _mask_or_true(self) -> str:
        return self.mask.ref if self.mask is not None else "splat (i1 true)"

    def load_vector(self, ld: E.Load) -> Value:
        fn, lanes = self.fn, self.lanes
        dt = self.dtype_of(ld.tensor)
        vt = vec_type(dt, lanes)
        stride = self.access_stride(ld.tensor, ld.indices)
        sfx = intrinsic_suffix(dt, lanes)
        if stride == 0 and self.mask is None:
            p = self.address(ld.tensor, ld.indices)
            s = fn.op(f"load {vec_type(dt, 0)}, ptr {p}, align {BYTES[dt]}", dt)
            return self.splat(s, lanes)
        if stride == 1:
            p = self.address(ld.tensor, ld.indices)
            if self.mask is None:
                return fn.op(f"load {vt}, ptr {p}, align {BYTES[dt]}", dt, lanes)
            name = f"llvm.masked.load.{sfx}.p0"
            self.module.declare(name, f"declare {vt} @{name}(ptr, i32, <{lanes} x i1>, {vt})")
            return fn.op(
                f"call {vt} @{name}(ptr {p}, i32 {BYTES[dt]}, "
                f"<{lanes} x i1> {self._mask_or_true()}, {vt} zeroinitializer)",
                dt,
                lanes,
            )
        ptrs = self._lane_pointers(ld.tensor, ld.indices)
        name = f"llvm.masked.gather.{sfx}.v{lanes}p0"
        self.module.declare(
            name, f"declare {vt} @{name}(<{lanes} x ptr>, i32, <{lanes} x i1>, {vt})"
        )
        return fn.op(
            f"call {vt} @{name}(<{lanes} x ptr> {ptrs.ref}, i32 {BYTES[dt]}, "
            f"<{lanes} x i1> {self._mask_or_true()}, {vt} zeroinitializer)",
            dt,
            lanes,
        )

    def store(self, st: Store, reduction: str | None) -> None:
        """Store in the current context; a lane-invariant reduction update is combined across
        lanes first (``C[i] = C[i] + f(k)`` vectorized over ``k``)."""
        fn = self.fn
        dt = self.dtype_of(st.buffer)
        if not self.lanes:
            v = self.emit(st.value, dt)
            p = self.address(st.buffer, st.indices)
            fn.emit(f"store {v.typed}, ptr {p}, align {BYTES[dt]}")
            return
        lanes = self.lanes
        stride = self.access_stride(st.buffer, st.indices)
        if stride == 0:
            update = reduction_update(st, reduction)
            if update is not None and self.depends(update):
                self._store_reduced(st, reduction, update)
                return
            if self.depends(st.value):
                raise CodegenError("internal: lane-dependent value stored to one address")
            self._guarded_scalar_store(st, dt)
            return
        v = self.as_vector(self.emit(st.value, dt))
        vt = vec_type(dt, lanes)
        sfx = intrinsic_suffix(dt, lanes)
        if stride == 1:
            p = self.address(st.buffer, st.indices)
            if self.mask is None:
                fn.emit(f"store {v.typed}, ptr {p}, align {BYTES[dt]}")
                return
            name = f"llvm.masked.store.{sfx}.p0"
            self.module.declare(name, f"declare void @{name}({vt}, ptr, i32, <{lanes} x i1>)")
            fn.emit(
                f"call void @{name}({v.typed}, ptr {p}, i32 {BYTES[dt]}, "
                f"<{lanes} x i1> {self._mask_or_true()})"
            )
            return
        ptrs = self._lane_pointers(st.buffer, st.indices)
        name = f"llvm.masked.scatter.{sfx}.v{lanes}p0"
        self.module.declare(
            name, f"declare void @{name}({vt}, <{lanes} x ptr>, i32, <{lanes} x i1>)"
        )
        fn.emit(
            f"call void @{name}({v.typed}, <{lanes} x ptr> {ptrs.ref}, i32 {BYTES[dt]}, "
            f"<{lanes} x i1> {self._mask_or_true()})"
        )

    def _guarded_scalar_store(self, st: Store, dt: str) -> None:
        fn = self.fn
        mask = self.mask
        saved_lanes, self.lanes, self.mask = self.lanes, 0, None
        try:
            if mask is None:
                self.store(st, None)
                return
            self.lanes = saved_lanes
            any_ = self.intrinsic(
                f"llvm.vector.reduce.or.v{saved_lanes}i1", "i1", [mask], dtype="bool"
            )
            self.lanes = 0
            then_l, end_l = fn.label("st"), fn.label("st_end")
            fn.emit(f"br i1 {any_.ref}, label %{then_l}, label %{end_l}")
            fn.start_block(then_l)
            self.store(st, None)
            fn.emit(f"br label %{end_l}")
            fn.start_block(end_l)
        finally:
            self.lanes, self.mask = saved_lanes, mask

    def _store_reduced(self, st: Store, reduction: str, update: E.Expr) -> None:
        fn, lanes = self.fn, self.lanes
        dt = self.dtype_of(st.buffer)
        is_float = dt in ("float32", "float64")
        part = self.as_vector(self.emit(update, dt))
        if self.mask is not None:
            ident = const(E.identity_of(reduction, dt), dt)
            part = fn.op(
                f"select {self.mask.typed}, {part.typed}, {self.splat(ident, lanes).typed}",
                dt,
                lanes,
            )
        sfx = intrinsic_suffix(dt, lanes)
        p = self.address(st.buffer, st.indices)
        old = fn.op(f"load {vec_type(dt, 0)}, ptr {p}, align {BYTES[dt]}", dt)
        scalar = Value("", dt).ty
        if reduction == "sum" and is_float:
            name = f"llvm.vector.reduce.fadd.{sfx}"
            self.module.declare(name, f"declare {scalar} @{name}({scalar}, {part.ty})")
            new = fn.op(f"call reassoc {scalar} @{name}({old.typed}, {part.typed})", dt)
        else:
            kind = {"sum": "add", "max": "smax", "min": "smin"}[reduction]
            if is_float:
                kind = {"max": "fmax", "min": "fmin"}[reduction]
            r = self.intrinsic(f"llvm.vector.reduce.{kind}.{sfx}", scalar, [part], dtype=dt)
            op = {"sum": "+", "max": "max", "min": "min"}[reduction]
            new = self.arith(op, old, r)
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


def _touched(block) -> set[str]:
    out = {block.body.buffer}
    for st in (block.body, block.init):
        if st is not None:
            out.update(ld.tensor for ld in E.loads(st.value))
    return out


def _int_const(e: E.Expr) -> int | None:
    if isinstance(e, E.Const) and isinstance(e.value, int) and not isinstance(e.value, bool):
        return e.value
    return None


def _may_trap(e: E.Expr) -> bool:
    """Integer division by a non-constant may trap (SIGFPE) when evaluated speculatively."""
    return any(isinstance(n, E.Binary) and n.op in ("//", "%", "/") and
               not isinstance(n.b, E.Const) for n in E.walk(e))


def _has_load(e: E.Expr) -> bool:
    return any(isinstance(n, E.Load) for n in E.walk(e))
