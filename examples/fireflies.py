"""Fireflies: thousands of pulse-coupled oscillators, each a Cascade tail-call loop, on ONE Engine.

Agents sit on a torus grid; each hears its 8 Moore neighbours. An agent's loop::

    listen (cs.recv on its inbox) for the rest of its period or until a neighbour flashes
      -> a neighbour flashed: nudge the phase forward (phase += nudge * phase); listen again
      -> the period is over (or the nudge reached 1): flash, publish to the 8 neighbours, reset

Times are the model's, not the event loop's: a flash message carries the moment of the flash and
a timed-out agent flashes at the end of its period, so an overloaded loop delays the agents'
reactions but does not smear their phases (the figures still show how late the loop is).

The nudge is proportional to the phase (a Mirollo-Strogatz-style excitatory coupling): an agent
that has just flashed is hardly moved by its neighbours' flashes of the same burst, so a
synchronised grid stays synchronised, and an agent late in its cycle is pulled into the next burst.
The synchronisation order parameter is R = |mean(exp(2*pi*i*phase))| (1: all flash together).

Run it::

    python -m examples.fireflies --agents 2500 --period 1 --duration 30 --plot docs/fireflies.png

``--impl asyncio`` runs the same agents written by hand in asyncio (the baseline the benchmark
script ``examples/agents_bench.py`` compares against). Needs the ``examples`` extra for the live view
(rich) and ``--plot`` (matplotlib).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import sys
import time
from dataclasses import dataclass, field
from time import monotonic
from typing import Any

import cascade as cs

__all__ = ["Sim", "Summary", "main", "moore_neighbours", "simulate"]

SAMPLE_EVERY = 0.25  # seconds between R / rate samples
LAG_EVERY = 0.01  # seconds the lag probe sleeps


def moore_neighbours(index: int, width: int, height: int) -> tuple[int, ...]:
    """The (up to 8) distinct Moore neighbours of cell ``index`` on a ``width`` x ``height`` torus."""
    x, y = index % width, index // width
    out: dict[int, None] = {}
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dx or dy:
                j = (y + dy) % height * width + (x + dx) % width
                if j != index:
                    out[j] = None
    return tuple(out)


def grid_shape(agents: int) -> tuple[int, int]:
    """The most square ``width`` x ``height`` grid with exactly ``agents`` cells."""
    width = int(math.isqrt(agents))
    while agents % width:
        width -= 1
    return agents // width, width


class Sim:
    """Shared bookkeeping of one simulation: each agent writes only its own slots."""

    def __init__(self, agents: int, period: float, nudge: float) -> None:
        self.agents = agents
        self.period = period
        self.nudge = nudge
        self.origins = [0.0] * agents  # start time of each agent's current cycle
        self.flashes = 0
        self.iterations = 0

    def order_parameter(self, now: float) -> float:
        """R = |mean(exp(2 pi i phase))| over all agents at time ``now``."""
        c = s = 0.0
        tau = 2 * math.pi / self.period
        for t0 in self.origins:
            a = (now - t0) * tau
            c += math.cos(a)
            s += math.sin(a)
        return math.hypot(c, s) / self.agents


# -- the agent on Cascade ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Firefly:
    """One agent's constant part: its index, inbox topic and its neighbours' inbox topics."""

    index: int
    inbox: str
    neighbours: tuple[str, ...]
    sim: Sim


@cs.task
def firefly(me: Firefly, t0: float, flashed: Any, message: Any) -> Any:
    """One iteration: react to what ``cs.recv`` gave (a flash, a timeout, or ``None`` at the start).

    ``flashed`` is the value of the ``cs.publish`` that told the neighbours (``None`` when this
    iteration only listened); as an argument before ``message`` it is published before listening.
    """
    sim = me.sim
    sim.iterations += 1
    now = monotonic()
    period = sim.period
    if message is cs.TIMED_OUT:
        t = t0 + period  # flash on schedule, however late the event loop woke this agent
    else:
        t = now
        if message is not None:  # a neighbour flashed at t: nudge the phase it had then
            t = message.payload
            phase = (t - t0) / period
            if phase > 0.0:
                phase += sim.nudge * phase
                t0 = t - phase * period
                sim.origins[me.index] = t0
        if t < t0 + period:
            return firefly(me, t0, None, cs.recv(me.inbox, timeout=max(0.0, t0 + period - now)))
    # flash at t: tell the neighbours (one call, a message to each), start a new cycle, listen
    sim.flashes += 1
    sim.origins[me.index] = t
    flash = cs.publish(me.neighbours, t)
    return firefly(me, t, flash, cs.recv(me.inbox, timeout=max(0.0, t + period - now)))


def _cascade_agents(sim: Sim, engine: cs.Engine, starts: list[float], width: int, height: int,
                    ) -> list[asyncio.Task[Any]]:
    topics = [f"fireflies/{i}" for i in range(len(starts))]  # one string per inbox, shared
    runs = []
    for i, t0 in enumerate(starts):
        nbrs = tuple(topics[j] for j in moore_neighbours(i, width, height))
        me = Firefly(i, topics[i], nbrs, sim)
        runs.append(asyncio.ensure_future(engine.run(firefly(me, t0, None, None))))
    return runs


# -- the same agent written by hand in asyncio ------------------------------------------------------
def _expire(fut: asyncio.Future[Any]) -> None:
    if not fut.done():
        fut.set_result(cs.TIMED_OUT)


async def hand_firefly(sim: Sim, index: int, neighbours: tuple[int, ...], t0: float,
                       inboxes: list[asyncio.Future[Any] | None]) -> None:
    """The same agent as :func:`firefly`: a while loop, a future per listen, a timer per listen."""
    loop = asyncio.get_running_loop()
    period = sim.period
    message: Any = None
    while True:
        sim.iterations += 1
        now = monotonic()
        if message is cs.TIMED_OUT:
            t = t0 + period
        else:
            t = now
            if message is not None:
                t = message
                phase = (t - t0) / period
                if phase > 0.0:
                    phase += sim.nudge * phase
                    t0 = t - phase * period
                    sim.origins[index] = t0
        if message is not cs.TIMED_OUT and t < t0 + period:
            timeout = max(0.0, t0 + period - now)
        else:
            sim.flashes += 1
            sim.origins[index] = t0 = t
            for j in neighbours:
                fut = inboxes[j]
                if fut is not None and not fut.done():
                    fut.set_result(t)
            timeout = max(0.0, t + period - now)
        fut = inboxes[index] = loop.create_future()
        timer = loop.call_later(timeout, _expire, fut)
        try:
            message = await fut
        finally:
            timer.cancel()
            inboxes[index] = None


def _hand_agents(sim: Sim, starts: list[float], width: int, height: int) -> list[asyncio.Task[Any]]:
    inboxes: list[asyncio.Future[Any] | None] = [None] * len(starts)
    return [
        asyncio.ensure_future(hand_firefly(sim, i, moore_neighbours(i, width, height), t0, inboxes))
        for i, t0 in enumerate(starts)
    ]


# -- running and measuring --------------------------------------------------------------------------
@dataclass
class Summary:
    """What one simulation measured; ``timeline`` rows are (seconds, R, flashes/s)."""

    impl: str
    agents: int
    period: float
    nudge: float
    duration: float
    flashes: int
    iterations: int
    cpu_seconds: float
    r_final: float
    r_max: float
    t_sync: float | None  # first time R >= 0.9
    lag: list[float] = field(repr=False)  # event-loop lag samples after the warm-up
    timeline: list[tuple[float, float, float]] = field(repr=False)
    warmup: float = 0.0  # seconds left out of the steady-state figures (rate, lag, CPU)
    steady: tuple[float, int, int, float] = (0.0, 0, 0, 0.0)  # at warm-up: time, flashes, iterations, CPU

    @property
    def theoretical_rate(self) -> float:
        return self.agents / self.period

    @property
    def rate(self) -> float:
        """Mean flashes/s after the warm-up (over the whole run if it never ended)."""
        t0, flashes0, _, _ = self.steady
        if self.duration > t0 > 0:
            return (self.flashes - flashes0) / (self.duration - t0)
        return self.flashes / self.duration

    @property
    def rate_fraction(self) -> float:
        return self.rate / self.theoretical_rate

    def lag_quantile(self, q: float) -> float:
        if not self.lag:
            return 0.0
        ordered = sorted(self.lag)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def cpu_per_iteration(self) -> float:
        """Process CPU seconds per agent iteration after the warm-up."""
        t0, _, iterations0, cpu0 = self.steady
        if t0 > 0 and self.iterations > iterations0:
            return (self.cpu_seconds - cpu0) / (self.iterations - iterations0)
        return self.cpu_seconds / max(self.iterations, 1)

    def lines(self) -> list[str]:
        sync = f"{self.t_sync:.1f} s" if self.t_sync is not None else "not reached"
        return [
            f"{self.impl}: {self.agents} agents, period {self.period} s, nudge {self.nudge}, "
            f"{self.duration:.1f} s",
            f"R final {self.r_final:.3f}, max {self.r_max:.3f}, R >= 0.9 after {sync}",
            f"flashes/s {self.rate:,.0f} of theoretical {self.theoretical_rate:,.0f} "
            f"({self.rate_fraction:.1%})",
            f"event-loop lag p50 {self.lag_quantile(0.5) * 1e3:.1f} ms, p99 "
            f"{self.lag_quantile(0.99) * 1e3:.1f} ms, max {max(self.lag, default=0.0) * 1e3:.1f} ms",
            f"CPU per iteration {self.cpu_per_iteration * 1e6:.1f} us ({self.iterations:,} iterations)",
        ]


async def simulate(agents: int = 400, period: float = 1.0, nudge: float = 0.2, duration: float = 20.0,
                   seed: int = 0, impl: str = "cascade", progress: Any = None,
                   engine: cs.Engine | None = None, warmup: float | None = None) -> Summary:
    """Run the fireflies for ``duration`` seconds and measure them.

    ``impl``: ``"cascade"`` (every agent a run on one Engine) or ``"asyncio"`` (hand-written).
    ``progress(summary_so_far)`` is called after every sample when given. Rate, lag and CPU per
    iteration leave out the first ``warmup`` seconds (default: one period, at most a third of
    the run), while agents start and make their first flash.
    """
    if agents < 1 or period <= 0 or duration <= 0 or not 0 <= nudge:
        raise ValueError("need agents >= 1, period > 0, duration > 0, nudge >= 0")
    loop = asyncio.get_running_loop()
    sim = Sim(agents, period, nudge)
    rng = random.Random(seed)
    width, height = grid_shape(agents)
    start = monotonic()
    starts = [start - rng.random() * period for _ in range(agents)]
    sim.origins[:] = starts
    cpu0 = time.process_time()
    if impl == "cascade":
        runs = _cascade_agents(sim, engine or cs.Engine(), starts, width, height)
    elif impl == "asyncio":
        runs = _hand_agents(sim, starts, width, height)
    else:
        raise ValueError(f"impl must be 'cascade' or 'asyncio', got {impl!r}")
    lag: list[float] = []
    if warmup is None:
        warmup = min(period, duration / 3)
    warm_at = loop.time() + warmup

    probing = [loop.time()]  # when the probe's current sleep started

    async def probe() -> None:
        while True:
            t = probing[0] = loop.time()
            await asyncio.sleep(LAG_EVERY)
            if t >= warm_at:
                lag.append(max(0.0, loop.time() - t - LAG_EVERY))

    prober = asyncio.ensure_future(probe())
    timeline: list[tuple[float, float, float]] = []
    r_max, t_sync = 0.0, None
    summary = Summary(impl, agents, period, nudge, duration, 0, 0, 0.0, 0.0, 0.0, None, lag, timeline,
                      warmup)
    last_t, last_flashes = start, 0
    try:
        while True:
            await asyncio.sleep(SAMPLE_EVERY)
            now = monotonic()
            r = sim.order_parameter(now)
            rate = (sim.flashes - last_flashes) / (now - last_t)
            last_t, last_flashes = now, sim.flashes
            timeline.append((now - start, r, rate))
            r_max = max(r_max, r)
            if t_sync is None and r >= 0.9:
                t_sync = now - start
            summary.flashes, summary.iterations, summary.r_final = sim.flashes, sim.iterations, r
            summary.r_max, summary.t_sync = r_max, t_sync
            summary.duration = now - start
            summary.cpu_seconds = time.process_time() - cpu0
            if summary.steady[0] == 0.0 and now - start >= warmup:
                summary.steady = (now - start, sim.flashes, sim.iterations, summary.cpu_seconds)
            if progress is not None:
                progress(summary)
            if now - start >= duration:
                break
    finally:
        if probing[0] >= warm_at:  # a sleep still overdue at the end is a lag sample too
            lag.append(max(0.0, loop.time() - probing[0] - LAG_EVERY))
        prober.cancel()
        for run in runs:
            run.cancel()
        await asyncio.gather(prober, *runs, return_exceptions=True)
    return summary


def plot(summary: Summary, path: str) -> None:
    """Save R and the flash rate over time as a PNG (needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [row[0] for row in summary.timeline]
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(8, 5.5))
    top.plot(t, [row[1] for row in summary.timeline], color="tab:orange")
    top.axhline(0.9, color="grey", linestyle=":", linewidth=1)
    top.set_ylabel("order parameter R")
    top.set_ylim(0, 1.02)
    where = "on one Cascade Engine" if summary.impl == "cascade" else "hand-written in asyncio"
    top.set_title(f"{summary.agents} fireflies {where}, period {summary.period} s, nudge {summary.nudge}")
    rates = [row[2] for row in summary.timeline]
    bottom.plot(t, rates, color="tab:blue", linewidth=0.8, alpha=0.6, label="per sample")
    # flashes per second over the last period (bursts averaged out): counts over elapsed time
    steps = [(t[i] - (t[i - 1] if i else 0.0), rates[i]) for i in range(len(t))]
    smooth = []
    for i in range(len(t)):
        j = i
        while j > 0 and t[i] - t[j - 1] < summary.period:
            j -= 1
        span = sum(dt for dt, _ in steps[j:i + 1])
        smooth.append(sum(dt * r for dt, r in steps[j:i + 1]) / span if span else 0.0)
    bottom.plot(t, smooth, color="tab:blue", linewidth=2, label="mean over one period")
    bottom.axhline(summary.theoretical_rate, color="grey", linestyle=":", linewidth=1,
                   label="agents / period")
    bottom.set_ylabel("flashes / s")
    bottom.set_xlabel("seconds")
    bottom.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _live_view(console: Any) -> tuple[Any, Any]:
    from rich.live import Live
    from rich.table import Table

    def render(s: Summary) -> Table:
        table = Table(title=f"{s.agents} fireflies ({s.impl}), period {s.period} s")
        for col in ("t (s)", "R", "flashes/s", "theoretical", "lag p99 (ms)", "lag max (ms)"):
            table.add_column(col, justify="right")
        _, r, rate = s.timeline[-1]
        table.add_row(f"{s.duration:.1f}", f"{r:.3f}", f"{rate:,.0f}", f"{s.theoretical_rate:,.0f}",
                      f"{s.lag_quantile(0.99) * 1e3:.1f}", f"{max(s.lag, default=0.0) * 1e3:.1f}")
        return table

    live = Live(console=console, refresh_per_second=4, transient=False)
    return live, lambda s: live.update(render(s))


