"""Injected resources: scopes, teardown on success, failure and cancellation."""

from __future__ import annotations

import asyncio

import pytest

import cascade as cs


class Tracker:
    def __init__(self) -> None:
        self.log: list[str] = []
        self.serial = 0

    def reset(self) -> None:
        self.log.clear()
        self.serial = 0

    def count(self, entry: str) -> int:
        return self.log.count(entry)


def make_resource(tracker: Tracker, name: str, scope: str, *, is_async: bool = False):
    if is_async:
        @cs.resource(name=name, scope=scope)
        async def res():
            tracker.serial += 1
            serial = tracker.serial
            tracker.log.append(f"setup {name}")
            await asyncio.sleep(0)
            yield f"{name}-{serial}"
            tracker.log.append(f"teardown {name}")
    else:
        @cs.resource(name=name, scope=scope)
        def res():
            tracker.serial += 1
            serial = tracker.serial
            tracker.log.append(f"setup {name}")
            yield f"{name}-{serial}"
            tracker.log.append(f"teardown {name}")
    return res


class Boom(Exception):
    pass


@pytest.mark.asyncio
@pytest.mark.parametrize("is_async", [False, True], ids=["sync-gen", "async-gen"])
async def test_run_scope_is_set_up_once_and_torn_down_at_end(any_engine, is_async):
    tracker = Tracker()
    any_engine.register(make_resource(tracker, "db", "run", is_async=is_async))

    @cs.task
    def use(x, db=cs.inject("db")):
        tracker.log.append(f"use {x} {db}")
        return db

    @cs.task
    def both(a, b):
        tracker.log.append("both")
        return (a, b)

    assert await any_engine.run(both(use(1), use(2))) == ("db-1", "db-1")
    assert tracker.log == ["setup db", "use 1 db-1", "use 2 db-1", "both", "teardown db"]
    # a second run gets its own instance
    assert await any_engine.run(use(3)) == "db-2"
    assert tracker.count("setup db") == 2 and tracker.count("teardown db") == 2


@pytest.mark.asyncio
async def test_run_scope_spans_tail_call_iterations(runner):
    tracker = Tracker()
    runner.on_reset(tracker.reset)
    runner.engine.register(make_resource(tracker, "conn", "run"))

    @cs.task
    def loop(n, acc, conn=cs.inject("conn")):
        acc = acc + [conn]
        return loop(n - 1, acc) if n > 1 else acc

    assert await runner.run(loop(5, [])) == ["conn-1"] * 5
    assert tracker.log == ["setup conn", "teardown conn"]


@pytest.mark.asyncio
@pytest.mark.parametrize("is_async", [False, True], ids=["sync-gen", "async-gen"])
async def test_task_scope_is_per_call(runner, is_async):
    tracker = Tracker()
    runner.on_reset(tracker.reset)
    runner.engine.register(make_resource(tracker, "tmp", "task", is_async=is_async))

    @cs.task
    def use(x, tmp=cs.inject("tmp")):
        tracker.log.append(f"use {x} {tmp}")
        return tmp

    @cs.task
    def both(a, b):
        return (a, b)

    a, b = await runner.run(both(use(1), use(2)))
    assert {a, b} == {"tmp-1", "tmp-2"}
    assert tracker.count("setup tmp") == 2
    assert tracker.count("teardown tmp") == 2
    # each call's teardown follows its own use
    assert tracker.log.index("teardown tmp") > tracker.log.index("use 1 tmp-1")


@pytest.mark.asyncio
async def test_resource_events(runner):
    tracker = Tracker()
    runner.on_reset(tracker.reset)
    runner.engine.register(make_resource(tracker, "r", "run"))
    runner.engine.register(make_resource(tracker, "t", "task"))
    rec = runner.recorder()

    @cs.task
    def use(r=cs.inject("r"), t=cs.inject("t")):
        return r + t

    assert await runner.run(use()) == "r-1t-2"
    kinds = [(type(e).__name__, e.resource, e.scope) for e in rec.events
             if isinstance(e, (cs.ResourceAcquired, cs.ResourceReleased))]
    assert kinds == [
        ("ResourceAcquired", "r", "run"),
        ("ResourceAcquired", "t", "task"),
        ("ResourceReleased", "t", "task"),
        ("ResourceReleased", "r", "run"),
    ]


@pytest.mark.asyncio
async def test_teardown_runs_on_failure(runner):
    tracker = Tracker()
    runner.on_reset(tracker.reset)
    runner.engine.register(make_resource(tracker, "run_res", "run"))
    runner.engine.register(make_resource(tracker, "task_res", "task"))

    @cs.task
    def fail(a=cs.inject("run_res"), b=cs.inject("task_res")):
        raise Boom(f"failed with {a} {b}")

    with pytest.raises(Boom, match="failed with run_res-1 task_res-2"):
        await runner.run(fail())
    assert tracker.count("teardown run_res") == 1
    assert tracker.count("teardown task_res") == 1
    assert tracker.log[-2:] == ["teardown task_res", "teardown run_res"]


