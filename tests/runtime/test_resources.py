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


# -- resources that inject resources (issue 16) ------------------------------------------------------


def chain_resources(tracker: Tracker, scopes: dict[str, str], *, fail_setup: str | None = None,
                    fail_teardown: tuple[str, ...] = ()) -> list[cs.Resource]:
    """``config`` <- ``db`` <- ``repo``: each injects the previous one and yields a value built on it."""

    def make(name: str, dep: str | None):
        def body(up):
            tracker.log.append(f"setup {name}")
            if name == fail_setup:
                raise Boom(f"setup {name} failed")
            yield f"{name}({up})" if up is not None else name
            tracker.log.append(f"teardown {name}")
            if name in fail_teardown:
                raise OSError(f"teardown {name} failed")

        if dep is None:
            def gen():
                yield from body(None)
        else:
            def gen(up=cs.inject(dep)):
                yield from body(up)
        return cs.resource(gen, name=name, scope=scopes[name])

    return [make("config", None), make("db", "config"), make("repo", "db")]


@pytest.mark.asyncio
async def test_resource_injects_resources_set_up_in_dependency_order(runner):
    tracker = Tracker()
    runner.on_reset(tracker.reset)
    # registered in reverse: registration order must not matter
    for res in reversed(chain_resources(tracker, {"config": "run", "db": "run", "repo": "run"})):
        runner.engine.register(res)

    @cs.task
    def use(x, repo=cs.inject("repo")):
        tracker.log.append(f"use {x}")
        return repo

    @cs.task
    def pair(a, b):
        return (a, b)

    assert await runner.run(pair(use(1), use(2))) == ("repo(db(config))",) * 2
    assert tracker.log == [
        "setup config", "setup db", "setup repo", "use 1", "use 2",
        "teardown repo", "teardown db", "teardown config",
    ]


@pytest.mark.asyncio
async def test_task_scope_resource_injects_run_scope_resources(runner):
    tracker = Tracker()
    runner.on_reset(tracker.reset)
    for res in chain_resources(tracker, {"config": "run", "db": "run", "repo": "task"}):
        runner.engine.register(res)

    @cs.task
    def use(x, repo=cs.inject("repo")):
        tracker.log.append(f"use {x}")
        return repo

    @cs.task
    def pair(a, b):
        return (a, b)

    assert await runner.run(pair(use(1), use(2))) == ("repo(db(config))",) * 2
    # run scope once per run, task scope around each call, run scope torn down last
    assert tracker.log == [
        "setup config", "setup db",
        "setup repo", "use 1", "teardown repo",
        "setup repo", "use 2", "teardown repo",
        "teardown db", "teardown config",
    ]


@pytest.mark.asyncio
async def test_task_scope_resources_inject_each_other_once_per_call(runner):
    tracker = Tracker()
    runner.on_reset(tracker.reset)
    for res in chain_resources(tracker, {"config": "run", "db": "task", "repo": "task"}):
        runner.engine.register(res)

    @cs.task
    def use(repo=cs.inject("repo"), db=cs.inject("db")):
        tracker.log.append(f"use {repo} {db}")
        return repo

    assert await runner.run(use()) == "repo(db(config))"
    # db is injected by the task and by repo: one instance in this call, set up before repo
    assert tracker.log == [
        "setup config", "setup db", "setup repo", "use repo(db(config)) db(config)",
        "teardown repo", "teardown db", "teardown config",
    ]


@pytest.mark.asyncio
@pytest.mark.parametrize("scope", ["run", "task"])
async def test_dependent_resources_torn_down_in_reverse_when_the_task_fails(runner, scope):
    tracker = Tracker()
    runner.on_reset(tracker.reset)
    for res in chain_resources(tracker, {"config": "run", "db": scope, "repo": scope}):
        runner.engine.register(res)

    @cs.task
    def fail(repo=cs.inject("repo")):
        raise Boom(f"failed with {repo}")

    with pytest.raises(Boom, match=r"failed with repo\(db\(config\)\)"):
        await runner.run(fail())
    assert tracker.log == [
        "setup config", "setup db", "setup repo", "teardown repo", "teardown db", "teardown config",
    ]


