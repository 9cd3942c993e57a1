"""Tail calls: constant stack depth and flat memory over many iterations."""

from __future__ import annotations

import asyncio
import gc
import sys
import tracemalloc

import pytest

import cascade as cs


@cs.task(name="countdown")
def countdown(n):
    return countdown(n - 1) if n > 0 else "liftoff"


@cs.task(name="acountdown")
async def acountdown(n, acc):
    if n == 0:
        return acc
    return acountdown(n - 1, acc + n)


def test_hundred_thousand_tail_calls_under_a_tiny_recursion_limit():
    engine = cs.Engine()
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(300)
    try:
        result = asyncio.run(engine.run(countdown(100_000)))
    finally:
        sys.setrecursionlimit(old)
    assert result == "liftoff"
    assert engine.stats.tail_calls == 100_000
    assert engine.stats.hot_plan_hits == 100_000
    assert engine.stats.graph_builds == 1


def test_async_tail_calls_under_a_tiny_recursion_limit_slow_path():
    engine = cs.Engine(hot_plans=False)
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(300)
    try:
        result = asyncio.run(engine.run(acountdown(2_000, 0)))
    finally:
        sys.setrecursionlimit(old)
    assert result == 2_000 * 2_001 // 2
    assert engine.stats.tail_calls == 2_000
    assert engine.stats.graph_builds == 2_001


def test_cs_run_follows_tail_calls():
    assert cs.run(acountdown(10, 0)) == 55


@pytest.mark.asyncio
async def test_tail_call_to_a_different_task(any_engine):
    @cs.task(name="finish")
    def finish(x):
        return ("finished", x)

    @cs.task(name="start")
    def start(x):
        return finish(x * 2)

    assert await any_engine.run(start(21)) == ("finished", 42)
    assert any_engine.stats.tail_calls == 1


@pytest.mark.asyncio
async def test_non_target_node_returning_lazy_result_is_evaluated(any_engine):
    @cs.task(name="inner")
    def inner(n):
        return inner(n - 1) if n > 0 else "bottom"

    @cs.task(name="outer")
    def outer(x):
        return ("outer", x)

    assert await any_engine.run(outer(inner(3))) == ("outer", "bottom")


@pytest.mark.asyncio
async def test_tail_call_to_a_mapped_result(any_engine):
    @cs.task(name="sq")
    def sq(x):
        return x * x

    @cs.task(name="fan_out")
    def fan_out(n):
        return sq.map(x=list(range(n)))

    assert await any_engine.run(fan_out(4)) == [0, 1, 4, 9]


@cs.task(name="noop")
def noop(x):
    return x


marks: dict[int, int] = {}


@cs.task(name="memory_loop")
def memory_loop(n, prev, limit):
    if n in (1_000, limit):
        gc.collect()
        marks[n] = tracemalloc.get_traced_memory()[0]
    if n == limit:
        return prev
    x = noop(n)
    for _ in range(9):
        x = noop(x)
    return memory_loop(n + 1, x, limit)  # 11 nodes per iteration: 10 noops and the loop


def test_memory_is_flat_over_tail_call_iterations():
    limit = 20_000
    engine = cs.Engine()
    marks.clear()
    gc.collect()
    tracemalloc.start()
    try:
        result = asyncio.run(engine.run(memory_loop(1, 0, limit)))
    finally:
        tracemalloc.stop()
    assert result == limit - 1
    assert engine.stats.tail_calls == limit - 1
    assert set(marks) == {1_000, limit}
    growth = marks[limit] - marks[1_000]
    assert growth < 256 * 1024, f"memory grew by {growth} bytes between iteration 1000 and {limit}"


def test_memory_is_flat_with_events_subscribed():
    engine = cs.Engine()
    seen = [0]

    def count(event):
        seen[0] += 1

    engine.bus.subscribe(cs.Event, count)
    marks.clear()
    gc.collect()
    tracemalloc.start()
    try:
        result = asyncio.run(engine.run(memory_loop(1, 0, 3_000)))
    finally:
        tracemalloc.stop()
    assert result == 2_999
    # Run events, the first iteration's single node, then 11 nodes x (Started, Finished) per iteration
    assert seen[0] == 2 + 2 + 2_999 * 22
    assert engine.stats.hot_plan_hits == 2_998
    assert marks[3_000] - marks[1_000] < 256 * 1024
