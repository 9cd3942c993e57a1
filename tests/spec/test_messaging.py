"""cs.wait / cs.recv / cs.publish on the engine's connector, on hot plans like any other task."""

from __future__ import annotations

import asyncio

import pytest

import cascade as cs


@cs.task
def payload_of(message):
    return message if message is cs.TIMED_OUT else message.payload


@cs.task
def listener(topic, n, got=()):
    """Receives ``n`` messages on ``topic``, one per tail-call iteration."""
    if len(got) == n:
        return list(got)
    return collect(topic, n, got, cs.recv(topic))


@cs.task
def collect(topic, n, got, message):
    return listener(topic, n, got + (message.payload,))


async def until(predicate):
    for _ in range(1000):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never became true")


class CountingConnector(cs.InMemoryConnector):
    """Counts subscribe calls, so a test knows when the *next* recv listens."""

    def __init__(self) -> None:
        super().__init__()
        self.subscribes = 0

    async def subscribe(self, topic, handler, *, max_pending=None):
        self.subscribes += 1
        return await super().subscribe(topic, handler, max_pending=max_pending)


@pytest.mark.asyncio
@pytest.mark.parametrize("hot", [True, False], ids=["hot", "slow"])
async def test_recv_gets_what_another_run_publishes_and_runs_hot(hot):
    conn = CountingConnector()
    engine = cs.Engine(connector=conn, hot_plans=hot)
    listening = asyncio.ensure_future(engine.run(listener("inbox", 5)))
    for i in range(5):
        await until(lambda: conn.subscribes == i + 1)  # noqa: B023 (awaited in this iteration)
        await engine.run(cs.publish("inbox", i))
    assert await listening == [0, 1, 2, 3, 4]
    assert conn.subscription_count == 0
    if hot:
        # 11 iterations: listener(2 args), then [collect(recv), listener(3 args)] x 5; three
        # templates compile once, the other 8 iterations hit; plus 4 of the 5 publish runs.
        assert engine.stats.hot_plan_hits == 8 + 4
        assert engine.stats.hot_plan_misses == 3 + 1


@pytest.mark.asyncio
async def test_recv_timeout_returns_the_sentinel_and_unsubscribes(any_engine):
    value = await any_engine.run(payload_of(cs.recv("nobody/talks", timeout=0.001)))
    assert value is cs.TIMED_OUT
    assert not cs.TIMED_OUT and repr(cs.TIMED_OUT) == "cs.TIMED_OUT"
    assert any_engine.connector.subscription_count == 0


@pytest.mark.asyncio
async def test_recv_unsubscribes_when_its_run_is_cancelled(engine):
    run = asyncio.ensure_future(engine.run(payload_of(cs.recv("t"))))
    await until(lambda: engine.connector.subscription_count == 1)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert engine.connector.subscription_count == 0


@pytest.mark.asyncio
async def test_recv_with_a_wildcard_and_a_retained_message(engine):
    await engine.run(cs.publish("sensors/1/temp", 21.5, retain=True))
    message = await engine.run(cs.recv("sensors/+/temp"))
    assert message == cs.Message("sensors/1/temp", 21.5, True)
    assert engine.connector.subscription_count == 0


@pytest.mark.asyncio
async def test_recv_takes_one_message_even_when_several_arrive_at_once(engine):
    run = asyncio.ensure_future(engine.run(payload_of(cs.recv("t"))))
    await until(lambda: engine.connector.subscription_count == 1)
    await engine.connector.publish("t", "first")
    await engine.connector.publish("t", "second")
    assert await run == "first"
    assert engine.connector.subscription_count == 0


@pytest.mark.asyncio
async def test_two_engines_do_not_hear_each_other():
    a, b = cs.Engine(), cs.Engine()
    on_b = asyncio.ensure_future(b.run(payload_of(cs.recv("t", timeout=0.02))))
    await until(lambda: b.connector.subscription_count == 1)
    await a.run(cs.publish("t", "for a only"))
    assert await on_b is cs.TIMED_OUT


@pytest.mark.asyncio
async def test_a_given_connector_is_the_one_messaging_tasks_use():
    conn = cs.InMemoryConnector()
    engine = cs.Engine(connector=conn)
    seen: list[cs.Message] = []
    await conn.subscribe("out", seen.append)
    await engine.run(cs.publish("out", {"k": 1}))
    assert seen == [cs.Message("out", {"k": 1}, False)]


