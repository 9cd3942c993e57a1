"""Retry and cache policies."""

from __future__ import annotations

import asyncio

import pytest

import cascade as cs


class Boom(Exception):
    pass


def flaky_task(failures: int, *, is_async: bool = False):
    """A task failing ``failures`` times (then returning the attempt count); records what it raised."""
    state = {"calls": 0, "raised": []}

    def reset():
        state["calls"] = 0
        state["raised"] = []

    state["reset"] = reset

    def body(x):
        state["calls"] += 1
        if state["calls"] <= failures:
            exc = Boom(f"attempt {state['calls']} failed for {x}")
            state["raised"].append(exc)
            raise exc
        return (x, state["calls"])

    if is_async:
        async def abody(x):
            await asyncio.sleep(0)
            return body(x)

        return cs.task(name="flaky")(abody), state
    return cs.task(name="flaky")(body), state


@pytest.mark.asyncio
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_retry_succeeds_within_max_attempts(runner, is_async):
    flaky, state = flaky_task(2, is_async=is_async)
    runner.on_reset(state["reset"])
    rec = runner.recorder()
    assert await runner.run(flaky(7).with_retry(max_attempts=3)) == (7, 3)
    assert state["calls"] == 3
    retrying = rec.of(cs.TaskRetrying)
    assert [e.attempt for e in retrying] == [2, 3]
    assert [e.attempt for e in rec.of(cs.TaskExecutionStarted)] == [1, 2, 3]
    assert retrying[0].error == repr(state["raised"][0])
    assert [e.status for e in rec.of(cs.TaskExecutionFinished)] == ["Succeeded"]


@pytest.mark.asyncio
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_retry_exhausted_propagates_the_same_exception(runner, is_async):
    flaky, state = flaky_task(100, is_async=is_async)
    runner.on_reset(state["reset"])
    rec = runner.recorder()
    with pytest.raises(Boom) as info:
        await runner.run(flaky(1).with_retry(max_attempts=3))
    assert state["calls"] == 3  # max_attempts is the total, the first attempt included
    assert info.value is state["raised"][-1]
    assert type(info.value) is Boom
    assert str(info.value) == "attempt 3 failed for 1"
    assert len(rec.of(cs.TaskRetrying)) == 2
    assert [e.status for e in rec.of(cs.TaskExecutionFinished)] == ["Failed"]


@pytest.mark.asyncio
async def test_max_attempts_one_means_no_retry(runner):
    flaky, state = flaky_task(1)
    runner.on_reset(state["reset"])
    rec = runner.recorder()
    with pytest.raises(Boom, match="attempt 1 failed"):
        await runner.run(flaky(1).with_retry(max_attempts=1))
    assert state["calls"] == 1
    assert rec.of(cs.TaskRetrying) == []


@pytest.mark.asyncio
async def test_without_retry_a_failure_is_not_retried(runner):
    flaky, state = flaky_task(1)
    runner.on_reset(state["reset"])
    with pytest.raises(Boom) as info:
        await runner.run(flaky(1))
    assert state["calls"] == 1
    assert info.value is state["raised"][0]


@pytest.mark.asyncio
async def test_retry_delays_follow_backoff(runner):
    flaky, state = flaky_task(3)
    runner.on_reset(state["reset"])
    rec = runner.recorder(cs.TaskRetrying)
    assert await runner.run(flaky(0).with_retry(max_attempts=4, delay=0.001, backoff=2.0)) == (0, 4)
    assert [e.delay for e in rec.events] == [0.001, 0.002, 0.004]


@pytest.mark.asyncio
async def test_mapped_retry_applies_to_each_element(runner):
    flaky, state = flaky_task(1)
    runner.on_reset(state["reset"])
    rec = runner.recorder(cs.TaskRetrying)
    result = await runner.run(flaky.map(x=["a", "b"]).with_retry(max_attempts=2))
    # the first call fails once (calls=1), then every call succeeds
    assert result == [("a", 2), ("b", 3)]
    assert len(rec.events) == 1


def counting_task(name: str = "cached"):
    calls: list[tuple] = []

    @cs.task(name=name)
    def body(x, y=0):
        calls.append((x, y))
        return x * 10 + y

    return body, calls


