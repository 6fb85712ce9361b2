"""Moved to probsched.ir.analysis (codegen needs it too); this name stays until the
primitive modules being written import the new one."""

from ..ir.analysis import (  # noqa: F401
    Interval,
    accesses,
    affine,
    buffer_written,
    buffers_read,
    consumers,
    from_affine,
    inner_loops,
    producers,
    region,
)
