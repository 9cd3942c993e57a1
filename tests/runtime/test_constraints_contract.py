"""The ConstraintManager's contract, driven through its own API (``set``, ``limit``, ``pause``,
``enter``/``leave``, ``active``, ``waiting``, ``block_reason``): sources and results of what is set,
what a lapse or a removal touches and reports, how calls that entered are counted, how a grant is
given back, and the one timer armed for the next lapse or token."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import cascade as cs


@cs.task
def cc_w(x: Any) -> Any:
    return x


@cs.task
def cc_r(x: Any) -> Any:
    return x


@cs.task
def cc_a(x: Any) -> Any:
    return x


@cs.task
def cc_b(x: Any) -> Any:
    return x


def manager() -> tuple[cs.ConstraintManager, list[cs.ConstraintChanged]]:
    """A manager on a bus of its own, and the list its ConstraintChanged events go to."""
    bus = cs.MessageBus()
    events: list[cs.ConstraintChanged] = []
    bus.subscribe(cs.ConstraintChanged, events.append)
    return cs.ConstraintManager(bus=bus), events


def changes(events: list[cs.ConstraintChanged]) -> list[tuple[Any, ...]]:
    return [(e.run_id, e.scope, e.kind, e.value, e.source) for e in events]


async def settle(predicate: Callable[[], bool], rounds: int = 500) -> None:
    for _ in range(rounds):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


class TimerLog(asyncio.SelectorEventLoop):
    """A real event loop that keeps every timer a constraint manager arms (``armed``) and tells which
    are still pending (``live``: neither cancelled nor fired)."""

    def __init__(self) -> None:
        super().__init__()
        self.armed: list[asyncio.TimerHandle] = []
        self.fired: set[int] = set()

    def call_at(self, when: float, callback: Callable[..., object], *args: Any,  # type: ignore[override]
                context: Any = None) -> asyncio.TimerHandle:
        if not isinstance(getattr(callback, "__self__", None), cs.ConstraintManager):
            return super().call_at(when, callback, *args, context=context)
        handle: asyncio.TimerHandle | None = None

        def fire() -> None:
            self.fired.add(id(handle))
            callback(*args)

        handle = super().call_at(when, fire, context=context)
        self.armed.append(handle)
        return handle

    def live(self) -> list[asyncio.TimerHandle]:
        return [h for h in self.armed if not h.cancelled() and id(h) not in self.fired]


def run_on_timer_log(main: Callable[[TimerLog], Awaitable[None]]) -> None:
    with asyncio.Runner(loop_factory=TimerLog) as runner:
        loop = runner.get_loop()
        assert isinstance(loop, TimerLog)
        runner.run(main(loop))  # type: ignore[arg-type]


# -- what is set: sources, results, checks ----------------------------------------------------------

def test_each_constraint_keeps_the_source_it_was_set_from_and_api_by_default():
    cm, events = manager()
    cm.pause("task:cc_a", source="ops/pause")
    cm.limit("task:cc_w", concurrency=2, rate=5.0, source="ops/limit")
    cm.limit("task:cc_r", concurrency=1, rate=2.0)
    cm.set("task:cc_b", "pause")
    listed = [(c.scope, c.kind, c.source) for c in cm.active()]
    assert listed == [
        ("task:cc_a", "pause", "ops/pause"),
        ("task:cc_b", "pause", "api"),
        ("task:cc_r", "concurrency", "api"), ("task:cc_r", "rate", "api"),
        ("task:cc_w", "concurrency", "ops/limit"), ("task:cc_w", "rate", "ops/limit"),
    ]
    assert [e.source for e in events] == ["ops/pause", "ops/limit", "ops/limit", "api", "api", "api"]


def test_a_stale_expires_at_removes_only_its_own_scope_and_kind_and_says_so():
    cm, events = manager()
    cm.pause("global")
    cm.pause("task:cc_a")
    cm.limit("task:cc_a", concurrency=2)
    result = cm.set("task:cc_a", "pause", expires_at=time.time() - 1, source="ops/late")
    assert result == cs.Constraint("task:cc_a", "pause", None, None, None, 0.0, "ops/late")
    assert [(c.scope, c.kind) for c in cm.active()] == [("global", "pause"), ("task:cc_a", "concurrency")]
    assert changes(events)[-1] == ("", "task:cc_a", "pause", None, "api")  # the removal, as set


def test_set_rejects_malformed_values_naming_the_scope():
    cm = cs.ConstraintManager()
    with pytest.raises(ValueError, match="concurrency limit for 'task:cc_w' must be an int >= 1"):
        cm.set("task:cc_w", "concurrency", 0)
    with pytest.raises(ValueError, match="a concurrency limit of 'task:cc_w' takes no burst"):
        cm.set("task:cc_w", "concurrency", 2, burst=3)
    with pytest.raises(ValueError, match="burst for 'task:cc_w' must be an int >= 1, got 0"):
        cm.set("task:cc_w", "rate", 1.0, burst=0)
    with pytest.raises(ValueError, match="ttl for 'task:cc_w' must be a finite number"):
        cm.set("task:cc_w", "pause", ttl=-1)
    assert cm.active() == [] and not cm.gating


def test_limit_with_a_bad_burst_sets_neither_kind():
    cm = cs.ConstraintManager()
    with pytest.raises(ValueError, match="burst for 'task:cc_w'"):
        cm.limit("task:cc_w", concurrency=2, rate=1.0, burst=0)
    assert cm.active() == [] and not cm.gating


def test_removing_a_concurrency_limit_by_set_limit_none_leaves_the_pause():
    cm = cs.ConstraintManager()
    cm.pause("task:cc_w")
    cm.set_limit("cc_w", 3)
    cm.set_limit("cc_w", None)
    assert [(c.scope, c.kind) for c in cm.active()] == [("task:cc_w", "pause")]


def test_changes_are_engine_wide_events_and_a_removal_carries_no_value():
    cm, events = manager()
    cm.pause("task:cc_w")
    cm.limit("task:cc_w", concurrency=2)
    cm.resume("task:cc_w")
    cm.set_limit("cc_w", None)
    assert changes(events) == [
        ("", "task:cc_w", "pause", {}, "api"),
        ("", "task:cc_w", "concurrency", {"limit": 2}, "api"),
        ("", "task:cc_w", "pause", None, "api"),
        ("", "task:cc_w", "concurrency", None, "api"),
    ]


# -- lapses -----------------------------------------------------------------------------------------

def test_a_manager_without_a_bus_sets_and_lapses_constraints():
    cm = cs.ConstraintManager()
    cm.pause("task:cc_w", ttl=0.01)
    assert cm.gating
    time.sleep(0.02)
    assert cm.active() == [] and not cm.gating


def test_a_lapse_removes_only_the_lapsed_constraint_and_keeps_gating():
    cm, events = manager()
    cm.pause("task:cc_a")
    cm.limit("task:cc_b", concurrency=1, ttl=0.01)
    time.sleep(0.02)
    assert [(c.scope, c.kind) for c in cm.active()] == [("task:cc_a", "pause")]
    assert cm.gating is True
    assert changes(events)[-1] == ("", "task:cc_b", "concurrency", None, "ttl")
    assert cm.block_reason("cc_a") == "paused"


@pytest.mark.asyncio
async def test_a_lapsed_pause_lets_a_call_in_before_its_timer_fired():
    cm, events = manager()
    cm.pause("task:cc_w", ttl=0.01)
    time.sleep(0.02)  # blocks the loop: the lapse timer cannot have run
    await cm.enter("cc_w")  # does not wait
    assert changes(events)[-1] == ("", "task:cc_w", "pause", None, "ttl")
    assert cm.active() == [] and not cm.gating
    cm.leave("cc_w")


@pytest.mark.asyncio
async def test_a_lapse_noticed_by_active_releases_the_calls_it_held():
    cm = cs.ConstraintManager()
    cm.pause("task:cc_w", ttl=0.04)
    held = asyncio.ensure_future(cm.enter("cc_w"))
    await settle(lambda: cm.waiting == 1)
    time.sleep(0.045)  # blocks the loop: the lapse timer cannot have run
    assert cm.active() == []
    assert cm.waiting == 0  # granted by the lapse active() found
    await asyncio.wait_for(held, 10)
    cm.leave("cc_w")


@pytest.mark.asyncio
async def test_a_shorter_ttl_set_after_a_longer_one_lapses_on_time():
    cm, events = manager()
    cm.pause("task:cc_a", ttl=30)
    cm.pause("task:cc_b", ttl=0.02)
    for _ in range(400):  # nobody calls into the manager: only its timer can notice the lapse
        if any(e.source == "ttl" for e in events):
            break
        await asyncio.sleep(0.005)
    assert [e for e in changes(events) if e[4] == "ttl"] == [("", "task:cc_b", "pause", None, "ttl")]
    assert [c.scope for c in cm.active()] == ["task:cc_a"]
    cm.clear_all()


# -- counting the calls that entered ----------------------------------------------------------------

@pytest.mark.asyncio
async def test_a_limit_set_while_governed_calls_run_counts_those_that_have_not_left():
    cm = cs.ConstraintManager()
    await cm.enter("cc_w")
    await cm.enter("cc_w")
    cm.leave("cc_w")  # one of the two is still running
    cm.limit("task:cc_w", concurrency=1)
    assert cm.block_reason("cc_w") == "concurrency_limit"
    cm.leave("cc_w")
    assert cm.block_reason("cc_w") is None


@pytest.mark.asyncio
async def test_a_leave_without_an_enter_does_not_loosen_a_limit():
    cm = cs.ConstraintManager()
    cm.limit("task:cc_w", concurrency=1)
    cm.leave("cc_w")  # nothing of cc_w entered: nothing to count down
    await cm.enter("cc_w")
    assert cm.block_reason("cc_w") == "concurrency_limit"
    cm.leave("cc_w")
    assert cm.block_reason("cc_w") is None


# -- a grant given back -----------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_a_granted_call_cancelled_before_it_resumed_gives_its_token_back():
    cm = cs.ConstraintManager()
    cm.limit("task:cc_r", rate=0.001, burst=3)  # no token refills during the test
    await cm.enter("cc_r")
    await cm.enter("cc_r")  # one token left
    cm.pause("task:cc_r")
    doomed = asyncio.ensure_future(cm.enter("cc_r"))
    await settle(lambda: cm.waiting == 1)
    cm.resume("task:cc_r")  # grants it the last token ...
    doomed.cancel()  # ... and it is cancelled before it resumed
    with pytest.raises(asyncio.CancelledError):
        await doomed
    assert cm.block_reason("cc_r") is None  # exactly that one token is back
    await cm.enter("cc_r")
    assert cm.block_reason("cc_r") == "rate_limit"
    cm.leave("cc_r")
    cm.leave("cc_r")
    cm.leave("cc_r")


@pytest.mark.asyncio
async def test_a_granted_call_paused_before_it_resumed_waits_again_then_counts():
    cm = cs.ConstraintManager()
    cm.limit("task:cc_w", concurrency=1, ttl=60)
    await cm.enter("cc_w")
    second = asyncio.ensure_future(cm.enter("cc_w"))
    await settle(lambda: cm.waiting == 1)
    cm.leave("cc_w")  # grants the slot to the second call ...
    cm.pause("task:cc_w", ttl=60)  # ... and a pause comes before it resumed
    await settle(lambda: cm.waiting == 1)
    for _ in range(20):
        await asyncio.sleep(0)
    assert not second.done()
    cm.resume("task:cc_w")
    await asyncio.wait_for(second, 10)
    assert cm.block_reason("cc_w") == "concurrency_limit"  # it holds the one slot
    cm.leave("cc_w")
    assert cm.block_reason("cc_w") is None
    cm.clear_all()


# -- the one timer ----------------------------------------------------------------------------------

def test_a_rate_held_call_arms_the_timer_for_the_moment_its_token_arrives():
    async def main(loop: TimerLog) -> None:
        cm = cs.ConstraintManager()
        cm.limit("task:cc_r", rate=10.0)  # a token every 100 ms; the bucket (1) starts full
        before = loop.time()
        await cm.enter("cc_r")  # takes the token: the next one arrives 100 ms later
        after = loop.time()
        time.sleep(0.05)  # half a token accrues
        held = asyncio.ensure_future(cm.enter("cc_r"))
        await settle(lambda: cm.waiting == 1)
        [timer] = loop.live()
        assert before + 0.1 <= timer.when() <= after + 0.1 + 0.05  # + the few statements in between
        await asyncio.wait_for(held, 10)  # the timer's pass grants it
        assert loop.live() == []
        cm.leave("cc_r")
        cm.leave("cc_r")

    run_on_timer_log(main)


def test_one_timer_stays_armed_for_the_next_lapse_across_passes():
    async def main(loop: TimerLog) -> None:
        cm = cs.ConstraintManager()
        cm.pause("task:cc_a", ttl=30)
        [first] = loop.live()
        for _ in range(5):  # passes that do not move the next lapse
            cm.pause("task:cc_b")
            cm.resume("task:cc_b")
        cm.limit("task:cc_w", concurrency=1, ttl=60)  # lapses later: the armed timer still comes first
        assert loop.armed == [first] and loop.live() == [first]
        cm.clear_all()

    run_on_timer_log(main)


def test_a_manager_used_from_a_second_event_loop_arms_its_timer_there():
    cm, events = manager()

    async def first() -> None:
        cm.pause("task:cc_a", ttl=30)  # its timer belongs to this loop, which then closes

    async def second() -> None:
        cm.resume("task:cc_a")
        cm.pause("task:cc_b", ttl=0.02)
        for _ in range(400):  # only a timer on this loop can notice the lapse
            if events[-1].source == "ttl":
                break
            await asyncio.sleep(0.005)
        assert changes(events)[-1] == ("", "task:cc_b", "pause", None, "ttl")

    asyncio.run(first())
    asyncio.run(second())
    assert cm.active() == [] and not cm.gating