@pytest.mark.asyncio
@pytest.mark.parametrize("scope", ["run", "task"])
async def test_a_failing_setup_tears_down_what_it_injected(runner, scope):
    tracker = Tracker()
    runner.on_reset(tracker.reset)
    resources = chain_resources(tracker, {"config": "run", "db": scope, "repo": scope}, fail_setup="repo")
    for res in resources:
        runner.engine.register(res)
    ran = []
    runner.on_reset(ran.clear)

    @cs.task
    def use(repo=cs.inject("repo")):
        ran.append(repo)

    with pytest.raises(Boom, match="setup repo failed"):
        await runner.run(use())
    assert ran == []
    assert tracker.log == ["setup config", "setup db", "setup repo", "teardown db", "teardown config"]


@pytest.mark.asyncio
@pytest.mark.parametrize("scope", ["run", "task"])
async def test_dependent_resources_torn_down_in_reverse_on_cancellation(any_engine, scope):
    tracker = Tracker()
    for res in chain_resources(tracker, {"config": "run", "db": scope, "repo": scope}):
        any_engine.register(res)
    inside = asyncio.Event()

    @cs.task
    async def wait_forever(repo=cs.inject("repo")):
        inside.set()
        await asyncio.Event().wait()

    run_task = asyncio.create_task(any_engine.run(wait_forever()))
    await asyncio.wait_for(inside.wait(), timeout=10)
    run_task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run_task
    assert tracker.log == [
        "setup config", "setup db", "setup repo", "teardown repo", "teardown db", "teardown config",
    ]


def _upstream_and_user(ran: list[str], resource: str):
    @cs.task
    def upstream():
        ran.append("upstream")
        return 1

    @cs.task
    def user(x, r=cs.inject(resource)):
        ran.append("user")
        return r

    return user(upstream())


@pytest.mark.asyncio
async def test_resource_cycle_is_an_error_naming_it_before_any_task_runs(any_engine):
    @cs.resource(name="a")
    def a(b=cs.inject("b")):
        yield "a"

    @cs.resource(name="b")
    def b(c=cs.inject("c")):
        yield "b"

    @cs.resource(name="c")
    def c(a=cs.inject("a")):
        yield "c"

    for res in (a, b, c):
        any_engine.register(res)
    ran: list[str] = []
    with pytest.raises(cs.ResourceError) as info:
        await any_engine.run(_upstream_and_user(ran, "b"))
    assert str(info.value) == "task 'user': resources inject each other in a cycle: b -> c -> a -> b"
    assert ran == []


@pytest.mark.asyncio
async def test_resource_injecting_itself_is_a_cycle(any_engine):
    @cs.resource(name="selfish")
    def selfish(me=cs.inject("selfish")):
        yield "x"

    any_engine.register(selfish)
    ran: list[str] = []
    with pytest.raises(cs.ResourceError, match="cycle: selfish -> selfish"):
        await any_engine.run(_upstream_and_user(ran, "selfish"))
    assert ran == []


@pytest.mark.asyncio
async def test_resource_injecting_an_unknown_resource_is_an_error_naming_it(any_engine):
    @cs.resource(name="db")
    def db(config=cs.inject("confg")):
        yield "db"

    any_engine.register(db)
    ran: list[str] = []
    with pytest.raises(cs.ResourceError) as info:
        await any_engine.run(_upstream_and_user(ran, "db"))
    message = str(info.value)
    assert message.startswith(
        "task 'user': resource 'db' parameter 'config' injects unknown resource 'confg' (known: "
    )
    assert "db" in message.rsplit("known: ", 1)[1]
    assert ran == []


