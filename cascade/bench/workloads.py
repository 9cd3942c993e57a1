"""The loops ``cascade bench`` measures, each with a raw-asyncio baseline doing the same work.

Every workload has two coroutine functions taking an iteration count ``n``:

- ``cascade(engine, n)`` runs the Cascade version on ``engine`` (hot or slow is the engine's choice);
- ``baseline(n)`` runs hand-written asyncio code with the same awaits and the same suspensions.

Both return the number of loop iterations they performed (across all agents for the concurrent
workloads, nodes for the one-shot graphs), so throughput is ``iterations / seconds`` for either.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import cascade as cs

__all__ = ["WORKLOADS", "Workload", "get_workloads"]


# -- 1-node countdown --------------------------------------------------------------------------------
@cs.task
async def countdown(n: int) -> Any:
    return "done" if n == 0 else countdown(n - 1)


async def _countdown_cascade(engine: cs.Engine, n: int) -> int:
    result = await engine.run(countdown(n))
    assert result == "done", result
    return n


async def _step(n: int) -> int:
    return n - 1


async def _countdown_baseline(n: int) -> int:
    k = n
    while k:
        k = await _step(k)
    return n


# -- 11-node loop: a chain of 10 noop calls feeds the recursive call ------------------------------------
CHAIN = 10


@cs.task
async def noop(x: Any) -> Any:
    return x


@cs.task
async def chain_loop(n: int, value: Any) -> Any:
    if n == 0:
        return value
    link: Any = n
    for _ in range(CHAIN):
        link = noop(link)
    return chain_loop(n - 1, link)


async def _chain_cascade(engine: cs.Engine, n: int) -> int:
    result = await engine.run(chain_loop(n, 0))
    assert result == 1, result
    return n


async def _anoop(x: Any) -> Any:
    return x


async def _chain_baseline(n: int) -> int:
    value: Any = 0
    k = n
    while k:
        link: Any = k
        for _ in range(CHAIN):
            link = await _anoop(link)
        value = link
        k -= 1
    assert value == 1, value
    return n


# -- hot loops whose lazy inputs are passed by keyword, or nested in a list --------------------------
# The 11-node loop above with the same calls written ``noop(x=link)`` / ``chain_loop_kw(n, value=link)``,
# and with each link wrapped in a one-item list: the positional loop is the reference for both.
@cs.task
async def noop_kw(x: Any) -> Any:
    return x


@cs.task
async def chain_loop_kw(n: int, value: Any) -> Any:
    if n == 0:
        return value
    link: Any = n
    for _ in range(CHAIN):
        link = noop_kw(x=link)
    return chain_loop_kw(n - 1, value=link)


@cs.task
async def first(xs: list[Any]) -> Any:
    return xs[0]


@cs.task
async def chain_loop_nested(n: int, value: Any) -> Any:
    if n == 0:
        return value
    link: Any = n
    for _ in range(CHAIN):
        link = first([link])
    return chain_loop_nested(n - 1, [link])


async def _chain_kw_cascade(engine: cs.Engine, n: int) -> int:
    result = await engine.run(chain_loop_kw(n, value=0))
    assert result == 1, result
    return n


async def _chain_kw_baseline(n: int) -> int:
    value: Any = 0
    k = n
    while k:
        link: Any = k
        for _ in range(CHAIN):
            link = await _anoop(x=link)
        value = link
        k -= 1
    assert value == 1, value
    return n


async def _chain_nested_cascade(engine: cs.Engine, n: int) -> int:
    result = await engine.run(chain_loop_nested(n, [0]))
    assert result == [1], result
    return n


async def _afirst(xs: list[Any]) -> Any:
    return xs[0]


async def _chain_nested_baseline(n: int) -> int:
    value: Any = [0]
    k = n
    while k:
        link: Any = k
        for _ in range(CHAIN):
            link = await _afirst([link])
        value = [link]
        k -= 1
    assert value == [1], value
    return n


# -- 3-node loop: two independent nodes that really suspend, both fed to the recursive call -------------
@cs.task
async def left(x: int) -> int:
    await asyncio.sleep(0)
    return x


@cs.task
async def right(x: int) -> int:
    await asyncio.sleep(0)
    return x + 1


@cs.task
async def fork_loop(n: int, a: int, b: int) -> Any:
    if n == 0:
        return a + b
    return fork_loop(n - 1, left(n), right(n))


async def _fork_cascade(engine: cs.Engine, n: int) -> int:
    result = await engine.run(fork_loop(n, 0, 0))
    assert result == 3, result
    return n


async def _left(x: int) -> int:
    await asyncio.sleep(0)
    return x


async def _right(x: int) -> int:
    await asyncio.sleep(0)
    return x + 1


async def _fork_baseline(n: int) -> int:
    a = b = 0
    k = n
    while k:
        a, b = await asyncio.gather(_left(k), _right(k))
        k -= 1
    assert a + b == 3, (a, b)
    return n


# -- N concurrent agent loops on one engine ---------------------------------------------------------
# One agent iteration: ``think`` waits on the outside world (a real suspension), ``act`` turns the
# thought into the next state, and the agent recurses on it: 3 nodes per iteration.
@cs.task
async def think(state: int) -> int:
    await asyncio.sleep(0)
    return state + 1


@cs.task
async def act(thought: int) -> int:
    return thought


@cs.task
async def agent(steps: int, state: int) -> Any:
    if steps == 0:
        return state
    return agent(steps - 1, act(think(state)))


async def _think(state: int) -> int:
    await asyncio.sleep(0)
    return state + 1


async def _act(thought: int) -> int:
    return thought


async def _agent_baseline(steps: int) -> int:
    state = 0
    for _ in range(steps):
        state = await _act(await _think(state))
    return state


def _agents(count: int) -> tuple[Callable[[cs.Engine, int], Awaitable[int]], Callable[[int], Awaitable[int]]]:
    async def run_cascade(engine: cs.Engine, n: int) -> int:
        results = await asyncio.gather(*(engine.run(agent(n, 0)) for _ in range(count)))
        assert all(r == n for r in results), results[:3]
        return n * count

    async def run_baseline(n: int) -> int:
        results = await asyncio.gather(*(_agent_baseline(n) for _ in range(count)))
        assert all(r == n for r in results), results[:3]
        return n * count

    return run_cascade, run_baseline


# -- many short concurrent runs: 1,000 runs of a 5-node pipeline, one real suspension each ----------
@cs.task
async def fetch(x: int) -> int:
    await asyncio.sleep(0)
    return x


@cs.task
async def parse(x: int) -> int:
    return x + 1


@cs.task
async def score(x: int) -> int:
    return 2 * x


@cs.task
async def merge(x: int, y: int) -> int:
    return x + y


@cs.task
async def report(x: int) -> int:
    return x


async def _fetch(x: int) -> int:
    await asyncio.sleep(0)
    return x


async def _parse(x: int) -> int:
    return x + 1


async def _score(x: int) -> int:
    return 2 * x


async def _merge(x: int, y: int) -> int:
    return x + y


async def _report(x: int) -> int:
    return x


RUNS = 1_000


async def _runs_cascade(engine: cs.Engine, n: int) -> int:
    for _ in range(n):
        results = await asyncio.gather(*(engine.run(report(merge(score(parse(fetch(i))), i)))
                                         for i in range(RUNS)))
        assert results[7] == 2 * 8 + 7, results[7]
    return n * RUNS


async def _by_hand(i: int) -> int:
    return await _report(await _merge(await _score(await _parse(await _fetch(i))), i))


async def _runs_baseline(n: int) -> int:
    for _ in range(n):
        results = await asyncio.gather(*(_by_hand(i) for i in range(RUNS)))
        assert results[7] == 2 * 8 + 7, results[7]
    return n * RUNS


# -- one-shot graphs: one run of a big graph, on a fresh engine (its first and only iteration) -------
# "Iterations" are nodes here, so the rates are nodes per second; building the lazy results is timed
# too (it is what ``cs.run(total(double.map(x=range(n))))`` costs).
@cs.task
async def double(x: int) -> int:
    return 2 * x


@cs.task
async def total(xs: list[int]) -> int:
    return sum(xs)


@cs.task
async def inc(x: int) -> int:
    return x + 1


def map_target(nodes: int) -> Any:
    """``total(double.map(x=range(nodes - 2)))``: ``nodes`` nodes (the elements, the map, the total)."""
    return total(double.map(x=range(nodes - 2)))


def chain_target(nodes: int) -> Any:
    """``inc(inc(...inc(0)))``: a chain of ``nodes`` calls, each taking the previous one's value."""
    link: Any = inc(0)
    for _ in range(nodes - 1):
        link = inc(link)
    return link


