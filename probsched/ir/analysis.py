"""Region analysis on block bindings: which elements of a buffer the blocks under a loop touch.

Accesses are written in block iteration variables; substituting the bindings gives them in
loop variables. An access that is affine in the loop variables covers, for fixed values of the
loops outside a scope, an interval whose start is affine in those outer variables and whose
length is a constant: that is all compute_at and friends need.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import expr as E
from .program import Block, Loop, Program

Affine = tuple[dict[str, int], int]


def affine(e: E.Expr) -> Affine | None:
    """``e`` as (coefficients by variable, constant), or None when not affine.

    >>> affine(E.Var("i") * 4 + E.Var("j") - 1)
    ({'i': 4, 'j': 1}, -1)
    """
    if isinstance(e, E.Const):
        if isinstance(e.value, int) and not isinstance(e.value, bool):
            return {}, e.value
        return None
    if isinstance(e, E.Var):
        return {e.name: 1}, 0
    if isinstance(e, E.Binary) and e.op in ("+", "-"):
        a, b = affine(e.a), affine(e.b)
        if a is None or b is None:
            return None
        sign = 1 if e.op == "+" else -1
        coeffs = dict(a[0])
        for v, c in b[0].items():
            coeffs[v] = coeffs.get(v, 0) + sign * c
        return {v: c for v, c in coeffs.items() if c}, a[1] + sign * b[1]
    if isinstance(e, E.Binary) and e.op == "*":
        a, b = affine(e.a), affine(e.b)
        if a is None or b is None:
            return None
        if not a[0]:
            a, b = b, a
        if b[0]:
            return None
        k = b[1]
        return {v: c * k for v, c in a[0].items() if c * k}, a[1] * k
    return None


def from_affine(coeffs: dict[str, int], const: int) -> E.Expr:
    out: E.Expr = E.Const(0)
    for v, c in coeffs.items():
        out = E.binary("+", out, E.binary("*", E.Var(v), c))
    return E.binary("+", out, const)


def _linear_terms(e: E.Expr) -> tuple[dict[str, tuple[int, E.Expr]], int]:
    """``e`` as a sum of terms (coefficient and expression, by key) and a constant, where
    anything not affine (``h // 28``, ``h % 28``) is one opaque term, keyed by its text."""
    if isinstance(e, E.Const) and isinstance(e.value, int) and not isinstance(e.value, bool):
        return {}, e.value
    if isinstance(e, E.Var):
        return {e.name: (1, e)}, 0
    if isinstance(e, E.Binary) and e.op in ("+", "-"):
        (a, ka), (b, kb) = _linear_terms(e.a), _linear_terms(e.b)
        sign = 1 if e.op == "+" else -1
        terms = dict(a)
        for key, (c, x) in b.items():
            terms[key] = (terms.get(key, (0, x))[0] + sign * c, x)
        return {k: t for k, t in terms.items() if t[0]}, ka + sign * kb
    if isinstance(e, E.Binary) and e.op == "*":
        (a, ka), (b, kb) = _linear_terms(e.a), _linear_terms(e.b)
        if not a:
            (a, ka), (b, kb) = (b, kb), (a, ka)
        if not b:  # one side constant
            return {k: (c * kb, x) for k, (c, x) in a.items() if c * kb}, ka * kb
    from .printer import format_expr  # the printer reads programs; imported when needed

    return {f"@{format_expr(e)}": (1, e)}, 0


def difference(index: E.Expr, start: E.Expr) -> E.Expr:
    """``index - start`` simplified where :func:`affine` gives up: equal terms cancel, the
    opaque ones too (``n // 28`` in both), the rest stays as it was. A GPU register tile's
    index relative to its start is then a constant LLVM need not find.

    >>> from .printer import format_expr
    >>> f = E.Var("f")
    >>> format_expr(difference(E.binary("//", f, 28) * 4 + E.Var("i"), E.binary("//", f, 28) * 4))
    'i'
    """
    terms, const = _linear_terms(E.binary("-", index, start))
    out = from_affine({k: c for k, (c, x) in terms.items() if isinstance(x, E.Var)}, const)
    for c, x in terms.values():
        if not isinstance(x, E.Var):
            out = E.binary("+", out, E.binary("*", x, c))
    return out


def accesses(block: Block, buffer: str, *, reads: bool = True, writes: bool = True
             ) -> list[tuple[E.Expr, ...]]:
    """Index tuples (in loop variables) of ``block``'s accesses to ``buffer``."""
    bind = block.binding_map
    out = []
    stores = [block.body] + ([block.init] if block.init is not None else [])
    for st in stores:
        if writes and st.buffer == buffer:
            out.append(tuple(E.substitute(i, bind) for i in st.indices))
        if reads:
            for ld in E.loads(st.value):
                if ld.tensor == buffer and not (ld.tensor == st.buffer and ld.indices ==
                                                st.indices):
                    out.append(tuple(E.substitute(i, bind) for i in ld.indices))
    return out


def buffers_read(block: Block) -> set[str]:
    """Buffers a block reads, not counting a reduction's read of its own output."""
    out = set()
    for st in (block.body, block.init):
        if st is None:
            continue
        for ld in E.loads(st.value):
            if not (ld.tensor == st.buffer and ld.indices == st.indices):
                out.add(ld.tensor)
    return out


@dataclass(frozen=True)
class Interval:
    """Per dimension: start (affine in outer loop variables) and constant extent."""

    starts: tuple[E.Expr, ...]
    extents: tuple[int, ...]


def split_inner(e: E.Expr, inner: dict[str, int]) -> tuple[dict[str, int], E.Expr] | None:
    """``e`` as (coefficients of the inner variables, the rest), where the rest uses no inner
    variable and may be any expression (``f // 4`` of a fused outer loop, say). None when an
    inner variable occurs non-linearly.

    >>> coeffs, rest = split_inner(E.Var("f") // 4 * 8 + E.Var("k") * 2, {"k": 16})
    >>> coeffs, str(rest)
    ({'k': 2}, 'f // 4 * 8')
    """
    if not (E.free_vars(e) & inner.keys()):
        return {}, e
    if isinstance(e, E.Var):
        return {e.name: 1}, E.Const(0)
    if isinstance(e, E.Binary) and e.op in ("+", "-"):
        a, b = split_inner(e.a, inner), split_inner(e.b, inner)
        if a is None or b is None:
            return None
        sign = 1 if e.op == "+" else -1
        coeffs = dict(a[0])
        for v, c in b[0].items():
            coeffs[v] = coeffs.get(v, 0) + sign * c
        return {v: c for v, c in coeffs.items() if c}, E.binary(e.op, a[1], b[1])
    if isinstance(e, E.Binary) and e.op == "*":
        for x, y in ((e.a, e.b), (e.b, e.a)):
            k = affine(y)
            if k is not None and not k[0]:
                inner_part = split_inner(x, inner)
                if inner_part is None:
                    return None
                coeffs, rest = inner_part
                return ({v: c * k[1] for v, c in coeffs.items() if c * k[1]},
                        E.binary("*", rest, k[1]))
    return None


def region(indices_list: list[tuple[E.Expr, ...]], inner: dict[str, int]) -> Interval | None:
    """The box covering all ``indices_list`` when the ``inner`` loops (var -> extent) run over
    their range and every other variable is fixed. Each start is an expression of the other
    variables; None when an index is not linear in the inner variables or when two accesses'
    starts differ by more than a constant."""
    if not indices_list:
        return None
    ndim = len(indices_list[0])
    starts, extents = [], []
    for d in range(ndim):
        # The start's symbolic part: the rest's affine coefficients, or the rest itself.
        sym: tuple[tuple[str, int], ...] | E.Expr | None = None
        lo: int | None = None
        hi: int | None = None
        for idx in indices_list:
            parts = split_inner(idx[d], inner)
            if parts is None:
                return None
            coeffs, rest = parts
            rest_affine = affine(rest)
            key: tuple[tuple[str, int], ...] | E.Expr
            if rest_affine is not None:
                key, const = tuple(sorted(rest_affine[0].items())), rest_affine[1]
            else:
                key, const = rest, 0
            if sym is None:
                sym = key
            elif key != sym:
                return None
            lo_k = const + sum(min(0, c * (inner[v] - 1)) for v, c in coeffs.items())
            hi_k = const + sum(max(0, c * (inner[v] - 1)) for v, c in coeffs.items())
            lo = lo_k if lo is None else min(lo, lo_k)
            hi = hi_k if hi is None else max(hi, hi_k)
        assert sym is not None and lo is not None and hi is not None  # indices_list is not empty
        start = from_affine(dict(sym), lo) if isinstance(sym, tuple) else E.binary("+", sym, lo)
        starts.append(start)
        extents.append(hi - lo + 1)
    return Interval(tuple(starts), tuple(extents))


def inner_loops(loop: Loop) -> dict[str, int]:
    """Variables and extents of the loops strictly inside ``loop``."""
    out = {}
    stack = list(loop.body)
    while stack:
        n = stack.pop()
        if isinstance(n, Loop):
            out[n.var] = n.extent
            stack.extend(n.body)
    return out


def producers(program: Program, block: Block) -> list[Block]:
    """Blocks that write a buffer ``block`` reads (program order)."""
    wanted = buffers_read(block)
    return [b for b in program.blocks() if b.name != block.name and b.body.buffer in wanted]


def consumers(program: Program, block: Block) -> list[Block]:
    """Blocks that read the buffer ``block`` writes (program order)."""
    buf = block.body.buffer
    return [b for b in program.blocks() if b.name != block.name and buf in buffers_read(b)]
