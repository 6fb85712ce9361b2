"""The ``probsched`` command.

Exit codes: 0 ok, 1 user error (a message, no traceback), 2 internal error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import threading
import traceback

from ..errors import ProbschedError


def _bench(args: argparse.Namespace) -> int:
    from .bench import markdown, run_suite

    def progress(msg: str) -> None:
        print(f"[bench] {msg}", file=sys.stderr, flush=True)

    options = {name: value for name in ("source", "dest", "data")
               if (value := getattr(args, name)) is not None}
    result = run_suite(args.suite, trials=args.trials, progress=progress, **options)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(markdown(result))
    return 0


def _lang_error(path: str, exc: ProbschedError) -> int:
    """Print a .sched error as ``FILE:LINE:COL: error: message`` (and context); exit 1."""
    text = str(exc) if exc.location is not None else f"{path}: error: {exc}"
    print(text, file=sys.stderr)
    return 1


def _check(args: argparse.Namespace) -> int:
    from ..lang import load

    try:
        mod = load(args.file)
        mod.check(target=args.target)
    except ProbschedError as exc:
        return _lang_error(args.file, exc)
    print(f"{args.file}: ok ({len(mod.workload_names)} workloads, {len(mod.spaces)} spaces, "
          f"{len(mod.rules)} rules)")
    return 0


def _run(args: argparse.Namespace) -> int:
    from .run import run_file

    try:
        result = run_file(args.file, workload=args.workload, space=args.space, seed=args.seed,
                          trace=args.trace, params=args.param, target=args.target)
    except ProbschedError as exc:
        return _lang_error(args.file, exc)
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        print(result.describe())
    if not result.correct:
        print(f"probsched: error: the schedule is not correct: {result.error}", file=sys.stderr)
        return 1
    return 0


def _tune(args: argparse.Namespace) -> int:
    from ..search.events import JsonLines
    from .run import parse_params
    from .tuning import tune

    try:
        mod = load_module(args.file)
        wl = mod.workload(args.workload, **parse_params(args.param))
        sp = mod.space(args.space) if args.space is not None else mod.space_for(wl.name)
    except ProbschedError as exc:
        return _lang_error(args.file, exc)
    if args.trials < 1:
        raise ProbschedError(f"--trials must be >= 1, got {args.trials}")
    events = [JsonLines(sys.stdout)] if args.json_lines else []
    with _log_to_stderr(args.verbose, bar=not args.quiet):
        result = tune(wl, sp, trials=args.trials, db=args.db, seed=args.seed,
                      progress=not args.quiet, target=args.target, callbacks=events,
                      cluster=args.cluster, strategy=args.strategy,
                      pretrained=args.pretrained, cost_model=args.cost_model,
                      transfer=args.transfer)
    if args.json:
        ref = result.reference_latency_s
        print(json.dumps({
            "workload": result.workload,
            "trials": result.trials,
            "best_latency_ms": result.best_latency_s * 1e3 if result.best_gflops else None,
            "best_gflops": result.best_gflops,
            "reference_latency_ms": None if ref is None else ref * 1e3,
            "reference_kernel": None if result.reference is None else result.reference.kernel,
            "peak_gflops": None if result.peak is None else result.peak.all_cores_gflops,
            "wall_s": result.wall_s,
            "best_trace": None if result.best_trace is None
            else json.loads(result.best_trace.to_json()),
        }))
    elif args.quiet and not args.json_lines:
        print(result.summary())
    return 0


def _report(args: argparse.Namespace) -> int:
    from .report import write_report

    for path in write_report(args.db, args.output, png_dir=args.png):
        print(path)
    return 0


def _show(args: argparse.Namespace) -> int:
    from ..codegen import compile_program
    from ..lang.trace_printer import format_trace_space
    from ..search.database import Database
    from ..target import resolve
    from .run import parse_params

    try:
        mod = load_module(args.file)
        wl = mod.workload(args.workload, **parse_params(args.param))
    except ProbschedError as exc:
        return _lang_error(args.file, exc)
    target = resolve(args.target)
    with Database(args.db, readonly=True) as db:  # refuses a missing or empty file
        best = db.best(wl, target=target.key)
    if not best:
        raise ProbschedError(f"{args.db} has no correct record of workload {wl.name} with "
                             f"these parameters for target {target.key} (pass the same "
                             "--param and --target values as to tune)")
    rec = best[0]
    if args.trace:
        print(format_trace_space(rec.trace, wl.name, "best"), end="")
        return 0
    program = rec.trace.replay(wl, target=target).program
    if args.llvm or args.asm:
        kernel = compile_program(program, target=target, keep_text=True)
        print(kernel.ir if args.llvm else kernel.asm)
    elif args.program:
        print(program)
    else:
        print(f"best of {wl.name}: {rec.latency_s * 1e3:.3f} ms, "
              f"{wl.flops / rec.latency_s / 1e9:.2f} GFLOP/s (record {rec.id}, "
              f"{rec.target})")
        print(format_trace_space(rec.trace, wl.name, "best"), end="")
    return 0


@contextlib.contextmanager
def _log_to_stderr(verbose: int, *, bar: bool):
    """The tuner's log on stderr while tuning: warnings, the round table and the run's
    start and end with ``verbose`` (INFO), each failure and re-timing too with ``-vv``
    (DEBUG); printed above the progress bar (``bar``) rather than through it."""
    logger = logging.getLogger("probsched")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    level = logging.WARNING if not verbose else logging.INFO if verbose == 1 else logging.DEBUG
    old_level = logger.level
    logger.setLevel(level)
    logger.addHandler(handler)
    try:
        if bar:
            from tqdm.contrib.logging import logging_redirect_tqdm

            with logging_redirect_tqdm(loggers=[logger]):
                yield
        else:
            yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def load_module(path: str):
    from ..lang import load

    return load(path)


def _target_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", default=None, metavar="NAME",
                        help="what to build for: cpu or host (the default), or an x86-64 "
                        "level that runs here (x86-64-v2, x86-64-v3, x86-64-v4)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="probsched",
        description="Find fast code for tensor programs: schedules as probabilistic programs.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    bench = sub.add_parser("bench", help="run a benchmark suite (ratios measured side by side)")
    bench.add_argument("--suite", default="naive", help="suite name (default: naive)")
    bench.add_argument("--trials", type=int, default=None, help="tuning trials per operator")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument("--source", default=None, metavar="TARGET", help="suite transfer: "
                       "the target a model is fitted on (default host)")
    bench.add_argument("--dest", default=None, metavar="TARGET", help="suite transfer: the "
                       "target it adapts to (default x86-64-v2)")
    bench.add_argument("--data", default=None, metavar="DIR", help="suite transfer: where "
                       "the targets' datasets are measured, resumed (default transfer-data)")
    bench.set_defaults(run=_bench)

    check = sub.add_parser("check", help="check a .sched file: syntax, names, workloads, and "
                           "one dry run of each bound space")
    check.add_argument("file", help="the .sched file")
    check.add_argument("--target", default=None, metavar="NAME",
                       help="the target the spaces are run for (default the host; cuda for "
                       "a space of GPU kernels)")
    check.set_defaults(run=_check)

    run = sub.add_parser("run", help="sample (or replay) one schedule of a .sched file, "
                         "compile it, check it against the reference and time it")
    run.add_argument("file", help="the .sched file")
    run.add_argument("--workload", help="workload name (needed when the file has several)")
    run.add_argument("--space", help="space name (needed when several fit the workload)")
    run.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    run.add_argument("--trace", help="replay this trace JSON file instead of sampling")
    run.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                     help="override a workload parameter (repeatable), e.g. --param n=64")
    run.add_argument("--json", action="store_true", help="print one JSON object")
    _target_option(run)
    run.set_defaults(run=_run)

    tune = sub.add_parser("tune", help="search a space of a .sched file for the fastest "
                          "schedule; every measurement goes to the database")
    tune.add_argument("file", help="the .sched file")
    tune.add_argument("--workload", help="workload name (needed when the file has several)")
    tune.add_argument("--space", help="space name (needed when several fit the workload)")
    tune.add_argument("--trials", type=int, required=True, help="new trials to measure")
    tune.add_argument("--db", default="runs.db", help="tuning database (default runs.db); "
                      "an existing one is resumed")
    tune.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    tune.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                      help="override a workload parameter (repeatable), e.g. --param n=64")
    out = tune.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print one JSON object")
    out.add_argument("--json-lines", action="store_true", help="stream events as JSON lines "
                     "on stdout: start, each measurement, each round, done")
    tune.add_argument("--strategy", choices=("evolutionary", "sa"), default="evolutionary",
                      help="the search: evolutionary (default) or sa (AutoTVM's simulated "
                      "annealing)")
    tune.add_argument("--quiet", action="store_true", help="no progress bar")
    tune.add_argument("-v", "--verbose", action="count", default=0, help="log each round "
                      "as a row of a table on stderr (round, strategy, trials, best GFLOP/s, "
                      "failures, seconds of search, build, run, model fit, other); -vv also "
                      "each failure and re-timing")
    tune.add_argument("--cluster", metavar="tcp://HOST:PORT", default=None,
                      help="build and measure on this Dask scheduler's workers (the "
                      "distributed extra; measurements on workers with --resources machine=1)")
    tune.add_argument("--pretrained", nargs="?", const=True, default=None, metavar="PATH",
                      help="the cost model also fits on a pretrained set from the first "
                      "round: the one shipped with probsched, or PATH (a set that "
                      "`probsched dataset` wrote: NAME.npz beside NAME.json)")
    tune.add_argument("--cost-model", choices=("gbdt", "random", "gnn", "tlp"), default="gbdt",
                      help="what ranks candidates before they are measured: gbdt (default), "
                      "random, gnn (message passing over the loop tree) or tlp (a transformer "
                      "over the trace); gnn and tlp need PyTorch, the 'dl' extra")
    tune.add_argument("--transfer", action="store_true",
                      help="with --pretrained: the set is another target's; its model is "
                      "corrected by this target's records instead of refitted with them")
    _target_option(tune)
    tune.set_defaults(run=_tune)

    show = sub.add_parser("show", help="the best record of a workload in a tuning database")
    show.add_argument("file", help="the .sched file")
    show.add_argument("--db", required=True, help="tuning database")
    show.add_argument("--workload", help="workload name (needed when the file has several)")
    show.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                      help="workload parameters, as given to tune")
    what = show.add_mutually_exclusive_group()
    what.add_argument("--program", action="store_true", help="the scheduled program")
    what.add_argument("--trace", action="store_true", help="the trace, as .sched text")
    what.add_argument("--llvm", action="store_true", help="the optimized LLVM IR")
    what.add_argument("--asm", action="store_true", help="the assembly")
    _target_option(show)
    show.set_defaults(run=_show)

    from .export import add_command as add_export

    add_export(sub)
    report = sub.add_parser("report", help="one self-contained HTML page of a tuning "
                            "database: curves, spread, failures, best traces, target, versions")
    report.add_argument("--db", required=True, help="tuning database")
    report.add_argument("-o", "--output", default="report.html",
                        help="the HTML file to write (default report.html)")
    report.add_argument("--png", metavar="DIR", default=None,
                        help="also write each tuning curve as a PNG into DIR")
    report.set_defaults(run=_report)
    from .dataset_cli import register as add_dataset
    from .model_cli import register

    register(sub)  # tune-model, run-model
    add_dataset(sub)
    return parser


class Terminated(BaseException):
    """SIGTERM arrived: stop like Ctrl-C (workers stopped, what was measured kept)."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.run(args)
    except ProbschedError as exc:
        print(f"probsched: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("probsched: interrupted; every record measured so far is kept", file=sys.stderr)
        return 130
    except Terminated:
        print("probsched: terminated; every record measured so far is kept", file=sys.stderr)
        return 143
    except Exception:
        print("probsched: internal error (please report it with this trace):", file=sys.stderr)
        traceback.print_exc()
        return 2


if __name__ == "__main__":
    sys.exit(main())
