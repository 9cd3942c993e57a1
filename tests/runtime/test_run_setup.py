"""Per-run setup paid only for what a run uses: the run context, run-scope resources (the engine's
connector as a constant resource), run ids, and ``cs.recv``'s listener futures on the in-memory
connector. Each test states what the cheaper form must still do exactly as before."""

from __future__ import annotations

import asyncio
import gc
import inspect
import sys

import pytest

import cascade as cs
from cascade.adapters.connector import InMemoryConnector
from cascade.runtime.context import RunContext
from cascade.runtime.resources import CONSTANT, constant_resource

from ..conftest import Recorder


@cs.task
def add(x, y):
    return x + y


@cs.task
def countdown(n):
    return countdown(n - 1) if n else "done"


@pytest.mark.asyncio
async def test_engine_run_gives_a_coroutine_on_both_entries():
    # drive for a new template, the written-out run (Program.entry) for one the engine ran before
    engine = cs.Engine()
    for expected in ("done", "done", "done"):
        run = engine.run(countdown(2))
        assert inspect.iscoroutine(run)
        assert await run == expected
    assert engine.stats.hot_plan_hits > 0
    unawaited = engine.run(add(1, 2))
    assert inspect.iscoroutine(unawaited)
    unawaited.close()  # nothing ran: closing it is all it takes
    if sys.version_info >= (3, 12):
        assert inspect.iscoroutinefunction(cs.Engine.run)
        assert inspect.iscoroutinefunction(cs.Engine().run)
    else:  # inspect reads code flags only there; asyncio's check reads the engine's marker
        assert asyncio.iscoroutinefunction(cs.Engine.run)
        assert asyncio.iscoroutinefunction(cs.Engine().run)


@pytest.mark.asyncio
async def test_a_finished_run_leaves_no_context_behind_without_the_collector():
    # The context refers to no closure of its own, so refcounting frees it: no reference cycle.
    engine = cs.Engine()
    was = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for _ in range(3):
            assert await engine.run(countdown(5)) == "done"
            assert await engine.run(add(add(1, 2), 3)) == 6
        alive = [o for o in gc.get_objects() if type(o) is RunContext]
    finally:
        if was:
            gc.enable()
    assert alive == []


@pytest.mark.asyncio
async def test_run_ids_are_unique_and_made_only_when_read():
    engine = cs.Engine()
    rec = Recorder(engine.bus)
    await asyncio.gather(*(engine.run(add(i, 1)) for i in range(20)))
    starts = rec.of(cs.RunStarted)
    ids = [e.run_id for e in starts]
    assert len(set(ids)) == 20
    assert all(i.startswith("run-") and i.count("-") == 2 for i in ids)
    # every event of a run carries the id its RunStarted had
    for e in rec.of(cs.RunFinished):
        assert e.run_id in ids


@pytest.mark.asyncio
async def test_run_context_counts_iterations_and_is_its_own_resource_scope():
    engine = cs.Engine()
    ctx = RunContext(engine, {})
    assert ctx.resources is ctx and ctx.values == {} and ctx.iteration == 0
    assert not ctx.must_close() and not ctx.busy()


def _released_and_acquired(rec: Recorder) -> list[tuple[str, str, str]]:
    return [(type(e).__name__, e.resource, e.scope) for e in rec.events
            if isinstance(e, (cs.ResourceAcquired, cs.ResourceReleased))]


@pytest.mark.asyncio
@pytest.mark.parametrize("hot", [True, False], ids=["hot", "slow"])
async def test_connector_is_a_constant_resource_with_the_same_events_in_teardown_order(hot):
    torn = []

    @cs.resource(name="db")
    def db():
        yield "db-value"
        torn.append("db")

    engine = cs.Engine(hot_plans=hot, resources=[db])
    rec = Recorder(engine.bus)

    @cs.task
    def both(message_sent, value=cs.inject("db")):
        return value

    # publish injects the connector first, then ``both`` injects db: released in reverse
    for _ in range(2):
        assert await engine.run(both(cs.publish("t", 1))) == "db-value"
    assert torn == ["db", "db"]
    assert _released_and_acquired(rec) == [
        ("ResourceAcquired", "cascade.connector", "run"),
        ("ResourceAcquired", "db", "run"),
        ("ResourceReleased", "db", "run"),
        ("ResourceReleased", "cascade.connector", "run"),
    ] * 2


@pytest.mark.asyncio
async def test_a_failing_teardown_after_a_constant_resource_still_fails_the_run():
    @cs.resource(name="flaky")
    def flaky():
        yield 1
        raise RuntimeError("teardown failed")

    @cs.task
    def uses(_sent, v=cs.inject("flaky")):
        return v

    engine = cs.Engine(resources=[flaky])
    rec = Recorder(engine.bus)
    with pytest.raises(RuntimeError, match="teardown failed"):
        await engine.run(uses(cs.publish("t", 1)))
    (finished,) = rec.of(cs.RunFinished)
    assert finished.status == "Failed" and "teardown failed" in finished.error
    assert [e.resource for e in rec.of(cs.ResourceReleased)] == ["flaky", "cascade.connector"]


