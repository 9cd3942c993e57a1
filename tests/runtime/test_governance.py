"""Pauses, concurrency and rate limits on scopes (``global``, ``task:<glob>``), TTLs, the listing of
what is in force, per-waiter wake-ups and the report of a scope that matches no task."""

from __future__ import annotations

import asyncio
import logging

import pytest

import cascade as cs
from cascade.runtime.constraints import parse_scope

from ..conftest import Gauge


@cs.task
def gather_all(*xs):
    return list(xs)


async def settle(predicate, rounds: int = 500) -> None:
    for _ in range(rounds):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


async def idle(rounds: int = 30) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


# -- scopes ---------------------------------------------------------------------------------------

def test_scopes_are_parsed_to_a_canonical_form():
    @cs.task
    def fetch_star(x):
        return x

    assert parse_scope(None) == "global"
    assert parse_scope("global") == "global"
    assert parse_scope("task:fetch*") == "task:fetch*"
    assert parse_scope("fetch") == "task:fetch"  # a bare name is short for task:<name>
    assert parse_scope(fetch_star) == "task:fetch_star"
    assert parse_scope(cs.task(name="a*b")(lambda: 1)) == "task:a[*]b"  # a task means exactly its name


@pytest.mark.parametrize("bad", ["project:x", "task:", "task:a/b", "task:a+", "task:#", " "])
def test_malformed_scopes_are_errors_naming_the_scope(bad):
    engine = cs.Engine()
    with pytest.raises(ValueError, match="scope"):
        engine.constraints.pause(bad)
    assert engine.constraints.active() == []
    assert not engine.constraints.gating


