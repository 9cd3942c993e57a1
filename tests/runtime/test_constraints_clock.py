"""Constraint timing at instants a real clock cannot be made to hit: a TTL's exact deadline, and a
token that arrives between two readings of the clock.

The manager reads ``monotonic`` from its module; these tests replace that one name with a clock
they set by hand (the event loop and everything else keep the real clock). The real clock cannot
be made to read exactly a deadline, so this is the only way to pin what happens there.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import cascade as cs
from cascade.runtime import constraints as constraints_module


@cs.task
def ck_x(x: Any) -> Any:
    return x


@cs.task
def ck_y(x: Any) -> Any:
    return x


class HandClock:
    """``monotonic`` as the test sets it: ``now`` until changed, advanced by ``step`` per reading."""

    def __init__(self, now: float, step: float = 0.0) -> None:
        self.now = now
        self.step = step

    def __call__(self) -> float:
        value = self.now
        self.now += self.step
        return value


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> HandClock:
    hand = HandClock(1000.0)
    monkeypatch.setattr(constraints_module, "monotonic", hand)
    return hand


def _manager() -> tuple[cs.ConstraintManager, list[tuple[str, str, Any, str]]]:
    bus = cs.MessageBus()
    events: list[tuple[str, str, Any, str]] = []
    bus.subscribe(cs.ConstraintChanged, lambda e: events.append((e.scope, e.kind, e.value, e.source)))
    return cs.ConstraintManager(bus=bus), events


def test_a_pause_lapses_at_its_deadline_exactly_when_asked_why_a_call_waits(clock: HandClock) -> None:
    cm, events = _manager()
    cm.pause("task:ck_x", ttl=5.0)
    clock.now = 1004.5
    assert cm.block_reason("ck_x") == "paused"
    assert cm.gating
    clock.now = 1005.0  # the deadline itself: the pause is over, and it is dropped now
    assert cm.block_reason("ck_x") is None
    assert not cm.gating
    assert events[-1] == ("task:ck_x", "pause", None, "ttl")


def test_a_pause_lapses_at_its_deadline_exactly_when_a_slot_frees(clock: HandClock) -> None:
    async def main() -> None:
        cm, events = _manager()
        cm.limit("task:ck_y", concurrency=1)
        await cm.enter("ck_y")
        waiter = asyncio.ensure_future(cm.enter("ck_y"))  # waits for the slot
        await asyncio.sleep(0)
        cm.pause("task:ck_x", ttl=5.0)
        clock.now = 1005.0
        cm.leave("ck_y")  # the pass that grants the waiter also drops the lapsed pause
        assert events[-1] == ("task:ck_x", "pause", None, "ttl")
        await waiter
        cm.leave("ck_y")

    asyncio.run(main())


def test_a_rate_held_call_is_woken_even_if_its_token_arrives_between_two_readings(clock: HandClock) -> None:
    # A token comes every 100 ms. The second call reads the clock at the instant the first took
    # the token, finds none and waits; from then on each reading moves the clock 150 ms on. The
    # timer must be armed from the call's own reading: at any later reading the token is there, no
    # timer would be armed, and nothing would ever wake the call.
    async def main() -> None:
        cm, _ = _manager()
        cm.limit("task:ck_x", rate=10.0)  # the bucket (1 token) starts full
        await cm.enter("ck_x")
        clock.step = 0.15
        await asyncio.wait_for(cm.enter("ck_x"), 5)
        cm.leave("ck_x")
        cm.leave("ck_x")

    asyncio.run(main())
