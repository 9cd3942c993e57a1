"""Agents at scale: the fireflies on one Cascade Engine against the same agents by hand in asyncio.

For each agent count and period, both implementations run in this one process, one after the
other (the order alternates from case to case), with uncoupled oscillators (``nudge=0``: every
agent flashes exactly once a period, so the theoretical rate is agents/period; the messaging to
the 8 neighbours still happens). Printed per case and implementation:

- flash rate as a fraction of the theoretical agents/period (after a warm-up of one period);
- event-loop lag p50/p99/max (a 10 ms sleep probe, after the warm-up);
- CPU per agent iteration (process CPU time / iterations, after the warm-up);
- memory per agent: tracemalloc's traced memory with every agent idle in ``recv``, divided by
  the number of agents (a separate short run with a 1,000 s period).

``--gc-threshold N`` runs both with ``gc.freeze()`` and a gen-0 threshold of N: with thousands of
live agents Python's default collections traverse every agent's young state again and again (with
Cascade's per-iteration objects, gen-1 collections of ~50,000 objects at 2,500 agents).

Then the ratios Cascade / hand-written. Run::

    python -m examples.agents_bench                      # 2,500 and 10,000 agents, periods 1 s and 0.1 s
    python -m examples.agents_bench --agents 2500 --periods 1 --duration 4
    python -m examples.agents_bench --agents 10000 --periods 0.1 --duration 4 --repeat 6

``--repeat N`` runs each case N times, the order flipping, and gives the median of each ratio
over the runs (each run's ratios are printed too).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import tracemalloc
from typing import Any

import cascade as cs

from . import fireflies

__all__ = ["main", "memory_per_agent", "run_case", "run_pairs"]


async def _idle_agents(impl: str, agents: int) -> tuple[int, Any]:
    """Start ``agents`` fireflies that will not flash for a long time; wait until all listen."""
    sim = fireflies.Sim(agents, 1000.0, 0.0)
    width, height = fireflies.grid_shape(agents)
    now = fireflies.monotonic()
    starts = [now] * agents
    engine = cs.Engine() if impl == "cascade" else None
    if engine is not None:
        runs = fireflies._cascade_agents(sim, engine, starts, width, height)
    else:
        runs = fireflies._hand_agents(sim, starts, width, height)
    while sim.iterations < agents:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    return len(runs), (runs, engine)


async def memory_per_agent(impl: str, agents: int) -> float:
    """Bytes traced by tracemalloc per idle agent (the engine and its caches included)."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        _, (runs, engine) = await _idle_agents(impl, agents)
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    for run in runs:
        run.cancel()
    await asyncio.gather(*runs, return_exceptions=True)
    del engine
    return used / agents


def run_case(agents: int, period: float, duration: float, order: tuple[str, ...],
             gc_threshold: int = 0, memory: bool = True) -> dict[str, Any]:
    """Both implementations for one (agents, period): their summaries and memory per agent.

    ``gc_threshold`` > 0: both run with ``gc.freeze()`` after start-up objects and that gen-0
    threshold (an application's GC tuning for many long-lived agents); 0: Python's defaults.
    ``memory=False`` skips the memory runs (``memory_bytes_per_agent`` and its ratio are NaN).
    """
    out: dict[str, Any] = {}
    defaults = gc.get_threshold()
    for impl in order:
        gc.collect()
        if gc_threshold:
            gc.freeze()
            gc.set_threshold(gc_threshold, 20, 100)
        try:
            summary = asyncio.run(fireflies.simulate(agents, period, 0.0, duration, seed=1, impl=impl))
        finally:
            gc.set_threshold(*defaults)
            gc.unfreeze()
        memory = asyncio.run(memory_per_agent(impl, agents)) if memory else float("nan")
        out[impl] = {
            "rate_fraction": summary.rate_fraction,
            "rate": summary.rate,
            "lag_p50_ms": summary.lag_quantile(0.5) * 1e3,
            "lag_p99_ms": summary.lag_quantile(0.99) * 1e3,
            "lag_max_ms": max(summary.lag, default=0.0) * 1e3,
            "cpu_us_per_iteration": summary.cpu_per_iteration * 1e6,
            "iterations": summary.iterations,
            "memory_bytes_per_agent": memory,
        }
    c, h = out["cascade"], out["asyncio"]
    out["ratios"] = {
        "rate": c["rate"] / h["rate"] if h["rate"] else float("nan"),
        "lag_p99": c["lag_p99_ms"] / h["lag_p99_ms"] if h["lag_p99_ms"] else float("nan"),
        "cpu_per_iteration": c["cpu_us_per_iteration"] / h["cpu_us_per_iteration"],
        "memory_per_agent": c["memory_bytes_per_agent"] / h["memory_bytes_per_agent"],
    }
    return out


