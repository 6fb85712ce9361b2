"""The operator suite (DESIGN.md's table), one function per operator, parameterised by shape.

Each returns a :class:`~probsched.ir.compute.Workload`; ``wl.flops`` is its FLOP count.
``SUITE`` maps a name to ``(builder, DESIGN.md shape kwargs, small test shape kwargs)``.
:mod:`.suite` holds the suite's operators, :mod:`.more_ops` more of them (not benchmarked),
:mod:`.parts` what they share (padding, the conv2d stage).
"""

from .more_ops import batch_matmul, conv3d, dilated_conv2d, grouped_conv2d, transposed_conv2d
from .suite import SUITE, c1d, c2d, cbr, dep, gmm, nrm, sfm

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
