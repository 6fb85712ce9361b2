"""Masked vector loads (a padding ``select`` vectorized over its padded columns) at widths
that are not a power of two.

LLVM 22's X86 backend splits a masked load of 8k + 1 lanes into native vectors plus one
scalar, and may load that last lane from memory, unmasked, where the mask has it constant
false (two loads sharing a mask; 17 lanes). MobileNet-V2's 960-channel 7x7 depthwise conv
sampled such a schedule (its 9 padded columns vectorized, its channel loop unrolled by LLVM):
wrong results, or NaN read from beyond the input. Codegen now loads those widths as the next
power of two.
"""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

import probsched as ps
from probsched.codegen import compile_program, lower_program
from probsched.ir.compute import WorkloadBuilder, axes
from probsched.ir.ops import all_of, reduce_sum, select
from probsched.ir.reference import check_outputs, random_inputs, reference
from probsched.target import host


def padded_copies(c: int, h: int, w: int, conv: bool = False):
    """``P``: ``x[c, h, w]`` zero-padded by one on both sides of ``h`` and ``w``; with
    ``conv``, the 3x3 depthwise conv ``Y`` reading it (as ONNX's NCHW Conv)."""
    wb = WorkloadBuilder("padded_copies")
    x = wb.input("x", (c, h, w))
    vc, vh, vw, r0, r1 = axes("c h w r0 r1")
    inside = all_of(vh >= 1, vh < h + 1, vw >= 1, vw < w + 1)
    P = wb.compute("P", (vc, vh, vw), select(inside, x[vc, vh - 1, vw - 1], 0.0),
                   shape=(c, h + 2, w + 2))
    if conv:
        k = wb.input("k", (c, 3, 3))
        wb.compute("Y", (vc, vh, vw), reduce_sum(P[vc, vh + r0, vw + r1] * k[vc, r0, r1]),
                   shape=(c, h, w))
    return wb.build()


def assert_matches(wl, sch: ps.Schedule) -> None:
    kernel = compile_program(sch.program)
    inputs = random_inputs(wl, seed=0)
    ok, err, msg = check_outputs(kernel(*inputs), reference(wl, *inputs))
    assert ok, f"{msg} (max abs err {err})\n{sch.program}"


def test_depthwise_conv_with_padding_computed_per_row_matches_reference():
    """The minimized MobileNet-V2 task: 6 channels of 7x7, the padding computed at the conv's
    row loop (6 x 3 x 9 per row), its channel loop unrolled by LLVM (the hint), its rows
    unrolled, its 9 columns vectorized."""
    wl = padded_copies(6, 7, 7, conv=True)
    sch = ps.Schedule(wl, seed=0)
    c, h, w, r0, r1 = sch.get_loops(sch.get_block("Y"))
    sch.reorder(h, c, r0, r1, w)
    pad = sch.get_block("P")
    sch.compute_at(pad, h)
    *_, pc, ph, pw = sch.get_loops(pad)
    sch.vectorize(pw)
    sch.unroll(ph)
    sch.annotate(pc, "unroll_max_step", 2)
    assert_matches(wl, sch)


def schedule_copies(wl, unroll: bool) -> ps.Schedule:
    """Rows outermost; the channels (unrolled: copies sharing each row's mask) inside, the
    padded columns vectorized."""
    sch = ps.Schedule(wl, seed=0)
    c, h, w = sch.get_loops(sch.get_block("P"))
    sch.reorder(h, c, w)
    if unroll:
        sch.unroll(c)
    sch.vectorize(w)
    return sch


@given(st.integers(2, 3), st.integers(1, 3), st.integers(1, 32), st.booleans())
def test_padding_vectorized_over_any_width_matches_reference(c, h, w, unroll):
    wl = padded_copies(c, h, w)
    assert_matches(wl, schedule_copies(wl, unroll))


def test_masked_loads_are_a_power_of_two_wide():
    wl = padded_copies(2, 2, 7)  # 9 padded columns
    ir = lower_program(schedule_copies(wl, True).program, host()).ir
    widths = {int(n) for n in re.findall(r"@llvm\.masked\.load\.v(\d+)f32", ir)}
    assert widths == {16}


@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 9), st.booleans())
def test_padding_read_per_element_selects_a_pointer(c, h, w, vector_channels):
    """Padding inlined into a conv and read one element at a time (a scalar condition; with
    ``vector_channels``, each element broadcast across a vector of output channels, as an
    NHWC conv's register tile does) loads through a selected pointer, its own clamped
    address or a constant zero, and matches the reference."""
    wb = WorkloadBuilder("padded_conv")
    x = wb.input("x", (h, w, c))
    k = wb.input("k", (3, 3, c, 16))
    vh, vw, vc, vo, r0, r1, rc = axes("h w c o r0 r1 rc")
    inside = all_of(vh >= 1, vh < h + 1, vw >= 1, vw < w + 1)
    P = wb.compute("P", (vh, vw, vc), select(inside, x[vh - 1, vw - 1, vc], 0.0),
                   shape=(h + 2, w + 2, c))
    wb.compute("Y", (vh, vw, vo), reduce_sum(P[vh + r0, vw + r1, rc] * k[r0, r1, rc, vo]),
               shape=(h, w, 16))
    wl = wb.build()
    sch = ps.Schedule(wl, seed=0)
    sch.compute_inline(sch.get_block("P"))
    if vector_channels:
        y = sch.get_block("Y")
        lh, lw, lo, l0, l1, lc = sch.get_loops(y)
        sch.reorder(lh, lw, l0, l1, lc, lo)
        sch.vectorize(lo)
    ir = lower_program(sch.program, host()).ir
    assert re.search(r"select i1 %\S+, ptr %\S+, ptr @probsched\.pad\.float32", ir), ir
    assert "llvm.masked.load" not in ir
    assert_matches(wl, sch)
