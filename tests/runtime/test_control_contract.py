"""The contract of constraint messages in detail: the exact reasons a rejected message gives, the
payload limits at their boundaries, the listener's counters and log, custom roots, duck-typed
messages, and the resync after a reconnect (on an in-process connector whose link can go down)."""

from __future__ import annotations

import json
import logging
import math
import time
from types import SimpleNamespace
from typing import Any, Callable

import pytest

import cascade as cs
from cascade.adapters.connector import topic_matches
from cascade.runtime.control import (
    MAX_PAYLOAD,
    ConstraintListener,
    constraint_payload,
    constraint_topic,
    parse_constraint_message,
)

KIND_LIST = "pause, concurrency, rate"
PAUSE = "cascade/constraints/global/pause"
CONC_A = "cascade/constraints/task:a/concurrency"
RATE_A = "cascade/constraints/task:a/rate"


class LossyLinkConnector(cs.InMemoryConnector):
    """An in-process connector whose link to its broker can go down: while it is down, messages
    are not delivered (the broker still keeps retained ones); :meth:`reconnect` re-delivers every
    retained message a subscription matches and tells it (``on_resync``) which topics those were,
    as the MQTT connector does after a reconnect."""

    supports_resync = True

    def __init__(self) -> None:
        super().__init__()
        self.link_up = True
        self._retained_topics: set[str] = set()
        self._subs: list[tuple[Any, str, Callable[[cs.Message], Any], Any]] = []

    async def publish(self, topic: str, payload: Any, retain: bool = False) -> None:
        """Publish; the broker keeps retained messages even while the link is down."""
        if retain:
            if payload is None:
                self._retained_topics.discard(topic)
            else:
                self._retained_topics.add(topic)
        await super().publish(topic, payload, retain)

    async def subscribe(self, topic: str, handler: Any, *, on_resync: Any = None,
                        max_pending: int | None = None) -> Any:
        """Subscribe; ``on_resync(topics)`` is called after each :meth:`reconnect`."""
        def forward(message: cs.Message) -> None:
            if self.link_up:
                handler(message)

        sub = await super().subscribe(topic, forward, max_pending=max_pending)
        self._subs.append((sub, topic, handler, on_resync))
        return sub

    def reconnect(self) -> None:
        """Bring the link up again: retained messages re-delivered, then each resync reported."""
        self.link_up = True
        for sub, flt, handler, on_resync in self._subs:
            if not sub.active:
                continue
            seen = {t for t in sorted(self._retained_topics) if topic_matches(flt, t)}
            for t in sorted(seen):
                handler(cs.Message(t, self.retained(t), True))
            if on_resync is not None:
                on_resync(seen)


def in_force(manager: cs.ConstraintManager) -> list[tuple[Any, ...]]:
    return [(c.scope, c.kind, c.limit, c.rate, c.burst) for c in manager.active()]


def rejection(topic: Any, payload: Any) -> str:
    """The reason :func:`parse_constraint_message` gives for one message (it must reject it)."""
    with pytest.raises(ValueError) as info:
        parse_constraint_message(topic, payload)
    return str(info.value)


# -- topics and payloads -------------------------------------------------------------------------

def test_an_unknown_kind_is_refused_with_the_kinds_that_exist():
    with pytest.raises(ValueError) as info:
        constraint_topic("global", "speed")
    assert str(info.value) == f"unknown constraint kind 'speed'; expected one of {KIND_LIST}"
    assert rejection("cascade/constraints/global/speed", b"{}") == (
        f"unknown constraint kind 'speed'; expected one of {KIND_LIST}")


def test_constraint_payload_carries_expires_at():
    deadline = time.time() + 60
    assert json.loads(constraint_payload("pause", expires_at=deadline)) == {"v": 1, "expires_at": deadline}
    assert json.loads(constraint_payload("rate", rate=2.5, burst=3, expires_at=deadline)) == {
        "v": 1, "rate": 2.5, "burst": 3, "expires_at": deadline}


