"""``probsched dataset`` (the command) and ``ps.dataset``: measure the suite into a database
(:mod:`.dataset`), then export its records as a pretrained set (:mod:`.dataset_export`)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import ProbschedError
from ..target import CpuTarget
from .dataset import SHAPES, measure
from .dataset_export import export


def dataset(db: str | os.PathLike[str], output: str | os.PathLike[str] | None = "dataset",
            *, ops: Sequence[str] | None = None, shapes: Sequence[int] | None = None,
            per_shape: int = 64, searched_share: float = 0.5, seed: int = 0,
            target: CpuTarget | str | None = None, measure_records: bool = True,
            command: str | None = None, progress: Callable[[str], None] | None = None
            ) -> dict[str, Any]:
    """``ps.dataset``: :func:`measure` into ``db`` (unless ``measure_records`` is False),
    then export every suite workload's records in ``db`` as a pretrained set at ``output``
    (``.npz`` and ``.json``; None: no export). What was measured and written."""
    out: dict[str, Any] = {"db": str(db)}
    if measure_records:
        out["measured"] = measure(db, ops=ops, shapes=shapes, per_shape=per_shape,
                                  searched_share=searched_share, seed=seed, target=target,
                                  progress=progress)
    if output is not None:
        npz, sidecar, counts = export(db, output, target=target, command=command,
                                      progress=progress)
        out.update(npz=str(npz), sidecar=str(sidecar), counts=counts)
    return out


def _command(args: Any) -> int:
    import json

    def ints(text: str | None) -> list[int] | None:
        if text is None:
            return None
        try:
            return [int(x) for x in text.split(",") if x.strip()]
        except ValueError:
            raise ProbschedError(f"--shapes: expected indices such as 0,2,3; got {text!r}"
                                 ) from None

    ops = None if args.ops is None else [o.strip() for o in args.ops.split(",") if o.strip()]
    result = dataset(args.db, None if args.no_export else args.output, ops=ops,
                     shapes=ints(args.shapes), per_shape=args.per_shape,
                     searched_share=args.searched_share, seed=args.seed, target=args.target,
                     measure_records=not args.export_only,
                     command="probsched dataset " + " ".join(sys.argv[2:]))
    if args.json:
        print(json.dumps(result))
    elif "npz" in result:
        c = result["counts"]
        print(f"{result['npz']} (+ {result['sidecar']}): {c['rows']} rows of {c['workloads']} "
              f"workloads ({c['random']} random, {c['searched']} searched, {c['failed']} "
              "failed)")
    return 0


def register(sub: Any) -> None:
    """Add ``probsched dataset`` to the main parser's subcommands."""
    p = sub.add_parser("dataset", help="measure random and searched schedules of the suite "
                       "operators at four shapes each into a database, and export features "
                       "and normalized labels as a pretrained set (NAME.npz + NAME.json)")
    p.add_argument("--db", required=True, help="the database (resumed: stored records are "
                   "kept, not measured again)")
    p.add_argument("-o", "--output", default="dataset", metavar="NAME",
                   help="the set to write: NAME.npz and NAME.json (default dataset)")
    p.add_argument("--ops", default=None, metavar="OP,OP", help="operators (default all: "
                   + ",".join(SHAPES) + ")")
    p.add_argument("--shapes", default=None, metavar="K,K",
                   help="shape indices 0-3 of each operator (default all four)")
    p.add_argument("--per-shape", type=int, default=64, metavar="N",
                   help="records per shape (default 64)")
    p.add_argument("--searched-share", type=float, default=0.5, metavar="F",
                   help="the share of them from a short tune, the rest random samples of "
                   "the generated space (default 0.5)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--export-only", action="store_true", help="measure nothing; export "
                      "the database's records of suite workloads")
    what.add_argument("--no-export", action="store_true", help="measure only")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--target", default=None, metavar="NAME",
                   help="what to build for (default the host; CPU targets only)")
    p.set_defaults(run=_command)


__all__ = ["dataset", "register"]
