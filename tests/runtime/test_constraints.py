"""system_resources + with_constraints, pause/resume, concurrency limits."""

from __future__ import annotations

import asyncio

import pytest

import cascade as cs

from ..conftest import Gauge, Runner


@cs.task
def gather_all(*xs):
    return list(xs)


class Boom(Exception):
    pass


async def settle(predicate, rounds: int = 200) -> None:
    """Let the event loop run until ``predicate()`` holds (bounded by a number of rounds)."""
    for _ in range(rounds):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


@pytest.mark.parametrize("hot", [True, False], ids=["hot", "slow"])
@pytest.mark.asyncio
async def test_at_most_capacity_run_concurrently(hot):
    engine = cs.Engine(system_resources={"cpu": 2}, hot_plans=hot)
    gauge = Gauge()

    @cs.task
    async def work(i):
        gauge.enter()
        for _ in range(5):
            await asyncio.sleep(0)
        gauge.leave()
        return i

    target = gather_all(*[work(i).with_constraints(cpu=1) for i in range(6)])
    assert await engine.run(target) == list(range(6))
    assert await engine.run(target) == list(range(6))  # second run: hot plan when enabled
    assert gauge.calls == 12
    assert gauge.max == 2
    assert engine.constraints.available == {"cpu": 2}


@pytest.mark.asyncio
async def test_without_constraints_the_same_tasks_overlap_fully(engine):
    gauge = Gauge()

    @cs.task
    async def work(i):
        gauge.enter()
        for _ in range(5):
            await asyncio.sleep(0)
        gauge.leave()
        return i

    assert await engine.run(gather_all(*[work(i) for i in range(6)])) == list(range(6))
    assert gauge.max == 6


@pytest.mark.asyncio
async def test_amount_two_takes_the_whole_capacity(any_engine):
    engine = cs.Engine(system_resources={"cpu": 2}, hot_plans=any_engine.hot_plans)
    gauge = Gauge()

    @cs.task
    async def work(i):
        gauge.enter()
        await asyncio.sleep(0)
        gauge.leave()
        return i

    target = gather_all(*[work(i).with_constraints(cpu=2) for i in range(3)])
    assert await engine.run(target) == [0, 1, 2]
    assert gauge.max == 1


@pytest.mark.asyncio
async def test_ungoverned_names_are_not_limited_and_too_large_amount_fails():
    engine = cs.Engine(system_resources={"cpu": 2})

    @cs.task(name="work")
    def work():
        return "ok"

    assert await engine.run(work().with_constraints(gpu=100)) == "ok"
    with pytest.raises(cs.ResourceError) as info:
        await engine.run(work().with_constraints(cpu=3))
    assert "work" in str(info.value) and "cpu" in str(info.value)
    assert engine.constraints.available == {"cpu": 2}


@pytest.mark.parametrize("mode", ["slow", "hot", "warm"])
@pytest.mark.asyncio
async def test_slots_released_after_failure(mode):
    runner = Runner(mode, system_resources={"cpu": 2})
    engine = runner.engine
    started = asyncio.Event()
    runner.on_reset(started.clear)

    @cs.task
    async def slow_ok():
        started.set()
        await asyncio.Event().wait()

    @cs.task
    async def fail():
        await started.wait()
        raise Boom("no")

    target = gather_all(slow_ok().with_constraints(cpu=1), fail().with_constraints(cpu=1))
    with pytest.raises(Boom):
        await asyncio.wait_for(runner.run(target), timeout=10)
    assert engine.constraints.available == {"cpu": 2}
    # the engine is still usable at full capacity
    gauge = Gauge()

    @cs.task
    async def work(i):
        gauge.enter()
        await asyncio.sleep(0)
        gauge.leave()
        return i

    assert await engine.run(gather_all(*[work(i).with_constraints(cpu=1) for i in range(4)])) == [0, 1, 2, 3]
    assert gauge.max == 2


@pytest.mark.parametrize("mode", ["slow", "hot", "warm"])
@pytest.mark.asyncio
async def test_slots_released_after_failure_while_a_call_waits_for_a_slot(mode):
    runner = Runner(mode, system_resources={"cpu": 2})
    engine = runner.engine
    holders = Gauge()
    waiter_ran = []
    runner.on_reset(waiter_ran.clear)
    runner.on_reset(lambda: setattr(holders, "current", 0))

    @cs.task
    async def holder():
        holders.enter()
        await asyncio.Event().wait()

    @cs.task
    async def fail():
        await settle(lambda: holders.current == 2)
        for _ in range(5):
            await asyncio.sleep(0)
        raise Boom("no")

    @cs.task
    async def waiter():
        waiter_ran.append(1)

    # both slots are held until the run fails, so the third constrained call is still waiting
    target = gather_all(holder().with_constraints(cpu=1), holder().with_constraints(cpu=1), fail(),
                        waiter().with_constraints(cpu=1))
    with pytest.raises(Boom):
        await asyncio.wait_for(runner.run(target), timeout=10)
    assert waiter_ran == []
    assert engine.constraints.available == {"cpu": 2}


