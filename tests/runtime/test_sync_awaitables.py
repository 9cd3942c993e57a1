"""A sync task that returns a coroutine or another awaitable: its value is the awaited result.

Checked on the slow path, on a hot engine's first run and on an already-compiled hot plan (the
``runner`` fixture), through every shape that takes a different code path: the single-call
iteration, the sequential walker (chain step, independent step, suspending), the scheduler
(governed call with retries, offloaded call) and a tail call.
"""

from __future__ import annotations

import asyncio

import pytest

import cascade as cs

from ..conftest import event_key


async def double_later(x):
    await asyncio.sleep(0)
    return 2 * x


async def double_now(x):
    return 2 * x


@cs.task
def returns_coroutine(x):
    return double_later(x)


@cs.task
def returns_ready_coroutine(x):
    return double_now(x)


@cs.task
def returns_future(x):
    fut = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(fut.set_result, 2 * x)
    return fut


@cs.task
def inc(x):
    return x + 1


@cs.task
def pair(a, b):
    return (a, b)


SYNC_AWAITABLES = [returns_coroutine, returns_ready_coroutine, returns_future]
IDS = ["suspending-coroutine", "ready-coroutine", "future"]


@pytest.mark.parametrize("task", SYNC_AWAITABLES, ids=IDS)
@pytest.mark.asyncio
async def test_single_call(runner, task):
    assert await runner.run(task(5)) == 10


@pytest.mark.parametrize("task", SYNC_AWAITABLES, ids=IDS)
@pytest.mark.asyncio
async def test_chain_step(runner, task):
    assert await runner.run(inc(task(inc(1)))) == 5


@pytest.mark.parametrize("task", SYNC_AWAITABLES, ids=IDS)
@pytest.mark.asyncio
async def test_independent_steps_overlap(runner, task):
    assert await runner.run(pair(task(1), task(2))) == (2, 4)


@pytest.mark.parametrize("task", SYNC_AWAITABLES, ids=IDS)
@pytest.mark.asyncio
async def test_map_elements(runner, task):
    assert await runner.run(task.map(x=[1, 2, 3])) == [2, 4, 6]


@pytest.mark.asyncio
async def test_governed_call_with_retries_awaits_each_attempt(runner):
    attempts: list[int] = []
    runner.on_reset(attempts.clear)

    async def flaky(x):
        attempts.append(x)
        await asyncio.sleep(0)
        if len(attempts) < 3:
            raise ValueError("not yet")
        return x

    @cs.task
    def sync_flaky(x):
        return flaky(x)

    assert await runner.run(inc(sync_flaky(4).with_retry(max_attempts=3))) == 5
    assert attempts == [4, 4, 4]  # the error surfaced while awaiting, so it was retried


@pytest.mark.asyncio
async def test_offloaded_sync_task_returning_a_coroutine(runner):
    @cs.task(offload=True)
    def offloaded(x):
        return double_later(x)  # made in the worker thread, awaited on the loop

    assert await runner.run(inc(offloaded(3))) == 7


@pytest.mark.asyncio
async def test_awaited_value_may_be_a_tail_call(runner):
    async def next_step(n):
        return countdown(n - 1) if n else "done"

    @cs.task
    def countdown(n):
        return next_step(n)

    assert await runner.run(countdown(5)) == "done"


@pytest.mark.asyncio
async def test_failure_inside_the_awaitable_propagates_unchanged(runner):
    async def broken():
        await asyncio.sleep(0)
        raise KeyError("inside")

    @cs.task
    def sync_broken():
        return broken()

    with pytest.raises(KeyError) as info:
        await runner.run(inc(sync_broken()))
    assert info.value.args == ("inside",)
    assert "cascade: task 'sync_broken' failed" in info.value.__notes__


@pytest.mark.asyncio
async def test_hot_and_slow_publish_the_same_events():
    streams = []
    for hot in (False, True):
        engine = cs.Engine(hot_plans=hot)
        events: list = []
        engine.bus.subscribe(cs.Event, events.append)
        for _ in range(2):  # the second run of the hot engine takes its hot plan
            events.clear()
            assert await engine.run(pair(returns_coroutine(1), inc(returns_future(2)))) == (2, 5)
        streams.append([event_key(e) for e in events if not isinstance(e, (cs.RunStarted, cs.RunFinished))])
    assert streams[0] == streams[1]
    assert len(streams[0]) == 8  # started + finished for each of the 4 calls



# -- a cancellation thrown into the run while it awaits the returned future -----------------------
# A Task's own cancellation cancels the future it waits on; a cancellation thrown into the awaiting
# coroutine (a call that its Task never started: see executor.resume) must end the future too, as a
# coroutine's ``finally`` would end what it holds (cs.recv's future then leaves its topic).
PENDING: list[asyncio.Future] = []


@cs.task
def returns_pending(x):
    fut = asyncio.get_running_loop().create_future()
    PENDING.append(fut)
    return fut


@pytest.mark.parametrize("hot", [True, False], ids=["hot", "slow"])
@pytest.mark.parametrize("shape", ["single-call", "tail-step"])
@pytest.mark.asyncio
async def test_a_cancellation_thrown_in_while_awaiting_cancels_the_returned_future(hot, shape):
    PENDING.clear()
    target = returns_pending(1) if shape == "single-call" else inc(returns_pending(1))
    run = cs.Engine(hot_plans=hot).run(target)
    waited = run.send(None)
    while waited is not None and not PENDING:  # the slow path's scheduler may yield first
        waited = run.send(None)
    (fut,) = PENDING
    assert not fut.done()
    with pytest.raises(asyncio.CancelledError):
        run.throw(asyncio.CancelledError())
    assert fut.cancelled()


@pytest.mark.asyncio
async def test_awaited_cancels_its_pending_future_on_a_throw_or_a_close_but_not_a_finished_one():
    from cascade.runtime.executor import awaited

    loop = asyncio.get_running_loop()
    thrown, closed, done = loop.create_future(), loop.create_future(), loop.create_future()
    for fut, end in ((thrown, "throw"), (closed, "close")):
        coro = awaited(fut)
        assert coro.send(None) is fut
        if end == "throw":
            with pytest.raises(asyncio.CancelledError):
                coro.throw(asyncio.CancelledError())
        else:
            coro.close()
        assert fut.cancelled(), end
    coro = awaited(done)
    assert coro.send(None) is done
    done.set_exception(KeyError("own failure"))
    with pytest.raises(KeyError):
        coro.send(None)
    assert not done.cancelled()  # a future that failed on its own stays as it ended