def test_constant_resource_is_still_an_ordinary_generator_resource():
    res = constant_resource("answer", lambda: 42)
    assert res.scope == "run" and getattr(res.fn, CONSTANT)() == 42
    gen = res.fn()
    assert next(gen) == 42
    with pytest.raises(StopIteration):
        next(gen)


# -- cs.recv's listener futures on the in-memory connector -------------------------------------------
@pytest.mark.asyncio
async def test_a_listening_future_and_a_handler_share_a_topic_in_subscription_order():
    conn = InMemoryConnector()
    got = []
    first = conn._listen("inbox")
    assert conn.subscription_count == 1
    sub = conn.subscribe_nowait("inbox", lambda m: got.append(("handler", m.payload, first.done())))
    assert conn.subscription_count == 2
    conn.publish_nowait("inbox", "a")
    # the future listened first, so it got the message before the handler ran, and left at once
    assert first.result().payload == "a" and got == [("handler", "a", True)]
    assert conn.subscription_count == 1
    conn._unlisten("inbox", first)  # leaving again changes nothing
    conn.publish_nowait("inbox", "b")
    assert first.result().payload == "a"
    assert got[-1] == ("handler", "b", True) and conn.subscription_count == 1
    await sub.unsubscribe()
    assert conn.subscription_count == 0 and conn._exact == {}


@pytest.mark.asyncio
async def test_two_listeners_on_one_inbox_both_hear_and_leave_cleanly():
    conn = InMemoryConnector()
    a, b = conn._listen("x"), conn._listen("x")
    assert conn.subscription_count == 2
    conn._publish_each(("x", "y"), 7, False)
    assert a.result().payload == 7 and b.result().payload == 7
    assert conn.subscription_count == 0 and conn._exact == {}  # each left on its message
    conn._unlisten("x", a)
    conn._unlisten("x", a)  # idempotent
    c = conn._listen("x")
    conn._unlisten("x", b)  # a listener that already left never removes another one
    assert conn.subscription_count == 1
    conn._unlisten("x", c)
    assert conn.subscription_count == 0 and conn._exact == {}


@pytest.mark.asyncio
async def test_a_cancelled_listener_leaves_its_topic_and_its_timer_is_cancelled():
    conn = InMemoryConnector()
    loop = asyncio.get_running_loop()
    fut = conn._listen("x")
    fut._timer = timer = loop.call_later(60, lambda: None)
    wild = conn._listen("x/#")
    assert conn.subscription_count == 2
    assert fut.cancel() and wild.cancel()
    assert conn.subscription_count == 0 and conn._exact == {} and conn._wild_listeners == {}
    assert timer.cancelled()
    assert not fut.cancel()  # already done: nothing left to leave
    conn.publish_nowait("x", "late")  # nobody listens: dropped, as for any topic without subscribers
    assert fut.cancelled()


@pytest.mark.asyncio
async def test_a_listener_gets_a_retained_message_at_once_and_wildcards_still_work():
    conn = InMemoryConnector()
    conn.publish_nowait("room/1", "kept", retain=True)
    fut = conn._listen("room/1")
    assert fut.result() == ("room/1", "kept", True)
    conn._unlisten("room/1", fut)
    wild = conn._listen("room/+")
    assert wild.result() == ("room/1", "kept", True)  # retained, matched by the filter
    conn._unlisten("room/+", wild)
    wild = conn._listen("room/#")
    conn._unlisten("room/#", wild)
    assert conn.subscription_count == 0
    with pytest.raises(ValueError):
        conn._listen("room/a#")


@pytest.mark.asyncio
async def test_disconnect_ends_a_listening_recv_which_then_times_out():
    engine = cs.Engine()
    run = asyncio.ensure_future(engine.run(cs.recv("quiet", timeout=0.05)))
    for _ in range(100):
        if engine.connector.subscription_count:
            break
        await asyncio.sleep(0)
    assert engine.connector.subscription_count == 1
    await engine.connector.disconnect()
    assert engine.connector.subscription_count == 0
    engine.connector.publish_nowait("quiet", "too late")
    assert await run is cs.TIMED_OUT


@pytest.mark.asyncio
async def test_recv_leaves_its_inbox_on_message_timeout_and_cancellation():
    engine = cs.Engine()
    conn = engine.connector
    assert await engine.run(cs.recv("t", timeout=0.0)) is cs.TIMED_OUT
    assert conn.subscription_count == 0
    run = asyncio.ensure_future(engine.run(cs.recv("t")))
    for _ in range(100):
        if conn.subscription_count:
            break
        await asyncio.sleep(0)
    conn.publish_nowait("t", 5)
    assert (await run).payload == 5 and conn.subscription_count == 0
    run = asyncio.ensure_future(engine.run(cs.recv("t")))
    for _ in range(100):
        if conn.subscription_count:
            break
        await asyncio.sleep(0)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert conn.subscription_count == 0 and conn._exact == {}