async def _map_cascade(engine: cs.Engine, n: int) -> int:
    result = await engine.run(map_target(n))
    assert result == (n - 2) * (n - 3), result
    return n


async def _map_baseline(n: int) -> int:
    result = await _total([await _double(x) for x in range(n - 2)])
    assert result == (n - 2) * (n - 3), result
    return n


async def _chain_cascade_oneshot(engine: cs.Engine, n: int) -> int:
    result = await engine.run(chain_target(n))
    assert result == n, result
    return n


async def _chain_baseline_oneshot(n: int) -> int:
    value = 0
    for _ in range(n):
        value = await _inc(value)
    assert value == n, value
    return n


async def _double(x: int) -> int:
    return 2 * x


async def _total(xs: list[int]) -> int:
    return sum(xs)


async def _inc(x: int) -> int:
    return x + 1



@dataclass(frozen=True)
class Workload:
    """One measured loop: ``n`` iterations per run (per agent for concurrent ones), ``quick_n`` in quick mode."""

    key: str
    title: str
    nodes: int
    agents: int
    n: int
    quick_n: int
    slow_n: int
    quick_slow_n: int
    cascade: Callable[[cs.Engine, int], Awaitable[int]]
    baseline: Callable[[int], Awaitable[int]]
    in_quick: bool = True
    warm_up: bool = True
    family: str = ""  # one-shot graphs: workloads of one family differ in size only (growth factor)

    def iterations(self, *, quick: bool, slow: bool) -> int:
        """Iterations per run (per agent) for this mode; the slow engine gets fewer to keep runs short."""
        if slow:
            return self.quick_slow_n if quick else self.slow_n
        return self.quick_n if quick else self.n


