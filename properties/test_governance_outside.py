"""Constraints set, changed and cleared from outside while hot loops run are honoured alike on the
hot and the slow path, and in runs that start in a template's written-out run (``Program.entry``).

A generated schedule of pauses, resumes, concurrency and rate limits (with and without TTLs, on
``global`` and ``task:<glob>`` scopes) is applied by a controller coroutine while a few tail-call
loops run concurrently on one Engine (a fan of calls joined, or, for an odd number of iterations,
the same calls one after another); before each change it lets a generated number of calls start
(bounded by loop cycles, since a pause may hold everything). Changes go either through
``engine.constraints`` or as retained messages on the engine's connector that a
``ConstraintListener`` applies (what ``cascade pause|limit|clear`` sends through a broker). Every
task body logs its start and end; the controller logs each change just before making it. From that one sequential log the
check proves, for ``Engine()`` and ``Engine(hot_plans=False)`` alike:

- after every change, what ``engine.constraints.active()`` lists is exactly what was set (one
  constraint per scope and kind; TTL'd ones left out, as they may lapse at any moment);

- no call of a paused scope starts while the pause is in force;
- at the start of a call of a scope with a concurrency limit, at most ``limit`` calls of that scope
  that started under governance are running (calls that started while nothing was in force are not
  counted, on either path; see docs/semantics.md);
- the starts of a rate-limited scope since its limit was set never outrun its bucket:
  ``count <= burst + rate * elapsed`` (grants precede starts, so start times make this sound);
- after everything is cleared every run finishes with the right value, nobody is left waiting and
  no slot is left counted.

A TTL'd constraint is taken as in force only until ``set time + ttl`` (the engine's deadline is no
earlier), so the check never depends on when exactly the engine noticed the lapse.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import partial
from time import monotonic
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

import cascade as cs
from cascade.runtime.control import ConstraintListener, constraint_payload, constraint_topic

from .profiles import ci_settings

EXAMPLES = 100
SCOPES = ("global", "task:gw_fetch*", "task:gw_store", "task:gw_*", "task:gw_fetch_more")
TTLS = (None, None, 0.004, 0.02)


class Monitor:
    """The sequential log: ("start", t, name, id), ("end", t, name, id), ("set", t, ...), ("clear", t, ...)."""

    def __init__(self) -> None:
        self.log: list[tuple[Any, ...]] = []
        self.ids = itertools.count()
        self.started = 0

    def start(self, name: str) -> int:
        self.started += 1
        i = next(self.ids)
        self.log.append(("start", monotonic(), name, i))
        return i

    def end(self, name: str, i: int) -> None:
        self.log.append(("end", monotonic(), name, i))


MON = Monitor()


async def _body(name: str, n: int, s: int) -> int:
    i = MON.start(name)
    for _ in range(s):
        await asyncio.sleep(0)
    MON.end(name, i)
    return n


@cs.task(name="gw_fetch")
async def gw_fetch(n: int, s: int) -> int:
    return await _body("gw_fetch", n, s)


@cs.task(name="gw_fetch_more")
async def gw_fetch_more(n: int, s: int) -> int:
    return await _body("gw_fetch_more", n, s)


@cs.task(name="gw_store")
async def gw_store(n: int, s: int) -> int:
    return await _body("gw_store", n, s)


@cs.task(name="gw_join")
def gw_join(*xs: int) -> int:
    MON.end("gw_join", MON.start("gw_join"))
    return sum(xs)


@cs.task(name="gw_loop")
def gw_loop(n: int, acc: int, s: int) -> Any:
    MON.end("gw_loop", MON.start("gw_loop"))
    if n == 0:
        return acc
    return gw_loop(n - 1, gw_join(acc, gw_fetch(n, s), gw_fetch_more(n, s), gw_store(n, s)), s)


@cs.task(name="gw_chain")
def gw_chain(n: int, acc: int, s: int) -> Any:
    """``gw_loop``'s value, its calls one after another: each is awaited in place while it suspends,
    so a change made meanwhile must hold back the next call of the same iteration."""
    MON.end("gw_chain", MON.start("gw_chain"))
    if n == 0:
        return acc
    v = gw_store(gw_fetch_more(gw_fetch(n, s), s), s)
    return gw_chain(n - 1, gw_join(acc, v, v, v), s)


@dataclass(frozen=True)
class Schedule:
    loops: tuple[tuple[int, int], ...]  # (iterations, suspensions per call) of each concurrent loop
    actions: tuple[tuple[int, tuple[Any, ...]], ...]  # (calls to let start first, action)
    via_topics: bool = False  # True: as retained messages on the engine's connector, through a ConstraintListener


def _actions(scopes: list[str]) -> st.SearchStrategy[tuple[Any, ...]]:
    scope = st.sampled_from(scopes)
    return st.one_of(
        st.tuples(st.just("pause"), scope, st.sampled_from(TTLS)),
        st.tuples(st.just("resume"), scope),
        st.tuples(st.just("concurrency"), scope, st.integers(1, 3), st.sampled_from(TTLS)),
        st.tuples(st.just("rate"), scope, st.sampled_from((400.0, 2000.0)), st.integers(1, 2), st.sampled_from(TTLS)),
        st.tuples(st.just("clear"), scope, st.sampled_from((None, "concurrency", "rate"))),
    )


@st.composite
def schedules(draw: Any) -> Schedule:
    # one or two scopes per schedule, so that kinds pile up on one scope (a rate limit next to a
    # concurrency limit, a pause on top) as often as they spread over several
    scopes = draw(st.lists(st.sampled_from(SCOPES), min_size=1, max_size=2, unique=True))
    loops = draw(st.lists(st.tuples(st.integers(2, 7), st.integers(0, 2)), min_size=1, max_size=3))
    actions = draw(st.lists(st.tuples(st.integers(0, 25), _actions(scopes)), min_size=1, max_size=6))
    return Schedule(tuple(loops), tuple(actions), draw(st.booleans()))


def _publish(connector: Any, action: tuple[Any, ...]) -> None:
    """The same change as a retained constraint message (what ``cascade pause|limit|clear`` sends)."""
    op, scope = action[0], action[1]
    topic = partial(constraint_topic, scope)
    if op == "pause":
        connector.publish_nowait(topic("pause"), constraint_payload("pause", ttl=action[2]), retain=True)
    elif op == "resume":
        connector.publish_nowait(topic("pause"), None, retain=True)
    elif op == "concurrency":
        connector.publish_nowait(topic("concurrency"), constraint_payload("concurrency", limit=action[2], ttl=action[3]),
                                 retain=True)
    elif op == "rate":
        connector.publish_nowait(topic("rate"), constraint_payload("rate", rate=action[2], burst=action[3],
                                                                   ttl=action[4]), retain=True)
    else:
        for kind in ("pause", "concurrency", "rate") if action[2] is None else (action[2],):
            connector.publish_nowait(topic(kind), None, retain=True)


def _apply(engine: cs.Engine, action: tuple[Any, ...], via_topics: bool) -> None:
    cm = engine.constraints
    op, scope = action[0], action[1]
    t = monotonic()  # before the change: the engine's own stamps and deadlines are no earlier
    if via_topics:
        _log_action(t, action)
        _publish(engine.connector, action)
    elif op == "pause":
        MON.log.append(("set", t, scope, "pause", None, action[2]))
        cm.pause(scope, ttl=action[2])
    elif op == "resume":
        MON.log.append(("clear", t, scope, "pause"))
        cm.resume(scope)
    elif op == "concurrency":
        MON.log.append(("set", t, scope, "concurrency", action[2], action[3]))
        cm.limit(scope, concurrency=action[2], ttl=action[3])
    elif op == "rate":
        MON.log.append(("set", t, scope, "rate", (action[2], action[3]), action[4]))
        cm.limit(scope, rate=action[2], burst=action[3], ttl=action[4])
    else:
        MON.log.append(("clear", t, scope, action[2]))
        cm.clear(scope, action[2])


def _log_action(t: float, action: tuple[Any, ...]) -> None:
    op, scope = action[0], action[1]
    if op == "pause":
        MON.log.append(("set", t, scope, "pause", None, action[2]))
    elif op == "resume":
        MON.log.append(("clear", t, scope, "pause"))
    elif op == "concurrency":
        MON.log.append(("set", t, scope, "concurrency", action[2], action[3]))
    elif op == "rate":
        MON.log.append(("set", t, scope, "rate", (action[2], action[3]), action[4]))
    else:
        MON.log.append(("clear", t, scope, action[2]))


def _model(expected: dict[tuple[str, str], tuple[Any, Any]], action: tuple[Any, ...]) -> None:
    """What should be in force after ``action``: one entry per scope and kind."""
    op, scope = action[0], action[1]
    if op == "pause":
        expected[scope, "pause"] = (None, action[2])
    elif op == "resume":
        expected.pop((scope, "pause"), None)
    elif op == "concurrency":
        expected[scope, "concurrency"] = (action[2], action[3])
    elif op == "rate":
        expected[scope, "rate"] = ((action[2], action[3]), action[4])
    else:
        for kind in ("pause", "concurrency", "rate") if action[2] is None else (action[2],):
            expected.pop((scope, kind), None)


def _starts() -> int:
    return MON.started


def _first_iteration(n: int, s: int) -> Any:
    """What ``gw_chain(n, 0, s)`` or ``gw_loop(n, 0, s)`` returns (``n > 0``): a run started from
    it on an engine that ran the loop before takes the template's written-out run (``Program.entry``)."""
    if n % 2:
        v = gw_store(gw_fetch_more(gw_fetch(n, s), s), s)
        return gw_chain(n - 1, gw_join(0, v, v, v), s)
    return gw_loop(n - 1, gw_join(0, gw_fetch(n, s), gw_fetch_more(n, s), gw_store(n, s)), s)