def run_pairs(agents: int, period: float, duration: float, repeat: int, cascade_first: bool,
              gc_threshold: int = 0) -> dict[str, Any]:
    """``repeat`` runs of :func:`run_case`, the order flipping from one to the next, then the
    memory per agent of each implementation (given in the first run's figures): the first run's
    figures, every run in ``"pairs"``, and as ``"ratios"`` the median of each ratio over the runs.

    Why: on a shared machine one implementation's rate can move by a third between runs minutes
    apart, the hand-written one's as much as Cascade's, and the first simulation in a fresh
    process runs faster than later ones; a ratio from adjacent runs, with the median over several
    (an even number gives each implementation the first place equally often), is what is left of
    the load they both saw. The memory runs come last so that no rate run follows one.
    """
    pairs = []
    for i in range(repeat):
        first = cascade_first != bool(i % 2)
        order = ("cascade", "asyncio") if first else ("asyncio", "cascade")
        pairs.append(run_case(agents, period, duration, order, gc_threshold, memory=False))
    for impl in ("cascade", "asyncio"):
        pairs[0][impl]["memory_bytes_per_agent"] = asyncio.run(memory_per_agent(impl, agents))
    pairs[0]["ratios"]["memory_per_agent"] = (pairs[0]["cascade"]["memory_bytes_per_agent"]
                                              / pairs[0]["asyncio"]["memory_bytes_per_agent"])
    out = dict(pairs[0])
    out["pairs"] = pairs
    out["ratios"] = {key: statistics.median(p["ratios"][key] for p in pairs)
                     for key in pairs[0]["ratios"] if key != "memory_per_agent"}
    out["ratios"]["memory_per_agent"] = pairs[0]["ratios"]["memory_per_agent"]
    return out


def _print(agents: int, period: float, case: dict[str, Any]) -> None:
    kind = "idle" if period >= 0.5 else "saturated"
    print(f"\n{agents:,} agents, period {period} s ({kind}), theoretical {agents / period:,.0f} flashes/s")
    print(f"  {'':9} {'rate/theory':>11} {'lag p50':>9} {'lag p99':>9} {'lag max':>9} "
          f"{'CPU/iter':>10} {'mem/agent':>10}")
    for impl in ("cascade", "asyncio"):
        r = case[impl]
        print(f"  {impl:9} {r['rate_fraction']:>11.1%} {r['lag_p50_ms']:>7.1f}ms {r['lag_p99_ms']:>7.1f}ms "
              f"{r['lag_max_ms']:>7.1f}ms {r['cpu_us_per_iteration']:>8.1f}us "
              f"{r['memory_bytes_per_agent'] / 1024:>8.2f}KB")
    pairs = case.get("pairs", [case])
    if len(pairs) > 1:
        for i, pair in enumerate(pairs, 1):
            c, h, q = pair["cascade"], pair["asyncio"], pair["ratios"]
            print(f"  run {i}: rate/theory {c['rate_fraction']:.1%} vs {h['rate_fraction']:.1%}: "
                  f"rate {q['rate']:.2f}, lag p99 {q['lag_p99']:.2f}x, CPU per iteration "
                  f"{q['cpu_per_iteration']:.2f}x")
    q = case["ratios"]
    median = f" (median of {len(pairs)} runs)" if len(pairs) > 1 else ""
    print(f"  cascade / hand-written{median}: rate {q['rate']:.2f}, lag p99 {q['lag_p99']:.2f}x, "
          f"CPU per iteration {q['cpu_per_iteration']:.2f}x, memory per agent {q['memory_per_agent']:.2f}x")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m examples.agents_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, nargs="+", default=[2500, 10000])
    parser.add_argument("--periods", type=float, nargs="+", default=[1.0, 0.1])
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per run (default 6)")
    parser.add_argument("--gc-threshold", type=int, default=0, metavar="N",
                        help="run both with gc.freeze() and gen-0 threshold N (default: Python's GC settings)")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="run each case N times, the order flipping, and give the median ratios (default 1)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, got {args.repeat}")
    results: dict[str, Any] = {}
    flip = False
    for agents in args.agents:
        for period in args.periods:
            case = run_pairs(agents, period, args.duration, args.repeat, flip, args.gc_threshold)
            flip = not flip
            _print(agents, period, case)
            results[f"{agents}@{period}"] = case
            sys.stdout.flush()
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
