"""The Scheduler's contract at the edges of a run: cancellation, failures that land while a call
waits to be awaited inline, a call resumed in a Task of its own, dormant Router inputs, and calls
that wait for a run-scope resource another call is setting up.

Each test reaches its state with real asyncio control only: futures the test resolves, counted
``asyncio.sleep(0)`` cycles, and tasks that fail at a chosen point.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import cascade as cs

HOT = pytest.mark.parametrize("hot", [True, False])


async def cycles(n: int) -> None:
    """Let the event loop run ``n`` cycles."""
    for _ in range(n):
        await asyncio.sleep(0)


async def until(cond: Any, limit: int = 200) -> None:
    """Let the loop run until ``cond()`` holds (a bounded number of cycles, never wall-clock time)."""
    for _ in range(limit):
        if cond():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


def subscribe_all(engine: cs.Engine) -> list[Any]:
    events: list[Any] = []
    engine.bus.subscribe(cs.Event, events.append)
    return events


@cs.task(name="ec_value")
def value(x: Any) -> Any:
    return x


@cs.task(name="ec_pair")
def pair(a: Any, b: Any) -> tuple[Any, Any]:
    return a, b


@cs.task(name="ec_wait")
async def wait_for(gates: dict[str, asyncio.Future[Any]], key: str, log: list[str]) -> Any:
    """Waits for the test to resolve ``gates[key]``; logs how it ended."""
    log.append(f"{key} waiting")
    try:
        return await gates[key]
    except asyncio.CancelledError:
        log.append(f"{key} cancelled")
        raise
    finally:
        log.append(f"{key} closed")


@cs.task(name="ec_cancels_itself")
async def cancels_itself(message: str) -> None:
    await asyncio.sleep(0)
    raise asyncio.CancelledError(message)


# -- cancellation of a call, and of the run -------------------------------------------------------
@HOT
@pytest.mark.parametrize("subscribed", [False, True])
@pytest.mark.asyncio
async def test_a_call_that_cancels_itself_fails_the_run_when_it_was_the_only_one_in_flight(
        hot: bool, subscribed: bool) -> None:
    # The call suspends, so it runs in a Task; the sync call beside it settles at once and the
    # run then waits for that Task alone. Its cancellation must fail the run, not end it with
    # the target never started (a result of None).
    engine = cs.Engine(hot_plans=hot)
    if subscribed:
        subscribe_all(engine)
    with pytest.raises(asyncio.CancelledError):
        await engine.run(pair(cancels_itself("mine"), value(2)))



async def run_failure(engine: cs.Engine, target: Any) -> BaseException:
    try:
        await engine.run(target)
    except BaseException as exc:
        return exc
    raise AssertionError("the run did not fail")


@HOT
@pytest.mark.parametrize("subscribed", [False, True])
@pytest.mark.asyncio
async def test_a_call_that_cancels_itself_fails_the_run_alike_with_one_or_several_calls_in_flight(
        hot: bool, subscribed: bool) -> None:
    # Awaiting a lone Task directly is only a shortcut of the scheduler's general wait: the run
    # must fail the same way as when the call is one of several in flight.
    engine = cs.Engine(hot_plans=hot)
    if subscribed:
        subscribe_all(engine)
    gates: dict[str, asyncio.Future[Any]] = {"w": asyncio.get_running_loop().create_future()}
    log: list[str] = []
    alone = await run_failure(engine, pair(cancels_itself("mine"), value(2)))
    beside = await run_failure(engine, value([cancels_itself("mine"), wait_for(gates, "w", log), value(1)]))
    assert log == ["w waiting", "w cancelled", "w closed"]  # the other call was in flight
    assert type(alone) is type(beside) is asyncio.CancelledError
    assert alone.args == beside.args


@HOT
@pytest.mark.parametrize("subscribed", [False, True])
@pytest.mark.asyncio
async def test_cancelling_a_run_that_waits_for_one_call_raises_the_callers_cancellation(
        hot: bool, subscribed: bool) -> None:
    engine = cs.Engine(hot_plans=hot)
    if subscribed:
        subscribe_all(engine)
    log: list[str] = []
    gates: dict[str, asyncio.Future[Any]] = {"w": asyncio.get_running_loop().create_future()}
    run = asyncio.create_task(engine.run(pair(wait_for(gates, "w", log), value(2))))
    await until(lambda: "w waiting" in log)
    await cycles(2)  # the run now waits for that one call
    run.cancel("stop")
    with pytest.raises(asyncio.CancelledError) as info:
        await run
    assert info.value.args == ("stop",)  # the caller's own cancellation, message included
    assert log == ["w waiting", "w cancelled", "w closed"]


@HOT
@pytest.mark.asyncio
async def test_a_call_resumed_in_a_task_with_subscribers_gets_the_value_it_waited_for(hot: bool) -> None:
    # With subscribers the suspended call is finished by a coroutine that publishes its events;
    # it must go on waiting for the very future the call was waiting on.
    engine = cs.Engine(hot_plans=hot)
    events = subscribe_all(engine)
    log: list[str] = []
    gates: dict[str, asyncio.Future[Any]] = {"w": asyncio.get_running_loop().create_future()}
    run = asyncio.create_task(engine.run(pair(wait_for(gates, "w", log), value(2))))
    await until(lambda: "w waiting" in log)
    await cycles(3)
    assert not run.done()
    gates["w"].set_result("W")
    assert await run == ("W", 2)
    finished = [(e.task_name, e.status) for e in events if isinstance(e, cs.TaskExecutionFinished)]
    assert finished == [("ec_value", "Succeeded"), ("ec_wait", "Succeeded"), ("ec_pair", "Succeeded")]


# -- a failure while a call waits to be awaited inline --------------------------------------------
@cs.task(name="ec_returns_lazy")
async def returns_lazy(after: Any, gates: dict[str, asyncio.Future[Any]], log: list[str]) -> Any:
    """Waits for ``gates["a"]``, then returns a lazy result the engine evaluates."""
    await gates["a"]
    return wait_for(gates, "inner", log)


@HOT
@pytest.mark.asyncio
async def test_a_run_cancelled_as_a_returned_lazy_result_starts_cancels_that_evaluation(hot: bool) -> None:
    # ec_returns_lazy runs in a Task: when it started, the ec_value planned before it was still
    # waiting for its input. Its done-callback starts the evaluation of the lazy result it returned and parks
    # it to be awaited inline; the run is cancelled in that same loop cycle. The parked evaluation
    # must be cancelled and unwound before the run ends, like every call in flight.
    engine = cs.Engine(hot_plans=hot)
    log: list[str] = []
    loop = asyncio.get_running_loop()
    gates: dict[str, asyncio.Future[Any]] = {k: loop.create_future() for k in ("g0", "a", "inner")}
    target = pair(value(wait_for(gates, "g0", log)), returns_lazy(value(1), gates, log))
    run = asyncio.create_task(engine.run(target))
    await until(lambda: "g0 waiting" in log)
    gates["g0"].set_result("G")
    await until(lambda: "g0 closed" in log)
    await cycles(3)  # ec_value has run; the run waits for ec_returns_lazy alone
    gates["a"].set_result(None)
    await asyncio.sleep(0)  # ec_returns_lazy has just returned; its done-callback runs next cycle
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert log[-3:] == ["inner waiting", "inner cancelled", "inner closed"]


@cs.task(name="ec_slow_cleanup")
async def slow_cleanup(gates: dict[str, asyncio.Future[Any]], log: list[str]) -> None:
    try:
        await gates["never"]
    finally:
        log.append("cleanup started")
        await gates["cleanup"]
        log.append("cleanup done")


@cs.task(name="ec_fails")
async def fails() -> None:
    await asyncio.sleep(0)
    raise ValueError("boom")


@HOT
@pytest.mark.asyncio
async def test_a_run_cancelled_while_its_failure_unwinds_waits_for_the_cleanups_then_raises_the_cancellation(
        hot: bool) -> None:
    engine = cs.Engine(hot_plans=hot)
    log: list[str] = []
    loop = asyncio.get_running_loop()
    gates: dict[str, asyncio.Future[Any]] = {k: loop.create_future() for k in ("never", "cleanup")}
    run = asyncio.create_task(engine.run(pair(slow_cleanup(gates, log), fails())))
    await until(lambda: "cleanup started" in log)  # ec_fails failed; the other call unwinds
    run.cancel()
    await cycles(3)
    assert not run.done()  # a second cancellation does not cut the cleanup short
    gates["cleanup"].set_result(None)
    with pytest.raises(asyncio.CancelledError):
        await run
    assert log == ["cleanup started", "cleanup done"]


# -- Routers ----------------------------------------------------------------------------------------
@cs.task(name="ec_record")
def record(x: Any, log: list[str]) -> Any:
    log.append(f"record {x!r}")
    return x


@HOT
@pytest.mark.parametrize("subscribed", [False, True])
@pytest.mark.asyncio
async def test_a_chosen_route_starts_only_once_its_dormant_inputs_have_settled(hot: bool, subscribed: bool) -> None:
    # The route picked by the selector depends on a step that only that route needs (dormant
    # until the pick) and that suspends: the route must wait for its value, and run once.
    engine = cs.Engine(hot_plans=hot)
    if subscribed:
        subscribe_all(engine)
    log: list[str] = []
    gates: dict[str, asyncio.Future[Any]] = {"b": asyncio.get_running_loop().create_future()}
    router = cs.Router(value("b"), {"a": record("A", log), "b": record(wait_for(gates, "b", log), log)})
    run = asyncio.create_task(engine.run(value(router)))
    await until(lambda: "b waiting" in log)
    await cycles(3)
    assert log == ["b waiting"]  # the route has not started without its input
    gates["b"].set_result("B")
    assert await run == "B"
    assert log == ["b waiting", "b closed", "record 'B'"]


# -- run-scope resources set up by another call --------------------------------------------------
def resources(gates: dict[str, asyncio.Future[Any]], log: list[str]) -> list[cs.Resource]:
    @cs.resource(name="ec_slow")
    async def slow() -> Any:
        log.append("slow setup")
        await gates["setup"]  # the setup lock is held meanwhile
        yield "slow-value"

    @cs.resource(name="ec_quick")
    def quick() -> Any:
        log.append("quick setup")
        yield "quick-value"

    return [slow, quick]


@cs.task(name="ec_uses_slow")
def uses_slow(v: Any = cs.inject("ec_slow")) -> Any:
    return v


@cs.task(name="ec_uses_quick")
def uses_quick(log: list[str], v: Any = cs.inject("ec_quick")) -> Any:
    log.append("uses quick")
    return v


@cs.task(name="ec_nested")
def nested(log: list[str]) -> Any:
    """Returns a program of two independent calls, one needing the quick resource."""
    return pair(uses_quick(log), record("free", log))


@HOT
@pytest.mark.parametrize("subscribed", [False, True])
@pytest.mark.asyncio
async def test_calls_needing_no_resource_run_while_another_call_sets_up_the_run_resources(
        hot: bool, subscribed: bool) -> None:
    # ec_uses_slow holds the run's resource setup while its resource waits. The program that
    # ec_nested returns is evaluated meanwhile: its call needing the (sync) quick resource must
    # wait for that setup, and the call beside it, which needs nothing, must not wait with it.
    log: list[str] = []
    gates: dict[str, asyncio.Future[Any]] = {"setup": asyncio.get_running_loop().create_future()}
    engine = cs.Engine(hot_plans=hot, resources=resources(gates, log))
    if subscribed:
        subscribe_all(engine)
    run = asyncio.create_task(engine.run(pair(uses_slow(), nested(log))))
    await until(lambda: "record 'free'" in log)
    assert log == ["slow setup", "record 'free'"]
    gates["setup"].set_result(None)
    assert await run == ("slow-value", ("quick-value", "free"))
    assert log == ["slow setup", "record 'free'", "quick setup", "uses quick"]



@HOT
@pytest.mark.asyncio
async def test_a_call_that_finishes_while_the_run_is_woken_for_another_is_collected_in_that_wake_up(
        hot: bool) -> None:
    # Three calls in flight. ec_wait "a" finishes and its done-callback wakes the run; "b"
    # finishes in the cycle between, so when the run looks, "b" is done but its own callback has
    # not run yet. The run collects it at once and starts its consumer in the same wake-up,
    # without waiting one more cycle for that callback and another for the wake-up it sends.
    engine = cs.Engine(hot_plans=hot)
    log: list[str] = []
    loop = asyncio.get_running_loop()
    gates: dict[str, asyncio.Future[Any]] = {k: loop.create_future() for k in "abc"}
    target = value([wait_for(gates, "a", log), record(wait_for(gates, "b", log), log), wait_for(gates, "c", log)])
    run = asyncio.create_task(engine.run(target))
    await until(lambda: "c waiting" in log)
    await cycles(3)
    gates["a"].set_result("A")
    await asyncio.sleep(0)
    gates["b"].set_result("B")
    for i in range(3):
        log.append(f"cycle {i}")
        await asyncio.sleep(0)
    gates["c"].set_result("C")
    assert await run == ["A", "B", "C"]
    assert log[3:] == ["a closed", "cycle 0", "b closed", "cycle 1", "record 'B'", "cycle 2", "c closed"]
