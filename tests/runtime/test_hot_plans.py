"""Hot plans versus the slow path: every observable must agree.

Each workflow below is a tail-call loop whose template repeats. It is run on
``Engine(hot_plans=True)`` and ``Engine(hot_plans=False)`` and the two are compared on results,
exceptions, skips, retries, resources, pauses and the full event stream; ``engine.stats`` proves the
hot path was really taken on every iteration whose template was compiled before.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

import cascade as cs

from ..conftest import Recorder


class Boom(Exception):
    pass


class State:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.calls: Counter[str] = Counter()
        self.attempts: Counter[int] = Counter()
        self.log: list[Any] = []
        self.cache = cs.InMemoryCache()
        self.engine: cs.Engine | None = None


S = State()


# -- tasks --------------------------------------------------------------------------------------

@cs.task(name="countdown")
def countdown(n):
    S.calls["countdown"] += 1
    return countdown(n - 1) if n > 0 else "done"


@cs.task(name="sq")
def sq(x):
    S.calls["sq"] += 1
    return x * x


@cs.task(name="add")
async def add(x, y):
    S.calls["add"] += 1
    await asyncio.sleep(0)
    return x + y


@cs.task(name="keep")
def keep(x):
    S.calls["keep"] += 1
    return x


@cs.task(name="accumulate")
def accumulate(n, acc):
    if n == 0:
        return acc
    return accumulate(n - 1, add(acc, sq(n)))


@cs.task(name="left")
async def left(x):
    await asyncio.sleep(0)
    return x + 1


@cs.task(name="right")
async def right(x):
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    return x * 2


@cs.task(name="fan")
def fan(n, a, b):
    if n == 0:
        return (a, b)
    return fan(n - 1, left(a), right(b))


@cs.task(name="is_even")
def is_even(n):
    return n % 2 == 0


@cs.task(name="positive")
def positive(n):
    return n > 0


@cs.task(name="note")
def note(n):
    S.log.append(n)
    return n


@cs.task(name="branchy")
def branchy(n, acc):
    if n == 0:
        return acc
    routed = cs.Router(is_even(n), {True: add(acc, n), False: keep(acc)})
    return branchy(n - 1, routed).after(note(n).run_if(is_even(n)))


@cs.task(name="seq_loop")
def seq_loop(n):
    return cs.sequence([note(n).run_if(positive(n - 2)), seq_loop(n - 1)])


@cs.task(name="fizzle")
def fizzle(n):
    return fizzle(n - 1).run_if(positive(n - 3))


@cs.task(name="flaky")
def flaky(n):
    S.attempts[n] += 1
    if n % 3 == 0 and S.attempts[n] < 3:
        raise Boom(f"flaky {n} attempt {S.attempts[n]}")
    return n


@cs.task(name="retry_loop")
def retry_loop(n, acc):
    if n == 0:
        return acc
    return retry_loop(n - 1, add(acc, flaky(n).with_retry(max_attempts=3)))


@cs.task(name="doomed")
def doomed(n):
    S.attempts[n] += 1
    if n == 2:
        raise Boom(f"doomed {n} attempt {S.attempts[n]}")
    return n


@cs.task(name="doomed_loop")
def doomed_loop(n, acc):
    return doomed_loop(n - 1, add(acc, doomed(n).with_retry(max_attempts=2)))


@cs.resource(name="session", scope="run")
def session():
    S.calls["session_setup"] += 1
    yield "S"
    S.calls["session_teardown"] += 1


@cs.resource(name="scratch", scope="task")
async def scratch():
    S.calls["scratch_setup"] += 1
    yield "T"
    S.calls["scratch_teardown"] += 1


@cs.task(name="use_res")
def use_res(acc, s=cs.inject("session"), t=cs.inject("scratch")):
    return acc + s + t


@cs.task(name="res_loop")
def res_loop(n, acc):
    if n == 0:
        return acc
    return res_loop(n - 1, use_res(acc))


@cs.task(name="explode")
def explode(n):
    if n == 3:
        raise ValueError(f"exploded at {n}")
    return explode(n - 1)


@cs.task(name="mod3")
def mod3(n):
    return n % 3


@cs.task(name="route_loop")
def route_loop(n, acc):
    return route_loop(n - 1, cs.Router(mod3(n), {0: keep(acc), 1: add(acc, n)}))


@cs.task(name="cached_sq")
def cached_sq(x):
    S.calls["cached_sq"] += 1
    return x * x


@cs.task(name="cache_loop")
def cache_loop(n, acc):
    if n == 0:
        return acc
    return cache_loop(n - 1, add(acc, cached_sq(n % 3).with_cache(S.cache)))


@cs.task(name="total")
def total(xs, bonus):
    return sum(xs) + bonus


@cs.task(name="map_loop")
def map_loop(n, acc):
    if n == 0:
        return acc
    return map_loop(n - 1, total(sq.map(x=[n, acc % 7]), cs.Param("bonus")))


@cs.task(name="psq", pure=True)
def psq(x):
    S.calls["psq"] += 1
    return x * x


@cs.task(name="pure_loop")
def pure_loop(n, acc):
    if n == 0:
        return acc
    return pure_loop(n - 1, add(acc, add(psq(n), psq(n))))


@cs.task(name="alt_inc")
def alt_inc(x):
    S.calls["alt_inc"] += 1
    return x + 1


@cs.task(name="alternating")
def alternating(n, acc):
    """Two templates in turn: one input used twice, then two equal calls (sharing is structure)."""
    if n == 0:
        return acc
    if n % 2:
        x = alt_inc(n)
        return alternating(n - 1, add(acc, add(x, x)))
    return alternating(n - 1, add(acc, add(alt_inc(n), alt_inc(n))))


@cs.task(name="pure_alternating")
def pure_alternating(n, acc):
    """Two templates in turn: equal pure calls merge on even n, differ on odd n."""
    if n == 0:
        return acc
    other = n if n % 2 == 0 else n + 1
    return pure_alternating(n - 1, add(acc, add(psq(n), psq(other))))


# -- the workflows ------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Workflow:
    build: Callable[[], Any]
    outcome: tuple  # ("ok", value) or ("error", type, message, reason)
    iterations: int
    misses: int  # hot_plan_misses on a fresh hot engine
    params: dict | None = None
    skips: int = 0
    retries: int = 0


WORKFLOWS = {
    "countdown": Workflow(lambda: countdown(20), ("ok", "done"), 21, 1),
    "accumulate": Workflow(lambda: accumulate(10, 0), ("ok", 385), 11, 2),
    "fan": Workflow(lambda: fan(8, 0, 1), ("ok", (8, 256)), 9, 2),
    # 10 Router iterations each prune one branch; the 5 odd ones also skip note (ConditionFalse)
    "branchy": Workflow(lambda: branchy(10, 0), ("ok", 30), 11, 2, skips=15),
    # the last iteration: note ConditionFalse, seq_loop UpstreamSkipped_Sequence -> None
    "seq_loop": Workflow(lambda: seq_loop(5), ("ok", None), 5, 2, skips=2),
    "fizzle": Workflow(
        lambda: fizzle(6),
        ("error", cs.DependencyMissingError,
         "the target 'fizzle' produced no value: it was skipped (ConditionFalse)", "ConditionFalse"),
        5, 2, skips=1,
    ),
    "retry_loop": Workflow(lambda: retry_loop(9, 0), ("ok", 45), 10, 2, retries=6),
    "doomed_loop": Workflow(
        lambda: doomed_loop(4, 0), ("error", Boom, "doomed 2 attempt 2", None), 4, 2, retries=1,
    ),
    "res_loop": Workflow(lambda: res_loop(4, ""), ("ok", "STSTSTST"), 5, 2),
    "explode": Workflow(lambda: explode(6), ("error", ValueError, "exploded at 3", None), 4, 1),
    "route_loop": Workflow(
        lambda: route_loop(7, 0),
        ("error", cs.RouteError,
         "Router selector returned 2, which has no route (routes: 0, 1; used by route_loop)", None),
        4, 2, skips=2,
    ),
    "cache_loop": Workflow(lambda: cache_loop(9, 0), ("ok", 15), 10, 2),
    "map_loop": Workflow(lambda: map_loop(3, 0), ("ok", 2), 4, 2, params={"bonus": 1}),
    "pure_loop": Workflow(lambda: pure_loop(5, 0), ("ok", 110), 6, 2),
    # templates: T0, then U, S, U, S, ... : every iteration from the 4th has a template seen before
    "alternating": Workflow(lambda: alternating(8, 0), ("ok", 88), 9, 3),
    # 2*36 + (25+36) + 2*16 + (9+16) + 2*4 + (1+4)
    "pure_alternating": Workflow(lambda: pure_alternating(6, 0), ("ok", 203), 7, 3),
}


@dataclasses.dataclass
class Observation:
    outcome: tuple
    recorder: Recorder | None
    stats: cs.EngineStats
    calls: Counter
    log: list


async def observe(name: str, hot: bool, record: bool = True) -> Observation:
    wf = WORKFLOWS[name]
    S.reset()
    engine = cs.Engine(hot_plans=hot, resources=[session, scratch])
    S.engine = engine
    rec = Recorder(engine.bus) if record else None
    target = wf.build()
    try:
        outcome: tuple = ("ok", await asyncio.wait_for(engine.run(target, params=wf.params), timeout=30))
    except Exception as exc:
        outcome = ("error", type(exc), str(exc), getattr(exc, "reason", None))
    return Observation(outcome, rec, engine.stats, Counter(S.calls), list(S.log))


NAMES = sorted(WORKFLOWS)


@pytest.mark.asyncio
@pytest.mark.parametrize("record", [True, False], ids=["subscribed", "silent"])
@pytest.mark.parametrize("name", NAMES)
async def test_result_or_exception_agree(name, record):
    hot = await observe(name, True, record)
    slow = await observe(name, False, record)
    assert hot.outcome == slow.outcome == WORKFLOWS[name].outcome
    assert hot.calls == slow.calls
    assert hot.log == slow.log


@pytest.mark.asyncio
@pytest.mark.parametrize("name", NAMES)
async def test_full_event_sequences_agree(name):
    hot = await observe(name, True)
    slow = await observe(name, False)
    hot_events, slow_events = hot.recorder.comparable(), slow.recorder.comparable()
    assert len(hot_events) == len(slow_events)
    for i, (h, s) in enumerate(zip(hot_events, slow_events, strict=True)):
        assert h == s, f"event {i} differs"
    assert len(hot.recorder.run_ids()) == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("name", NAMES)
async def test_skips_agree(name):
    hot = await observe(name, True)
    slow = await observe(name, False)

    def skips(obs):
        return [(e.task_name, e.reason, e.node, e.iteration) for e in obs.recorder.of(cs.TaskSkipped)]

    assert skips(hot) == skips(slow)
    assert len(skips(hot)) == WORKFLOWS[name].skips


def test_branchy_skip_reasons_by_hand():
    hot = asyncio.run(observe("branchy", True))
    reasons = Counter((e.task_name, e.reason) for e in hot.recorder.of(cs.TaskSkipped))
    assert reasons == Counter({
        ("keep", "UpstreamSkipped_Route"): 5,  # even n: the add branch is picked
        ("add", "UpstreamSkipped_Route"): 5,  # odd n: the keep branch is picked
        ("note", "ConditionFalse"): 5,
    })
    assert hot.log == [10, 8, 6, 4, 2]


def test_seq_loop_skip_reasons_by_hand():
    hot = asyncio.run(observe("seq_loop", True))
    skips = [(e.task_name, e.reason, e.iteration) for e in hot.recorder.of(cs.TaskSkipped)]
    assert skips == [("note", "ConditionFalse", 5), ("seq_loop", "UpstreamSkipped_Sequence", 5)]
    assert hot.log == [5, 4, 3]


@pytest.mark.asyncio
@pytest.mark.parametrize("name", NAMES)
async def test_retry_counts_agree(name):
    hot = await observe(name, True)
    slow = await observe(name, False)

    def retries(obs):
        return [(e.task_name, e.node, e.iteration, e.attempt) for e in obs.recorder.of(cs.TaskRetrying)]

    assert retries(hot) == retries(slow)
    assert len(retries(hot)) == WORKFLOWS[name].retries


@pytest.mark.asyncio
@pytest.mark.parametrize("record", [True, False], ids=["subscribed", "silent"])
async def test_resource_setup_and_teardown_counts_agree(record):
    hot = await observe("res_loop", True, record)
    slow = await observe("res_loop", False, record)
    expected = {"session_setup": 1, "session_teardown": 1, "scratch_setup": 4, "scratch_teardown": 4}
    for obs in (hot, slow):
        assert {k: obs.calls[k] for k in expected} == expected
    if record:
        def resource_events(obs):
            return [(type(e).__name__, e.resource, e.scope) for e in obs.recorder.events
                    if isinstance(e, (cs.ResourceAcquired, cs.ResourceReleased))]
        assert resource_events(hot) == resource_events(slow)
        assert len(resource_events(hot)) == 10


@pytest.mark.asyncio
@pytest.mark.parametrize("record", [True, False], ids=["subscribed", "silent"])
async def test_cache_hits_agree(record):
    hot = await observe("cache_loop", True, record)
    slow = await observe("cache_loop", False, record)
    assert hot.calls["cached_sq"] == slow.calls["cached_sq"] == 3  # n % 3 takes 3 values
    if record:
        def cached(obs):
            return [e.iteration for e in obs.recorder.of(cs.TaskExecutionFinished) if e.status == "Cached"]
        assert cached(hot) == cached(slow)
        assert len(cached(hot)) == 6


@pytest.mark.asyncio
@pytest.mark.parametrize("name", NAMES)
async def test_stats_prove_the_hot_path_ran(name):
    wf = WORKFLOWS[name]
    hot = await observe(name, True, record=False)
    assert hot.stats.hot_plan_misses == wf.misses
    assert hot.stats.hot_plan_hits == wf.iterations - wf.misses
    assert hot.stats.plan_solves == wf.misses
    slow = await observe(name, False, record=False)
    assert slow.stats.hot_plan_hits == 0
    assert slow.stats.graph_builds == wf.iterations
    assert slow.stats.plan_solves == wf.iterations
    assert hot.stats.tail_calls == slow.stats.tail_calls == wf.iterations - 1


@pytest.mark.asyncio
async def test_one_node_loop_hits_on_every_iteration_after_the_first():
    engine = cs.Engine()
    S.reset()
    assert await engine.run(countdown(100)) == "done"
    assert engine.stats.hot_plan_hits == 100  # 101 iterations
    assert engine.stats.hot_plan_misses == 1
    assert engine.stats.graph_builds == 1
    assert S.calls["countdown"] == 101


@pytest.mark.asyncio
async def test_pure_nodes_bind_through_a_graph_build_but_never_resolve():
    hot = await observe("pure_loop", True, record=False)
    assert hot.calls["psq"] == 5  # psq(n) twice per iteration, merged into one call
    assert hot.stats.plan_solves == 2
    assert hot.stats.graph_builds == 6  # 2 compiles + 4 hits bound through a graph build
    slow = await observe("pure_loop", False, record=False)
    assert slow.calls["psq"] == 5


@pytest.mark.asyncio
async def test_alternating_templates_call_counts():
    hot = await observe("alternating", True, record=False)
    assert hot.calls["alt_inc"] == 4 + 4 * 2  # odd n share one call, even n make two
    hot = await observe("pure_alternating", True, record=False)
    assert hot.calls["psq"] == 3 + 3 * 2  # even n merge into one call, odd n make two


@pytest.mark.asyncio
async def test_second_run_reuses_the_plans_of_the_first():
    engine = cs.Engine()
    S.reset()
    assert await engine.run(accumulate(5, 0)) == 55
    assert engine.stats.hot_plan_misses == 2
    assert await engine.run(accumulate(7, 0)) == 140
    assert engine.stats.hot_plan_misses == 2
    assert engine.stats.hot_plan_hits == 4 + 8


# -- pause inside a hot loop ----------------------------------------------------------------------

@cs.task(name="work")
def work(acc, n):
    S.calls["work"] += 1
    return acc + n


@cs.task(name="pausing_loop")
def pausing_loop(n, acc):
    if n == 5:
        S.engine.pause(work)  # the next iterations' work call must wait
    if n == 0:
        return acc
    return pausing_loop(n - 1, work(acc, n))


@pytest.mark.asyncio
@pytest.mark.parametrize("hot", [True, False], ids=["hot", "slow"])
async def test_pause_inside_a_hot_loop_holds_the_task_until_resume(hot):
    S.reset()
    engine = cs.Engine(hot_plans=hot)
    S.engine = engine
    rec = Recorder(engine.bus, cs.TaskBlocked)
    run_task = asyncio.create_task(engine.run(pausing_loop(10, 0)))
    for _ in range(500):
        if rec.events:
            break
        await asyncio.sleep(0)
    assert [(e.task_name, e.reason, e.iteration) for e in rec.events] == [("work", "paused", 7)]
    calls_when_blocked = S.calls["work"]
    assert calls_when_blocked == 5  # n = 10..6 ran before pausing_loop(5) paused work
    for _ in range(50):
        await asyncio.sleep(0)
    assert S.calls["work"] == calls_when_blocked
    assert not run_task.done()
    engine.resume(work)
    assert await asyncio.wait_for(run_task, timeout=10) == 55
    assert S.calls["work"] == 10
    if hot:
        assert engine.stats.hot_plan_hits == 9  # 11 iterations, 2 templates


# -- CS-W001 ------------------------------------------------------------------------------------

@cs.task(name="noop")
def noop(x):
    return x


@cs.task(name="grow")
def grow(n, prev):
    if n == 0:
        return prev
    x = noop(n)
    for _ in range(n):  # a chain one node longer than the previous iteration's
        x = noop(x)
    return grow(n + 1 if n < 12 else 0, x)


@cs.task(name="grow_too")
def grow_too(n, prev):
    if n == 0:
        return prev
    x = noop(n)
    for _ in range(n):
        x = noop(x)
    return grow_too(n + 1 if n < 8 else 0, x)


@pytest.mark.asyncio
async def test_changing_shape_warns_once_per_task():
    engine = cs.Engine()
    rec = Recorder(engine.bus, cs.StaticAnalysisWarning)
    assert await engine.run(grow(1, None)) == 12
    assert [(e.code, e.task_name) for e in rec.events] == [("CS-W001", "grow")]
    assert await engine.run(grow(1, None)) == 12  # warned already: not again
    assert await engine.run(grow_too(1, None)) == 8
    assert [(e.code, e.task_name) for e in rec.events] == [("CS-W001", "grow"), ("CS-W001", "grow_too")]
    assert "grow" in rec.events[0].message
    # grow: 13 iterations, all new templates; the second run finds all 13 compiled; grow_too: 9 new
    assert engine.stats.hot_plan_misses == 13 + 9
    assert engine.stats.hot_plan_hits == 13


@pytest.mark.asyncio
async def test_stable_loops_do_not_warn():
    engine = cs.Engine()
    rec = Recorder(engine.bus, cs.StaticAnalysisWarning)
    S.reset()
    assert await engine.run(accumulate(30, 0)) == sum(i * i for i in range(31))
    assert await engine.run(countdown(30)) == "done"
    assert rec.events == []


@cs.task(name="self_pausing")
async def self_pausing(n):
    S.calls["self_pausing"] += 1
    if n == 5:
        S.engine.pause(self_pausing)  # the next iteration is a call of this very task
    return self_pausing(n - 1) if n > 0 else "end"


@pytest.mark.asyncio
@pytest.mark.parametrize("hot", [True, False], ids=["hot", "slow"])
async def test_pause_inside_a_one_node_hot_loop(hot):
    S.reset()
    engine = cs.Engine(hot_plans=hot)
    S.engine = engine
    rec = Recorder(engine.bus, cs.TaskBlocked)
    run_task = asyncio.create_task(engine.run(self_pausing(8)))
    for _ in range(500):
        if rec.events:
            break
        await asyncio.sleep(0)
    for _ in range(50):
        await asyncio.sleep(0)
    assert [(e.task_name, e.reason, e.iteration) for e in rec.events] == [("self_pausing", "paused", 5)]
    assert S.calls["self_pausing"] == 4  # n = 8, 7, 6, 5
    assert not run_task.done()
    engine.resume(self_pausing)
    assert await asyncio.wait_for(run_task, timeout=10) == "end"
    assert S.calls["self_pausing"] == 9
    if hot:
        assert engine.stats.hot_plan_hits == 8


@cs.task(name="pure_const", pure=True)
def pure_const(x):
    S.calls["pure_const"] += 1
    return x


@cs.task(name="pure_repeat")
def pure_repeat(n, acc):
    if n == 0:
        return acc
    return pure_repeat(n - 1, add(acc, pure_const(2)))


@pytest.mark.asyncio
@pytest.mark.parametrize("hot", [True, False], ids=["hot", "slow"])
async def test_pure_results_are_not_shared_across_iterations(hot):
    S.reset()
    engine = cs.Engine(hot_plans=hot)
    assert await engine.run(pure_repeat(6, 0)) == 12
    assert S.calls["pure_const"] == 6  # one call per iteration: no sharing without a cache policy


@pytest.mark.asyncio
async def test_two_suspending_calls_finish_in_the_same_event_order_hot_and_slow():
    """Shrunk by the property suite: the last independent call is awaited inline on the hot path,
    the other runs in a Task; each call's TaskExecutionFinished must still come when it completes,
    as on the slow path, not when the scheduler gets round to collecting it."""

    @cs.task
    async def pause_a(x):
        await asyncio.sleep(0)
        return x

    @cs.task
    async def pause_b(x):
        await asyncio.sleep(0)
        return x

    @cs.task
    def step(n):
        if n == 0:
            return "done"
        return step(n - 1).after(pause_a(n), pause_b(n))

    async def events(hot):
        engine = cs.Engine(hot_plans=hot)
        seen = []
        engine.bus.subscribe(cs.TaskExecutionFinished, lambda e: seen.append((e.task_name, e.iteration)))
        assert await engine.run(step(4)) == "done"
        return seen, engine.stats

    hot, hot_stats = await events(True)
    slow, _ = await events(False)
    assert hot_stats.hot_plan_hits >= 2
    assert hot == slow