_a100 = _agents(100)
_a1k = _agents(1_000)
_a10k = _agents(10_000)

WORKLOADS: tuple[Workload, ...] = (
    Workload("countdown", "1-node countdown", 1, 1, 20_000, 10_000, 2_000, 1_000,
             _countdown_cascade, _countdown_baseline),
    Workload("chain11", "11-node loop (10-noop chain)", 11, 1, 2_000, 1_000, 200, 100,
             _chain_cascade, _chain_baseline),
    Workload("fork3", "3-node loop, 2 suspending", 3, 1, 4_000, 2_000, 500, 300,
             _fork_cascade, _fork_baseline),
    Workload("agents100", "100 concurrent agents", 3, 100, 40, 20, 10, 3, *_a100),
    Workload("agents1k", "1,000 concurrent agents", 3, 1_000, 8, 5, 2, 1, *_a1k, warm_up=False),
    # Left out of quick mode: its slow-engine runs alone take several seconds.
    Workload("agents10k", "10,000 concurrent agents", 3, 10_000, 3, 1, 1, 1, *_a10k, in_quick=False,
             warm_up=False),
    Workload("chain11kw", "11-node loop, keyword inputs", 11, 1, 2_000, 1_000, 200, 100,
             _chain_kw_cascade, _chain_kw_baseline),
    Workload("chain11nest", "11-node loop, inputs nested in lists", 11, 1, 2_000, 1_000, 200, 100,
             _chain_nested_cascade, _chain_nested_baseline),
    Workload("runs1k", "1,000 concurrent 5-node runs", 5, RUNS, 10, 4, 4, 2, _runs_cascade, _runs_baseline),
    # One-shot graphs: "iterations" are nodes (rates are nodes/s); the 100k sizes only in a full run.
    Workload("map1k", "1k-node map, one run", 1_000, 1, 1_000, 1_000, 1_000, 1_000,
             _map_cascade, _map_baseline, family="map"),
    Workload("map10k", "10k-node map, one run", 10_000, 1, 10_000, 10_000, 10_000, 10_000,
             _map_cascade, _map_baseline, family="map"),
    Workload("map100k", "100k-node map, one run", 100_000, 1, 100_000, 100_000, 100_000, 100_000,
             _map_cascade, _map_baseline, in_quick=False, warm_up=False, family="map"),
    Workload("chain1k", "1k-node chain, one run", 1_000, 1, 1_000, 1_000, 1_000, 1_000,
             _chain_cascade_oneshot, _chain_baseline_oneshot, family="chain"),
    Workload("chain10k", "10k-node chain, one run", 10_000, 1, 10_000, 10_000, 10_000, 10_000,
             _chain_cascade_oneshot, _chain_baseline_oneshot, family="chain"),
    Workload("chain100k", "100k-node chain, one run", 100_000, 1, 100_000, 100_000, 100_000, 100_000,
             _chain_cascade_oneshot, _chain_baseline_oneshot, in_quick=False, warm_up=False, family="chain"),
)


def get_workloads(keys: list[str] | None = None, *, quick: bool = False) -> list[Workload]:
    """The workloads named by ``keys`` in suite order; ``KeyError`` for an unknown key.

    No keys: every workload, or in ``quick`` mode those marked ``in_quick``.
    """
    if not keys:
        return [w for w in WORKLOADS if w.in_quick or not quick]
    by_key = {w.key: w for w in WORKLOADS}
    unknown = [k for k in keys if k not in by_key]
    if unknown:
        raise KeyError(f"unknown workload(s) {', '.join(unknown)}; known: {', '.join(by_key)}")
    return [by_key[k] for k in keys]
