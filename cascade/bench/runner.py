"""Measure workloads: baseline, hot engine and slow engine, interleaved, in one process and event loop."""

from __future__ import annotations

import asyncio
import gc
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import cascade as cs

from .workloads import Workload

__all__ = ["MODES", "Measurement", "WorkloadResult", "growth_per_10x", "measure_workload", "run_suite"]

MODES = ("baseline", "hot", "slow")

Progress = Callable[[str], None]


@dataclass
class Measurement:
    """Throughput samples (iterations/s) of one workload in one mode; ``rate`` is their median."""

    mode: str
    iterations: int
    samples: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return statistics.median(self.samples) if self.samples else float("nan")


@dataclass
class WorkloadResult:
    """All modes of one workload plus the ratios the headline table shows."""

    key: str
    title: str
    nodes: int
    agents: int
    modes: dict[str, Measurement]
    family: str = ""
    growth: dict[str, float] = field(default_factory=dict)  # one-shot families: mode -> growth per 10x

    def rate(self, mode: str) -> float:
        return self.modes[mode].rate

    @property
    def ratios(self) -> dict[str, float]:
        hot, slow, base = self.rate("hot"), self.rate("slow"), self.rate("baseline")
        return {"hot/baseline": hot / base, "slow/baseline": slow / base, "hot/slow": hot / slow}

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key, "title": self.title, "nodes": self.nodes, "agents": self.agents,
            "iterations_per_second": {m: self.rate(m) for m in self.modes},
            "ratios": self.ratios,
            **({"time_growth_per_10x_nodes": self.growth} if self.growth else {}),
            "samples": {m: asdict(x) for m, x in self.modes.items()},
        }


async def _timed(workload: Workload, mode: str, n: int) -> float:
    gc.collect()
    if mode == "baseline":
        t0 = time.perf_counter()
        done = await workload.baseline(n)
    else:
        engine = cs.Engine(hot_plans=(mode == "hot"))
        t0 = time.perf_counter()
        done = await workload.cascade(engine, n)
    return done / (time.perf_counter() - t0)


def measure_workload(workload: Workload, loop: asyncio.AbstractEventLoop, *, quick: bool = False,
                     repeat: int = 3, progress: Progress | None = None) -> WorkloadResult:
    """Run every mode ``repeat`` times, interleaved (baseline, hot, slow, baseline, ...), after a warm-up.

    Each timed run uses a fresh engine, so a hot run includes its own first (slow) iterations.
    """
    modes = {m: Measurement(m, workload.iterations(quick=quick, slow=(m == "slow"))) for m in MODES}
    for m in MODES if workload.warm_up else ():  # warm-up: code paths, allocator pools
        if progress:
            progress(f"{workload.title}: warm-up {m}")
        loop.run_until_complete(_timed(workload, m, max(1, modes[m].iterations // 10)))
    for r in range(repeat):
        for m in MODES:
            if progress:
                progress(f"{workload.title}: {m} {r + 1}/{repeat}")
            modes[m].samples.append(loop.run_until_complete(_timed(workload, m, modes[m].iterations)))
    return WorkloadResult(workload.key, workload.title, workload.nodes, workload.agents, modes, workload.family)


def growth_per_10x(small: WorkloadResult, large: WorkloadResult, mode: str) -> float:
    """How many times longer a run takes per 10x more nodes, from two sizes of one family:
    ``(t_large / t_small) ** (1 / log10(n_large / n_small))``; 10.0 is linear."""
    t_small = small.nodes / small.rate(mode)
    t_large = large.nodes / large.rate(mode)
    return (t_large / t_small) ** (1 / math.log10(large.nodes / small.nodes))


def _add_growth(results: list[WorkloadResult]) -> None:
    """For each one-shot family measured at two sizes or more: the growth between the smallest and
    the largest, recorded on the largest (JSON) and shown in its title (the table)."""
    families: dict[str, list[WorkloadResult]] = {}
    for r in results:
        if r.family:
            families.setdefault(r.family, []).append(r)
    for members in families.values():
        if len(members) < 2:
            continue
        small = min(members, key=lambda r: r.nodes)
        large = max(members, key=lambda r: r.nodes)
        large.growth = {m: growth_per_10x(small, large, m) for m in large.modes}
        large.title += f" (time x{large.growth['hot']:.2f} per 10x nodes from {small.nodes:,})"


def run_suite(workloads: list[Workload], *, quick: bool = False, repeat: int | None = None,
              progress: Progress | None = None) -> list[WorkloadResult]:
    """Measure ``workloads`` in order on one new event loop (3 interleaved repeats by default).

    Quick mode too takes 3: it shortens each run instead, because one sample on a loaded machine can
    show anything (a loop "faster than hand-written"); its figures are still only indicative.
    """
    if repeat is None:
        repeat = 3
    loop = asyncio.new_event_loop()
    try:
        results = []
        for i, w in enumerate(workloads):
            step: Progress | None = None
            if progress is not None:
                def step(msg: str, _i: int = i) -> None:
                    progress(f"[{_i + 1}/{len(workloads)}] {msg}")
            results.append(measure_workload(w, loop, quick=quick, repeat=repeat, progress=step))
        _add_growth(results)
        return results
    finally:
        loop.close()
