"""A cancellation stays a cancellation: waiter bookkeeping under every release/cancel interleaving."""

from __future__ import annotations

import asyncio

import pytest

import cascade as cs
from cascade.runtime.constraints import ConstraintManager


async def _waiting(cm: ConstraintManager, amounts: dict[str, float]) -> asyncio.Task[None]:
    """A Task that is queued as a waiter of ``cm`` (it has run up to its ``await``)."""
    task = asyncio.ensure_future(cm.acquire(amounts))
    await asyncio.sleep(0)
    assert not task.done() and len(cm._waiters) >= 1
    return task


@pytest.mark.asyncio
async def test_waiter_cancelled_in_the_cycle_of_a_release_raises_cancelled_and_frees_the_slot():
    cm = ConstraintManager({"slot": 1})
    await cm.acquire({"slot": 1})
    waiter = await _waiting(cm, {"slot": 1})
    waiter.cancel()  # its future is cancelled now; its ``except`` runs only in the next cycle
    cm.release({"slot": 1})  # ... after this release already dropped the dead entry
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert cm.available == {"slot": 1}
    assert not cm._waiters
    assert cm.try_acquire({"slot": 1})


@pytest.mark.asyncio
async def test_waiter_cancelled_after_its_grant_gives_the_grant_to_the_next_waiter():
    cm = ConstraintManager({"slot": 1})
    await cm.acquire({"slot": 1})
    first = await _waiting(cm, {"slot": 1})
    second = await _waiting(cm, {"slot": 1})
    cm.release({"slot": 1})  # grants ``first`` ...
    first.cancel()  # ... which is cancelled before it could resume
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.wait_for(second, 1)  # the grant went on to the next waiter
    assert cm.available == {"slot": 0}
    cm.release({"slot": 1})
    assert cm.available == {"slot": 1}


@pytest.mark.asyncio
async def test_cancelled_head_waiter_lets_the_waiters_behind_it_that_fit_go():
    cm = ConstraintManager({"a": 2})
    await cm.acquire({"a": 1})
    big = await _waiting(cm, {"a": 2})  # does not fit: holds up the queue (FIFO)
    small = await _waiting(cm, {"a": 1})  # would fit, but waits behind ``big``
    big.cancel()
    with pytest.raises(asyncio.CancelledError):
        await big
    await asyncio.wait_for(small, 1)
    assert cm.available == {"a": 0}
    assert not cm._waiters


@pytest.mark.asyncio
async def test_a_closed_waiter_coroutine_leaves_no_dead_entry_blocking_others():
    cm = ConstraintManager({"slot": 1})
    await cm.acquire({"slot": 1})
    coro = cm.acquire({"slot": 1})
    coro.send(None)  # queued, suspended on its future
    coro.close()  # GeneratorExit at the await, its future still pending
    cm.release({"slot": 1})
    assert cm.available == {"slot": 1}
    assert cm.try_acquire({"slot": 1})


@pytest.mark.parametrize("order", ["release-first", "cancel-first"])
@pytest.mark.parametrize("hot", [True, False], ids=["hot", "slow"])
@pytest.mark.asyncio
async def test_run_cancelled_while_waiting_for_a_slot_raises_cancelled_error(hot, order):
    engine = cs.Engine(system_resources={"slot": 1}, hot_plans=hot)
    gate = asyncio.Event()

    @cs.task
    async def hold():
        await gate.wait()
        return "held"

    @cs.task
    async def want():
        return "got"

    holder = asyncio.ensure_future(engine.run(hold().with_constraints(slot=1)))
    waiter = asyncio.ensure_future(engine.run(want().with_constraints(slot=1)))
    for _ in range(20):
        await asyncio.sleep(0)
    assert engine.constraints._waiters, "the second run should be waiting for the slot"
    # both in one loop cycle: the holder releases the slot in the step woken by ``gate``
    if order == "release-first":
        gate.set()
        waiter.cancel()
    else:
        waiter.cancel()
        gate.set()
    assert await holder == "held"
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert engine.constraints.available == {"slot": 1}
    assert await engine.run(want().with_constraints(slot=1)) == "got"


@pytest.mark.parametrize("gap", [1, 2, 3], ids=lambda g: f"{g}-cycles-apart")
@pytest.mark.parametrize("hot", [True, False], ids=["hot", "slow"])
@pytest.mark.asyncio
async def test_a_second_cancellation_does_not_cut_in_flight_cleanups_short(hot, gap):
    engine = cs.Engine(hot_plans=hot)
    cleaned: list[int] = []

    @cs.task
    async def slow(i):
        try:
            await asyncio.Event().wait()
        finally:
            for _ in range(4):  # an async cleanup, several cycles long
                await asyncio.sleep(0)
            cleaned.append(i)

    @cs.task
    def ident(x):
        return x

    @cs.task
    def combine(a, b, c):
        return (a, b, c)

    # slow(1) and slow(2) run in Tasks of their own (ident(7) does not wait for them)
    run = asyncio.ensure_future(engine.run(combine(slow(1), slow(2), ident(7))))
    for _ in range(5):
        await asyncio.sleep(0)
    run.cancel()
    for _ in range(gap):
        await asyncio.sleep(0)
    run.cancel()  # again, while the steps are still unwinding
    with pytest.raises(asyncio.CancelledError):
        await run
    assert sorted(cleaned) == [1, 2]  # both cleanups ran to the end before run() raised


@pytest.mark.parametrize("hot", [True, False], ids=["hot", "slow"])
@pytest.mark.asyncio
async def test_many_concurrent_runs_cancelled_at_staggered_points(hot):
    engine = cs.Engine(system_resources={"slot": 3}, hot_plans=hot)

    @cs.task
    async def work(i, k):
        for _ in range(1 + k % 4):
            await asyncio.sleep(0)
        return i

    @cs.task
    def loop(i, k, acc=0):
        if k == 0:
            return acc
        return loop(i, k - 1, add(acc, work(i, k).with_constraints(slot=1 + (i + k) % 2)))

    @cs.task
    def add(a, b):
        return a + b

    n = 300
    runs = [asyncio.ensure_future(engine.run(loop(i, 5))) for i in range(n)]
    victims = set(range(0, n, 3))
    for cycle in range(60):
        for i in victims:
            if i % 60 == cycle:
                runs[i].cancel()
        await asyncio.sleep(0)
    outcomes = await asyncio.gather(*runs, return_exceptions=True)
    for i, out in enumerate(outcomes):
        if i in victims and not isinstance(out, int):
            assert isinstance(out, asyncio.CancelledError), (i, out)
        else:
            assert out == 5 * i, (i, out)
    assert sum(isinstance(o, asyncio.CancelledError) for o in outcomes) > n // 6  # most victims were mid-run
    assert engine.constraints.available == {"slot": 3}
    assert engine.constraints.try_acquire({"slot": 3})


@pytest.mark.asyncio
async def test_cancelled_waiters_behind_a_stuck_head_do_not_pile_up():
    cm = ConstraintManager({"a": 2})
    await cm.acquire({"a": 1})
    stuck = await _waiting(cm, {"a": 2})  # never fits while the first unit is held
    for _ in range(10):
        batch = [asyncio.ensure_future(cm.acquire({"a": 1})) for _ in range(50)]
        await asyncio.sleep(0)
        for t in batch:
            t.cancel()
        await asyncio.gather(*batch, return_exceptions=True)
    assert len(cm._waiters) <= 33  # the stuck head and at most a few dead entries
    cm.release({"a": 1})
    await asyncio.wait_for(stuck, 1)
    assert cm.available == {"a": 0} and not cm._waiters
