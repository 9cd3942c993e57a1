"""Bad input fails fast with messages naming the task, argument, resource or param."""

from __future__ import annotations

import asyncio

import pytest

import cascade as cs


class Side:
    def __init__(self) -> None:
        self.count = 0


@pytest.fixture
def side() -> Side:
    return Side()


def test_non_callable_to_task_is_type_error():
    with pytest.raises(TypeError) as info:
        cs.task(42)
    assert "42" in str(info.value) and "int" in str(info.value)
    with pytest.raises(TypeError, match="str"):
        cs.task(name="x")("not callable")


@pytest.mark.asyncio
async def test_run_on_non_lazy_is_type_error(engine):
    with pytest.raises(TypeError) as info:
        await engine.run(123)
    assert "int" in str(info.value)

    @cs.task(name="plain")
    def plain():
        return 1

    with pytest.raises(TypeError, match="Task"):
        await engine.run(plain)  # the task itself, not a call of it


def test_sync_run_on_non_lazy_is_type_error():
    with pytest.raises(TypeError, match="str"):
        cs.run("hello")


@pytest.mark.asyncio
async def test_sync_run_inside_event_loop_is_refused():
    @cs.task
    def one():
        return 1

    target = one()
    with pytest.raises(RuntimeError):
        cs.run(target)


def test_unequal_map_lengths_is_value_error_naming_task_and_arguments():
    @cs.task(name="mapper")
    def mapper(a, b):
        return a + b

    with pytest.raises(ValueError) as info:
        mapper.map(a=[1, 2, 3], b=[1])
    message = str(info.value)
    assert "mapper" in message and "a=3" in message and "b=1" in message


def test_map_argument_errors_name_task_and_argument():
    @cs.task(name="mapper")
    def mapper(a):
        return a

    with pytest.raises(TypeError, match=r"mapper\.map\(a="):
        mapper.map(a=5)
    with pytest.raises(TypeError, match="mapper"):
        mapper.map()


@pytest.mark.asyncio
async def test_unknown_resource_fails_before_any_task_runs(any_engine, side):
    @cs.task(name="first")
    def first():
        side.count += 1
        return 1

    @cs.task(name="needs_db")
    def needs_db(x, db=cs.inject("missing_db")):
        return x

    with pytest.raises(cs.ResourceError) as info:
        await any_engine.run(needs_db(first()))
    message = str(info.value)
    assert "missing_db" in message and "needs_db" in message and "db" in message
    assert side.count == 0


@pytest.mark.asyncio
async def test_unknown_resource_in_argument_value_fails_before_any_task_runs(any_engine, side):
    @cs.task(name="first")
    def first():
        side.count += 1
        return 1

    @cs.task(name="takes_conf")
    def takes_conf(x, conf):
        return x

    with pytest.raises(cs.ResourceError) as info:
        await any_engine.run(takes_conf(first(), conf={"c": cs.inject("nowhere")}))
    message = str(info.value)
    assert "nowhere" in message and "takes_conf" in message and "conf" in message
    assert side.count == 0
    assert isinstance(info.value, cs.CascadeError)


@pytest.mark.asyncio
async def test_missing_param_fails_before_any_task_runs(any_engine, side):
    @cs.task(name="first")
    def first():
        side.count += 1
        return 1

    @cs.task(name="limited")
    def limited(x, limit):
        return x + limit

    target = limited(first(), cs.Param("limit"))
    with pytest.raises(cs.ParamError) as info:
        await any_engine.run(target)
    assert "limit" in str(info.value)
    assert side.count == 0
    assert isinstance(info.value, cs.CascadeError)
    assert await any_engine.run(target, params={"limit": 4}) == 5
    assert side.count == 1


@pytest.mark.asyncio
async def test_params_must_be_a_mapping(engine):
    @cs.task
    def one():
        return 1

    with pytest.raises(TypeError):
        await engine.run(one(), params=[("a", 1)])


@pytest.mark.asyncio
async def test_router_value_without_route(runner, side):
    @cs.task(name="selector")
    def selector():
        return 42

    @cs.task(name="route_a")
    def route_a():
        side.count += 1
        return "a"

    @cs.task(name="router_user")
    def router_user(x):
        side.count += 1
        return x

    with pytest.raises(cs.RouteError) as info:
        await runner.run(router_user(cs.Router(selector(), {0: route_a(), 1: route_a()})))
    message = str(info.value)
    assert "42" in message and "router_user" in message
    assert side.count == 0