def test_constraint_payload_refuses_nan_with_the_engines_own_reason():
    with pytest.raises(ValueError, match=r"^'rate' must be a finite number > 0, got nan$"):
        constraint_payload("rate", rate=math.nan)
    with pytest.raises(ValueError, match=r"^'ttl' must be a finite number > 0, got inf$"):
        constraint_payload("pause", ttl=math.inf)


def test_a_number_field_of_the_wrong_type_says_a_number_or_an_int():
    assert rejection(RATE_A, b'{"rate": "fast"}') == "'rate' must be a number, got 'fast'"
    assert rejection(PAUSE, b'{"ttl": "soon"}') == "'ttl' must be a number, got 'soon'"
    assert rejection(CONC_A, b'{"limit": 2.5}') == "'limit' must be an int, got 2.5"


def test_a_zero_ttl_or_rate_is_rejected_but_expires_at_may_be_any_finite_time():
    assert rejection(PAUSE, b'{"ttl": 0}') == "'ttl' must be a finite number > 0, got 0"
    assert rejection(RATE_A, b'{"rate": 0}') == "'rate' must be a finite number > 0, got 0"
    assert rejection(RATE_A, b'{"rate": 0.0}') == "'rate' must be a finite number > 0, got 0.0"
    for at in (1e12, 0, -1.0):  # far ahead, the epoch, before it: past ones simply have lapsed
        assert parse_constraint_message(PAUSE, json.dumps({"expires_at": at}).encode()) == (
            "global", "pause", {"ttl": None, "expires_at": at})


def test_payloads_up_to_max_payload_bytes_are_read_as_bytes_or_text():
    body = b'{"limit": 2}'
    exact = body + b" " * (MAX_PAYLOAD - len(body))
    assert len(exact) == MAX_PAYLOAD
    expected = ("task:a", "concurrency", {"ttl": None, "expires_at": None, "value": 2})
    assert parse_constraint_message(CONC_A, exact) == expected
    assert parse_constraint_message(CONC_A, exact.decode()) == expected
    assert parse_constraint_message(CONC_A, bytearray(exact)) == expected
    assert rejection(CONC_A, exact + b" ") == (
        f"payload of {MAX_PAYLOAD + 1} bytes is over the limit of {MAX_PAYLOAD}")
    assert rejection(CONC_A, exact.decode() + " ") == f"payload is over the limit of {MAX_PAYLOAD} bytes"


def test_text_and_dict_payloads_are_read_like_bytes():
    expected = ("task:a", "rate", {"ttl": 5, "expires_at": None, "value": 20.0, "burst": None})
    assert parse_constraint_message(RATE_A, '{"rate": 20, "ttl": 5}') == expected
    assert parse_constraint_message(RATE_A, {"rate": 20, "ttl": 5}) == expected
    assert rejection(RATE_A, "{not json").startswith("payload is not JSON: Expecting property name")
    assert rejection(RATE_A, b"{not json").startswith("payload is not JSON: Expecting property name")


def test_rejections_name_the_type_they_got():
    assert rejection(PAUSE, 12345) == "payload must be JSON bytes or text, got int"
    assert rejection(PAUSE, b"[1, 2]") == "payload must be a JSON object, got list"
    assert rejection(PAUSE, '"text"') == "payload must be a JSON object, got str"


def test_rejections_list_every_unknown_field_and_every_missing_one():
    assert rejection(PAUSE, b'{"limit": 3, "colour": "red"}') == (
        "unknown field(s) 'colour', 'limit' for kind 'pause'")
    assert rejection(CONC_A, b'{"ttl": 5}') == "a concurrency payload needs 'limit'"
    assert rejection(RATE_A, b'{"burst": 5}') == "a rate payload needs 'rate' (calls per second)"


def test_a_topic_outside_the_root_is_rejected_as_such():
    for topic in ("elsewhere/global/pause", "cascade/constraintsX/global/pause", "cascade/global/pause"):
        assert rejection(topic, b"{}") == f"topic {topic!r} is not under cascade/constraints/"
    assert rejection(None, b"{}") == "topic None is not under cascade/constraints/"


