"""A load at affine indices as a strided view: a factor of a sum of products read without
gathering it, so a convolution's ``P[n, h + rh, w + rw, c]`` costs no copy of 9x its input.

Used by the einsum fast paths of the reference (:mod:`.reference`) and of the error bounds
(:mod:`.rounding`) when gathering a factor over its own axes would be too large.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from . import analysis
from . import expr as E

MAX_VIEW_ELEMENTS = 1 << 26  # einsum may copy the view once: 512 MB of float64


def viewable(load: E.Expr, extents: Mapping[str, int], own: Sequence[str],
             shape: Sequence[int]) -> bool:
    """Whether ``load`` (of a tensor of ``shape``) over the axes ``own`` is a strided view:
    every index affine in them, with coefficients and constant >= 0, within bounds."""
    if not isinstance(load, E.Load) or len(load.indices) != len(shape):
        return False
    if int(np.prod([extents[a] for a in own])) > MAX_VIEW_ELEMENTS:
        return False
    for ix, n in zip(load.indices, shape, strict=True):
        aff = analysis.affine(ix)
        if aff is None:
            return False
        coeffs, const = aff
        if set(coeffs) - set(own) or const < 0 or any(c < 0 for c in coeffs.values()):
            return False
        if const + sum(c * (extents[a] - 1) for a, c in coeffs.items()) >= n:
            return False
    return True


def view(arr: np.ndarray, load: E.Load, extents: Mapping[str, int],
         own: Sequence[str]) -> np.ndarray:
    """``arr[load.indices]`` over the axes ``own`` (each from 0), as a read-only view of shape
    ``[extents[a] for a in own]``; ``viewable`` must hold."""
    strides = dict.fromkeys(own, 0)
    start = []
    for d, ix in enumerate(load.indices):
        aff = analysis.affine(ix)
        assert aff is not None
        coeffs, const = aff
        start.append(slice(const, None))
        for a, c in coeffs.items():
            strides[a] += c * arr.strides[d]
    base = arr[tuple(start)]
    return np.lib.stride_tricks.as_strided(
        base, shape=tuple(extents[a] for a in own), strides=tuple(strides[a] for a in own),
        writeable=False)
