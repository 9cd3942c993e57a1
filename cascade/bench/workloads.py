"""The loops ``cascade bench`` measures, each with a raw-asyncio baseline doing the same work.

Every workload has two coroutine functions taking an iteration count ``n``:

- ``cascade(engine, n)`` runs the Cascade version on ``engine`` (hot or slow is the engine's choice);
- ``baseline(n)`` runs hand-written asyncio code with the same awaits and the same suspensions.

Both return the number of loop iterations they performed (across all agents for the concurrent
workloads), so throughput is ``iterations / seconds`` for either.
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
