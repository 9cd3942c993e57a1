"""MQTTConnector delivery against a real mosquitto: retained state is complete when ``subscribe``
returns, and live messages arrive once each, in order.

Each example gets a topic prefix of its own on one broker (started for the module on a free
loopback port). It publishes a generated mix of retained, cleared and live messages, subscribes a
generated filter, then publishes more. The handler must have seen, by the time ``subscribe``
returned, exactly the retained messages the filter matches (the latest payload per topic, cleared
topics absent, nothing live from before); after a closing round trip it must have seen every later
message the filter matches, in publish order, flagged as not retained. This is what the constraint
listener relies on: no sleep, no missed clear, no stale limit.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cascade.adapters.connector import topic_matches
from cascade.adapters.mqtt import MQTTConnector

from .profiles import ci_settings

EXAMPLES = 30
TOPICS = ("a/x", "b/x", "a/y", "c", "a/x/deep")
FILTERS = ("#", "+/x", "a/#", "a/x", "c", "+")
_prefixes = itertools.count()


@pytest.fixture(scope="module")
def broker_url() -> Iterator[str]:
    """A mosquitto of this module's own (see tests/adapters/mosquitto_server.py)."""
    from tests.adapters.mosquitto_server import MosquittoServer

    server = MosquittoServer()
    yield server.url
    server.close()


@dataclass(frozen=True)
class Script:
    before: tuple[tuple[str, str, bytes | None], ...]  # (kind "retain"/"live", topic, payload)
    flt: str
    after: tuple[tuple[str, str, bytes | None], ...]


_payload = st.binary(min_size=1, max_size=8)
_op = st.one_of(
    st.tuples(st.just("retain"), st.sampled_from(TOPICS), _payload),
    st.tuples(st.just("retain"), st.sampled_from(TOPICS), st.none()),  # clears the retained message
    st.tuples(st.just("live"), st.sampled_from(TOPICS), _payload),
)
scripts = st.builds(Script, st.lists(_op, max_size=10).map(tuple), st.sampled_from(FILTERS),
                    st.lists(_op, max_size=8).map(tuple))


async def _play(url: str, script: Script) -> tuple[list[Any], list[Any], set[tuple[str, bytes]], list[Any]]:
    prefix = f"prop/{next(_prefixes)}-{id(script) & 0xFFFF}"
    connector = MQTTConnector(url, connect_timeout=10.0, announce=False)
    await connector.connect()
    seen: list[Any] = []
    try:
        retained: dict[str, bytes] = {}
        for kind, topic, payload in script.before:
            await connector.publish(f"{prefix}/{topic}", payload, retain=kind == "retain")
            if kind == "retain":
                if payload is None:
                    retained.pop(topic, None)
                else:
                    retained[topic] = payload
        await connector.subscribe(f"{prefix}/{script.flt}", seen.append)
        at_return = list(seen)
        expected_retained = {(f"{prefix}/{t}", p) for t, p in retained.items() if topic_matches(script.flt, t)}
        for kind, topic, payload in script.after:
            await connector.publish(f"{prefix}/{topic}", payload, retain=kind == "retain")
        done = asyncio.get_running_loop().create_future()
        await connector.subscribe(f"{prefix}-end", lambda m: done.done() or done.set_result(None))
        await connector.publish(f"{prefix}-end", b"end")
        await asyncio.wait_for(done, 10)  # one client's messages arrive in order: all earlier ones are in
        expected_live = [(f"{prefix}/{t}", p or b"", False) for _, t, p in script.after if topic_matches(script.flt, t)]
        return at_return, seen[len(at_return):], expected_retained, expected_live
    finally:
        await connector.disconnect()


def check_delivery(url: str, script: Script) -> None:
    at_return, later, expected_retained, expected_live = asyncio.run(_play(url, script))
    got_retained = {(m.topic, m.payload) for m in at_return}
    assert all(m.retained for m in at_return), at_return
    assert len(at_return) == len(got_retained) and got_retained == expected_retained, (
        f"retained state when subscribe() returned: {sorted(got_retained)} != {sorted(expected_retained)}")
    assert [(m.topic, m.payload, m.retained) for m in later] == expected_live


@ci_settings(EXAMPLES)
@given(scripts)
def test_retained_state_is_complete_at_subscribe_and_live_messages_arrive_in_order(broker_url: str,
                                                                                    script: Script) -> None:
    check_delivery(broker_url, script)
