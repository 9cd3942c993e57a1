"""Constraints from a connector: one retained topic per scope and kind, JSON payloads, cleared by an
empty payload; malformed messages become ConstraintRejected events and change nothing."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

import cascade as cs
from cascade.runtime.control import (
    MAX_PAYLOAD,
    ConstraintListener,
    constraint_payload,
    constraint_topic,
    parse_constraint_message,
)


@cs.task
def ctl_work(x):
    return x


async def listening(engine: cs.Engine) -> ConstraintListener:
    listener = ConstraintListener(engine.constraints, engine.connector)
    await listener.start()
    return listener


def in_force(engine: cs.Engine) -> list[tuple]:
    return [(c.scope, c.kind, c.limit, c.rate, c.burst) for c in engine.constraints.active()]


def test_topics_and_payloads():
    assert constraint_topic("task:fetch*", "rate") == "cascade/constraints/task:fetch*/rate"
    assert constraint_topic(None, "pause") == "cascade/constraints/global/pause"
    assert json.loads(constraint_payload("concurrency", limit=2, ttl=30)) == {"v": 1, "limit": 2, "ttl": 30}
    assert parse_constraint_message("cascade/constraints/task:a/rate", b'{"rate": 20, "burst": 3}') == (
        "task:a", "rate", {"ttl": None, "expires_at": None, "value": 20.0, "burst": 3})
    assert parse_constraint_message("cascade/constraints/global/pause", b"") == ("global", "pause", None)
    with pytest.raises(ValueError, match="'limit' must be an int"):
        constraint_payload("concurrency", limit=0.5)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_retained_constraints_apply_on_start_and_follow_changes():
    engine = cs.Engine()
    conn = engine.connector
    await conn.publish("cascade/constraints/task:ctl_*/concurrency", b'{"limit": 2}', retain=True)
    await conn.publish("cascade/constraints/task:ctl_*/rate", b'{"rate": 50, "burst": 5}', retain=True)
    listener = await listening(engine)
    # the rate limit of the same scope did not overwrite its concurrency limit
    assert in_force(engine) == [("task:ctl_*", "concurrency", 2, None, None), ("task:ctl_*", "rate", None, 50.0, 5)]
    await conn.publish("cascade/constraints/global/pause", b"{}", retain=True)
    await conn.publish("cascade/constraints/task:ctl_*/concurrency", b'{"limit": 4}', retain=True)
    assert in_force(engine)[0] == ("global", "pause", None, None, None)
    assert in_force(engine)[1] == ("task:ctl_*", "concurrency", 4, None, None)
    await conn.publish("cascade/constraints/global/pause", b"", retain=True)  # cleared
    await conn.publish("cascade/constraints/task:ctl_*/rate", b"", retain=True)
    assert in_force(engine) == [("task:ctl_*", "concurrency", 4, None, None)]
    assert [c.source for c in engine.constraints.active()] == ["cascade/constraints/task:ctl_*/concurrency"]
    assert listener.rejected == 0
    await listener.stop()
    await conn.publish("cascade/constraints/global/pause", b"{}", retain=True)
    assert ("global", "pause", None, None, None) not in in_force(engine)  # no longer listening


MALFORMED = [
    ("cascade/constraints/global/pause", b"{not json", "not JSON"),
    ("cascade/constraints/global/pause", b"[1, 2]", "must be a JSON object"),
    ("cascade/constraints/global/pause", b"\xff\xfe", "not JSON"),
    ("cascade/constraints/task:a/concurrency", b'{"limit": "2"}', "'limit' must be an int"),
    ("cascade/constraints/task:a/concurrency", b'{"limit": true}', "'limit' must be an int"),
    ("cascade/constraints/task:a/concurrency", b'{"limit": -1}', "'limit' must be a finite number >= 1"),
    ("cascade/constraints/task:a/concurrency", b"{}", "needs 'limit'"),
    ("cascade/constraints/task:a/rate", b'{"rate": NaN}', "'rate' must be a finite number > 0"),
    ("cascade/constraints/task:a/rate", b'{"rate": -5}', "'rate' must be a finite number > 0"),
    ("cascade/constraints/task:a/rate", b'{"rate": 1e999}', "'rate' must be a finite number > 0"),
    ("cascade/constraints/task:a/rate", b'{"rate": 5, "burst": 0}', "'burst' must be a finite number >= 1"),
    ("cascade/constraints/task:a/pause", b'{"ttl": -1}', "'ttl' must be a finite number > 0"),
    ("cascade/constraints/task:a/pause", b'{"ttl": Infinity}', "'ttl' must be a finite number > 0"),
    ("cascade/constraints/task:a/pause", b'{"limit": 3}', "unknown field(s) 'limit'"),
    ("cascade/constraints/task:a/pause", b'{"v": 2}', "unsupported schema version 2"),
    ("cascade/constraints/task:a/speed", b'{}', "unknown constraint kind 'speed'"),
    ("cascade/constraints/project:x/pause", b"{}", "unknown scope 'project:x'"),
    ("cascade/constraints/task:/pause", b"{}", "empty task glob"),
    ("cascade/constraints/global", b"{}", "must be cascade/constraints/<scope>/<kind>"),
    ("cascade/constraints/global/pause/extra", b"{}", "must be cascade/constraints/<scope>/<kind>"),
    ("cascade/constraints/global/pause", b'{"ttl": 1, "pad": "' + b"x" * MAX_PAYLOAD + b'"}', "over the limit"),
    ("cascade/constraints/global/pause", 12345, "payload must be JSON bytes or text"),
]


@pytest.mark.asyncio
async def test_malformed_messages_are_reported_and_ignored_and_the_engine_keeps_serving(any_engine, make_recorder):
    rec = make_recorder(any_engine.bus, cs.ConstraintRejected)
    listener = await listening(any_engine)
    conn = any_engine.connector
    await conn.publish("cascade/constraints/task:a/concurrency", b'{"limit": 3}', retain=True)
    for topic, payload, _ in MALFORMED:
        await conn.publish(topic, payload)
    assert [(e.source, e.run_id) for e in rec.events] == [(t, "") for t, _, _ in MALFORMED]
    for event, (_, _, message) in zip(rec.events, MALFORMED):
        assert message in event.reason, (event.reason, message)
    assert listener.rejected == len(MALFORMED)
    # what was in force is unchanged, and runs go on
    assert in_force(any_engine) == [("task:a", "concurrency", 3, None, None)]
    assert await asyncio.wait_for(any_engine.run(ctl_work(7)), 10) == 7


@pytest.mark.asyncio
async def test_a_retained_constraint_whose_expires_at_passed_is_not_applied(engine):
    await engine.connector.publish("cascade/constraints/global/pause",
                                   json.dumps({"expires_at": time.time() - 5}).encode(), retain=True)
    await listening(engine)
    assert engine.constraints.active() == [] and not engine.constraints.gating
    assert await engine.run(ctl_work(1)) == 1


@pytest.mark.asyncio
async def test_pause_from_a_topic_holds_a_running_loop_until_cleared(any_engine):
    progress: list[int] = []

    @cs.task
    async def step(n):
        progress.append(n)
        await asyncio.sleep(0)
        return n

    @cs.task
    def loop(n):
        return "done" if n == 0 else loop(step(n - 1))

    await listening(any_engine)
    conn = any_engine.connector
    run = asyncio.create_task(any_engine.run(loop(200)))
    while len(progress) < 10:
        await asyncio.sleep(0)
    await conn.publish("cascade/constraints/task:step/pause", b"{}", retain=True)
    for _ in range(3):
        await asyncio.sleep(0)
    seen = len(progress)
    for _ in range(50):
        await asyncio.sleep(0)
    assert len(progress) == seen and not run.done()
    await conn.publish("cascade/constraints/task:step/pause", b"", retain=True)
    assert await asyncio.wait_for(run, 10) == "done"
    assert len(progress) == 200


def test_a_listener_resync_drops_constraints_whose_topic_is_gone():
    engine = cs.Engine()
    listener = ConstraintListener(engine.constraints, engine.connector)
    listener.on_message(cs.Message("cascade/constraints/global/pause", b"{}", True))
    listener.on_message(cs.Message("cascade/constraints/task:a/concurrency", b'{"limit": 1}', True))
    engine.constraints.limit("task:b", concurrency=2)  # set by the API: not the listener's to drop
    listener.on_resync({"cascade/constraints/task:a/concurrency"})
    assert [(c.scope, c.kind) for c in engine.constraints.active()] == [
        ("task:a", "concurrency"), ("task:b", "concurrency")]
