"""The compiled plan of a one-call iteration (``cascade.runtime.program``), hot and slow.

A graph of one ungoverned call compiles to its own small program. Two things of that program are
visible to users: the call is awaited in the run's own task (nothing can start after it, so no Task
of its own is made for it), and a cached one-call program serves only calls of its own task, even
when another task's calls hash to the same template shape.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import cascade as cs

HOT_AND_SLOW = pytest.mark.parametrize("hot", [True, False], ids=["hot", "slow"])


@cs.task(name="pc_where")
async def where_it_runs(x: int) -> tuple[int, Any]:
    await asyncio.sleep(0)  # suspends: a call that finished at once would never need awaiting
    return x, asyncio.current_task()


@cs.task(name="pc_countdown")
async def countdown(n: int) -> Any:
    await asyncio.sleep(0)
    if n == 0:
        return ("done", asyncio.current_task())
    return countdown(n - 1)


@pytest.mark.asyncio
@HOT_AND_SLOW
async def test_a_lone_call_is_awaited_in_the_runs_own_task(hot: bool) -> None:
    engine = cs.Engine(hot_plans=hot)
    me = asyncio.current_task()
    for x in (1, 2, 3):  # the first run compiles the program, later ones reuse it when hot
        value, task = await engine.run(where_it_runs(x))
        assert value == x
        assert task is me
    if hot:
        assert engine.stats.hot_plan_hits == 2


@pytest.mark.asyncio
@HOT_AND_SLOW
async def test_a_tail_call_loop_of_lone_calls_runs_in_the_runs_own_task(hot: bool) -> None:
    engine = cs.Engine(hot_plans=hot)
    me = asyncio.current_task()
    events: list[Any] = []
    engine.bus.subscribe(cs.Event, events.append)
    status, task = await engine.run(countdown(4))
    assert status == "done"
    assert task is me
    started = [e for e in events if isinstance(e, cs.TaskExecutionStarted)]
    finished = [e for e in events if isinstance(e, cs.TaskExecutionFinished)]
    assert [e.task_name for e in started] == ["pc_countdown"] * 5
    assert [e.task_name for e in finished] == ["pc_countdown"] * 5


def _twin_tasks() -> tuple[cs.Task, cs.Task]:
    """Two tasks whose calls hash to the same template shape: they share a fingerprint (as a
    remote copy of a task does), so their shapes collide while their functions differ."""

    def double(x: int) -> int:
        return x * 2

    def negate(x: int) -> int:
        return -x

    first = cs.Task(double, name="pc_double")
    second = cs.Task(negate, name="pc_negate", fingerprint=first.fingerprint)
    return first, second


@pytest.mark.asyncio
@HOT_AND_SLOW
async def test_a_cached_lone_call_program_never_runs_a_colliding_tasks_call(hot: bool) -> None:
    double, negate = _twin_tasks()
    assert double(1)._shape == negate(1)._shape  # the collision this test is about
    engine = cs.Engine(hot_plans=hot)
    assert await engine.run(double(5)) == 10
    assert await engine.run(negate(5)) == -5  # its own function, not the cached program's
    assert await engine.run(double(6)) == 12
    assert await engine.run(negate(7)) == -7


@pytest.mark.asyncio
@HOT_AND_SLOW
async def test_a_loop_alternating_colliding_lone_calls_runs_each_its_own_function(hot: bool) -> None:
    def double(x: int) -> Any:
        return ("end", x) if x > 100 else flip(x * 2)

    def negate(x: int) -> Any:
        return twice(-x + 30)

    twice = cs.Task(double, name="pc_twice")
    flip = cs.Task(negate, name="pc_flip", fingerprint=twice.fingerprint)
    assert twice(1)._shape == flip(1)._shape
    engine = cs.Engine(hot_plans=hot)
    # by hand: twice -> flip(2) -> twice(28) -> flip(56) -> twice(-26) -> flip(-52) -> twice(82)
    # -> flip(164) -> twice(-134) -> flip(-268) -> twice(298) -> ("end", 298)
    assert await engine.run(twice(1)) == ("end", 298)