@pytest.mark.asyncio
async def test_dependency_missing_error_carries_reason(runner):
    @cs.task(name="target_task")
    def target_task():
        return 1

    @cs.task(name="no")
    def no():
        return 0

    with pytest.raises(cs.DependencyMissingError) as info:
        await runner.run(target_task().run_if(no()))
    assert info.value.reason == "ConditionFalse"
    assert "target_task" in str(info.value) and "ConditionFalse" in str(info.value)
    assert isinstance(info.value, cs.CascadeError)


@pytest.mark.asyncio
async def test_target_skipped_only_through_sequence_returns_none(runner):
    @cs.task(name="step")
    def step(x):
        return x

    assert await runner.run(cs.sequence([step(1).run_if(step(False)), step(2)])) is None
    assert await runner.run(cs.sequence([step(1).run_if(step(True)), step(2)])) == 2


@pytest.mark.asyncio
@pytest.mark.parametrize("failer_kind", ["sync", "async-immediate", "async-after-suspending"])
async def test_exception_cancels_other_in_flight_tasks(runner, failer_kind):
    started = asyncio.Event()
    outcome = []
    runner.on_reset(started.clear)
    runner.on_reset(outcome.clear)

    @cs.task(name="long")
    async def long():
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise
        except BaseException as exc:  # anything else is not a cancellation
            outcome.append(type(exc).__name__)
            raise
        outcome.append("finished")

    if failer_kind == "sync":
        @cs.task(name="failer")
        def failer(_):
            raise ValueError("bad input 7")
    elif failer_kind == "async-immediate":
        @cs.task(name="failer")
        async def failer(_):
            await started.wait()
            raise ValueError("bad input 7")
    else:
        @cs.task(name="failer")
        async def failer(_):
            await started.wait()
            for _ in range(3):
                await asyncio.sleep(0)
            raise ValueError("bad input 7")

    @cs.task(name="after_all")
    def after_all(a, b):
        outcome.append("after_all")

    with pytest.raises(ValueError, match="bad input 7"):
        await asyncio.wait_for(runner.run(after_all(long(), failer(1))), timeout=10)
    # cancelled and awaited before run() raised: the task saw CancelledError
    assert outcome == ["cancelled"]


@pytest.mark.asyncio
async def test_task_exception_propagates_unchanged(runner):
    raised = []
    runner.on_reset(raised.clear)

    class Custom(Exception):
        pass

    @cs.task(name="inner")
    async def inner():
        exc = Custom("custom message", 17)
        raised.append(exc)
        raise exc

    @cs.task(name="outer")
    def outer(x):
        return x

    with pytest.raises(Custom) as info:
        await runner.run(outer(inner()))
    assert info.value is raised[0]
    assert info.value.args == ("custom message", 17)


@pytest.mark.asyncio
async def test_exception_from_tail_call_iteration_propagates(runner):
    @cs.task(name="loop")
    def loop(n):
        if n == 0:
            raise ZeroDivisionError("reached zero")
        return loop(n - 1)

    with pytest.raises(ZeroDivisionError, match="reached zero"):
        await runner.run(loop(10))


@pytest.mark.asyncio
@pytest.mark.parametrize("hot", [True, False])
async def test_failure_interrupts_a_call_awaited_inline(hot):
    """The last independent call is awaited inline (no Task); a failure elsewhere must still
    cancel it at once, and the run must raise that failure, not CancelledError."""
    seen = []

    @cs.task
    async def fails_soon():
        await asyncio.sleep(0)
        raise KeyError("first failure")

    @cs.task
    async def waits_forever():
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    @cs.task
    def both(a, b):
        return (a, b)

    engine = cs.Engine(hot_plans=hot)
    for _ in range(2):  # the second run takes the hot path when hot
        run = asyncio.ensure_future(engine.run(both(fails_soon(), waits_forever())))
        done, _ = await asyncio.wait({run}, timeout=30)  # a deadlock guard, not a speed check
        assert done == {run}, "the failure did not interrupt the call awaited inline"
        with pytest.raises(KeyError, match="first failure"):
            run.result()
    assert seen == ["cancelled", "cancelled"]
    assert asyncio.current_task().cancelling() == 0