@pytest.mark.asyncio
async def test_teardown_runs_when_another_task_fails(runner):
    tracker = Tracker()
    runner.on_reset(tracker.reset)
    runner.engine.register(make_resource(tracker, "held", "task", is_async=True))
    started = asyncio.Event()
    runner.on_reset(started.clear)

    @cs.task
    async def holder(h=cs.inject("held")):
        started.set()
        await asyncio.Event().wait()

    @cs.task
    async def failer():
        await started.wait()
        raise Boom("other failed")

    @cs.task
    def pair(a, b):
        return (a, b)

    with pytest.raises(Boom, match="other failed"):
        await asyncio.wait_for(runner.run(pair(holder(), failer())), timeout=10)
    assert tracker.log == ["setup held", "teardown held"]


@pytest.mark.asyncio
async def test_teardown_runs_on_cancellation_of_the_run(any_engine):
    tracker = Tracker()
    any_engine.register(make_resource(tracker, "run_res", "run", is_async=True))
    any_engine.register(make_resource(tracker, "task_res", "task"))
    inside = asyncio.Event()
    never = asyncio.Event()

    @cs.task
    async def wait_forever(a=cs.inject("run_res"), b=cs.inject("task_res")):
        inside.set()
        await never.wait()
        return "unreachable"

    run_task = asyncio.create_task(any_engine.run(wait_forever()))
    await asyncio.wait_for(inside.wait(), timeout=10)
    assert tracker.count("teardown run_res") == 0 and tracker.count("teardown task_res") == 0
    run_task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run_task
    assert tracker.count("setup run_res") == 1 and tracker.count("teardown run_res") == 1
    assert tracker.count("setup task_res") == 1 and tracker.count("teardown task_res") == 1


@pytest.mark.asyncio
async def test_explicit_argument_overrides_injected_default(runner):
    tracker = Tracker()
    runner.on_reset(tracker.reset)
    runner.engine.register(make_resource(tracker, "db", "run"))

    @cs.task
    def use(db=cs.inject("db")):
        return db

    assert await runner.run(use(db="given")) == "given"
    assert tracker.log == []


@pytest.mark.asyncio
async def test_resource_passed_at_engine_creation():
    tracker = Tracker()
    res = make_resource(tracker, "svc", "task")

    @cs.task
    def use(s=cs.inject("svc")):
        return s

    assert await cs.Engine(resources=[res]).run(use()) == "svc-1"
    assert tracker.log == ["setup svc", "teardown svc"]


@pytest.mark.asyncio
async def test_resource_that_never_yields_is_resource_error(any_engine):
    @cs.resource(name="empty")
    def empty():
        if False:
            yield

    any_engine.register(empty)

    @cs.task
    def use(e=cs.inject("empty")):
        return e

    with pytest.raises(cs.ResourceError, match="empty"):
        await any_engine.run(use())


@pytest.mark.asyncio
async def test_async_teardown_that_awaits_runs_when_another_task_fails_at_once(runner):
    """The failing task raises without suspending, while the holder is suspended in flight."""
    log = []
    runner.on_reset(log.clear)

    @cs.resource(name="conn", scope="task")
    async def conn():
        log.append("setup")
        yield "c"
        await asyncio.sleep(0)  # cleanup that needs the event loop (closing a socket, ...)
        log.append("teardown")

    runner.engine.register(conn)

    @cs.task
    async def holder(c=cs.inject("conn")):
        await asyncio.Event().wait()

    @cs.task
    def failer():
        raise Boom("at once")

    @cs.task
    def pair(a, b):
        return (a, b)

    with pytest.raises(Boom, match="at once"):
        await asyncio.wait_for(runner.run(pair(holder(), failer())), timeout=10)
    assert log == ["setup", "teardown"]


@pytest.mark.asyncio
async def test_registering_a_replacement_resource_takes_effect_in_later_runs(any_engine):
    """``register`` replaces a resource by name; a plan compiled before must not keep the old scope."""
    log = []

    @cs.resource(name="db", scope="run")
    def db_run():
        log.append("run-setup")
        yield "R"
        log.append("run-teardown")

    @cs.resource(name="db", scope="task")
    def db_task():
        log.append("task-setup")
        yield "T"
        log.append("task-teardown")

    @cs.task
    def use(x, db=cs.inject("db")):
        return db

    @cs.task
    def pair(a, b):
        return (a, b)

    any_engine.register(db_run)
    assert await any_engine.run(pair(use(1), use(2))) == ("R", "R")
    assert log == ["run-setup", "run-teardown"]
    log.clear()
    any_engine.register(db_task)
    assert await any_engine.run(pair(use(1), use(2))) == ("T", "T")
    assert log == ["task-setup", "task-teardown"] * 2  # task scope: around each of the two calls
