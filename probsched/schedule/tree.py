"""The loop-tree helpers, which live in :mod:`probsched.ir.tree` (codegen's lowering passes
rewrite the tree too, and codegen may not import schedule).

Kept so that ``from . import tree`` in the schedule modules (``state.py``, ``queries.py``,
``methods/``) works while the schedule package is being restructured; new code imports
:mod:`probsched.ir.tree`.
"""

from ..ir.tree import (
    Path,
    add_predicate,
    ancestors,
    blocks_under,
    conjuncts,
    find_block,
    find_loop,
    fresh_name,
    insert_at,
    iter_paths,
    loop_vars,
    map_blocks,
    node_at,
    replace_at,
    substitute_loops,
    with_body,
)

__all__ = [
    "Path",
    "add_predicate",
    "ancestors",
    "blocks_under",
    "conjuncts",
    "find_block",
    "find_loop",
    "fresh_name",
    "insert_at",
    "iter_paths",
    "loop_vars",
    "map_blocks",
    "node_at",
    "replace_at",
    "substitute_loops",
    "with_body",
]
