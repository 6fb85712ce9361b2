"""The operator suite (DESIGN.md's table), one function per operator, parameterised by shape.

Each returns a :class:`~probsched.ir.compute.Workload`; ``wl.flops`` is its FLOP count.
``SUITE`` maps a name to ``(builder, DESIGN.md shape kwargs, small test shape kwargs)``.
"""

from .suite import (
    SUITE,
    batch_matmul,
    c1d,
    c2d,
    cbr,
    conv3d,
    dep,
    dilated_conv2d,
    gmm,
    grouped_conv2d,
    nrm,
    sfm,
    transposed_conv2d,
)

__all__ = [
    "SUITE",
    "batch_matmul",
    "c1d",
    "c2d",
    "cbr",
    "conv3d",
    "dep",
    "dilated_conv2d",
    "gmm",
    "grouped_conv2d",
    "nrm",
    "sfm",
    "transposed_conv2d",
]