async def _drive(engine: cs.Engine, sched: Schedule, warm: bool = False) -> list[Any]:
    listener = ConstraintListener(engine.constraints, engine.connector)
    if sched.via_topics:
        await listener.start()
    # a loop of an odd number of iterations runs its calls one after another (gw_chain)
    runs = [asyncio.ensure_future(engine.run(_first_iteration(n, s) if warm else
                                             (gw_chain if n % 2 else gw_loop)(n, 0, s)))
            for n, s in sched.loops]
    expected: dict[tuple[str, str], tuple[Any, Any]] = {}  # (scope, kind) -> (settings, ttl)
    for delay, action in sched.actions:
        # let ``delay`` calls start under the constraints in force (each new state gets exercised),
        # or give up after a bounded number of loop cycles (a pause may hold everything)
        target = _starts() + delay
        for _ in range(4 * delay + 10):
            if _starts() >= target:
                break
            await asyncio.sleep(0)
        _apply(engine, action, sched.via_topics)
        _model(expected, action)
        listed = {(c.scope, c.kind): (c.limit if c.kind == "concurrency" else (c.rate, c.burst) if c.kind == "rate"
                                      else None)
                  for c in engine.constraints.active() if c.expires_in is None}
        untimed = {k: v for k, (v, ttl) in expected.items() if ttl is None}
        assert listed == untimed, f"in force after {action}: {listed} != {untimed}"
    for _ in range(5):
        await asyncio.sleep(0)
    MON.log.append(("clear", monotonic(), "*", None))
    engine.constraints.clear_all()
    try:
        return list(await asyncio.wait_for(asyncio.gather(*runs), timeout=5))
    except TimeoutError:
        raise AssertionError(f"runs did not finish after every constraint was cleared; "
                             f"{engine.constraints.waiting} calls still waiting") from None
    finally:
        await listener.stop()
        assert listener.rejected == 0, "a constraint message the control plane wrote was rejected"


