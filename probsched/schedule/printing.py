"""Traces as text: one instruction a line, ``outputs = kind(inputs, attrs, decision=...)``,
the form `.sched` spaces use (decisions pinned)."""

from __future__ import annotations

import json
from typing import Any

from .instructions import REGISTRY
from .trace import RV, Trace


def format_value(x: Any) -> str:
    if isinstance(x, RV):
        return str(x)
    if isinstance(x, str):
        return json.dumps(x)
    if isinstance(x, bool):
        return "true" if x else "false"
    if x is None:
        return "None"
    if isinstance(x, list | tuple):
        return "[" + ", ".join(format_value(v) for v in x) + "]"
    return repr(x)


def format_trace(trace: Trace) -> str:
    lines = []
    for index, inst in enumerate(trace.instructions):
        args = [format_value(x) for x in inst.inputs]
        args += [f"{k}={format_value(v)}" for k, v in inst.attrs]
        kind = REGISTRY.get(inst.kind)
        if kind is not None and kind.sampling and trace.decision(index) is not None:
            args.append(f"decision={format_value(trace.decision(index))}")
        call = f"{inst.kind}({', '.join(args)})"
        if len(inst.outputs) == 1 and kind is not None and kind.returns_list:
            call = f"{inst.outputs[0]} = {call}[0]"  # a list of one
        elif inst.outputs:
            call = ", ".join(str(o) for o in inst.outputs) + " = " + call
        lines.append(call)
    return "\n".join(lines)
