"""Engine behaviour across runs and loops: markers on the hot path, argument binding, offload,
cancellation mid-loop, FIFO capacities, isolation of concurrent runs."""

from __future__ import annotations

import asyncio
import threading

import pytest

import cascade as cs


@cs.task(name="v")
def v(x):
    return x


@cs.task(name="f")
def f(*args, **kwargs):
    return (args, kwargs)


def wide_target(i):
    return f(
        v(i), {"b": v(i + 1), "a": v(i + 2), 3: v(i + 3)}, (v(i + 4), i), [cs.Param("p"), v(i + 5)],
        k2=v(i + 6), k1=[v(i + 7)], k0=cs.Param("q", default=i),
    )


def wide_expected(i, p):
    return (
        (i, {"b": i + 1, "a": i + 2, 3: i + 3}, (i + 4, i), [p, i + 5]),
        {"k2": i + 6, "k1": [i + 7], "k0": i},
    )


@pytest.mark.asyncio
async def test_every_argument_gets_its_own_value_on_every_run(any_engine):
    for i in (0, 10, 20):
        result = await any_engine.run(wide_target(i), params={"p": f"P{i}"})
        assert result == wide_expected(i, f"P{i}")
        assert type(result[0][2]) is tuple and type(result[0][3]) is list
    if any_engine.hot_plans:
        assert any_engine.stats.hot_plan_hits == 2


@pytest.mark.asyncio
async def test_params_are_not_baked_into_a_hot_plan(engine):
    target = v(cs.Param("x", type=int))
    assert await engine.run(target, params={"x": "1"}) == 1
    assert await engine.run(target, params={"x": 2}) == 2
    with pytest.raises(cs.ParamError, match="'x'"):
        await engine.run(target)
    assert engine.stats.hot_plan_hits == 2


@pytest.mark.asyncio
async def test_env_is_read_on_every_hot_run(engine, monkeypatch):
    target = v(cs.Env("CASCADE_TEST_HOT_ENV"))
    monkeypatch.setenv("CASCADE_TEST_HOT_ENV", "a")
    assert await engine.run(target) == "a"
    monkeypatch.setenv("CASCADE_TEST_HOT_ENV", "b")
    assert await engine.run(target) == "b"
    assert engine.stats.hot_plan_hits == 1


@cs.task(name="param_loop")
def param_loop(n, acc):
    if n == 0:
        return acc
    return param_loop(n - 1, f(acc, cs.Param("tag")))


@pytest.mark.asyncio
async def test_param_inside_a_hot_loop(any_engine):
    result = await any_engine.run(param_loop(2, 0), params={"tag": "t"})
    assert result == ((((0, "t"), {}), "t"), {})


@pytest.mark.asyncio
async def test_missing_param_in_a_later_iteration_fails_before_that_iteration_runs(any_engine):
    ran = []

    @cs.task(name="marker_step")
    def marker_step(x):
        ran.append(x)
        return x

    @cs.task(name="late")
    def late(n):
        ran.append(("late", n))
        if n == 0:
            return f(marker_step("uses param"), cs.Param("needed"))
        return late(n - 1)

    with pytest.raises(cs.ParamError, match="needed"):
        await any_engine.run(late(2))
    assert ran == [("late", 2), ("late", 1), ("late", 0)]


@pytest.mark.asyncio
async def test_lazy_result_inside_a_set_is_a_plain_literal(any_engine):
    calls = []

    @cs.task(name="side")
    def side():
        calls.append(1)
        return 1

    inner = side()
    result = await any_engine.run(v({inner}))
    assert result == {inner}
    assert calls == []


@pytest.mark.asyncio
async def test_empty_map_and_single_step_sequence(any_engine):
    assert await any_engine.run(v.map(x=[])) == []
    step = v(3)
    assert cs.sequence([step]) is step
    assert await any_engine.run(cs.sequence([step])) == 3


@pytest.mark.asyncio
async def test_unhashable_selector_value_is_route_error(any_engine):
    with pytest.raises(cs.RouteError, match=r"\[1\]"):
        await any_engine.run(v(cs.Router(v([1]), {1: v(1)})))


