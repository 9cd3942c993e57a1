"""Calibrate the performance gate on this machine: how often it passes A/A and fails a seeded slowdown.

Usage: ``python tools/gate_calibrate.py [--rev REV] [--runs N] [--spins 8,4,2,1] [--counter C]
[--factor F]`` (``nox -s gate-calibrate``).

What it does, with the gate's own code (``tools/gate.py``):

1. Installs REV (default HEAD) twice, into two environments (the A/A pair), and once per seeded
   slowdown: REV with ``for _ in range(K): pass`` inserted after every tail call of the engine's loop
   (``cascade/runtime/loop.py``, after ``stats.tail_calls += 1``), for each K in ``--spins``.
2. Sizes each slowdown in time: the benchmark thread's CPU time of every gated benchmark, REV vs
   the seeded build, in interleaved timed rounds (``--timing-rounds``), so "K=8" can be read as
   "+N% on the 1-node hot loop".
3. Runs the gate's measurement and verdict ``--runs`` times: each run measures REV afresh and every
   other build, and compares each with REV. A/A should pass every time; a seeded slowdown should
   fail every time.

Prints, per build, the pass/fail counts over the runs (false-positive rate for A/A, false-negative
rate for the slowdowns), the range of the gate's ratio per benchmark, and the time of one run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import gate

ANCHOR = "stats.tail_calls += 1"
LOOP_FILE = Path("cascade/runtime/loop.py")
SIZED = "loops:TailCallLoops.time_loop:'countdown','hot'"  # the benchmark a spin weighs on most


def seed_spin(spins: int) -> Callable[[Path], None]:
    """A patch for ``Side.prepare``: spin ``spins`` empty iterations after every tail call."""

    def patch(src: Path) -> None:
        path = src / LOOP_FILE
        lines = path.read_text().splitlines(keepends=True)
        at = [i for i, line in enumerate(lines) if line.strip() == ANCHOR]
        if len(at) != 1:
            raise gate.GateError(f"expected one line {ANCHOR!r} in {LOOP_FILE}, found {len(at)}")
        indent = lines[at[0]][: len(lines[at[0]]) - len(lines[at[0]].lstrip())]
        lines.insert(at[0] + 1, f"{indent}for _ in range({spins}):  # seeded by gate_calibrate\n{indent}    pass\n")
        path.write_text("".join(lines))

    return patch


def _size_slowdowns(ref: gate.Side, seeded: list[gate.Side], bench_dir: Path, rounds: int) -> dict[str, dict[str, float]]:
    """Per seeded build and gated benchmark: the CPU-time ratio to REV (median paired ratio)."""
    sizes: dict[str, dict[str, float]] = {}
    for side in seeded:
        for s in (ref, side):
            s.reset()
            s.counter = "cpu"
        gate.measure_sides(ref, side, bench_dir, rounds, gate.DEFAULT_REPEAT, quiet=True)
        sizes[side.name] = {
            spec: statistics.median(h / b for h, b in zip(side.rounds[spec], ref.rounds[spec], strict=True))
            for spec, gated in gate.BENCHMARKS if gated and spec in ref.rounds and spec in side.rounds
        }
        print(f"calibrate: {side.name}: {_label_ratio(sizes[side.name].get(SIZED))} CPU time on "
              f"{gate._label(SIZED)}", file=sys.stderr, flush=True)
    return sizes


def _span(ratios: list[float]) -> str:
    if not ratios:
        return "n/a"
    lo, hi = min(ratios), max(ratios)
    return f"{lo:.3f}x" if f"{lo:.3f}" == f"{hi:.3f}" else f"{lo:.3f}-{hi:.3f}x"


def _label_ratio(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{(ratio - 1) * 100:+.1f}%"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rev", default="HEAD", help="the revision calibrated (default HEAD)")
    parser.add_argument("--runs", type=int, default=20, help="gate measurements per build (default 20)")
    parser.add_argument("--spins", default="8,4,2,1", help="seeded slowdowns: empty iterations per tail call")
    parser.add_argument("--counter", choices=gate.COUNTERS, default="instructions")
    parser.add_argument("--factor", type=float, help="the gate's tolerance (default: the gate's default)")
    parser.add_argument("--rounds", type=int, help="rounds per gate measurement (default: the gate's)")
    parser.add_argument("--timing-rounds", type=int, default=7,
                        help="interleaved CPU-time rounds that size each slowdown (0: skip)")
    args = parser.parse_args(argv)
    spins = [int(k) for k in args.spins.split(",") if k.strip()]
    factor = args.factor or gate.DEFAULT_FACTOR[args.counter]
    rounds = args.rounds or gate.DEFAULT_ROUNDS[args.counter]

    started = time.perf_counter()
    repo = Path(gate._run(["git", "rev-parse", "--show-toplevel"]).stdout.strip())
    root = Path(tempfile.mkdtemp(prefix="cascade-gate-calibrate-"))
    sha = gate.resolve(repo, args.rev)
    ref = gate.Side("ref", args.rev, sha, root, args.counter)
    builds = [gate.Side("A-A", args.rev, sha, root, args.counter)]
    patches: list[Callable[[Path], None] | None] = [None]
    for k in spins:
        builds.append(gate.Side(f"spin{k}", f"{args.rev}+spin{k}", sha, root, args.counter))
        patches.append(seed_spin(k))
    try:
        gate.check_counter(args.counter)
        bench_dir = gate.prepare_bench_dir(repo, root)
        for side, patch in [(ref, None), *zip(builds, patches, strict=True)]:
            print(f"calibrate: installing {side.name}", file=sys.stderr, flush=True)
            side.prepare(repo, patch)
        sizes = _size_slowdowns(ref, builds, bench_dir, args.timing_rounds) if args.timing_rounds else {}

        outcomes: dict[str, list[int]] = {b.name: [] for b in builds}
        seen: dict[str, dict[str, list[float]]] = {b.name: {} for b in builds}
        run_times = []
        for run in range(args.runs):
            t0 = time.perf_counter()
            for name, (status, ratios) in _gate_run(ref, builds, bench_dir, args.counter, rounds, factor).items():
                outcomes[name].append(status)
                for spec, ratio in ratios.items():
                    seen[name].setdefault(spec, []).append(ratio)
            run_times.append(time.perf_counter() - t0)
            line = ", ".join(f"{n}: {'FAIL' if o[-1] else 'pass'}" for n, o in outcomes.items())
            print(f"calibrate: run {run + 1}/{args.runs} ({run_times[-1]:.0f}s): {line}", file=sys.stderr, flush=True)
    except gate.GateError as exc:
        print(f"calibrate: ERROR: {exc}", file=sys.stderr)
        return gate.ERROR
    finally:
        for side in [ref, *builds]:
            side.cleanup(repo)
        gate.shutil.rmtree(root, ignore_errors=True)
        gate.subprocess.run(["git", "-C", str(repo), "worktree", "prune"], capture_output=True)

    print(f"Gate calibration: {args.rev} ({sha[:10]}), counter {args.counter}, factor {factor:.2f}, "
          f"{args.runs} runs per build, {rounds} round(s) per measurement")
    specs = [spec for spec, gated in gate.BENCHMARKS if gated]
    rows = [("build", "CPU time", "gate failed", *(gate._label(spec) for spec in specs))]
    for side in builds:
        failed = sum(1 for st in outcomes[side.name] if st == gate.SLOWER)
        cpu = "same commit" if side is builds[0] else _label_ratio(sizes.get(side.name, {}).get(SIZED))
        rows.append((side.name, cpu, f"{failed}/{args.runs}",
                     *(_span(seen[side.name].get(spec, [])) for spec in specs)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, r in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print(f"(CPU time: {gate._label(SIZED)} of the build over REV, median of {args.timing_rounds} interleaved "
          f"rounds; other columns: the gate's head/base {args.counter} ratio, lowest-highest over the runs)")
    print(f"one run (REV and {len(builds)} builds measured): median {statistics.median(run_times):.0f}s; "
          f"calibration took {time.perf_counter() - started:.0f}s (installs included)")
    return 0


def _gate_run(ref: gate.Side, builds: list[gate.Side], bench_dir: Path, counter: str, rounds: int,
              factor: float) -> dict[str, tuple[int, dict[str, float]]]:
    """One run: each build measured and judged as the gate would, against REV: (verdict, ratios).

    Instruction counts do not depend on what else runs, so REV is counted once per run and the
    builds two at a time; timed counters measure REV afresh, interleaved, for every build.
    """
    sides = [ref, *builds]
    for side in sides:
        side.reset()
        side.counter = counter
    verdicts = {}
    if counter == "instructions":
        specs = [s for s, _ in gate.BENCHMARKS]
        for r in range(rounds):
            with gate.concurrent.futures.ThreadPoolExecutor(2) as pool:
                for job in [pool.submit(s.count, bench_dir, specs, gate.COUNT_CALLS, f"{r}") for s in sides]:
                    job.result()
        for side in builds:
            verdicts[side.name] = (gate.compare(ref, side, factor)[0], _ratios(ref, side))
        return verdicts
    for side in builds:
        ref.reset()
        gate.measure_sides(ref, side, bench_dir, rounds, gate.DEFAULT_REPEAT, quiet=True)
        verdicts[side.name] = (gate.compare(ref, side, factor)[0], _ratios(ref, side))
    return verdicts


def _ratios(ref: gate.Side, side: gate.Side) -> dict[str, float]:
    """Per gated benchmark: the build's median figure over REV's."""
    return {s: statistics.median(side.rounds[s]) / statistics.median(ref.rounds[s])
            for s, gated in gate.BENCHMARKS if gated and s in side.rounds and s in ref.rounds}


if __name__ == "__main__":
    sys.exit(main())