def _matches(scope: str, name: str) -> bool:
    return scope == "global" or fnmatchcase(name, scope[len("task:"):])


def check_log(log: list[tuple[Any, ...]], label: str) -> None:
    """Replay the log and check the pause, concurrency and rate invariants at every start."""
    active: dict[tuple[str, str], tuple[Any, float, float]] = {}  # -> (params, set time, deadline)
    periods: dict[str, list[Any]] = {}  # rate scope -> [rate, burst, start time, starts so far]
    running: dict[int, tuple[str, bool]] = {}  # call id -> (name, started under governance)
    for entry in log:
        kind, t = entry[0], entry[1]
        if kind == "set":
            _, _, scope, ck, params, ttl = entry
            deadline = t + ttl if ttl is not None else float("inf")
            if ck == "rate":
                old = active.get((scope, "rate"))
                if old is None or old[2] <= t or old[0] != params:
                    periods[scope] = [params[0], params[1], t, 0]
            active[scope, ck] = (params, t, deadline)
        elif kind == "clear":
            _, _, scope, ck = entry
            for key in list(active):
                if (scope == "*" or key[0] == scope) and (ck is None or key[1] == ck):
                    del active[key]
                    if key[1] == "rate":
                        periods.pop(key[0], None)
        elif kind == "start":
            _, _, name, i = entry
            in_force = {k: v for k, v in active.items() if t < v[2]}
            for (scope, ck), (params, _, _) in in_force.items():
                if not _matches(scope, name):
                    continue
                if ck == "pause":
                    raise AssertionError(f"{label}: {name} started while {scope} was paused\n{log}")
                if ck == "concurrency":
                    now_running = 1 + sum(1 for n, gov in running.values() if gov and _matches(scope, n))
                    assert now_running <= params, (
                        f"{label}: {now_running} calls of {scope} running, limit {params}\n{log}")
                if ck == "rate":
                    period = periods[scope]
                    period[3] += 1
                    rate, burst, since, count = period
                    assert count <= burst + rate * (t - since) + 1e-6, (
                        f"{label}: {count} starts of {scope} in {t - since:.6f}s at {rate}/s burst {burst}\n{log}")
            running[i] = (name, bool(in_force))
        else:
            running.pop(entry[3], None)