@cs.task
def ticker(n, _waited=None):
    return n if n == 0 else ticker(n - 1, cs.wait(0))


@pytest.mark.asyncio
async def test_wait_loop_runs_on_a_hot_plan(engine):
    assert await engine.run(ticker(20)) == 0
    assert engine.stats.hot_plan_hits >= 18
    assert engine.stats.plan_solves <= 2


def test_bad_arguments_fail_when_the_call_is_made():
    with pytest.raises(ValueError, match=r"cs.publish\(topic\)"):
        cs.publish("a/+", 1)
    with pytest.raises(ValueError, match=r"cs.recv\(topic\)"):
        cs.recv("")
    with pytest.raises(ValueError, match="wildcard"):
        cs.recv("a/b#")
    with pytest.raises(ValueError, match=r"cs.recv\(timeout\)"):
        cs.recv("t", timeout=-1)
    with pytest.raises(ValueError, match=r"cs.wait\(seconds\)"):
        cs.wait("soon")


def _fields(lazy):
    return tuple.__getitem__(lazy, slice(None))  # a LazyResult is a tuple underneath


def test_recv_and_publish_made_directly_equal_the_calls_of_their_tasks():
    """cs.recv(topic, seconds) and cs.publish(checked topics, literal) make their lazy results
    without the task call (literal_call2): field by field what the task call makes, so programs,
    shapes and bindings are the same either way."""
    from cascade.spec import messaging

    made = cs.recv("agents/7", 0.25)
    called = messaging._recv("agents/7", 0.25)
    assert _fields(made) == _fields(called) and type(made) is type(called)
    topics = ("agents/1", "agents/2")
    cs.publish(topics, 1.0)  # checked (and remembered) on its first call
    made = cs.publish(topics, 2.5)
    called = messaging._publish(topics, 2.5)
    assert _fields(made) == _fields(called)
    # a timeout that is not a float >= 0, a wildcard topic, a payload that is not a plain literal:
    # through the task call, which checks them
    with pytest.raises(ValueError, match=r"cs.recv\(timeout\)"):
        cs.recv("t", -1.0)
    with pytest.raises(ValueError, match=r"cs.recv\(timeout\)"):
        cs.recv("t", float("nan"))
    assert _fields(cs.recv("a/+", 1.0)) == _fields(messaging._recv("a/+", 1.0))
    payload = [1, 2]
    assert _fields(cs.publish(topics, payload)) == _fields(messaging._publish(topics, payload))


@cs.task
def minus_one():
    return -1


@pytest.mark.asyncio
async def test_a_bad_lazy_argument_fails_the_run_naming_the_task(engine):
    with pytest.raises(ValueError, match=r"cs.wait\(seconds\)"):
        await engine.run(cs.wait(minus_one()))


@pytest.mark.asyncio
async def test_publish_to_several_topics_in_one_call(engine):
    seen: list[cs.Message] = []
    await engine.connector.subscribe("n/+", seen.append)
    await engine.run(cs.publish(["n/1", "n/2", ("n/3")], "flash"))
    assert [m.topic for m in seen] == ["n/1", "n/2", "n/3"]
    with pytest.raises(ValueError, match="empty list"):
        cs.publish([], 1)
    with pytest.raises(ValueError, match=r"cs.publish\(topic\)"):
        cs.publish(["ok", "bad/#"], 1)


@pytest.mark.asyncio
async def test_a_tuple_of_topics_is_checked_once_and_a_bad_one_every_time(engine):
    from cascade.spec import messaging

    seen: list[cs.Message] = []
    await engine.connector.subscribe("t/+", seen.append)
    good = ("t/1", "t/2")
    for payload in (1, 2):  # the second call publishes from the tuple checked by the first
        await engine.run(cs.publish(good, payload))
    assert [(m.topic, m.payload) for m in seen] == [("t/1", 1), ("t/2", 1), ("t/1", 2), ("t/2", 2)]
    assert messaging._checked(good)
    bad = ("t/3", "t/#")
    for _ in range(2):  # never remembered as checked
        with pytest.raises(ValueError, match=r"cs.publish\(topic\)"):
            cs.publish(bad, 1)
    assert not messaging._checked(bad) and not messaging._checked(tuple(list(good)))  # by identity