@pytest.mark.asyncio
async def test_run_scope_resource_may_not_inject_a_task_scope_one(any_engine):
    @cs.resource(name="tmp", scope="task")
    def tmp():
        yield "tmp"

    @cs.resource(name="db", scope="run")
    def db(t=cs.inject("tmp")):
        yield "db"

    any_engine.register(tmp)
    any_engine.register(db)
    ran: list[str] = []
    with pytest.raises(cs.ResourceError) as info:
        await any_engine.run(_upstream_and_user(ran, "db"))
    message = str(info.value)
    assert message.startswith("task 'user': run-scope resource 'db' (parameter 't') cannot inject "
                              "task-scope resource 'tmp'")
    assert ran == []


# -- teardown errors (issue 17) ------------------------------------------------------------------


def teardown_notes(exc: BaseException) -> list[str]:
    """The notes the teardown policy added (other notes, such as the failed task's name, aside)."""
    return [n for n in getattr(exc, "__notes__", []) if "teardown of" in n]


def failing_teardown(name: str, scope: str, log: list[str], *, is_async: bool = False):
    if is_async:
        @cs.resource(name=name, scope=scope)
        async def res():
            yield name
            await asyncio.sleep(0)
            log.append(f"teardown {name}")
            raise OSError(f"teardown {name} failed")
    else:
        @cs.resource(name=name, scope=scope)
        def res():
            yield name
            log.append(f"teardown {name}")
            raise OSError(f"teardown {name} failed")
    return res


@pytest.mark.asyncio
@pytest.mark.parametrize("scope", ["run", "task"])
async def test_teardown_error_does_not_replace_the_task_exception(runner, scope):
    log: list[str] = []
    runner.on_reset(log.clear)
    runner.engine.register(failing_teardown("conn", scope, log))

    @cs.task
    def fail(c=cs.inject("conn")):
        raise ValueError("the real error")

    with pytest.raises(ValueError, match="the real error") as info:
        await runner.run(fail())
    exc = info.value
    assert log == ["teardown conn"]
    assert teardown_notes(exc) == [
        f"cascade: the teardown of {scope}-scope resource 'conn' failed too: OSError('teardown conn failed')"
    ]
    [attached] = exc.cascade_teardown_errors
    assert type(attached) is OSError and str(attached) == "teardown conn failed"


@pytest.mark.asyncio
async def test_teardown_errors_of_both_scopes_attach_to_the_task_exception(runner):
    log: list[str] = []
    runner.on_reset(log.clear)
    runner.engine.register(failing_teardown("outer", "run", log))
    runner.engine.register(failing_teardown("inner", "task", log, is_async=True))

    @cs.task
    def fail(o=cs.inject("outer"), i=cs.inject("inner")):
        raise KeyError("k")

    with pytest.raises(KeyError) as info:
        await runner.run(fail())
    assert log == ["teardown inner", "teardown outer"]
    assert [str(e) for e in info.value.cascade_teardown_errors] == [
        "teardown inner failed", "teardown outer failed",
    ]
    assert teardown_notes(info.value) == [
        "cascade: the teardown of task-scope resource 'inner' failed too: OSError('teardown inner failed')",
        "cascade: the teardown of run-scope resource 'outer' failed too: OSError('teardown outer failed')",
    ]


@pytest.mark.asyncio
@pytest.mark.parametrize("scope", ["run", "task"])
async def test_when_only_teardown_fails_its_error_propagates(runner, scope):
    log: list[str] = []
    runner.on_reset(log.clear)
    runner.engine.register(failing_teardown("conn", scope, log))
    rec = runner.recorder(cs.RunFinished)

    @cs.task
    def ok(c=cs.inject("conn")):
        return c

    with pytest.raises(OSError, match="teardown conn failed") as info:
        await runner.run(ok())
    assert log == ["teardown conn"]
    assert teardown_notes(info.value) == [f"cascade: raised by the teardown of {scope}-scope resource 'conn'"]
    [finished] = rec.events
    assert finished.status == "Failed" and "teardown conn failed" in finished.error