def check_governance(sched: Schedule) -> None:
    expected = [sum(3 * k for k in range(1, n + 1)) for n, _ in sched.loops]
    # "warm": a hot engine that ran every loop once before, each run started from its loop's first
    # iteration of calls, so that runs begin in the written-out run of a template (``Program.entry``)
    for label in ("hot", "warm", "slow"):
        engine = cs.Engine(hot_plans=label != "slow")
        if label == "warm":
            assert asyncio.run(_drive(engine, Schedule(sched.loops, ()))) == expected
        MON.log.clear()
        values = asyncio.run(_drive(engine, sched, warm=label == "warm"))
        assert values == expected, f"{label}: {values} != {expected}"
        check_log(MON.log, label)
        cm = engine.constraints
        assert cm.waiting == 0 and cm._running == {} and not cm.gating, (
            f"{label}: left behind: waiting={cm.waiting} running={cm._running}")
        if label == "hot" and max(n for n, _ in sched.loops) > 2:
            assert engine.stats.hot_plan_hits > 0, "the hot engine never took a hot plan"


# A call granted under a concurrency limit resumes after a rate limit came into force: it must take
# a token then (the nightly profile found two starts within a burst of 1; ConstraintManager.enter).
RATE_AFTER_GRANT = Schedule(loops=((2, 1), (2, 0)),
                            actions=((0, ("concurrency", "global", 1, None)), (5, ("rate", "global", 400.0, 1, None))))


@ci_settings(EXAMPLES)
@example(RATE_AFTER_GRANT)
@given(schedules())
def test_constraints_from_outside_are_honoured_on_hot_and_slow_paths(sched: Schedule) -> None:
    check_governance(sched)