def main(argv: list[str] | None = None) -> Summary:
    """Command line: ``python -m examples.fireflies [--agents N] [--period S] ...``."""
    parser = argparse.ArgumentParser(prog="python -m examples.fireflies", description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, default=900, help="number of fireflies (default 900)")
    parser.add_argument("--period", type=float, default=1.0, help="natural period in seconds (default 1)")
    parser.add_argument("--nudge", type=float, default=0.2,
                        help="phase advance per neighbour flash, times the phase (default 0.2)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds to run (default 30)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial phases")
    parser.add_argument("--impl", choices=("cascade", "asyncio"), default="cascade",
                        help="agents on one Cascade Engine, or hand-written asyncio (the baseline)")
    parser.add_argument("--plot", metavar="FILE.png", help="save R and flash rate over time")
    parser.add_argument("--quiet", action="store_true", help="no live view, only the summary")
    args = parser.parse_args(argv)

    from rich.console import Console

    console = Console()
    live, update = (None, None) if args.quiet else _live_view(console)

    async def go() -> Summary:
        return await simulate(args.agents, args.period, args.nudge, args.duration, args.seed,
                              args.impl, update)

    if live is not None:
        with live:
            summary = asyncio.run(go())
    else:
        summary = asyncio.run(go())
    for line in summary.lines():
        console.print(line, highlight=False)
    if args.plot:
        plot(summary, args.plot)
        console.print(f"plot saved to {args.plot}", highlight=False)
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