def test_bad_numbers_are_errors_naming_scope_and_argument():
    cm = cs.Engine().constraints
    cases = [
        (dict(concurrency=0), "concurrency limit for 'task:t'"),
        (dict(concurrency=1.5), "concurrency limit for 'task:t'"),
        (dict(rate=float("nan")), "rate limit for 'task:t'"),
        (dict(rate=-1), "rate limit for 'task:t'"),
        (dict(rate=1, burst=0), "burst for 'task:t'"),
        (dict(concurrency=1, ttl=0), "ttl for 'task:t'"),
        (dict(concurrency=1, ttl=float("inf")), "ttl for 'task:t'"),
        ({}, "give concurrency"),
        (dict(burst=2), "burst=... needs rate"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(")):
            cm.limit("task:t", **kwargs)
    with pytest.raises(ValueError, match="unknown constraint kind 'speed'"):
        cm.set("global", "speed", 1)
    assert cm.active() == []


# -- pause by glob, hot and slow ------------------------------------------------------------------

@pytest.mark.asyncio
async def test_pause_by_glob_holds_every_matching_task_and_only_those(any_engine, make_recorder):
    rec = make_recorder(any_engine.bus, cs.TaskBlocked)
    ran: list[str] = []

    @cs.task
    async def fetch_a(n):
        ran.append(f"a{n}")
        return n

    @cs.task
    async def fetch_b(n):
        ran.append(f"b{n}")
        return n

    @cs.task
    async def store(n):
        ran.append(f"s{n}")
        return n

    any_engine.constraints.pause("task:fetch*")
    run = asyncio.create_task(any_engine.run(gather_all(fetch_a(1), fetch_b(2), store(3))))
    await settle(lambda: len(rec.events) == 2)
    await idle()
    assert ran == ["s3"]
    assert sorted((e.task_name, e.reason) for e in rec.events) == [("fetch_a", "paused"), ("fetch_b", "paused")]
    assert [(c.scope, c.kind) for c in any_engine.constraints.active()] == [("task:fetch*", "pause")]
    any_engine.constraints.resume("task:fetch*")
    assert await asyncio.wait_for(run, 10) == [1, 2, 3]
    assert sorted(ran) == ["a1", "b2", "s3"]
    assert not any_engine.constraints.gating


@cs.task
async def tick(n):
    await asyncio.sleep(0)
    return n


@cs.task
async def ticking_loop(n, progress):
    progress.append(n)
    if n == 0:
        return "done"
    return ticking_loop(await_value(tick(n - 1)), progress)


@cs.task
def await_value(x):
    return x


@pytest.mark.asyncio
async def test_global_pause_stops_a_hot_loop_and_resume_finishes_it(any_engine):
    progress: list[int] = []
    run = asyncio.create_task(any_engine.run(ticking_loop(300, progress)))
    await settle(lambda: len(progress) > 20)
    any_engine.constraints.pause("global")
    await idle(5)  # a step that already started may finish
    seen = len(progress)
    await idle(50)
    assert len(progress) == seen  # no progress while paused
    assert not run.done()
    any_engine.constraints.resume("global")
    assert await asyncio.wait_for(run, 10) == "done"
    assert progress[-1] == 0 and len(progress) == 301
    if any_engine.hot_plans:
        assert any_engine.stats.hot_plan_hits > 250


# -- concurrency on a glob across several task names ----------------------------------------------

@pytest.mark.asyncio
async def test_concurrency_limit_on_a_glob_counts_every_matching_task(any_engine):
    gauge = Gauge()

    @cs.task
    async def io_read(i):
        gauge.enter()
        await idle(3)
        gauge.leave()
        return i

    @cs.task
    async def io_write(i):
        gauge.enter()
        await idle(3)
        gauge.leave()
        return -i

    any_engine.constraints.limit("task:io_*", concurrency=2)
    calls = [io_read(i) for i in range(5)] + [io_write(i) for i in range(5)]
    assert await any_engine.run(gather_all(*calls)) == [0, 1, 2, 3, 4, 0, -1, -2, -3, -4]
    assert gauge.max == 2 and gauge.calls == 10
    any_engine.constraints.clear("task:io_*")
    gauge.max = 0
    await any_engine.run(gather_all(*[io_read(i) for i in range(5)]))
    assert gauge.max == 5


# -- rate limits ----------------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_rate_limit_lets_burst_calls_start_then_holds_the_rest(any_engine, make_recorder):
    rec = make_recorder(any_engine.bus, cs.TaskBlocked)
    started: list[int] = []

    @cs.task
    async def call(i):
        started.append(i)
        return i

    # 0.01 tokens/s: after the burst of 3, the next token is 100 s away (no clock in the assertion)
    any_engine.constraints.limit("task:call", rate=0.01, burst=3)
    run = asyncio.create_task(any_engine.run(gather_all(*[call(i) for i in range(5)])))
    await settle(lambda: len(rec.events) == 2)
    await idle()
    assert started == [0, 1, 2]
    assert [(e.task_name, e.reason) for e in rec.events] == [("call", "rate_limit")] * 2
    any_engine.constraints.clear("task:call", "rate")
    assert await asyncio.wait_for(run, 10) == [0, 1, 2, 3, 4]


@pytest.mark.asyncio
async def test_rate_limit_refills_tokens_over_time():
    engine = cs.Engine()
    started: list[int] = []

    @cs.task
    async def quick(i):
        started.append(i)
        return i

    engine.constraints.limit("task:quick", rate=200, burst=1)  # a token every 5 ms
    assert await asyncio.wait_for(engine.run(gather_all(*[quick(i) for i in range(6)])), 10) == list(range(6))
    assert started == list(range(6))  # FIFO: served in arrival order


@pytest.mark.asyncio
async def test_rate_and_concurrency_of_one_scope_are_separate_constraints():
    engine = cs.Engine()
    cm = engine.constraints
    cm.limit("task:x*", concurrency=2)
    cm.limit("task:x*", rate=5.0, burst=2)
    cm.limit("task:x*", rate=7.0)  # replaces the rate limit only
    listed = [(c.scope, c.kind, c.limit, c.rate, c.burst) for c in cm.active()]
    assert listed == [("task:x*", "concurrency", 2, None, None), ("task:x*", "rate", None, 7.0, 1)]
    assert cm.clear("task:x*", "rate") is True
    assert [(c.kind, c.limit) for c in cm.active()] == [("concurrency", 2)]
    assert cm.clear("task:x*", "rate") is False


# -- TTL ------------------------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_a_pause_with_ttl_lapses_by_itself(any_engine, make_recorder):
    rec = make_recorder(any_engine.bus, cs.ConstraintChanged)

    @cs.task
    async def later(x):
        return x

    any_engine.constraints.pause("task:later", ttl=0.05)
    [c] = any_engine.constraints.active()
    assert c.kind == "pause" and c.expires_in is not None and 0 < c.expires_in <= 0.05
    assert await asyncio.wait_for(any_engine.run(later(7)), 10) == 7
    assert any_engine.constraints.active() == []
    assert not any_engine.constraints.gating
    assert [(e.scope, e.kind, e.value, e.source) for e in rec.events] == [
        ("task:later", "pause", {}, "api"), ("task:later", "pause", None, "ttl"),
    ]


@pytest.mark.asyncio
async def test_ttl_lapses_with_nobody_waiting_and_gating_drops():
    engine = cs.Engine()
    engine.constraints.limit("global", concurrency=3, ttl=0.02)
    assert engine.constraints.gating
    await settle(lambda: not engine.constraints.gating, rounds=10_000)  # the timer fired
    assert engine.constraints.active() == []


def test_an_expires_at_in_the_past_puts_nothing_in_force():
    import time

    cm = cs.Engine().constraints
    cm.pause("global")
    cm.set("global", "pause", expires_at=time.time() - 1)
    assert cm.active() == [] and not cm.gating


# -- wake-ups are per waiter ----------------------------------------------------------------------

@pytest.mark.asyncio
async def test_two_runs_held_by_different_constraints_each_get_their_wake_up(any_engine):
    @cs.task
    async def alpha(x):
        return ("a", x)

    @cs.task
    async def beta(x):
        await asyncio.sleep(0)
        return ("b", x)

    cm = any_engine.constraints
    cm.pause("task:alpha")
    cm.limit("task:beta", concurrency=1)
    cm.pause("task:beta")
    ra = asyncio.create_task(any_engine.run(gather_all(alpha(1), alpha(2))))
    rb = asyncio.create_task(any_engine.run(gather_all(beta(1), beta(2), beta(3))))
    await settle(lambda: cm.waiting == 5)
    cm.resume("task:beta")  # wakes beta's waiters only; alpha's stay held
    assert await asyncio.wait_for(rb, 10) == [("b", 1), ("b", 2), ("b", 3)]
    assert not ra.done()
    cm.resume("task:alpha")
    assert await asyncio.wait_for(ra, 10) == [("a", 1), ("a", 2)]
    assert cm.waiting == 0


@pytest.mark.asyncio
async def test_cancelled_waiters_free_their_place_and_counts(any_engine):
    @cs.task
    async def slot(x):
        await asyncio.sleep(0)
        return x

    cm = any_engine.constraints
    cm.limit("task:slot", concurrency=1)
    cm.pause("task:slot")
    doomed = asyncio.create_task(any_engine.run(gather_all(slot(1), slot(2))))
    await settle(lambda: cm.waiting == 2)
    doomed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await doomed
    cm.resume("task:slot")
    assert await asyncio.wait_for(any_engine.run(gather_all(slot(3), slot(4))), 10) == [3, 4]
    assert cm.waiting == 0 and cm._running == {}
    assert [e.running for e in cm._entries.values()] == [0]


# -- a scope that matches no task is reported -----------------------------------------------------

def test_a_scope_matching_no_task_is_reported(caplog, make_recorder):
    engine = cs.Engine()
    rec = make_recorder(engine.bus, cs.StaticAnalysisWarning)

    @cs.task
    def ingest_one(x):
        return x

    with caplog.at_level(logging.WARNING, logger="cascade.constraints"):
        engine.constraints.pause("task:ingest_*")  # matches ingest_one: nothing to report
        engine.pause("injest")  # a typo
    assert [(e.code, e.task_name, e.run_id) for e in rec.events] == [("CS-W010", "task:injest", "")]
    assert "matches no task" in rec.events[0].message
    assert [r.getMessage() for r in caplog.records] == [rec.events[0].message]
    # the constraint is still in force (the task may be defined later)
    assert [c.scope for c in engine.constraints.active()] == ["task:ingest_*", "task:injest"]


def test_a_task_defined_in_a_function_is_matched_by_its_plain_name(make_recorder):
    engine = cs.Engine()
    rec = make_recorder(engine.bus, cs.StaticAnalysisWarning)

    def factory():
        @cs.task
        def nested_fetch(x):
            return x

        return nested_fetch

    task = factory()
    engine.pause("nested_fetch")
    engine.pause("task:nested_*")
    assert rec.events == []
    assert cs.run(task(5)) == 5


# -- legacy API ---------------------------------------------------------------------------------------

def test_engine_pause_and_set_concurrency_limit_are_scopes_too():
    engine = cs.Engine()

    @cs.task
    def legacy(x):
        return x

    engine.pause(legacy)
    engine.set_concurrency_limit("legacy", 2)
    engine.pause()
    assert [(c.scope, c.kind) for c in engine.constraints.active()] == [
        ("global", "pause"), ("task:legacy", "pause"), ("task:legacy", "concurrency"),
    ]
    engine.resume()
    engine.resume(legacy)
    engine.set_concurrency_limit(legacy, None)
    assert engine.constraints.active() == [] and not engine.constraints.gating


@pytest.mark.asyncio
async def test_waiters_cancelled_behind_a_paused_one_do_not_pile_up():
    engine = cs.Engine()
    cm = engine.constraints

    @cs.task
    async def parked(x):
        return x

    cm.pause("task:parked")
    keeper = asyncio.ensure_future(engine.run(parked(0)))  # stays first in the queue
    await settle(lambda: cm.waiting == 1)
    for i in range(1, 501):
        run = asyncio.ensure_future(engine.run(parked(i)))
        await settle(lambda: cm.waiting == 2)  # noqa: B023 (awaited in this iteration)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
    assert cm.waiting == 1
    assert len(cm._queues["parked"]) <= 64  # dead entries are dropped in batches, not kept forever
    cm.resume("task:parked")
    assert await asyncio.wait_for(keeper, 10) == 0
    assert cm._queues == {} and cm._running == {}


def test_limit_is_all_or_nothing():
    cm = cs.Engine().constraints
    with pytest.raises(ValueError, match="rate limit for 'task:t'"):
        cm.limit("task:t", concurrency=2, rate=-1)
    with pytest.raises(ValueError, match="ttl for 'task:t'"):
        cm.limit("task:t", concurrency=2, ttl=-1)
    assert cm.active() == [] and not cm.gating