@cs.task
def topics_with_a_wildcard():
    return ["ok", "bad/+"]


@pytest.mark.asyncio
async def test_a_bad_lazy_topic_fails_the_run_naming_the_task(any_engine):
    with pytest.raises(ValueError, match=r"cs.publish\(topic\).*wildcards"):
        await any_engine.run(cs.publish(topics_with_a_wildcard(), 1))


@cs.task
def uses_connector_twice(first, second):
    return (first, second)


@pytest.mark.asyncio
async def test_run_scope_connector_is_set_up_once_per_run_on_hot_and_slow_paths(runner, make_recorder):
    rec = runner.recorder()
    await runner.run(uses_connector_twice(cs.publish("a", 1), cs.publish("b", 2)))
    acquired = [e for e in rec.events if isinstance(e, cs.ResourceAcquired)]
    released = [e for e in rec.events if isinstance(e, cs.ResourceReleased)]
    assert [e.resource for e in acquired] == ["cascade.connector"]
    assert [e.resource for e in released] == ["cascade.connector"]
    names = [type(e).__name__ for e in rec.events]
    # the resource is set up right before the first call that injects it starts
    assert names.index("ResourceAcquired") < names.index("TaskExecutionStarted")


@pytest.mark.asyncio
async def test_publish_to_a_list_reaches_exact_subscribers_and_a_waiting_recv(engine):
    conn = engine.connector
    first: list[object] = []
    second: list[object] = []
    await conn.subscribe("n/1", lambda m: first.append(m.payload))
    await conn.subscribe("n/1", lambda m: second.append(m.payload))
    listening = asyncio.ensure_future(engine.run(payload_of(cs.recv("n/2"))))
    await until(lambda: conn.subscription_count == 3)
    await engine.run(cs.publish(("n/1", "n/2", "n/3"), "flash"))
    assert await listening == "flash"
    assert first == ["flash"] and second == ["flash"]


@cs.task
def both(a, b):
    return (a, b)


@pytest.mark.parametrize(
    ("make", "listeners"),
    [
        (lambda: cs.recv("t"), 1),  # the iteration is the one call
        (lambda: payload_of(cs.recv("t")), 1),  # a chain step, awaited by the walker
        (lambda: both(cs.recv("a"), cs.recv("b")), 2),  # two listens overlapping in the scheduler
        (lambda: payload_of(cs.recv("t").with_retry(max_attempts=2)), 1),  # a governed call
        (lambda: payload_of(cs.recv("room/+")), 1),  # a wildcard filter
    ],
    ids=["single-call", "chain-step", "overlapping", "governed", "wildcard"],
)
@pytest.mark.asyncio
async def test_every_listener_leaves_when_its_run_is_cancelled_on_every_path(any_engine, make, listeners):
    run = asyncio.ensure_future(any_engine.run(make()))
    await until(lambda: any_engine.connector.subscription_count == listeners)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert any_engine.connector.subscription_count == 0
    assert not any_engine.connector._exact and not any_engine.connector._wild_listeners


@pytest.mark.asyncio
async def test_a_run_cut_short_by_wait_for_leaves_no_listener(any_engine):
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(any_engine.run(both(cs.recv("a", timeout=60.0), cs.recv("b"))), 0.01)
    assert any_engine.connector.subscription_count == 0


def test_the_memo_of_checked_topic_tuples_starts_over_when_full(monkeypatch):
    # Agents come and go (one engine after another in a process): a memo full of tuples of agents
    # that are gone must not keep a new agent's tuple from being remembered.
    from cascade.spec import messaging

    monkeypatch.setattr(messaging, "_CHECKED", {})
    monkeypatch.setattr(messaging, "_CHECKED_MAX", 4)
    gone = [(f"old/{i}",) for i in range(4)]
    for topics in gone:
        cs.publish(topics, 1)
    assert all(messaging._checked(t) for t in gone)
    new = ("new/1", "new/2")
    cs.publish(new, 1)
    assert messaging._checked(new)
    assert len(messaging._CHECKED) <= 4
