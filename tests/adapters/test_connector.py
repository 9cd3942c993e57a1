"""InMemoryConnector: topic matching, retained messages, isolation and the bounded delivery policy."""

from __future__ import annotations

import asyncio

import pytest

import cascade as cs
from cascade.adapters.connector import topic_matches, validate_filter


@pytest.mark.parametrize(
    ("flt", "topic", "expected"),
    [
        ("a/b/c", "a/b/c", True),
        ("a/b/c", "a/b", False),
        ("a/+/c", "a/x/c", True),
        ("a/+/c", "a/x/y/c", False),
        ("a/+", "a/", True),  # an empty level is a level
        ("+/+", "a/b", True),
        ("+", "a/b", False),
        ("a/#", "a", True),  # '#' also matches the parent level
        ("a/#", "a/b/c/d", True),
        ("a/#", "b/c", False),
        ("#", "a/b", True),
        ("#", "$SYS/x", False),  # wildcards at the first level skip '$' topics
        ("+/x", "$SYS/x", False),
        ("$SYS/#", "$SYS/x", True),
        ("a/+/#", "a/b", True),
    ],
)
def test_topic_matching(flt, topic, expected):
    assert topic_matches(flt, topic) is expected


@pytest.mark.parametrize("bad", ["", "a/#/b", "a/b#", "a+/b", 3])
def test_malformed_filters_are_rejected(bad):
    with pytest.raises(ValueError):
        validate_filter(bad)


@pytest.mark.asyncio
async def test_wildcard_and_exact_subscribers_each_get_matching_messages():
    conn = cs.InMemoryConnector()
    got: dict[str, list[tuple[str, object]]] = {"exact": [], "plus": [], "hash": []}
    await conn.subscribe("room/1/temp", lambda m: got["exact"].append((m.topic, m.payload)))
    await conn.subscribe("room/+/temp", lambda m: got["plus"].append((m.topic, m.payload)))
    await conn.subscribe("room/#", lambda m: got["hash"].append((m.topic, m.payload)))
    await conn.publish("room/1/temp", 20)
    await conn.publish("room/2/temp", 21)
    await conn.publish("room/2/humidity", 50)
    await conn.publish("hall/1/temp", 5)
    assert got == {
        "exact": [("room/1/temp", 20)],
        "plus": [("room/1/temp", 20), ("room/2/temp", 21)],
        "hash": [("room/1/temp", 20), ("room/2/temp", 21), ("room/2/humidity", 50)],
    }


@pytest.mark.asyncio
async def test_publishing_to_a_wildcard_topic_is_an_error():
    conn = cs.InMemoryConnector()
    with pytest.raises(ValueError, match="wildcards"):
        await conn.publish("a/+", 1)
    with pytest.raises(ValueError):
        await conn.publish("", 1)


@pytest.mark.asyncio
async def test_retained_messages_are_delivered_on_subscribe_and_can_be_cleared():
    conn = cs.InMemoryConnector()
    await conn.publish("cfg/a", "A", retain=True)
    await conn.publish("cfg/b", "B1", retain=True)
    await conn.publish("cfg/b", "B2", retain=True)  # the last retained message replaces the first
    await conn.publish("cfg/c", "not kept")
    seen: list[cs.Message] = []
    await conn.subscribe("cfg/+", seen.append)
    assert sorted(seen) == [cs.Message("cfg/a", "A", True), cs.Message("cfg/b", "B2", True)]
    exact: list[cs.Message] = []
    await conn.subscribe("cfg/a", exact.append)
    assert exact == [cs.Message("cfg/a", "A", True)]
    await conn.publish("cfg/a", None, retain=True)  # clears; live subscribers still get it
    assert exact[-1] == cs.Message("cfg/a", None, False)
    late: list[cs.Message] = []
    await conn.subscribe("cfg/#", late.append)
    assert late == [cs.Message("cfg/b", "B2", True)]


@pytest.mark.asyncio
async def test_unsubscribe_stops_delivery_and_is_idempotent():
    conn = cs.InMemoryConnector()
    seen: list[object] = []
    sub = await conn.subscribe("t", lambda m: seen.append(m.payload))
    wild = await conn.subscribe("#", lambda m: seen.append(("wild", m.payload)))
    await conn.publish("t", 1)
    await sub.unsubscribe()
    await sub.unsubscribe()
    await wild.unsubscribe()
    await conn.publish("t", 2)
    assert seen == [1, ("wild", 1)]
    assert conn.subscription_count == 0


@pytest.mark.asyncio
async def test_two_connectors_never_see_each_others_messages_or_retained_state():
    first, second = cs.InMemoryConnector(), cs.InMemoryConnector()
    got_first: list[object] = []
    got_second: list[object] = []
    await first.subscribe("#", lambda m: got_first.append(m.payload))
    await second.subscribe("#", lambda m: got_second.append(m.payload))
    await first.publish("x", "for first", retain=True)
    await second.publish("x", "for second")
    assert got_first == ["for first"] and got_second == ["for second"]
    assert first.retained("x") == "for first" and second.retained("x") is None
    # and two engines get two connectors
    e1, e2 = cs.Engine(), cs.Engine()
    assert e1.connector is not e2.connector


