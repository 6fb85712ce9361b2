"""The whole-model commands of ``probsched``: ``tune-model`` and ``run-model`` (registered on
the main parser by :func:`register`; errors are probsched exceptions, which the main
command prints without a traceback)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..errors import ModelError, ProbschedError


def _load(path: str, layout: str):
    from ..network import load_onnx

    if not os.path.exists(path):
        raise ModelError(f"{path}: no such model file")
    return load_onnx(path, layout=layout)


def _tune_model(args: argparse.Namespace) -> int:
    if args.trials < 1:
        raise ProbschedError(f"--trials must be >= 1, got {args.trials}")
    net = _load(args.model, args.layout)
    print(f"{args.model}: {len(net.tasks)} tasks ({net.layout}), {len(net.steps)} kernel "
          f"calls; tuning {args.trials} trials ({args.strategy}) into {args.db}",
          file=sys.stderr)
    result = net.tune(trials=args.trials, db=args.db, strategy=args.strategy, seed=args.seed,
                      progress=not args.quiet)
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        print(result.table())
        print(f"{result.trials} new trials in {result.wall_s:.1f} s")
    return 0


def _run_model(args: argparse.Namespace) -> int:
    from .run_model import describe, run_model

    result = run_model(args.model, args.db, seed=args.seed, repeats=args.repeats,
                       layout=args.layout, predicted=args.predict,
                       graph_model=args.graph_model, profile=args.profile)
    print(json.dumps(result) if args.json else describe(result))
    if not result["correct"]:
        print(f"probsched: error: the compiled network's outputs differ from onnxruntime's "
              f"(relative error {result['max_rel_err']:.3g})", file=sys.stderr)
        return 1
    return 0


def register(sub) -> None:
    """Add ``tune-model`` and ``run-model`` to the subcommands ``sub``."""
    from ..network.layout import LAYOUTS
    from ..network.network import DEFAULT_LAYOUT
    from ..network.scheduler import STRATEGIES

    layout_help = (f"the layout inside the network (default {DEFAULT_LAYOUT}: convolutions "
                   "channels-last, NCHW at the edges; nchw: ONNX's throughout); a database "
                   "tuned in one layout holds other workloads than the other's")

    tune = sub.add_parser("tune-model", help="tune an ONNX model's tasks (a task scheduler "
                          "picks the task of each round); every record goes to the database")
    tune.add_argument("model", help="the .onnx file")
    tune.add_argument("--trials", type=int, required=True, help="new trials in all")
    tune.add_argument("--db", default="runs.db", help="tuning database (default runs.db); "
                      "an existing one is resumed")
    tune.add_argument("--strategy", choices=STRATEGIES, default="gradient",
                      help="task scheduler (default gradient)")
    tune.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    tune.add_argument("--layout", choices=LAYOUTS, default=DEFAULT_LAYOUT, help=layout_help)
    tune.add_argument("--json", action="store_true", help="print one JSON object at the end")
    tune.add_argument("--quiet", action="store_true", help="no task table per round")
    tune.set_defaults(run=_tune_model)

    run = sub.add_parser("run-model", help="time an ONNX model compiled from the tuning "
                         "database against onnxruntime, checking the outputs agree")
    run.add_argument("model", help="the .onnx file")
    run.add_argument("--db", default=None, help="tuning database (default: none, the plain "
                     "lowering of every task)")
    run.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    run.add_argument("--layout", choices=LAYOUTS, default=DEFAULT_LAYOUT, help=layout_help)
    run.add_argument("--repeats", type=int, default=50, help="timed calls (default 50)")
    run.add_argument("--predict", action="store_true", help="first predict the latency from "
                     "the database's records (a kernel latency model; the sum over tasks) "
                     "and report its error against the time measured")
    run.add_argument("--graph-model", default=None, metavar="FILE", help="with --predict, "
                     "also the graph model of FILE (JSON, as `probsched bench --suite "
                     "latency --json` writes under graph_model)")
    run.add_argument("--profile", action="store_true", help="then time each kernel call in "
                     "graph order and repeated alone, and print a per-task table beside the "
                     "database's bests")
    run.add_argument("--json", action="store_true", help="print one JSON object")
    run.set_defaults(run=_run_model)
