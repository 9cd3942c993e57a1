"""The engine's and the run-scope resources' contract in detail: the exact messages and events a
user sees (resource errors, CS-W002/CS-W003 warnings, RunFinished on a cancelled teardown), what
a teardown error does to a run, the state backend note on a failed run, and the setup and
teardown of a run that mixes constant and generator resources."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

import cascade as cs
from cascade.runtime.context import RunContext

CONNECTOR = "cascade.connector"


class Boom(Exception):
    pass


class Fatal(BaseException):
    """Not an ``Exception``: a teardown raising it must win over an ordinary teardown error."""


def recorder(engine: cs.Engine) -> list[Any]:
    events: list[Any] = []
    engine.bus.subscribe(cs.Event, events.append)
    return events


def of(events: list[Any], kind: type) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


def _assert_warned_once(events: list[Any], caplog: Any, code: str, task_name: str, expected: str) -> None:
    """One StaticAnalysisWarning of the run, with exactly this text, also logged once."""
    (warning,) = of(events, cs.StaticAnalysisWarning)
    (started,) = of(events, cs.RunStarted)
    assert (warning.run_id, warning.code, warning.task_name, warning.message) == (
        started.run_id, code, task_name, expected,
    )
    assert [r.getMessage() for r in caplog.records if r.name == "cascade.engine"] == [expected]


def sync_resource(name: str, log: list[str]) -> cs.Resource:
    @cs.resource(name=name)
    def res():
        log.append(f"setup {name}")
        yield f"{name}-value"
        log.append(f"teardown {name}")

    return res


def async_resource(name: str, log: list[str]) -> cs.Resource:
    @cs.resource(name=name)
    async def res():
        log.append(f"setup {name}")
        await asyncio.sleep(0)
        yield f"{name}-value"
        log.append(f"teardown {name}")

    return res


# -- resource errors users see ----------------------------------------------------------------------

@pytest.mark.asyncio
async def test_a_resource_that_yields_twice_fails_the_run_naming_the_resource():
    @cs.resource(name="twice")
    def twice():
        yield 1
        yield 2

    @cs.task
    def use(v=cs.inject("twice")):
        return v

    with pytest.raises(cs.ResourceError) as info:
        await cs.Engine(resources=[twice]).run(use())
    assert str(info.value) == "resource 'twice' yielded more than once"


@pytest.mark.asyncio
async def test_a_sync_run_scope_resource_that_never_yields_fails_the_run_naming_it():
    @cs.resource(name="empty")
    def empty():
        if False:
            yield None

    @cs.task
    def use(x, v=cs.inject("empty")):
        return v

    with pytest.raises(cs.ResourceError) as info:  # a two-step run: set up in the sequential walk
        await cs.Engine(resources=[empty]).run(use(work(1)))
    assert str(info.value) == "resource 'empty' finished without yielding a value"


# -- constant (connector) and generator resources in one run ------------------------------------------

@pytest.mark.asyncio
@pytest.mark.parametrize("is_async", [False, True], ids=["sync-gen", "async-gen"])
async def test_a_generator_resource_opened_before_the_connector_is_torn_down_after_it(is_async):
    log: list[str] = []
    make = async_resource if is_async else sync_resource
    engine = cs.Engine(resources=[make("g", log)])
    events = recorder(engine)

    @cs.task
    def use(g=cs.inject("g"), conn=cs.inject(CONNECTOR)):
        return (g, conn is engine.connector)

    assert await engine.run(use()) == ("g-value", True)
    assert log == ["setup g", "teardown g"]
    (started,) = of(events, cs.RunStarted)
    released = of(events, cs.ResourceReleased)
    assert [(e.run_id, e.resource, e.scope) for e in released] == [
        (started.run_id, CONNECTOR, "run"), (started.run_id, "g", "run"),
    ]


@pytest.mark.asyncio
@pytest.mark.parametrize("is_async", [False, True], ids=["sync-gen", "async-gen"])
async def test_a_resource_injected_after_the_connector_is_still_set_up(is_async):
    log: list[str] = []
    make = async_resource if is_async else sync_resource
    engine = cs.Engine(resources=[make("g", log)])
    events = recorder(engine)

    @cs.task
    def use(x, conn=cs.inject(CONNECTOR), g=cs.inject("g")):
        return (conn is engine.connector, g)

    assert await engine.run(use(work(1))) == (True, "g-value")
    assert log == ["setup g", "teardown g"]
    assert [e.resource for e in of(events, cs.ResourceAcquired)] == [CONNECTOR, "g"]
    assert [e.resource for e in of(events, cs.ResourceReleased)] == ["g", CONNECTOR]


@pytest.mark.asyncio
@pytest.mark.parametrize("is_async", [False, True], ids=["sync-gen", "async-gen"])
async def test_a_later_call_sets_up_the_resources_an_earlier_call_did_not(is_async):
    log: list[str] = []
    make = async_resource if is_async else sync_resource
    engine = cs.Engine(resources=[make("a", log), make("b", log)])

    @cs.task
    def first(a=cs.inject("a")):
        return a

    @cs.task
    def second(x, a=cs.inject("a"), b=cs.inject("b")):
        return (x, a, b)

    assert await engine.run(second(first())) == ("a-value", "a-value", "b-value")
    assert log == ["setup a", "setup b", "teardown b", "teardown a"]


@pytest.mark.asyncio
async def test_a_call_waiting_for_a_shared_resource_still_sets_up_its_other_ones():
    """Two parallel calls share ``a``: the one that waited for the other to set ``a`` up still sets
    up ``c``, which only it injects."""
    log: list[str] = []
    a_started = asyncio.Event()
    release = asyncio.Event()

    @cs.resource(name="a")
    async def a():
        log.append("setup a")
        a_started.set()
        await release.wait()
        yield "a-value"

    engine = cs.Engine(resources=[a, sync_resource("c", log)])

    @cs.task
    async def p(a=cs.inject("a")):
        return a

    @cs.task
    async def after_a_started():
        await a_started.wait()  # p is setting ``a`` up now
        release.set()
        return "go"

    @cs.task
    async def q(_go, a=cs.inject("a"), c=cs.inject("c")):
        return (a, c)

    @cs.task
    def pair(x, y):
        return (x, y)

    assert await engine.run(pair(p(), q(after_a_started()))) == ("a-value", ("a-value", "c-value"))
    assert log == ["setup a", "setup c", "teardown c"]


# -- teardown errors ----------------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_a_teardown_raising_a_base_exception_wins_over_an_earlier_teardown_error():
    @cs.resource(name="first")
    def first():
        yield 1
        raise Fatal("first teardown")

    @cs.resource(name="second")
    def second():
        yield 2
        raise Boom("second teardown")

    @cs.task
    def use(a=cs.inject("first"), b=cs.inject("second")):
        return a + b

    engine = cs.Engine(resources=[first, second])
    with pytest.raises(Fatal, match="first teardown") as info:
        await engine.run(use())
    [other] = info.value.cascade_teardown_errors  # type: ignore[attr-defined]
    assert isinstance(other, Boom)
    assert "cascade: raised by the teardown of run-scope resource 'first'" in info.value.__notes__


@pytest.mark.asyncio
async def test_a_teardown_error_while_the_run_is_cancelled_is_logged_naming_the_resource(caplog):
    started = asyncio.Event()

    @cs.resource(name="flaky")
    def flaky():
        yield 1
        raise Boom("teardown failed")

    @cs.task
    async def wait_forever(v=cs.inject("flaky")):
        started.set()
        await asyncio.Event().wait()

    engine = cs.Engine(resources=[flaky])
    with caplog.at_level(logging.ERROR, logger="cascade.resources"):
        run = asyncio.ensure_future(engine.run(wait_forever()))
        await started.wait()
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
    [record] = [r for r in caplog.records if r.name == "cascade.resources"]
    assert record.getMessage() == (
        "the teardown of run-scope resource 'flaky' failed while CancelledError() propagated"
    )
    assert isinstance(record.exc_info[1], Boom)


@pytest.mark.asyncio
async def test_a_run_cancelled_during_its_teardown_finishes_as_cancelled():
    tearing = asyncio.Event()

    @cs.resource(name="slow")
    async def slow():
        yield 1
        tearing.set()
        await asyncio.Event().wait()  # cancelled here

    @cs.task
    def use(v=cs.inject("slow")):
        return v

    engine = cs.Engine(resources=[slow])
    events = recorder(engine)
    run = asyncio.ensure_future(engine.run(use()))
    await tearing.wait()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    (finished,) = of(events, cs.RunFinished)
    assert (finished.status, finished.error) == ("Cancelled", None)


# -- the state backend after a failed run -----------------------------------------------------------

class StoreDown(cs.InMemoryStateBackend):
    def clear(self, run_id: str) -> None:
        raise RuntimeError("store down")


@pytest.mark.asyncio
@pytest.mark.parametrize("with_resource", [False, True], ids=["plain", "run-scope-resource"])
async def test_a_failed_run_keeps_its_own_exception_noting_the_state_backend_error(with_resource):
    log: list[str] = []
    engine = cs.Engine(state_backend=StoreDown(), resources=[sync_resource("db", log)])
    events = recorder(engine)

    if with_resource:
        @cs.task
        def fail(db=cs.inject("db")):
            raise Boom("task failed")
    else:
        @cs.task
        def fail():
            raise Boom("task failed")

    with pytest.raises(Boom, match="task failed") as info:
        await engine.run(fail())
    (started,) = of(events, cs.RunStarted)
    assert (
        f"the state backend could not clear run {started.run_id}: RuntimeError('store down')"
        in info.value.__notes__
    )
    (finished,) = of(events, cs.RunFinished)
    assert finished.status == "Failed" and "task failed" in finished.error
    assert log == (["setup db", "teardown db"] if with_resource else [])


# -- CS-W002: constraints on capacities the engine lacks --------------------------------------------

@cs.task
def work(x):
    return x * 2


@cs.task
def other(x):
    return x + 1


@cs.task
def pair(a, b):
    return (a, b)


@pytest.mark.asyncio
async def test_missing_capacity_warning_text_names_the_capacities_asked_and_had(caplog):
    engine = cs.Engine(system_resources={"mem": 8, "cpu": 2})
    events = recorder(engine)
    with caplog.at_level(logging.WARNING, logger="cascade.engine"):
        assert await engine.run(work(1).with_constraints(gpu=1, tpu=1)) == 2
    _assert_warned_once(events, caplog, "CS-W002", "work", (
        "task 'work' asks for 'gpu', 'tpu' in with_constraints(), which this engine has no capacity "
        "for (system_resources: cpu, mem), so it is not limited. Pass Engine(system_resources={...}) "
        "with that name, or drop the constraint."
    ))


@pytest.mark.asyncio
async def test_missing_capacity_warning_says_none_when_the_engine_has_no_capacity():
    engine = cs.Engine()
    events = recorder(engine)
    assert await engine.run(work(1).with_constraints(gpu=1)) == 2
    (warning,) = of(events, cs.StaticAnalysisWarning)
    assert "(system_resources: none), so it is not limited." in warning.message


@pytest.mark.asyncio
async def test_a_task_warned_before_does_not_hide_the_warning_of_the_next_one():
    engine = cs.Engine()
    events = recorder(engine)
    assert await engine.run(work(1).with_constraints(gpu=1)) == 2
    assert await engine.run(pair(work(2).with_constraints(gpu=1), other(2).with_constraints(gpu=1))) == (4, 3)
    assert [(e.code, e.task_name) for e in of(events, cs.StaticAnalysisWarning)] == [
        ("CS-W002", "work"), ("CS-W002", "other"),
    ]


# -- CS-W003: run params no task read ---------------------------------------------------------------

@cs.task
def add(a, b):
    return a + b


@pytest.mark.asyncio
async def test_unread_params_warning_names_the_unread_and_the_read_params(caplog):
    engine = cs.Engine()
    events = recorder(engine)
    with caplog.at_level(logging.WARNING, logger="cascade.engine"):
        result = await engine.run(add(cs.Param("a"), cs.Param("c")), params={"a": 1, "b": 2, "c": 3, "d": 4})
    assert result == 4
    _assert_warned_once(events, caplog, "CS-W003", "add", (
        "run(params=...) got 'b', 'd', which no task of this run read (a typo, or a cs.Param only on "
        "a branch that did not run); the params read were: 'a', 'c'"
    ))


@pytest.mark.asyncio
async def test_unread_params_warning_says_none_when_no_param_was_read():
    engine = cs.Engine()
    events = recorder(engine)
    assert await engine.run(work(1), params={"x": 1}) == 2
    (warning,) = of(events, cs.StaticAnalysisWarning)
    assert warning.message.endswith("; the params read were: none")


# -- ResourceScope.must_close --------------------------------------------------------------------------

@pytest.mark.parametrize("listening", [False, True], ids=["quiet-bus", "active-bus"])
def test_a_run_must_close_when_it_opened_a_generator_or_has_a_release_to_publish(listening):
    engine = cs.Engine(resources=[sync_resource("g", [])])
    if listening:
        recorder(engine)
    fresh = RunContext(engine, {})
    assert not fresh.must_close()  # nothing set up: nothing to do, whoever listens

    constant_only = RunContext(engine, {})
    constant_only.ensure_now((CONNECTOR,))
    assert constant_only.values == {CONNECTOR: engine.connector}
    assert constant_only.must_close() is listening  # only a release to publish

    with_generator = RunContext(engine, {})
    with_generator.ensure_now(("g",))
    assert with_generator.must_close()  # a teardown to run


# -- registering -------------------------------------------------------------------------------------

def test_registering_something_that_is_not_a_resource_names_it():
    def not_a_resource():
        yield 1

    with pytest.raises(TypeError) as info:
        cs.Engine().register(not_a_resource)  # type: ignore[arg-type]
    assert str(info.value) == f"register() needs a @cs.resource, got {not_a_resource!r}"


# -- setups of one run do not interleave ----------------------------------------------------------------

@pytest.mark.asyncio
async def test_a_nested_walk_waits_for_a_setup_in_progress_in_another_call_of_the_run():
    """While one call of the run sets up ``a`` (async) and ``s``, a lazy result returned by another
    call is walked in place; its step injecting ``s`` waits for that setup instead of setting ``s``
    up in the middle of it."""
    log: list[str] = []
    go_x, a_started, gate = asyncio.Event(), asyncio.Event(), asyncio.Event()

    @cs.resource(name="a")
    async def a():
        log.append("setup a started")
        a_started.set()
        await gate.wait()
        log.append("setup a done")
        yield "a-value"

    engine = cs.Engine(resources=[a, sync_resource("s", log)])

    @cs.task
    async def dep():
        await go_x.wait()
        return 0

    @cs.task
    def x(_d, a=cs.inject("a"), s=cs.inject("s")):
        return (a, s)

    @cs.task
    async def step0():
        go_x.set()
        await a_started.wait()  # x is setting ``a`` up, holding the run's setup lock
        gate.set()
        return 0

    @cs.task
    def step1(_v, s=cs.inject("s")):
        return s

    @cs.task
    def y():
        return step1(step0())

    @cs.task
    def both(p, q):
        return (p, q)

    assert await engine.run(both(x(dep()), y())) == (("a-value", "s-value"), "s-value")
    assert log == ["setup a started", "setup a done", "setup s", "teardown s"]
