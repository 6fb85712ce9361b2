"""Expressions to LLVM IR, in scalar or vector (``lanes > 0``) context.

In vector context an expression that may differ between lanes (:mod:`.lanes`) becomes vector
instructions; a lane-invariant one is computed once as a scalar and broadcast. Loads and
stores are :mod:`.memory`'s; ``exp``, ``tanh`` and ``erf`` are written out by :mod:`.mathfns`.
"""

from __future__ import annotations

from ..errors import CodegenError
from ..ir import dtypes
from ..ir import expr as E
from ..ir.program import Program
from . import lanes as lane_analysis
from . import memory
from .buffers import BufferPlan
from .irtext import BYTES, Function, Module, Value, const, float_literal, intrinsic_suffix, vec_type
from .lanes import VarInfo
from .mathfns import erf_f32, exp_f32, tanh_f32


class ExprEmitter:
    """Emits expressions of one function body; ``lanes``/``mask`` describe the vector context."""

    SELECT_POINTERS = True  # padding as a selected pointer (_padded_load); not on a GPU

    def __init__(self, fn: Function, module: Module, program: Program, ptrs: dict[str, str],
                 plans: dict[str, BufferPlan] | None = None):
        self.fn = fn
        self.module = module
        self.program = program
        self.ptrs = ptrs
        # Address-space qualifiers of pointers by buffer ("addrspace(3) " for a GPU's shared
        # memory); none on a CPU.
        self.spaces: dict[str, str] = {}
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
        return lane_analysis.coeff(e, self.vars, self.lanes)

    def align(self, e: E.Expr) -> int:
        """A number the lane-0 value of integer ``e`` is a multiple of (0 when it is 0)."""
        return lane_analysis.align(e, self.vars)

    def depends(self, e: E.Expr) -> bool:
        """True when ``e`` may differ between lanes."""
        return lane_analysis.depends(e, self.vars)

    # ------------------------------------------------------------ entry points

    def emit(self, e: E.Expr, dtype: str) -> Value:
        """``e`` converted to ``dtype``: a vector in vector context unless lane-invariant."""
        if self.lanes and (self.depends(e) or (self.mask is not None and _has_load(e))):
            v = self._vector(e)
        else:
            v = self.scalar(e, dtype)
        return self.convert(v, dtype)

    def as_vector(self, v: Value) -> Value:
        return v if v.lanes or not self.lanes else self.splat(v, self.lanes)

    # ------------------------------------------------------------ scalar

    def _natural(self, e: E.Expr) -> str:
        return dtypes.infer_dtype(e, self.dtype_of)

    def scalar(self, e: E.Expr, want: str) -> Value:
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
            p = memory.address(self, e.tensor, e.indices)
            return fn.op(f"load {vec_type(dt, 0)}, ptr {p}, align {BYTES[dt]}", dt)
        return self._compound(e, want, self._scalar_child)

    def _scalar_child(self, e: E.Expr, dtype: str) -> Value:
        return self.convert(self.scalar(e, dtype), dtype)

    # ------------------------------------------------------------ vector

    def _vector(self, e: E.Expr) -> Value:
        if isinstance(e, E.Var):
            info = self.vars[e.name]
            if info.vec is None:
                raise CodegenError(f"internal: no vector value for {e.name}")
            return info.vec
        if isinstance(e, E.Load):
            return memory.load_vector(self, e)
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
            t = dtypes.join_dtype(e.a, e.b, self.dtype_of)
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
        t = dtypes.join_dtype(e.a, e.b, self.dtype_of)
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
            padded = self._padded_load(e, cond, t)
            if padded is not None:
                return padded
            saved_clamp, self.clamp = self.clamp, True
            try:
                a, b = self._pair(child(e.a, t), child(e.b, t))
            finally:
                self.clamp = saved_clamp
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

    def _padded_load(self, e: E.Select, cond: Value, t: str) -> Value | None:
        """``select(cond, X[i], c)`` (padding: one load, a constant) as one load from either
        ``X[i]`` (clamped) or a constant holding ``c``, the pointer selected, not the value.
        On x86 a selected value became a masked load plus, where a vector loop broadcasts
        it, a register broadcast, both on the ports the FMAs use; a selected pointer is a
        cmov and a broadcast straight from memory. None where the select is not of this
        shape (or where pointers live in other address spaces, as on a GPU)."""
        load, other, load_first = e.a, e.b, True
        if isinstance(load, E.Const):
            load, other, load_first = e.b, e.a, False
        if not (self.SELECT_POINTERS and isinstance(load, E.Load)
                and isinstance(other, E.Const)):
            return None
        dt = self.dtype_of(load.tensor)
        if dt != t or dt not in ("float32", "float64") or isinstance(other.value, bool):
            return None
        literal = float_literal(float(other.value), dt)
        name = "@probsched.pad." + "".join(ch if ch.isalnum() else "_" for ch in f"{dt}.{literal}")
        self.module.declare(name, f"{name} = private unnamed_addr constant {vec_type(dt, 0)} "
                            f"{literal}, align {BYTES[dt]}")
        saved_clamp, self.clamp = self.clamp, True
        try:
            p = memory.address(self, load.tensor, load.indices)
        finally:
            self.clamp = saved_clamp
        a, b = (p, name) if load_first else (name, p)
        ptr = self.fn.op(f"select {cond.typed}, ptr {a}, ptr {b}", "ptr")
        return self.fn.op(f"load {vec_type(dt, 0)}, ptr {ptr.ref}, align {BYTES[dt]}", dt)

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
        assert dtype is not None  # given with a return type named by text
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
        if name in ("tanh", "erf"):
            if x.dtype == "float32":
                return (tanh_f32 if name == "tanh" else erf_f32)(self, x)
            return self._libm_lanes(name, x)  # float64: libm's, lane by lane
        llvm_name = {"exp": "exp", "log": "log", "sqrt": "sqrt", "abs": "fabs"}.get(name)
        if llvm_name is None:
            raise CodegenError(f"unknown function {name!r}")
        return self.intrinsic(f"llvm.{llvm_name}.{sfx}", x, [x], flags=self.fp_flags)

    def _libm_lanes(self, name: str, x: Value) -> Value:
        self.module.declare(name, f"declare double @{name}(double)")
        if not x.lanes:
            return self.fn.op(f"call double @{name}({x.typed})", "float64")
        out = Value("poison", "float64", x.lanes)
        for k in range(x.lanes):
            v = self.fn.op(f"extractelement {x.typed}, i64 {k}", "float64")
            y = self.fn.op(f"call double @{name}({v.typed})", "float64")
            out = self.fn.op(f"insertelement {out.typed}, {y.typed}, i64 {k}", "float64", x.lanes)
        return out

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


def _may_trap(e: E.Expr) -> bool:
    """Integer division by a non-constant may trap (SIGFPE) when evaluated speculatively."""
    return any(isinstance(n, E.Binary) and n.op in ("//", "%", "/") and
               not isinstance(n.b, E.Const) for n in E.walk(e))


def _has_load(e: E.Expr) -> bool:
    return any(isinstance(n, E.Load) for n in E.walk(e))
