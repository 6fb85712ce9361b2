"""The Schedule's primitive methods by family: each checks its arguments, applies a pure
function of ``primitives/`` and records an instruction (declared in the registry)."""
