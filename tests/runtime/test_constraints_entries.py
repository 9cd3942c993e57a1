"""The constraint manager on its own: how scopes, values and deadlines are validated (and the messages
that say why), what a change reports, a TTL that lapses with no event loop to fire its timer, and a
granted call sent back to wait when a pause or a lowered limit arrives before it resumes."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any

import pytest

import cascade as cs
from cascade.runtime.constraints import parse_scope

from ..conftest import Recorder


@cs.task
def gated_step(x):
    return x


@cs.task(name="pick[0]")
def pick_first(x):
    return x


@cs.task(name="maybe?")
def maybe(x):
    return x


GATED = "gated_step"


async def settle(predicate, rounds: int = 500) -> None:
    """Let the event loop run until ``predicate()`` holds (bounded by a number of rounds)."""
    for _ in range(rounds):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


async def idle(rounds: int = 30) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


class Call:
    """A governed call of ``name`` in a task of its own: enters, runs until ``finish`` is set, leaves."""

    def __init__(self, cm: cs.ConstraintManager, name: str) -> None:
        self.cm = cm
        self.name = name
        self.started = False
        self.finish = asyncio.Event()
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        await self.cm.enter(self.name)
        try:
            self.started = True
            await self.finish.wait()
        finally:
            self.cm.leave(self.name)


# -- capacities -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("amount", "shown"), [(-1, "-1"), (-0.5, "-0.5"), (True, "True"), ("two", "'two'")])
def test_a_capacity_must_be_a_number_at_least_zero(amount: Any, shown: str):
    with pytest.raises(ValueError, match=rf"^system_resources\['gpu'\] must be a number >= 0, got {shown}$"):
        cs.ConstraintManager({"cpu": 2, "gpu": amount})


def test_capacities_of_zero_and_fractions_are_kept_as_given():
    cm = cs.ConstraintManager({"gpu": 0, "cpu": 0.5})
    assert cm.capacity == {"gpu": 0, "cpu": 0.5}
    assert cm.available == {"gpu": 0, "cpu": 0.5}
    assert not cm.try_acquire({"gpu": 1})
    assert cm.try_acquire({"gpu": 0, "cpu": 0.5})
    assert cm.available == {"gpu": 0, "cpu": 0.0}
    assert cm.capacity == {"gpu": 0, "cpu": 0.5}  # what is taken never changes the capacity
    assert not cm.gating and cm.active() == [] and cm.waiting == 0


@pytest.mark.asyncio
async def test_a_capacity_waiter_is_granted_when_the_amount_is_released():
    cm = cs.ConstraintManager({"cpu": 1})
    await cm.acquire({"cpu": 1})
    waiter = asyncio.ensure_future(cm.acquire({"cpu": 1}))
    await idle()
    assert not waiter.done()
    assert not cm.try_acquire({"cpu": 0})  # nobody jumps the queue, even with a zero amount
    cm.release({"cpu": 1})
    await waiter
    assert cm.available == {"cpu": 0}


# -- scopes ---------------------------------------------------------------------------------------

def test_a_task_scope_matches_its_name_literally_even_with_glob_characters():
    assert parse_scope(pick_first) == "task:pick[[]0]"
    assert parse_scope(maybe) == "task:maybe[?]"
    cm = cs.ConstraintManager()
    cm.pause(pick_first)
    cm.pause(maybe)
    assert cm.block_reason("pick[0]") == "paused"
    assert cm.block_reason("maybe?") == "paused"
    assert cm.block_reason("pick0") is None  # "[0]" is not a character class here
    assert cm.block_reason("maybe!") is None  # "?" is not a wildcard here


def test_a_scope_may_contain_spaces():
    assert parse_scope("nightly report") == "task:nightly report"
    assert parse_scope("task: spaced *") == "task: spaced *"


def test_a_scope_of_another_type_is_a_type_error_naming_it():
    class Nameless:
        name = ""

        def __repr__(self) -> str:
            return "<nameless>"

    with pytest.raises(TypeError, match=r"expected a scope \('global', 'task:<glob>'\), a task or a task name, got 42"):
        parse_scope(42)
    with pytest.raises(TypeError, match="got <nameless>"):
        parse_scope(Nameless())


# -- values and deadlines -------------------------------------------------------------------------

@pytest.mark.parametrize("expires_at", [math.inf, math.nan, "soon", True])
def test_a_bad_expires_at_is_a_value_error_naming_the_scope(expires_at: Any):
    cm = cs.ConstraintManager()
    with pytest.raises(ValueError, match=r"expires_at for 'task:gated_step' must be a finite number "
                                         r"\(time.time\(\) seconds\), got "):
        cm.set(GATED, "pause", expires_at=expires_at)
    assert cm.active() == []


@pytest.mark.parametrize("ttl", ["5", True, 0, -1.0, math.inf])
def test_a_bad_ttl_is_a_value_error_naming_the_scope(ttl: Any):
    cm = cs.ConstraintManager()
    with pytest.raises(ValueError, match=r"ttl for 'task:gated_step' must be a finite number of seconds > 0"):
        cm.set(GATED, "pause", ttl=ttl)
    assert cm.active() == []


@pytest.mark.parametrize(("kind", "value", "burst", "message"), [
    ("bogus", None, None,
     r"unknown constraint kind 'bogus' for 'task:gated_step'; expected one of pause, concurrency, rate$"),
    ("pause", 3, None, r"^a pause of 'task:gated_step' takes no value$"),
    ("pause", None, 2, r"^a pause of 'task:gated_step' takes no value$"),
    ("concurrency", 2, 2, r"^a concurrency limit of 'task:gated_step' takes no burst$"),
    ("concurrency", 0, None, r"concurrency limit for 'task:gated_step' must be an int >= 1, got 0"),
    ("rate", "fast", None, r"rate limit for 'task:gated_step' must be a finite number > 0 \(calls per second\)"),
    ("rate", True, None, r"rate limit for 'task:gated_step' must be a finite number > 0"),
    ("rate", 0, None, r"rate limit for 'task:gated_step' must be a finite number > 0 \(calls per second\), got 0$"),
    ("rate", 2.0, True, r"burst for 'task:gated_step' must be an int >= 1, got True"),
    ("rate", 2.0, "3", r"burst for 'task:gated_step' must be an int >= 1, got '3'"),
    ("rate", 2.0, 0, r"burst for 'task:gated_step' must be an int >= 1, got 0"),
])
def test_a_bad_value_is_a_value_error_naming_the_scope(kind: str, value: Any, burst: Any, message: str):
    cm = cs.ConstraintManager()
    with pytest.raises(ValueError, match=message):
        cm.set(GATED, kind, value, burst=burst)
    assert cm.active() == [] and not cm.gating


def test_clearing_an_unknown_kind_is_a_value_error_listing_the_kinds():
    cm = cs.ConstraintManager()
    cm.pause(GATED)
    with pytest.raises(ValueError, match=r"^unknown constraint kind 'paws'; expected one of pause, concurrency, rate$"):
        cm.clear(GATED, "paws")
    assert [c.kind for c in cm.active()] == ["pause"]


# -- what a change reports ------------------------------------------------------------------------

def test_each_change_reports_the_new_settings_and_a_removal_reports_none():
    bus = cs.MessageBus()
    rec = Recorder(bus, cs.ConstraintChanged)
    cm = cs.ConstraintManager(bus=bus)
    cm.limit(GATED, concurrency=2, rate=5.0, burst=3)
    cm.pause(GATED, source="ops")
    cm.set(GATED, "rate", 2, source="cascade/constraints/task:gated_step/rate")
    cm.clear(GATED)
    assert [(e.scope, e.kind, e.value, e.source) for e in rec.events] == [
        ("task:gated_step", "concurrency", {"limit": 2}, "api"),
        ("task:gated_step", "rate", {"rate": 5.0, "burst": 3}, "api"),
        ("task:gated_step", "pause", {}, "ops"),
        ("task:gated_step", "rate", {"rate": 2.0, "burst": 1}, "cascade/constraints/task:gated_step/rate"),
        ("task:gated_step", "pause", None, "ops"),
        ("task:gated_step", "concurrency", None, "api"),
        ("task:gated_step", "rate", None, "cascade/constraints/task:gated_step/rate"),
    ]


def test_a_scope_matching_no_task_is_logged_by_a_manager_without_a_bus(caplog):
    cm = cs.ConstraintManager()
    with caplog.at_level(logging.WARNING, logger="cascade.constraints"):
        cm.pause("task:no_task_is_called_this")
    assert [r.getMessage() for r in caplog.records] == [
        "constraint scope 'task:no_task_is_called_this' matches no task defined so far; task scopes match "
        "the task's name (its function's __name__ or @cs.task(name=...)) with a glob"]
    assert [c.scope for c in cm.active()] == ["task:no_task_is_called_this"]


# -- TTLs checked lazily --------------------------------------------------------------------------

def test_a_lapsed_ttl_stops_blocking_without_an_event_loop():
    bus = cs.MessageBus()
    rec = Recorder(bus, cs.ConstraintChanged)
    cm = cs.ConstraintManager(bus=bus)
    cm.pause(GATED, ttl=0.01)  # no running loop: no timer, the TTL is checked by the next question
    assert cm.gating
    time.sleep(0.03)
    assert cm.block_reason(GATED) is None
    assert not cm.gating
    assert [(e.kind, e.value, e.source) for e in rec.events] == [("pause", {}, "api"), ("pause", None, "ttl")]


@pytest.mark.asyncio
async def test_a_leave_after_a_ttl_lapsed_removes_it_and_grants_the_next_waiter():
    bus = cs.MessageBus()
    rec = Recorder(bus, cs.ConstraintChanged)
    cm = cs.ConstraintManager(bus=bus)
    cm.limit(GATED, concurrency=1)
    await cm.enter(GATED)
    waiter = Call(cm, GATED)
    await idle()
    assert not waiter.started
    cm.pause("global", ttl=0.01)
    time.sleep(0.03)  # lapses before the timer can fire: nothing yields to the loop
    cm.leave(GATED)  # the pass it runs removes the lapsed pause first
    assert [(e.scope, e.value, e.source) for e in rec.events[-1:]] == [("global", None, "ttl")]
    await settle(lambda: waiter.started)
    assert [c.kind for c in cm.active()] == ["concurrency"]
    waiter.finish.set()
    await waiter.task


# -- a grant taken back before the call resumed ---------------------------------------------------

@pytest.mark.asyncio
async def test_a_pause_set_between_a_grant_and_its_resumption_sends_the_call_back_to_wait():
    cm = cs.ConstraintManager()
    cm.limit(GATED, concurrency=1)
    await cm.enter(GATED)
    waiter = Call(cm, GATED)
    await idle()
    assert cm.waiting == 1
    cm.leave(GATED)  # grants the waiter: it resumes on a later loop cycle
    cm.pause(GATED)  # ... after this
    await idle()
    assert not waiter.started
    assert cm.waiting == 1
    assert cm.block_reason(GATED) == "paused"
    cm.resume(GATED)
    await settle(lambda: waiter.started)
    assert cm.block_reason(GATED) == "concurrency_limit"
    waiter.finish.set()
    await waiter.task
    assert cm.block_reason(GATED) is None


async def _waiting_behind_two_running_calls() -> tuple[cs.ConstraintManager, Call]:
    """A concurrency limit of 2 with two calls in and a third one waiting."""
    cm = cs.ConstraintManager()
    cm.limit(GATED, concurrency=2)
    await cm.enter(GATED)
    await cm.enter(GATED)
    waiter = Call(cm, GATED)
    await idle()
    return cm, waiter


@pytest.mark.asyncio
async def test_a_limit_lowered_between_a_grant_and_its_resumption_sends_the_call_back_to_wait():
    cm, waiter = await _waiting_behind_two_running_calls()
    assert cm.waiting == 1
    cm.leave(GATED)  # grants the waiter (2 running)
    cm.limit(GATED, concurrency=1)  # before it resumes: one too many
    await idle()
    assert not waiter.started
    assert cm.waiting == 1
    cm.leave(GATED)
    await settle(lambda: waiter.started)
    waiter.finish.set()
    await waiter.task
    assert cm.block_reason(GATED) is None


@pytest.mark.asyncio
async def test_a_rate_limit_set_between_a_grant_and_its_resumption_takes_a_token_from_the_call():
    # The grant took no token (there was no rate limit then): the call takes one when it resumes,
    # so the limit's burst covers it and the next call waits (found by the outside-constraints
    # property: two starts within a burst of 1).
    cm, waiter = await _waiting_behind_two_running_calls()
    cm.leave(GATED)  # grants the waiter
    cm.limit(GATED, rate=0.001, burst=1)  # before it resumes
    await settle(lambda: waiter.started)
    cm.clear(GATED, "concurrency")
    assert cm.block_reason(GATED) == "rate_limit"  # its token is gone
    waiter.finish.set()
    await waiter.task


@pytest.mark.asyncio
async def test_a_rate_limit_with_no_token_left_sends_a_granted_call_back_to_wait():
    cm, waiter = await _waiting_behind_two_running_calls()
    cm.leave(GATED)  # grants the waiter
    cm.limit("global", rate=0.001, burst=1)
    await cm.enter("another_step")  # takes the limit's one token before the waiter resumes
    await idle()
    assert not waiter.started and cm.waiting == 1
    cm.clear("global", "rate")
    await settle(lambda: waiter.started)
    waiter.finish.set()
    await waiter.task


@pytest.mark.asyncio
async def test_a_lapsed_pause_does_not_hide_a_lowered_limit_from_a_granted_call():
    cm, waiter = await _waiting_behind_two_running_calls()
    cm.leave(GATED)  # grants the waiter (2 running)
    cm.limit(GATED, concurrency=1)
    cm.pause(GATED, ttl=0.01)  # listed before the limit; lapsed by the time the waiter resumes
    time.sleep(0.03)
    await idle()
    assert not waiter.started  # the limit still holds it back
    assert [c.kind for c in cm.active()] == ["concurrency"]
    cm.leave(GATED)
    await settle(lambda: waiter.started)
    waiter.finish.set()
    await waiter.task
    assert cm.block_reason(GATED) is None