@pytest.mark.asyncio
async def test_a_stuck_subscriber_blocks_neither_the_publisher_nor_other_subscribers():
    conn = cs.InMemoryConnector(max_pending=3)
    release = asyncio.Event()
    stuck_got: list[int] = []

    async def stuck(message: cs.Message) -> None:
        stuck_got.append(message.payload)
        await release.wait()

    fast_got: list[int] = []
    stuck_sub = await conn.subscribe("t", stuck)
    await conn.subscribe("t", lambda m: fast_got.append(m.payload))
    await conn.publish("t", 0)
    await asyncio.sleep(0)  # the stuck worker takes message 0 and blocks on it
    assert stuck_got == [0]
    for i in range(1, 10):
        await conn.publish("t", i)  # returns at once: nothing awaits the stuck handler
    assert fast_got == list(range(10))
    # Bounded: the queue keeps the newest 3 behind the stuck call; the oldest were dropped.
    assert stuck_sub.dropped == 6
    release.set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert stuck_got == [0, 7, 8, 9]


@pytest.mark.asyncio
async def test_a_failing_subscriber_does_not_reach_the_publisher_or_others(caplog):
    conn = cs.InMemoryConnector()

    def broken(message: cs.Message) -> None:
        raise RuntimeError("subscriber bug")

    got: list[int] = []
    await conn.subscribe("t", broken)
    await conn.subscribe("t", lambda m: got.append(m.payload))
    await conn.publish("t", 1)
    assert got == [1]
    assert "subscriber bug" in caplog.text


@pytest.mark.asyncio
async def test_unsubscribe_cancels_a_running_async_handler_and_drops_its_queue():
    conn = cs.InMemoryConnector()
    started = asyncio.Event()
    cancelled: list[bool] = []

    async def slow(message: cs.Message) -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    sub = await conn.subscribe("t", slow)
    await conn.publish("t", 1)
    await conn.publish("t", 2)
    await started.wait()
    await sub.unsubscribe()
    await asyncio.sleep(0)
    assert cancelled == [True]
    assert conn.subscription_count == 0


@pytest.mark.asyncio
async def test_disconnect_ends_every_subscription():
    conn = cs.InMemoryConnector()
    got: list[object] = []
    await conn.connect()
    await conn.subscribe("a", got.append)
    await conn.subscribe("+", got.append)
    await conn.disconnect()
    assert conn.subscription_count == 0
    await conn.publish("a", 1)
    assert got == []


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match="max_pending"):
        cs.InMemoryConnector(max_pending=0)
    conn = cs.InMemoryConnector()
    with pytest.raises(TypeError, match="handler"):
        conn.subscribe_nowait("t", "not callable")  # type: ignore[arg-type]


def _listen_on_the_running_loop(connector: cs.InMemoryConnector) -> bool:
    """Listen (with a timeout) and leave at once: did the listener belong to the running loop?"""

    async def main() -> bool:
        fut = connector._listen("inbox", 5.0)
        try:
            return fut.get_loop() is asyncio.get_running_loop()
        finally:
            fut.cancel()
            await asyncio.sleep(0)

    return asyncio.run(main())


def test_a_listener_belongs_to_the_loop_running_it_across_loops_and_threads():
    # The connector remembers the loop of its last listen (no getpid() system call per listen);
    # a later loop, another thread's loop or no loop at all must not get the remembered one.
    import threading

    connector = cs.InMemoryConnector()
    assert _listen_on_the_running_loop(connector)
    assert _listen_on_the_running_loop(connector)  # a second asyncio.run: a new loop
    seen: list[bool] = []
    worker = threading.Thread(target=lambda: seen.append(_listen_on_the_running_loop(connector)))
    worker.start()
    worker.join()
    assert seen == [True]
    with pytest.raises(RuntimeError, match="no running event loop"):
        connector._listen("inbox", 1.0)  # the remembered loop has stopped


@pytest.mark.asyncio
async def test_a_forked_child_does_not_listen_on_its_parents_loop():
    # In a child forked while this loop runs, the loop object and this thread's id are copied: the
    # remembered loop would look like the one running; the child must forget it.
    import os
    import warnings

    connector = cs.InMemoryConnector()
    fut = connector._listen("inbox", 5.0)  # remembered: this running loop
    fut.cancel()
    with warnings.catch_warnings():  # Python 3.12+ warns of fork() with threads (Dask's may be idle here)
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: its own loop; exit code 0 when the listener is on it
        ok = False
        try:
            ok = _listen_on_the_running_loop(connector)
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