@pytest.mark.asyncio
async def test_task_scope_teardown_continues_past_a_failing_resource(runner):
    tracker = Tracker()
    runner.on_reset(tracker.reset)
    log = tracker.log
    runner.engine.register(make_resource(tracker, "first", "task"))
    runner.engine.register(failing_teardown("middle", "task", log))
    runner.engine.register(make_resource(tracker, "last", "task", is_async=True))

    @cs.task
    def use(a=cs.inject("first"), b=cs.inject("middle"), c=cs.inject("last")):
        log.append("use")
        return "ok"

    with pytest.raises(OSError, match="teardown middle failed"):
        await runner.run(use())
    assert log == ["setup first", "setup last", "use", "teardown last", "teardown middle", "teardown first"]


@pytest.mark.asyncio
@pytest.mark.parametrize("scope", ["run", "task"])
async def test_two_failing_teardowns_both_run_and_the_first_propagates(runner, scope):
    log: list[str] = []
    runner.on_reset(log.clear)
    runner.engine.register(failing_teardown("a", scope, log))
    runner.engine.register(failing_teardown("b", scope, log))

    @cs.task
    def use(a=cs.inject("a"), b=cs.inject("b")):
        return a + b

    with pytest.raises(OSError, match="teardown b failed") as info:
        await runner.run(use())
    assert log == ["teardown b", "teardown a"]
    [other] = info.value.cascade_teardown_errors
    assert str(other) == "teardown a failed"


@pytest.mark.asyncio
async def test_every_task_scope_teardown_runs_when_the_task_fails_too(runner):
    tracker = Tracker()
    runner.on_reset(tracker.reset)
    log = tracker.log
    runner.engine.register(make_resource(tracker, "first", "task"))
    runner.engine.register(failing_teardown("middle", "task", log))
    runner.engine.register(make_resource(tracker, "last", "task"))

    @cs.task
    def fail(a=cs.inject("first"), b=cs.inject("middle"), c=cs.inject("last")):
        raise Boom("task failed")

    with pytest.raises(Boom, match="task failed") as info:
        await runner.run(fail())
    assert log == ["setup first", "setup last", "teardown last", "teardown middle", "teardown first"]
    assert [str(e) for e in info.value.cascade_teardown_errors] == ["teardown middle failed"]


@pytest.mark.asyncio
@pytest.mark.parametrize("scope", ["run", "task"])
async def test_cancellation_stays_cancellation_when_teardown_fails(any_engine, scope, caplog):
    log: list[str] = []
    any_engine.register(failing_teardown("conn", scope, log, is_async=True))
    any_engine.register(failing_teardown("other", scope, log))
    inside = asyncio.Event()

    @cs.task
    async def wait_forever(c=cs.inject("conn"), o=cs.inject("other")):
        inside.set()
        await asyncio.Event().wait()

    run_task = asyncio.create_task(any_engine.run(wait_forever()))
    await asyncio.wait_for(inside.wait(), timeout=10)
    with caplog.at_level("ERROR", logger="cascade.resources"):
        run_task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run_task
    assert log == ["teardown other", "teardown conn"]
    # the teardown errors are not lost: logged, as asyncio may hand the awaiter a fresh CancelledError
    logged = [r for r in caplog.records if r.name == "cascade.resources"]
    assert [str(r.exc_info[1]) for r in logged] == ["teardown other failed", "teardown conn failed"]


@pytest.mark.asyncio
async def test_a_cancelled_teardown_is_not_turned_into_the_task_error(any_engine):
    """The task failed; while its teardown awaits, the run is cancelled: the caller sees the
    cancellation (a cancellation never becomes another exception)."""
    in_teardown = asyncio.Event()
    finished = []

    @cs.resource(name="slow_close", scope="task")
    async def slow_close():
        yield "s"
        in_teardown.set()
        try:
            await asyncio.Event().wait()
        finally:
            finished.append("teardown unwound")

    any_engine.register(slow_close)

    @cs.task
    def fail(s=cs.inject("slow_close")):
        raise Boom("task failed")

    run_task = asyncio.create_task(any_engine.run(fail()))
    await asyncio.wait_for(in_teardown.wait(), timeout=10)
    run_task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run_task
    assert finished == ["teardown unwound"]