@pytest.mark.parametrize("hot", [True, False], ids=["hot", "slow"])
@pytest.mark.asyncio
async def test_slots_released_after_cancellation(hot):
    engine = cs.Engine(system_resources={"cpu": 2}, hot_plans=hot)
    running = Gauge()
    never = asyncio.Event()

    @cs.task
    async def block(i):
        running.enter()
        await never.wait()

    target = gather_all(*[block(i).with_constraints(cpu=1) for i in range(3)])
    run_task = asyncio.create_task(engine.run(target))
    await settle(lambda: running.current == 2)
    for _ in range(10):
        await asyncio.sleep(0)
    assert running.calls == 2  # the third waits for a slot
    assert engine.constraints.available == {"cpu": 0}
    run_task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run_task
    assert engine.constraints.available == {"cpu": 2}
    assert engine.constraints.capacity == {"cpu": 2}


@pytest.mark.asyncio
async def test_constraint_wait_emits_task_blocked(make_recorder):
    engine = cs.Engine(system_resources={"cpu": 1})
    rec = make_recorder(engine.bus, cs.TaskBlocked)

    @cs.task(name="work")
    async def work(i):
        await asyncio.sleep(0)
        return i

    target = gather_all(work(1).with_constraints(cpu=1), work(2).with_constraints(cpu=1))
    assert await engine.run(target) == [1, 2]
    assert [(e.task_name, e.reason) for e in rec.events] == [("work", "constraints")]


@pytest.mark.parametrize("hot", [True, False], ids=["hot", "slow"])
@pytest.mark.asyncio
async def test_pause_holds_a_task_until_resume(hot, make_recorder):
    engine = cs.Engine(hot_plans=hot)
    rec = make_recorder(engine.bus, cs.TaskBlocked)
    calls = []

    @cs.task(name="held")
    def held(x):
        calls.append(x)
        return x * 2

    @cs.task(name="free")
    def free(x):
        calls.append(("free", x))
        return x

    engine.pause(held)
    run_task = asyncio.create_task(engine.run(gather_all(free(1), held(free(2)))))
    await settle(lambda: rec.events)
    for _ in range(20):
        await asyncio.sleep(0)
    assert not run_task.done()
    assert calls == [("free", 1), ("free", 2)]
    assert [(e.task_name, e.reason) for e in rec.events] == [("held", "paused")]
    engine.resume(held)
    assert await asyncio.wait_for(run_task, timeout=10) == [1, 4]
    assert calls == [("free", 1), ("free", 2), 2]


@pytest.mark.asyncio
async def test_global_pause_and_pause_by_name(any_engine, make_recorder):
    rec = make_recorder(any_engine.bus, cs.TaskBlocked)

    @cs.task(name="named")
    def named():
        return "done"

    any_engine.pause()
    run_task = asyncio.create_task(any_engine.run(named()))
    await settle(lambda: rec.events)
    any_engine.pause("named")
    any_engine.resume()
    for _ in range(20):
        await asyncio.sleep(0)
    assert not run_task.done()  # still paused by name
    any_engine.resume("named")
    assert await asyncio.wait_for(run_task, timeout=10) == "done"


@pytest.mark.asyncio
async def test_concurrency_limit_per_task(any_engine):
    gauge = Gauge()

    @cs.task(name="limited")
    async def limited(i):
        gauge.enter()
        for _ in range(3):
            await asyncio.sleep(0)
        gauge.leave()
        return i

    any_engine.set_concurrency_limit(limited, 3)
    assert await any_engine.run(gather_all(*[limited(i) for i in range(8)])) == list(range(8))
    assert gauge.max == 3
    any_engine.set_concurrency_limit(limited, None)
    gauge.max = 0
    assert await any_engine.run(gather_all(*[limited(i) for i in range(8)])) == list(range(8))
    assert gauge.max == 8
    with pytest.raises(ValueError):
        any_engine.set_concurrency_limit(limited, 0)


def test_constraint_validation():
    with pytest.raises(ValueError):
        cs.Engine(system_resources={"cpu": -1})

    @cs.task(name="t")
    def t():
        return 1

    with pytest.raises(ValueError, match="t"):
        t().with_constraints(cpu=-1)


@pytest.mark.asyncio
async def test_an_amount_over_capacity_fails_before_any_task_runs():
    ran = []

    @cs.task
    def first():
        ran.append("first")
        return 1

    @cs.task
    def greedy(x):
        ran.append("greedy")
        return x

    engine = cs.Engine(system_resources={"cpu": 2})
    with pytest.raises(cs.ResourceError, match=r"greedy.*cpu=3.*system_resources\['cpu'\]=2"):
        await engine.run(greedy(first()).with_constraints(cpu=3))
    assert ran == []


@pytest.mark.asyncio
async def test_an_ungoverned_constraint_does_not_queue_behind_waiters():
    """Amounts of capacities the engine does not have are compiled away: such a call never waits,
    even while calls that do need a governed capacity queue for it."""
    gate = asyncio.Event()
    order = []

    @cs.task
    async def holder(tag):
        order.append(f"start {tag}")
        await gate.wait()
        return tag

    @cs.task
    def free():
        order.append("free")
        return "free"

    @cs.task
    def collect(*xs):
        return xs

    engine = cs.Engine(system_resources={"cpu": 1})
    run = asyncio.ensure_future(engine.run(collect(
        holder("a").with_constraints(cpu=1), holder("b").with_constraints(cpu=1),
        free().with_constraints(gpu=1),
    )))
    for _ in range(20):
        await asyncio.sleep(0)
    assert "free" in order and "start b" not in order  # b queues, the gpu-free call did not
    gate.set()
    assert await run == ("a", "b", "free")
