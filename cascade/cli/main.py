"""``cascade``: command-line entry point.

``cascade bench`` measures the throughput of Cascade's tail-call loops, hot (cached plans) and slow
(``Engine(hot_plans=False)``), against hand-written asyncio baselines doing the same work, and
prints the headline table. ``cascade dry-run module:attr`` prints the plan of a lazy result.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import platform
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

__all__ = ["main"]


class _Progress:
    """A live status line on a terminal (rewritten in place); plain lines when not a terminal."""

    def __init__(self, stream: TextIO, enabled: bool) -> None:
        self.stream = stream
        self.enabled = enabled
        self.live = enabled and stream.isatty()
        self.start = time.perf_counter()
        self.width = 0
        self.last_head = ""

    def __call__(self, message: str) -> None:
        if not self.enabled:
            return
        line = f"{time.perf_counter() - self.start:6.1f}s {message}"
        if self.live:
            pad = max(0, self.width - len(line))
            self.stream.write("\r" + line + " " * pad)
            self.width = len(line)
        else:
            head = message.split(":", 1)[0]  # one line per workload when the output is a log
            if head == self.last_head:
                return
            self.last_head = head
            self.stream.write(line + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.enabled and self.live and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()


def _rate(x: float) -> str:
    if math.isnan(x):
        return "-"
    if x >= 1e6:
        return f"{x / 1e6:.2f}M"
    if x >= 1e4:
        return f"{x / 1e3:.1f}k"
    return f"{x:,.0f}"


def _ratio(x: float) -> str:
    if math.isnan(x):
        return "-"
    return f"{x:.3f}x" if x < 1 else f"{x:.1f}x"


def format_table(results: Sequence[Any]) -> str:
    """The headline table: iterations/s hot, slow and baseline, and their ratios, one row a workload."""
    header = ["workload", "nodes", "hot it/s", "slow it/s", "baseline it/s", "hot/base", "slow/base", "hot/slow"]
    rows = [header]
    for r in results:
        ratios = r.ratios
        rows.append([
            r.title, str(r.nodes), _rate(r.rate("hot")), _rate(r.rate("slow")), _rate(r.rate("baseline")),
            _ratio(ratios["hot/baseline"]), _ratio(ratios["slow/baseline"]), _ratio(ratios["hot/slow"]),
        ])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for j, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=False)]
        lines.append("  ".join(cells).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cmd_bench(args: argparse.Namespace) -> int:
    from ..bench import get_workloads, run_suite

    try:
        workloads = get_workloads(args.only, quick=args.quick)
    except KeyError as exc:
        print(f"cascade bench: {exc.args[0]}", file=sys.stderr)
        return 2
    if args.list:
        for w in workloads:
            print(f"{w.key:10} {w.title}")
        return 0
    progress = _Progress(sys.stderr, not args.no_progress)
    started = time.perf_counter()
    try:
        results = run_suite(workloads, quick=args.quick, repeat=args.repeat, progress=progress)
    finally:
        progress.done()
    elapsed = time.perf_counter() - started
    report = {
        "quick": args.quick,
        "repeat": args.repeat if args.repeat is not None else (1 if args.quick else 3),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "seconds": round(elapsed, 2),
        "workloads": [r.as_dict() for r in results],
    }
    if args.json == "-":
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=2)
            fh.write("\n")
    mode = "quick" if args.quick else "full"
    print(f"Cascade throughput ({mode}, median of {report['repeat']}; iterations per second; "
          f"Python {report['python']})")
    print(format_table(results))
    print(f"({elapsed:.1f}s; hot = Engine(), slow = Engine(hot_plans=False), "
          "baseline = hand-written asyncio)")
    return 0


def _cmd_dry_run(args: argparse.Namespace) -> int:
    import cascade as cs

    module_name, _, attr = args.target.partition(":")
    if not module_name or not attr:
        print("cascade dry-run: expected module:attr", file=sys.stderr)
        return 2
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if callable(obj) and not isinstance(obj, (cs.LazyResult, cs.MappedLazyResult)):
        obj = obj()
    out = cs.dry_run(obj)
    if out is not None:
        print(out)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cascade", description="Cascade workflow engine tools.")
    sub = parser.add_subparsers(dest="command", required=True)
    bench = sub.add_parser(
        "bench", help="measure loop throughput (hot, slow, raw asyncio)",
        description="Measure iterations/s of Cascade tail-call loops with hot plans (Engine()), without "
                    "(Engine(hot_plans=False)) and of hand-written asyncio baselines doing the same work.",
    )
    bench.add_argument("--quick", action="store_true",
                       help="fewer iterations, one repeat, no 10,000-agent case (a few seconds)")
    bench.add_argument("--repeat", type=int, default=None, metavar="R",
                       help="timed runs per mode (default 3, quick 1); the table shows the median")
    bench.add_argument("--only", action="append", metavar="KEY",
                       help="measure only this workload (repeatable; see --list)")
    bench.add_argument("--list", action="store_true", help="list the workloads and exit")
    bench.add_argument("--json", nargs="?", const="-", default=None, metavar="PATH",
                       help="write the results as JSON to PATH, or to stdout instead of the table")
    bench.add_argument("--no-progress", action="store_true", help="no progress display on stderr")
    bench.set_defaults(func=_cmd_bench)
    dry = sub.add_parser("dry-run", help="print the plan of module:attr (a lazy result or a function making one)")
    dry.add_argument("target", help="module:attr")
    dry.set_defaults(func=_cmd_dry_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    if getattr(args, "repeat", None) is not None and args.repeat < 1:
        print("cascade bench: --repeat must be >= 1", file=sys.stderr)
        return 2
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