@pytest.mark.asyncio
async def test_router_inside_a_list(any_engine):
    router = cs.Router(v("a"), {"a": v(1), "b": v(2)})
    assert await any_engine.run(v([router, 5])) == [1, 5]


def test_offloaded_sync_task_runs_in_another_thread():
    @cs.task(name="where", offload=True)
    def where():
        return threading.get_ident()

    @cs.task(name="here")
    def here():
        return threading.get_ident()

    loop_thread = threading.get_ident()
    assert cs.run(where()) != loop_thread
    assert cs.run(here()) == loop_thread


def test_engine_created_outside_a_loop_serves_several_loops():
    engine = cs.Engine()

    async def paused_run(x):
        engine.pause()
        task = asyncio.ensure_future(engine.run(v(x)))
        for _ in range(5):
            await asyncio.sleep(0)
        assert not task.done()
        engine.resume()
        return await task

    assert asyncio.run(paused_run(1)) == 1
    assert asyncio.run(paused_run(2)) == 2
    assert engine.stats.hot_plan_hits == 1


def test_cs_run_passes_engine_options():
    assert cs.run(v(cs.Param("a")), params={"a": 5}, hot_plans=False) == 5
    assert cs.run(v(1).with_constraints(cpu=1), system_resources={"cpu": 1}) == 1


@pytest.mark.asyncio
async def test_tail_call_target_keeps_its_policies(any_engine):
    attempts = []

    @cs.task(name="flaky_target")
    def flaky_target(n):
        attempts.append(n)
        if len(attempts) == 1:
            raise ValueError("first attempt")
        return n

    @cs.task(name="go")
    def go(n):
        return flaky_target(n).with_retry(max_attempts=2)

    assert await any_engine.run(go(5)) == 5
    assert attempts == [5, 5]


@pytest.mark.asyncio
async def test_retry_without_delay_never_sleeps_and_delays_follow_backoff(any_engine, monkeypatch):
    real_sleep = asyncio.sleep
    sleeps = []

    async def counting_sleep(delay, *args, **kwargs):
        sleeps.append(delay)
        return await real_sleep(0)

    attempts = []

    @cs.task(name="always")
    def always():
        attempts.append(1)
        raise ValueError("always")

    monkeypatch.setattr(asyncio, "sleep", counting_sleep)
    with pytest.raises(ValueError):
        await any_engine.run(always().with_retry(max_attempts=3, delay=0.0))
    assert sleeps == [] and len(attempts) == 3
    with pytest.raises(ValueError):
        await any_engine.run(always().with_retry(max_attempts=4, delay=0.5, backoff=3.0))
    assert sleeps == [0.5, 1.5, 4.5]


@pytest.mark.asyncio
async def test_event_order_for_a_retried_call(any_engine, make_recorder):
    rec = make_recorder(any_engine.bus)
    count = [0]

    @cs.task(name="twice")
    def twice():
        count[0] += 1
        if count[0] < 3:
            raise ValueError(f"try {count[0]}")
        return "ok"

    assert await any_engine.run(twice().with_retry(max_attempts=3)) == "ok"
    sequence = [(type(e).__name__, getattr(e, "attempt", None)) for e in rec.events]
    assert sequence == [
        ("RunStarted", None),
        ("TaskExecutionStarted", 1), ("TaskRetrying", 2),
        ("TaskExecutionStarted", 2), ("TaskRetrying", 3),
        ("TaskExecutionStarted", 3), ("TaskExecutionFinished", None),
        ("RunFinished", None),
    ]


@pytest.mark.asyncio
async def test_task_scope_resource_is_set_up_per_call_not_per_attempt(any_engine):
    log = []

    @cs.resource(name="per_call", scope="task")
    def per_call():
        log.append("setup")
        yield "r"
        log.append("teardown")

    any_engine.register(per_call)
    count = [0]

    @cs.task(name="retried")
    def retried(r=cs.inject("per_call")):
        count[0] += 1
        if count[0] < 3:
            raise ValueError("again")
        return r

    assert await any_engine.run(retried().with_retry(max_attempts=3)) == "r"
    assert log == ["setup", "teardown"]


