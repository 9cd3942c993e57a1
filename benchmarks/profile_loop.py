"""Profile one ``cascade bench`` workload with pyinstrument and print the call tree.

    python benchmarks/profile_loop.py [WORKLOAD] [--slow] [--iterations N] [--html PATH]

For a sampling view of a live process instead: ``py-spy record -o profile.svg -- python
benchmarks/profile_loop.py chain11``.
"""

from __future__ import annotations

import argparse
import asyncio

import cascade as cs
from cascade.bench import get_workloads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workload", nargs="?", default="chain11")
    parser.add_argument("--slow", action="store_true", help="Engine(hot_plans=False)")
    parser.add_argument("--iterations", type=int, default=None)
    parser.add_argument("--html", metavar="PATH", help="write pyinstrument's HTML report here")
    args = parser.parse_args()
    from pyinstrument import Profiler

    (workload,) = get_workloads([args.workload])
    n = args.iterations or workload.iterations(quick=False, slow=args.slow)
    engine = cs.Engine(hot_plans=not args.slow)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(workload.cascade(engine, max(1, n // 10)))  # warm-up
    profiler = Profiler(async_mode="enabled")
    with profiler:
        loop.run_until_complete(workload.cascade(engine, n))
    loop.close()
    if args.html:
        with open(args.html, "w", encoding="utf-8") as fh:
            fh.write(profiler.output_html())
    print(profiler.output_text(unicode=True, color=False))


if __name__ == "__main__":
    main()
