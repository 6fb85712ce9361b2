"""The numpy functions of the IR's operators, dtypes and calls (for the reference and the
error bounds)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

NP_DTYPES = {
    "float32": np.float32,
    "float64": np.float64,
    "int32": np.int32,
    "int64": np.int64,
    "bool": np.bool_,
}

BINARY = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.true_divide,
    "//": np.floor_divide,
    "%": np.mod,
    "min": np.minimum,
    "max": np.maximum,
}
COMPARE = {
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
    "==": np.equal,
    "!=": np.not_equal,
}
CALLS: dict[str, Callable[..., np.ndarray]] = {  # numpy has no erf
    "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "abs": np.abs, "tanh": np.tanh,
    "erf": np.vectorize(math.erf, otypes=[np.float64])}