@pytest.mark.asyncio
async def test_concurrency_limit_emits_task_blocked(any_engine, make_recorder):
    rec = make_recorder(any_engine.bus, cs.TaskBlocked)

    @cs.task(name="lim")
    async def lim(i):
        await asyncio.sleep(0)
        return i

    any_engine.set_concurrency_limit("lim", 1)
    assert await any_engine.run(f(lim(1), lim(2))) == ((1, 2), {})
    assert [(e.task_name, e.reason) for e in rec.events] == [("lim", "concurrency_limit")]


@pytest.mark.asyncio
async def test_capacity_waiters_are_served_first_in_first_out():
    cm = cs.ConstraintManager({"cpu": 2})
    await cm.acquire({"cpu": 1})
    order = []

    async def want(amount, tag):
        await cm.acquire({"cpu": amount})
        order.append(tag)

    big = asyncio.ensure_future(want(2, "big"))
    await asyncio.sleep(0)
    small = asyncio.ensure_future(want(1, "small"))
    for _ in range(3):
        await asyncio.sleep(0)
    assert order == []  # one cpu is free, but "small" may not overtake "big"
    assert cm.available == {"cpu": 1}
    cm.release({"cpu": 1})
    await big
    assert order == ["big"] and cm.available == {"cpu": 0}
    cm.release({"cpu": 2})
    await small
    assert order == ["big", "small"] and cm.available == {"cpu": 1}


@cs.task(name="gated_step")
async def gated_step(n, gate, r=cs.inject("loop_res")):
    if n == 3:
        await gate.wait()
    return n


@cs.task(name="gated_loop")
def gated_loop(n, acc, gate):
    if n == 0:
        return acc
    return gated_loop(n - 1, gated_step(n, gate), gate)


@pytest.mark.asyncio
async def test_cancelling_a_run_in_the_middle_of_a_loop(any_engine, make_recorder):
    log = []

    @cs.resource(name="loop_res")
    def loop_res():
        log.append("setup")
        yield 1
        log.append("teardown")

    any_engine.register(loop_res)
    rec = make_recorder(any_engine.bus)
    gate = asyncio.Event()
    task = asyncio.create_task(any_engine.run(gated_loop(6, 0, gate)))
    for _ in range(100):
        if any(isinstance(e, cs.TaskExecutionStarted) and e.iteration == 5 for e in rec.events):
            break
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert log == ["setup", "teardown"]
    assert rec.of(cs.RunFinished)[0].status == "Cancelled"
    started = [(e.task_name, e.iteration) for e in rec.of(cs.TaskExecutionStarted)]
    assert started[-1] == ("gated_step", 5)  # iteration 5 evaluates gated_step(3), which waits


class Boom(Exception):
    pass


@cs.task(name="iso_step")
async def iso_step(i, n):
    await asyncio.sleep(0)
    if i % 4 == 1 and n == 2:
        raise Boom(f"run {i} failed")
    return i + n


@cs.task(name="iso_loop")
def iso_loop(i, n, acc):
    if n == 0:
        return acc
    return iso_loop(i, n - 1, iso_step(i, n))


@pytest.mark.asyncio
async def test_failures_and_cancellations_do_not_leak_between_concurrent_runs():
    engine = cs.Engine()
    hold = asyncio.Event()

    @cs.task(name="hang")
    async def hang():
        await hold.wait()

    runs = {}
    for i in range(60):
        target = hang() if i % 4 == 3 else iso_loop(i, 5, 0)
        runs[i] = asyncio.create_task(engine.run(target))
    for _ in range(20):
        await asyncio.sleep(0)
    for i, task in runs.items():
        if i % 4 == 3:
            task.cancel()
    outcomes = await asyncio.gather(*runs.values(), return_exceptions=True)
    for i, out in zip(runs, outcomes, strict=True):
        if i % 4 == 3:
            assert isinstance(out, asyncio.CancelledError)
        elif i % 4 == 1:
            assert isinstance(out, Boom) and str(out) == f"run {i} failed"
        else:
            assert out == i + 1  # the last step is iso_step(i, 1)