@pytest.mark.asyncio
async def test_cache_hit_skips_execution(any_engine, make_recorder):
    fn, calls = counting_task()
    cache = cs.InMemoryCache()
    rec = make_recorder(any_engine.bus)
    assert await any_engine.run(fn(1, y=2).with_cache(cache)) == 12
    assert await any_engine.run(fn(1, y=2).with_cache(cache)) == 12
    assert calls == [(1, 2)]
    finished = rec.of(cs.TaskExecutionFinished)
    assert [e.status for e in finished] == ["Succeeded", "Cached"]
    assert len(rec.of(cs.TaskExecutionStarted)) == 1
    assert len(cache) == 1


@pytest.mark.asyncio
async def test_cache_key_covers_every_literal(any_engine):
    fn, calls = counting_task()
    cache = cs.InMemoryCache()
    assert await any_engine.run(fn(1, y=2).with_cache(cache)) == 12
    assert await any_engine.run(fn(1, y=3).with_cache(cache)) == 13
    assert await any_engine.run(fn(2, y=2).with_cache(cache)) == 22
    assert await any_engine.run(fn(1, y=2).with_cache(cache)) == 12
    assert calls == [(1, 2), (1, 3), (2, 2)]


@pytest.mark.asyncio
async def test_cache_key_covers_resolved_lazy_inputs(any_engine):
    fn, calls = counting_task()

    @cs.task
    def value(v):
        return v

    cache = cs.InMemoryCache()
    assert await any_engine.run(fn(value(4)).with_cache(cache)) == 40
    assert await any_engine.run(fn(value(4)).with_cache(cache)) == 40
    assert await any_engine.run(fn(value(5)).with_cache(cache)) == 50
    assert await any_engine.run(fn(4).with_cache(cache)) == 40  # same resolved input as value(4)
    assert calls == [(4, 0), (5, 0)]


@pytest.mark.asyncio
async def test_cache_key_covers_the_task(any_engine):
    first, first_calls = counting_task("first")
    second, second_calls = counting_task("second")
    cache = cs.InMemoryCache()
    assert await any_engine.run(first(1).with_cache(cache)) == 10
    assert await any_engine.run(second(1).with_cache(cache)) == 10
    assert first_calls == [(1, 0)] and second_calls == [(1, 0)]


@pytest.mark.asyncio
async def test_cache_with_unhashable_inputs(any_engine):
    calls = []

    @cs.task
    def total(xs):
        calls.append(xs)
        return sum(xs)

    cache = cs.InMemoryCache()
    assert await any_engine.run(total([1, 2]).with_cache(cache)) == 3
    assert await any_engine.run(total([1, 2]).with_cache(cache)) == 3
    assert await any_engine.run(total([1, 3]).with_cache(cache)) == 4
    assert calls == [[1, 2], [1, 3]]


@pytest.mark.asyncio
async def test_cache_is_shared_across_engines_only_through_the_policy():
    fn, calls = counting_task()
    cache = cs.InMemoryCache()
    assert await cs.Engine().run(fn(3).with_cache(cache)) == 30
    assert await cs.Engine(hot_plans=False).run(fn(3).with_cache(cache)) == 30
    assert await cs.Engine().run(fn(3)) == 30
    assert calls == [(3, 0), (3, 0)]


def test_in_memory_cache_is_a_bounded_lru_cache_policy():
    cache = cs.InMemoryCache(maxsize=2)
    assert isinstance(cache, cs.CachePolicy)
    assert cache.get("a") == (False, None)
    cache.set("a", 1)
    cache.set("b", 2)
    assert cache.get("a") == (True, 1)  # a is now the most recent
    cache.set("c", 3)
    assert cache.get("b") == (False, None)
    assert cache.get("a") == (True, 1) and cache.get("c") == (True, 3)
    assert len(cache) == 2
    with pytest.raises(ValueError):
        cs.InMemoryCache(maxsize=0)


def test_with_cache_rejects_non_policy():
    fn, _ = counting_task()
    with pytest.raises(TypeError):
        fn(1).with_cache({})


class Fatal(BaseException):
    """Not an Exception: never retried."""


@pytest.mark.asyncio
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_base_exceptions_are_not_retried(any_engine, is_async):
    attempts = []

    if is_async:
        @cs.task(name="fatal")
        async def fatal():
            attempts.append(1)
            await asyncio.sleep(0)
            raise Fatal("stop now")
    else:
        @cs.task(name="fatal")
        def fatal():
            attempts.append(1)
            raise Fatal("stop now")

    with pytest.raises(Fatal, match="stop now"):
        await any_engine.run(fatal().with_retry(max_attempts=3))
    assert attempts == [1]
