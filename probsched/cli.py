"""The ``probsched`` command.

Exit codes: 0 ok, 1 user error (a message, no traceback), 2 internal error.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback

from .errors import ProbschedError


def _bench(args: argparse.Namespace) -> int:
    from .bench import markdown, run_suite

    def progress(msg: str) -> None:
        print(f"[bench] {msg}", file=sys.stderr, flush=True)

    result = run_suite(args.suite, trials=args.trials, progress=progress)
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
    from .lang import load

    try:
        mod = load(args.file)
        mod.check()
    except ProbschedError as exc:
        return _lang_error(args.file, exc)
    print(f"{args.file}: ok ({len(mod.workload_names)} workloads, {len(mod.spaces)} spaces, "
          f"{len(mod.rules)} rules)")
    return 0


def _run(args: argparse.Namespace) -> int:
    from .lang.run import run_file

    try:
        result = run_file(args.file, workload=args.workload, space=args.space, seed=args.seed,
                          trace=args.trace, params=args.param)
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
    bench.set_defaults(run=_bench)

    check = sub.add_parser("check", help="check a .sched file: syntax, names, workloads, and "
                           "one dry run of each bound space")
    check.add_argument("file", help="the .sched file")
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
    run.set_defaults(run=_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except ProbschedError as exc:
        print(f"probsched: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("probsched: interrupted", file=sys.stderr)
        return 130
    except Exception:
        print("probsched: internal error (please report it with this trace):", file=sys.stderr)
        traceback.print_exc()
        return 2


if __name__ == "__main__":
    sys.exit(main())
