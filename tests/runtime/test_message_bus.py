"""MessageBus.wants: whether publishing an event type would reach a subscriber (subclasses included)."""

from __future__ import annotations

import logging

import pytest

import cascade as cs


def test_wants_names_exactly_the_event_types_someone_listens_to() -> None:
    bus = cs.MessageBus()
    assert not bus.wants(cs.TaskSkipped)
    unsubscribe = bus.subscribe(cs.TaskSkipped, lambda event: None)
    assert bus.wants(cs.TaskSkipped)
    assert not bus.wants(cs.RunStarted)
    unsubscribe()
    assert not bus.wants(cs.TaskSkipped)


def test_a_subscriber_to_every_event_wants_each_event_type() -> None:
    bus = cs.MessageBus()
    bus.subscribe(cs.Event, lambda event: None)
    assert bus.wants(cs.TaskSkipped) and bus.wants(cs.RunStarted)


def test_subscribe_refuses_what_it_cannot_call_and_says_why() -> None:
    bus = cs.MessageBus()
    with pytest.raises(TypeError, match=r"^subscribe\(\) needs an event class such as cs.TaskSkipped, got 'x'$"):
        bus.subscribe("x", lambda event: None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^subscribe\(\) needs a callable handler, got 3$"):
        bus.subscribe(cs.Event, 3)  # type: ignore[arg-type]

    async def handler(event: object) -> None:
        return None

    with pytest.raises(TypeError, match=r"^event handlers are called synchronously; pass a plain function$"):
        bus.subscribe(cs.Event, handler)
    assert not bus.active  # nothing was subscribed


def test_a_failing_handler_is_logged_with_the_handler_and_the_event(caplog: pytest.LogCaptureFixture) -> None:
    bus = cs.MessageBus()
    seen: list[object] = []

    def broken(event: object) -> None:
        raise RuntimeError("boom")

    bus.subscribe(cs.Event, broken)
    bus.subscribe(cs.Event, seen.append)  # still called after the one that failed
    event = cs.RunStarted("run-1", "target")
    with caplog.at_level(logging.ERROR, logger="cascade"):
        bus.publish(event)
    assert seen == [event]
    [record] = [r for r in caplog.records if "failed on" in r.getMessage()]
    assert record.getMessage() == f"event handler {broken!r} failed on {event!r}"
    assert record.exc_info is not None and "boom" in str(record.exc_info[1])
