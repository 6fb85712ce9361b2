"""What the features need of each store and index, computed once per frozen IR node and
cached: operation counts and accesses of a store's value, affine forms of bindings and indices
(per loop variable: the stride and the average change over the variable's range), free
variables and index arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..ir import expr as E
from ..ir.analysis import affine
from ..ir.program import Block, Store

CACHE_LIMIT = 1 << 14
"""Entries per cache; a full cache is emptied (a search's programs share most nodes)."""


# An index dimension in loop variables: (unit, span, const). ``unit[v]`` is the change of the
# index when ``v`` steps by one (the stride), ``span[v]`` the average change over ``v``'s range
# (equal to ``unit`` when affine), ``const`` the index with every loop variable at 0.
Dim = tuple[dict[str, float], dict[str, float], float]

_BINDING_CACHE: dict = {}
_EVAL_CACHE: dict = {}
_STORE_CACHE: dict = {}
_INT_OPS_CACHE: dict = {}
_FREE_CACHE: dict = {}


def cached(cache: dict, key, fn):
    try:
        return cache[key]
    except KeyError:
        pass
    if len(cache) >= CACHE_LIMIT:
        cache.clear()
    value = cache[key] = fn()
    return value


def free_vars(e: E.Expr) -> frozenset[str]:
    return cached(_FREE_CACHE, e, lambda: frozenset(E.free_vars(e)))


def index_ops(e: E.Expr) -> int:
    return cached(_INT_OPS_CACHE, e, lambda: sum(
        1 for n in E.walk(e) if isinstance(n, E.Binary | E.Compare | E.Logical)))


def binding_forms(block: Block) -> dict[str, tuple | None]:
    """Iteration variable -> affine form (coeffs, const) of its binding in loop variables,
    or None when not affine."""
    return {iv.name: cached(_BINDING_CACHE, b, lambda b=b: affine(b))
            for iv, b in zip(block.iter_vars, block.bindings, strict=True)}


def compose(access: tuple, bind: dict, block: Block, ext: dict[str, int]) -> list[Dim]:
    """An access (per dimension: (affine form in iteration variables or None, expression))
    as index dimensions in loop variables."""
    out = []
    for form, expr in access:
        dim = None
        if form is not None:
            coeffs, const = form
            acc: dict[str, float] = {}
            total = float(const)
            for iv, c in coeffs.items():
                bf = bind.get(iv)
                if bf is None:
                    break
                bc, bconst = bf
                total += c * bconst
                for v, k in bc.items():
                    acc[v] = acc.get(v, 0) + c * k
            else:
                dim = (acc, acc, total)
        if dim is None:
            dim = _evaluated(expr, block, ext)
        out.append(dim)
    return out


def _evaluated(expr: E.Expr, block: Block, ext: dict[str, int]) -> Dim:
    """A non-affine index dimension (fused loops: ``//`` and ``%``), probed by evaluation at
    a few points."""
    key = (expr, block.iter_vars, block.bindings, tuple(ext.items()))

    def probe() -> Dim:
        e = E.substitute(expr, block.binding_map)
        names = [v for v in free_vars(e) if v in ext]
        zero = {v: 0 for v in names}
        base = _eval(e, zero)
        if base is None:
            return {}, {}, 0.0
        unit, span = {}, {}
        for v in names:
            one = _eval(e, {**zero, v: 1})
            last = _eval(e, {**zero, v: ext[v] - 1})
            unit[v] = float(one - base) if one is not None else 0.0
            span[v] = float(last - base) / (ext[v] - 1) if last is not None else 0.0
        return unit, span, float(base)

    return cached(_EVAL_CACHE, key, probe)


def _eval(e: E.Expr, env: dict[str, int]) -> int | None:
    if isinstance(e, E.Const):
        return e.value if isinstance(e.value, int) and not isinstance(e.value, bool) else None
    if isinstance(e, E.Var):
        return env.get(e.name, 0)
    if isinstance(e, E.Binary):
        a, b = _eval(e.a, env), _eval(e.b, env)
        if a is None or b is None:
            return None
        out = E.fold(e.op, a, b)  # of two integers: an integer, or None
        return out if isinstance(out, int) else None
    if isinstance(e, E.Select):
        a, b = _eval(e.a, env), _eval(e.b, env)
        return None if a is None or b is None else max(a, b)
    return None


# ---------------------------------------------------------------- per store (cached)


@dataclass(frozen=True)
class StoreInfo:
    ops: tuple[int, ...]  # add/sub, mul, div, min/max, math, cmp/select, int ops
    # buffer -> (reads, written, accesses: per access, per dim (affine form or None, expr))
    buffers: dict


def store_info(store: Store, dtypes: tuple) -> StoreInfo:
    return cached(_STORE_CACHE, (store, dtypes), lambda: _analyse_store(store, dict(dtypes)))


def _analyse_store(store: Store, dtypes: dict[str, str]) -> StoreInfo:
    counts = [0] * 7
    loads: list[E.Load] = []
    _count(store.value, dtypes, counts, loads)
    for ix in store.indices:
        counts[6] += index_ops(ix)
    buffers: dict[str, list] = {}

    def access(ix: tuple) -> tuple:
        return tuple((affine(i), i) for i in ix)

    buffers[store.buffer] = [0, True, [access(store.indices)]]
    for ld in loads:
        if ld.tensor == store.buffer and ld.indices == store.indices:
            buffers[store.buffer][0] += 1  # the read of a reduction's update
            continue
        entry = buffers.setdefault(ld.tensor, [0, False, []])
        entry[0] += 1
        entry[2].append(access(ld.indices))
    return StoreInfo(tuple(counts), {k: tuple(v) for k, v in buffers.items()})


_FLOAT = E.FLOAT_DTYPES


def _count(e: E.Expr, dtypes: dict[str, str], c: list[int], loads: list) -> bool:
    """Count operations of ``e`` into ``c``; True when ``e`` is a float value."""
    if isinstance(e, E.Const):
        return isinstance(e.value, float) or e.dtype in _FLOAT
    if isinstance(e, E.Var):
        return False
    if isinstance(e, E.Load):
        loads.append(e)
        for ix in e.indices:
            c[6] += index_ops(ix)
        return dtypes.get(e.tensor, "float32") in _FLOAT
    if isinstance(e, E.Binary):
        fa = _count(e.a, dtypes, c, loads)
        fb = _count(e.b, dtypes, c, loads)
        if not (fa or fb):
            c[6] += 1
            return False
        op = e.op
        c[0 if op in ("+", "-") else 1 if op == "*" else 3 if op in ("min", "max") else 2] += 1
        return True
    if isinstance(e, E.Compare):
        fa = _count(e.a, dtypes, c, loads)
        fb = _count(e.b, dtypes, c, loads)
        c[5 if fa or fb else 6] += 1
        return False
    if isinstance(e, E.Logical):
        _count(e.a, dtypes, c, loads)
        if e.b is not None:
            _count(e.b, dtypes, c, loads)
        c[6] += 1
        return False
    if isinstance(e, E.Call):
        for a in e.args:
            _count(a, dtypes, c, loads)
        c[4] += 1
        return True
    if isinstance(e, E.Cast):
        _count(e.value, dtypes, c, loads)
        return e.dtype in _FLOAT
    if isinstance(e, E.Select):
        _count(e.cond, dtypes, c, loads)
        fa = _count(e.a, dtypes, c, loads)
        fb = _count(e.b, dtypes, c, loads)
        c[5] += 1
        return fa or fb
    if isinstance(e, E.Reduce):
        return _count(e.body, dtypes, c, loads)
    return False
