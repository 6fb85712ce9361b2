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
