"""What counts as an integer or a number where an argument is checked (schedule primitives,
the `.sched` interpreter): Python's and numpy's, never a bool.

>>> import numpy as np
>>> is_int(3), is_int(np.int64(3)), is_int(True), is_number(2.5), is_number(False)
(True, True, False, True, False)
"""

from __future__ import annotations

from typing import Any

import numpy as np


def is_int(x: Any) -> bool:
    return isinstance(x, int | np.integer) and not isinstance(x, bool)


def is_number(x: Any) -> bool:
    return isinstance(x, int | float | np.integer | np.floating) and not isinstance(x, bool)