# -- the listener --------------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_the_listener_counts_what_it_applied_and_what_it_rejected():
    engine = cs.Engine()
    listener = ConstraintListener(engine.constraints, engine.connector)
    assert (listener.applied, listener.rejected) == (0, 0)
    await listener.start()
    conn = engine.connector
    await conn.publish(PAUSE, b"{}", retain=True)
    await conn.publish(CONC_A, b'{"limit": 2}', retain=True)
    await conn.publish(PAUSE, b"", retain=True)
    await conn.publish(RATE_A, b"{oops")
    assert (listener.applied, listener.rejected) == (3, 1)
    assert in_force(engine.constraints) == [("task:a", "concurrency", 2, None, None)]


@pytest.mark.asyncio
async def test_a_text_or_dict_payload_from_an_in_process_publisher_applies():
    engine = cs.Engine()
    listener = ConstraintListener(engine.constraints, engine.connector)
    await listener.start()
    await engine.connector.publish(CONC_A, '{"limit": 4}', retain=True)
    await engine.connector.publish(RATE_A, {"rate": 7, "burst": 2}, retain=True)
    assert in_force(engine.constraints) == [
        ("task:a", "concurrency", 4, None, None), ("task:a", "rate", None, 7.0, 2)]
    assert listener.rejected == 0


@pytest.mark.asyncio
async def test_a_future_expires_at_applies_and_a_negative_one_clears_the_topics_constraint():
    engine = cs.Engine()
    listener = ConstraintListener(engine.constraints, engine.connector)
    await listener.start()
    conn = engine.connector
    await conn.publish(CONC_A, json.dumps({"limit": 3, "expires_at": time.time() + 600}).encode(), retain=True)
    assert in_force(engine.constraints) == [("task:a", "concurrency", 3, None, None)]
    await conn.publish(CONC_A, b'{"limit": 3, "expires_at": -1}', retain=True)  # lapsed long ago
    assert in_force(engine.constraints) == [] and listener.rejected == 0


@pytest.mark.asyncio
async def test_a_listener_on_another_root_reads_that_root_only():
    engine = cs.Engine()
    listener = ConstraintListener(engine.constraints, engine.connector, root="ops/limits")
    await listener.start()
    await engine.connector.publish("ops/limits/task:a/concurrency", b'{"limit": 5}', retain=True)
    await engine.connector.publish(CONC_A, b'{"limit": 9}', retain=True)  # not under this root
    assert in_force(engine.constraints) == [("task:a", "concurrency", 5, None, None)]
    assert engine.constraints.active()[0].source == "ops/limits/task:a/concurrency"
    assert (listener.applied, listener.rejected) == (1, 0)
    with pytest.raises(ValueError, match=r"^topic 'ops/limits/x/global/pause' must be ops/limits/<scope>/<kind>$"):
        parse_constraint_message("ops/limits/x/global/pause", b"{}", root="ops/limits")


def test_a_rejection_is_logged_with_its_topic_and_reason(caplog):
    engine = cs.Engine()
    listener = ConstraintListener(engine.constraints, engine.connector)
    with caplog.at_level(logging.WARNING, logger="cascade.control"):
        listener.on_message(cs.Message(PAUSE, b'{"v": 2}'))
    logged = [r.getMessage() for r in caplog.records if r.name == "cascade.control"]
    assert logged == [f"ignored constraint message on {PAUSE!r}: "
                      "unsupported schema version 2 (this engine reads 1)"]


def test_on_message_never_raises_even_without_a_bus_or_a_topic(caplog):
    manager = cs.ConstraintManager()  # no bus: nowhere to publish the rejection
    listener = ConstraintListener(manager, cs.InMemoryConnector())
    with caplog.at_level(logging.WARNING, logger="cascade.control"):
        listener.on_message(cs.Message(PAUSE, b"{oops"))
        listener.on_message(object())  # no topic, no payload
    assert listener.rejected == 2 and manager.active() == []
    assert [r.getMessage() for r in caplog.records if r.name == "cascade.control"][1] == (
        "ignored constraint message on None: topic None is not under cascade/constraints/")


def test_a_message_without_a_topic_is_reported_on_the_bus_as_none(make_recorder):
    engine = cs.Engine()
    rec = make_recorder(engine.bus, cs.ConstraintRejected)
    listener = ConstraintListener(engine.constraints, engine.connector)
    listener.on_message(SimpleNamespace(payload=b"{}"))
    assert [(e.source, e.reason) for e in rec.events] == [
        ("None", "topic None is not under cascade/constraints/")]


def test_a_message_without_a_payload_is_a_clear():
    engine = cs.Engine()
    listener = ConstraintListener(engine.constraints, engine.connector)
    listener.on_message(cs.Message(PAUSE, b"{}"))
    assert in_force(engine.constraints) == [("global", "pause", None, None, None)]
    listener.on_message(SimpleNamespace(topic=PAUSE))
    listener.on_message(cs.Message(CONC_A, None))
    assert engine.constraints.active() == [] and (listener.applied, listener.rejected) == (3, 0)


class Opaque(float):
    """A number whose comparison fails with an exception that has no message."""

    def __lt__(self, other: object) -> bool:
        raise ArithmeticError


def test_a_failure_without_a_message_is_reported_by_its_type(make_recorder, caplog):
    engine = cs.Engine()
    rec = make_recorder(engine.bus, cs.ConstraintRejected)
    listener = ConstraintListener(engine.constraints, engine.connector)
    with caplog.at_level(logging.WARNING, logger="cascade.control"):
        listener.on_message(cs.Message(PAUSE, {"ttl": Opaque(5.0)}))
    assert [e.reason for e in rec.events] == ["ArithmeticError"]
    assert listener.rejected == 1 and engine.constraints.active() == []


def test_a_topic_cleared_before_a_resync_leaves_later_api_constraints_alone():
    engine = cs.Engine()
    listener = ConstraintListener(engine.constraints, engine.connector)
    listener.on_message(cs.Message(CONC_A, b'{"limit": 1}', True))
    listener.on_message(cs.Message(CONC_A, b"", True))  # cleared by its topic
    engine.constraints.limit("task:a", concurrency=3)  # then set through the API
    listener.on_resync(set())
    assert in_force(engine.constraints) == [("task:a", "concurrency", 3, None, None)]


def test_a_resync_drops_exactly_the_scope_and_kind_whose_topic_is_gone():
    engine = cs.Engine()
    listener = ConstraintListener(engine.constraints, engine.connector)
    listener.on_message(cs.Message(CONC_A, b'{"limit": 2}', True))
    listener.on_message(cs.Message(RATE_A, b'{"rate": 4}', True))
    engine.constraints.limit("global", concurrency=8)  # the API's, same kind, another scope
    listener.on_resync({CONC_A})
    assert in_force(engine.constraints) == [
        ("global", "concurrency", 8, None, None), ("task:a", "concurrency", 2, None, None)]


@pytest.mark.asyncio
async def test_after_a_reconnect_a_clear_missed_while_disconnected_lifts_the_constraint():
    constraints = cs.ConstraintManager()
    conn = LossyLinkConnector()
    listener = ConstraintListener(constraints, conn)
    await conn.publish(PAUSE, b"{}", retain=True)
    await conn.publish(CONC_A, b'{"limit": 2}', retain=True)
    await listener.start()
    await listener.start()  # idempotent: one subscription
    assert in_force(constraints) == [("global", "pause", None, None, None), ("task:a", "concurrency", 2, None, None)]
    assert listener.applied == 2
    conn.link_up = False
    await conn.publish(PAUSE, None, retain=True)  # cleared while the engine could not hear it
    await conn.publish(CONC_A, b'{"limit": 6}', retain=True)  # changed meanwhile
    assert in_force(constraints) == [("global", "pause", None, None, None), ("task:a", "concurrency", 2, None, None)]
    conn.reconnect()
    assert in_force(constraints) == [("task:a", "concurrency", 6, None, None)]
    assert (listener.applied, listener.rejected) == (3, 0)
    await listener.stop()
    await conn.publish(PAUSE, b"{}", retain=True)
    assert in_force(constraints) == [("task:a", "concurrency", 6, None, None)]  # no longer listening
