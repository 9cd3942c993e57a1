"""The scheduler's contract with the calls it runs, on each of its paths.

A program runs on the sequential walker when it is simple; a state backend, a policy or a flow
construct hands it to the scheduler, whose calls take the plain path (no policy) or the governed one
(``_call``: retries, offloading, remote bodies). Each test here pins what a user sees on these
paths: the arguments a call gets, the task a suspended call resumes in, the events of a call that
fails after suspending, the retry events, and what an offloaded or remote call is handed.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import cascade as cs

# How a program reaches each path: "walker" keeps it simple (the sequential walker), "plain" adds a
# state backend (the scheduler, every call on its plain path), "governed" gives every call a retry
# policy (the scheduler, every call through ``_call``).
PATHS = ["walker", "plain", "governed"]


def engine_for(path: str) -> cs.Engine:
    return cs.Engine(state_backend=cs.InMemoryStateBackend() if path == "plain" else None)


def on(path: str, call: Any) -> Any:
    return call.with_retry(max_attempts=2, delay=0) if path == "governed" else call


def recorder(engine: cs.Engine) -> list[Any]:
    events: list[Any] = []
    engine.bus.subscribe(cs.Event, events.append)
    return events


# -- where a suspended call resumes -----------------------------------------------------------------
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.asyncio
async def test_a_chain_step_that_suspends_resumes_in_the_runs_own_task(path: str) -> None:
    # Every later step waits for a chain's step, so nothing could overlap with it: it is awaited in
    # the task awaiting the run (no Task of its own), on every path alike.
    resumed: list[asyncio.Task[Any] | None] = []

    @cs.task(name="sc_hop")
    async def hop(x: int) -> int:
        await asyncio.sleep(0)
        resumed.append(asyncio.current_task())
        return x + 1

    engine = engine_for(path)
    assert await engine.run(on(path, hop(on(path, hop(on(path, hop(0))))))) == 3
    assert resumed == [asyncio.current_task()] * 3


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.asyncio
async def test_siblings_that_wait_for_each_other_overlap(path: str) -> None:
    # The first sibling is not waited for by the second, so it must run in a Task of its own: awaited
    # in place, it would wait forever for an event that only the second sets.
    ready = asyncio.Event()
    resumed: list[asyncio.Task[Any] | None] = []

    @cs.task(name="sc_waiter")
    async def waiter() -> str:
        await ready.wait()
        resumed.append(asyncio.current_task())
        return "waited"

    @cs.task(name="sc_setter")
    async def setter() -> str:
        await asyncio.sleep(0)
        ready.set()
        return "set"

    @cs.task(name="sc_both")
    def both(a: str, b: str) -> tuple[str, str]:
        return a, b

    engine = engine_for(path)
    async with asyncio.timeout(30):  # a guard against a hang, not a speed assertion
        assert await engine.run(both(on(path, waiter()), on(path, setter()))) == ("waited", "set")
    assert resumed and resumed[0] is not asyncio.current_task()


# -- a call that fails after suspending -------------------------------------------------------------
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.asyncio
async def test_a_chain_step_failing_after_it_suspended_is_reported_failed_with_its_error(path: str) -> None:
    @cs.task(name="sc_late_boom")
    async def late_boom(x: int) -> int:
        await asyncio.sleep(0)
        raise ValueError(f"late boom {x}")

    @cs.task(name="sc_after")
    def after(x: int) -> int:
        return x

    engine = engine_for(path)
    events = recorder(engine)
    with pytest.raises(ValueError, match="late boom 7") as info:
        await engine.run(after(on(path, late_boom(7))))
    assert "cascade: task 'sc_late_boom' failed" in info.value.__notes__
    finished = [e for e in events if isinstance(e, cs.TaskExecutionFinished)]
    started = [e for e in events if isinstance(e, cs.TaskExecutionStarted)]
    attempts = 2 if path == "governed" else 1
    assert [(e.task_name, e.node, e.attempt) for e in started] == [("sc_late_boom", 0, a) for a in range(1, attempts + 1)]
    assert [(e.task_name, e.node, e.iteration, e.status, e.error) for e in finished] == [
        ("sc_late_boom", 0, 1, "Failed", repr(ValueError("late boom 7")))
    ]


# -- the arguments a call gets ----------------------------------------------------------------------
@cs.task(name="sc_src")
def src(x: int) -> int:
    return x


@cs.task(name="sc_kw")
def kw(x: str = "unset", y: Any = None) -> tuple[str, Any]:
    return x, y


@cs.task(name="sc_seq")
def seq(items: Any) -> tuple[str, Any]:
    return type(items).__name__, items


@cs.task(name="sc_gather")
def gather(*parts: Any) -> tuple[Any, ...]:
    return parts


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.asyncio
async def test_keyword_and_sequence_inputs_reach_the_call_on_every_path(path: str) -> None:
    target = gather(
        on(path, kw(y=src(1))),  # a lazy input by keyword, not the first parameter
        on(path, seq([src(2), src(3)])),  # a list of lazy inputs only
        on(path, seq((src(4), src(5)))),  # a tuple of lazy inputs only
    )
    assert await engine_for(path).run(target) == (("unset", 1), ("list", [2, 3]), ("tuple", (4, 5)))


@cs.task(name="sc_show")
def show(c: list[Any]) -> str:
    return repr(c)


@cs.task(name="sc_join")
def join(acc: str, part: str) -> str:
    return f"{acc}{part};"


@cs.task(name="sc_shapes")
def shapes(n: int, acc: str) -> Any:
    if n == 0:
        return acc
    # The literal beside the lazy input is a number in some iterations and a list in others: the
    # template is the same, the compiled substitution cannot copy the nested list.
    lit: Any = [n] if n % 2 == 0 else n  # a number first: the program is compiled for that
    return shapes(n - 1, join(acc, show([src(n), lit])))


@pytest.mark.parametrize("path", ["walker", "plain"])
@pytest.mark.asyncio
async def test_a_literal_that_becomes_a_list_between_iterations_is_passed_as_given(path: str) -> None:
    engine = engine_for(path)
    result = await engine.run(shapes(7, ""))
    assert result == "[7, 7];[6, [6]];[5, 5];[4, [4]];[3, 3];[2, [2]];[1, 1];"
    assert engine.stats.hot_plan_hits >= 5  # the later iterations reuse the program compiled first


# -- retries ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("hot", [True, False])
@pytest.mark.asyncio
async def test_a_retry_event_names_the_call_its_attempts_belong_to(hot: bool) -> None:
    failures = [ValueError("flaky once")]

    @cs.task(name="sc_flaky")
    def flaky(x: int) -> int:
        if failures:
            raise failures.pop()
        return x * 10

    @cs.task(name="sc_outer")
    def outer(x: int) -> Any:
        return flaky(src(x)).with_retry(max_attempts=3, delay=0)  # the second iteration

    engine = cs.Engine(hot_plans=hot)
    events = recorder(engine)
    assert await engine.run(outer(4)) == 40
    retrying = [e for e in events if isinstance(e, cs.TaskRetrying)]
    second = [e for e in events if isinstance(e, cs.TaskExecutionStarted) and e.attempt == 2]
    assert len(retrying) == 1 and len(second) == 1
    r, s = retrying[0], second[0]
    assert (r.run_id, r.task_name, r.node, r.iteration) == (s.run_id, "sc_flaky", 1, 2)
    assert (r.attempt, r.delay, r.error) == (2, 0.0, repr(ValueError("flaky once")))


# -- a call held by a pause ------------------------------------------------------------------------
@pytest.mark.parametrize("hot", [True, False])
@pytest.mark.asyncio
async def test_a_blocked_event_names_the_call_the_pause_holds(hot: bool) -> None:
    @cs.task(name="sc_held")
    def held(x: int) -> int:
        return x + 1

    @cs.task(name="sc_first")
    def first(x: int) -> Any:
        return held(src(x))  # the second iteration: the held call is its node 1

    engine = cs.Engine(hot_plans=hot)
    events = recorder(engine)
    blocked = asyncio.Event()
    engine.bus.subscribe(cs.TaskBlocked, lambda e: blocked.set())
    engine.constraints.pause("task:sc_held")
    run = asyncio.create_task(engine.run(first(1)))
    async with asyncio.timeout(30):  # a guard against a hang, not a speed assertion
        await blocked.wait()
        engine.constraints.resume("task:sc_held")
        assert await run == 2
    held_events = [e for e in events if isinstance(e, (cs.TaskBlocked, cs.TaskExecutionStarted))
                   and e.task_name == "sc_held"]
    assert [type(e).__name__ for e in held_events] == ["TaskBlocked", "TaskExecutionStarted"]
    b, s = held_events
    assert isinstance(b, cs.TaskBlocked)
    assert (b.run_id, b.node, b.iteration, b.reason) == (s.run_id, 1, 2, "paused")
    assert [e.run_id for e in events if isinstance(e, cs.RunStarted)] == [b.run_id]


# -- where a call's body runs -----------------------------------------------------------------------
@pytest.mark.parametrize("hot", [True, False])
@pytest.mark.asyncio
async def test_offloaded_calls_run_on_the_engines_executor_with_their_keyword_arguments(hot: bool) -> None:
    @cs.task(name="sc_offloaded", offload=True)
    def offloaded(x: int, *, tag: str) -> tuple[str, int, str]:
        return threading.current_thread().name, x, tag

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sc-pool") as pool:
        thread, x, tag = await cs.Engine(executor=pool, hot_plans=hot).run(offloaded(src(3), tag="t"))
    assert thread.startswith("sc-pool")
    assert (x, tag) == (3, "t")


class InProcessRemote:
    """A :class:`cascade.RemoteExecutor` that runs each body in this process and keeps what it was
    asked to run: the engine's side of the protocol, without a cluster."""

    name = "in-process"

    def __init__(self) -> None:
        self.calls: list[tuple[str, bool, tuple[Any, ...], dict[str, Any]]] = []

    async def call(self, fn: Callable[..., Any], args: Any, kwargs: Mapping[str, Any], *,
                   task_name: str, is_async: bool) -> Any:
        self.calls.append((task_name, is_async, tuple(args), dict(kwargs)))
        value = fn(*args, **kwargs)
        return await value if is_async else value

    def check_shippable(self, task_name: str, resource: str, value: Any) -> None:
        """Every value can be shipped within one process."""


@cs.task(name="sc_remote_sync")
def remote_sync(x: int, *, scale: int) -> int:
    return x * scale


@cs.task(name="sc_remote_async")
async def remote_async(x: int, offset: int = 0) -> int:
    await asyncio.sleep(0)
    return x + offset


@pytest.mark.parametrize("hot", [True, False])
@pytest.mark.asyncio
async def test_a_remote_executor_gets_each_call_with_its_arguments_name_and_kind(hot: bool) -> None:
    remote = InProcessRemote()
    engine = cs.Engine(remote=remote, hot_plans=hot)
    assert await engine.run(remote_async(remote_sync(2, scale=5), offset=1)) == 11
    assert remote.calls == [
        ("sc_remote_sync", False, (2,), {"scale": 5}),
        ("sc_remote_async", True, (10, 1), {}),  # ``offset=1`` binds as the second positional argument
    ]


class RefusingRemote(InProcessRemote):
    """An in-process executor that refuses to ship the resource values it is told to refuse."""

    def __init__(self, refused: str) -> None:
        super().__init__()
        self.refused = refused
        self.checked: list[tuple[str, str, Any]] = []

    def check_shippable(self, task_name: str, resource: str, value: Any) -> None:
        """Refuse the resource named ``refused``, naming the task and the resource."""
        self.checked.append((task_name, resource, value))
        if resource == self.refused:
            raise cs.ResourceError(f"{resource!r} of {task_name!r} cannot be shipped")


def _shipped_resource(scope: str) -> tuple[Any, cs.Task]:
    """A resource ``sc_conn`` of ``scope`` whose value names its scope, and a task injecting it."""

    @cs.resource(name="sc_conn", scope=scope)
    def conn() -> Any:
        yield f"{scope}-conn"

    @cs.task(name="sc_uses_conn")
    def uses_conn(x: int, c: str = cs.inject("sc_conn")) -> str:
        return f"{c} {x}"

    return conn, uses_conn


@pytest.mark.parametrize("scope", ["run", "task"])
@pytest.mark.asyncio
async def test_a_resource_a_remote_executor_cannot_ship_fails_the_call_before_any_attempt(scope: str) -> None:
    conn, uses_conn = _shipped_resource(scope)
    remote = RefusingRemote("sc_conn")
    engine = cs.Engine(remote=remote, resources=[conn])
    events = recorder(engine)
    with pytest.raises(cs.ResourceError, match="'sc_conn' of 'sc_uses_conn' cannot be shipped"):
        await engine.run(uses_conn(1).with_retry(max_attempts=3, delay=0))
    assert remote.checked == [("sc_uses_conn", "sc_conn", f"{scope}-conn")]
    assert remote.calls == []
    assert not [e for e in events if isinstance(e, (cs.TaskExecutionStarted, cs.TaskRetrying))]


@pytest.mark.parametrize("scope", ["run", "task"])
@pytest.mark.asyncio
async def test_a_remote_call_gets_the_resource_values_it_was_checked_with(scope: str) -> None:
    conn, uses_conn = _shipped_resource(scope)
    remote = RefusingRemote("another")
    assert await cs.Engine(remote=remote, resources=[conn]).run(uses_conn(1)) == f"{scope}-conn 1"
    assert remote.checked == [("sc_uses_conn", "sc_conn", f"{scope}-conn")]
    assert remote.calls == [("sc_uses_conn", False, (1,), {"c": f"{scope}-conn"})]


# -- a call held by a capacity ------------------------------------------------------------------------
@pytest.mark.parametrize("hot", [True, False])
@pytest.mark.asyncio
async def test_a_call_waiting_for_capacity_is_reported_blocked_with_its_node(hot: bool) -> None:
    @cs.task(name="sc_gpu")
    async def gpu(i: int) -> int:
        await asyncio.sleep(0)
        return i

    engine = cs.Engine(system_resources={"gpu": 1}, hot_plans=hot)
    events = recorder(engine)
    assert await engine.run(gather(gpu(0).with_constraints(gpu=1), gpu(1).with_constraints(gpu=1))) == (0, 1)
    run_id = [e.run_id for e in events if isinstance(e, cs.RunStarted)]
    blocked = [(e.run_id, e.task_name, e.node, e.iteration, e.reason) for e in events if isinstance(e, cs.TaskBlocked)]
    assert blocked == [(run_id[0], "sc_gpu", 1, 1, "constraints")]


# -- what a run leaves in its state backend --------------------------------------------------------------
class RecordingState(cs.InMemoryStateBackend):
    """Keeps every result it was given, also after the run cleared its state."""

    def __init__(self) -> None:
        super().__init__()
        self.stored: list[tuple[str, Any, Any]] = []

    def put_result(self, run_id: str, key: Any, value: Any) -> None:
        self.stored.append((run_id, key, value))
        super().put_result(run_id, key, value)


@cs.task(name="sc_then")
def then(x: int) -> Any:
    return gather(src(x), src(x + 1))  # the second iteration: nodes 0, 1 and the target 2


@pytest.mark.asyncio
async def test_results_are_stored_under_their_run_iteration_and_node() -> None:
    backend = RecordingState()
    engine = cs.Engine(state_backend=backend)
    events = recorder(engine)
    assert await engine.run(then(5)) == (5, 6)
    run_id = [e.run_id for e in events if isinstance(e, cs.RunStarted)][0]
    assert [(r, key) for r, key, _ in backend.stored] == [(run_id, (1, 0)), (run_id, (2, 0)), (run_id, (2, 1)),
                                                          (run_id, (2, 2))]
    assert [value for _, _, value in backend.stored[1:]] == [5, 6, (5, 6)]


class ResultStoreDown(cs.InMemoryStateBackend):
    """A state backend that cannot store results (a store that went away mid-run)."""

    def put_result(self, run_id: str, key: Any, value: Any) -> None:
        raise ConnectionError("result store down")


@pytest.mark.asyncio
async def test_a_result_that_cannot_be_stored_fails_the_run_with_the_stores_error() -> None:
    ran: list[int] = []

    @cs.task(name="sc_downstream")
    def downstream(x: int) -> int:
        ran.append(x)
        return x

    with pytest.raises(ConnectionError, match="result store down"):
        await cs.Engine(state_backend=ResultStoreDown()).run(downstream(src(1)))
    assert ran == []  # nothing downstream of the unstored result starts


# -- cache events ---------------------------------------------------------------------------------------
@cs.task(name="sc_cached")
def cached(x: int) -> int:
    return x * 2


@pytest.mark.parametrize("hot", [True, False])
@pytest.mark.asyncio
async def test_a_cache_hit_is_reported_for_the_call_it_answers(hot: bool) -> None:
    cache = cs.InMemoryCache()
    engine = cs.Engine(hot_plans=hot)
    events = recorder(engine)

    @cs.task(name="sc_cache_outer")
    def outer(x: int) -> Any:
        return gather(src(x), cached(x).with_cache(cache))  # the second iteration: node 1

    assert await engine.run(outer(3)) == (3, 6)
    assert await engine.run(outer(3)) == (3, 6)
    runs = [e.run_id for e in events if isinstance(e, cs.RunStarted)]
    finished = [(e.run_id, e.task_name, e.node, e.iteration, e.status) for e in events
                if isinstance(e, cs.TaskExecutionFinished) and e.task_name == "sc_cached"]
    assert finished == [(runs[0], "sc_cached", 1, 2, "Succeeded"), (runs[1], "sc_cached", 1, 2, "Cached")]


class CacheDown:
    """A cache backend that can neither look up nor store (a cache server that went away)."""

    def get(self, key: str) -> Any:
        raise ConnectionError("cache down for get")

    def set(self, key: str, value: Any) -> None:
        raise ConnectionError("cache down for set")


@pytest.mark.parametrize("hot", [True, False])
@pytest.mark.asyncio
async def test_a_cache_that_is_down_is_reported_bypassed_for_the_call(hot: bool) -> None:
    engine = cs.Engine(hot_plans=hot)
    events = recorder(engine)

    @cs.task(name="sc_cache_outer")
    def outer(x: int) -> Any:
        return gather(src(x), cached(x).with_cache(CacheDown()))  # the second iteration: node 1

    assert await engine.run(outer(3)) == (3, 6)
    run_id = [e.run_id for e in events if isinstance(e, cs.RunStarted)][0]
    assert [(e.run_id, e.task_name, e.node, e.iteration, e.reason, e.error) for e in events
            if isinstance(e, cs.CacheBypassed)] == [
        (run_id, "sc_cached", 1, 2, "get-failed", "ConnectionError: cache down for get"),
        (run_id, "sc_cached", 1, 2, "set-failed", "ConnectionError: cache down for set"),
    ]


# -- a subscription made while an iteration runs ---------------------------------------------------------
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.asyncio
async def test_a_handler_subscribed_during_an_iteration_gets_events_from_the_next_one(path: str) -> None:
    # Whether anyone listens is decided once per iteration, on every path alike: a handler a call
    # subscribes gets no event of the iteration it was subscribed in, and all of the next one's.
    engine = engine_for(path)
    seen: list[Any] = []

    @cs.task(name="sc_subscribe")
    def subscribe_now(x: int) -> int:
        engine.bus.subscribe(cs.Event, seen.append)
        return x

    @cs.task(name="sc_next_round")
    def next_round(x: int) -> Any:
        return src(x + 1)  # the second iteration

    assert await engine.run(next_round(on(path, src(on(path, subscribe_now(1)))))) == 2
    assert [(type(e).__name__, e.task_name, e.iteration) for e in seen if hasattr(e, "iteration")] == [
        ("TaskExecutionStarted", "sc_src", 2), ("TaskExecutionFinished", "sc_src", 2)
    ]


# -- a Router waiting for its chosen branch ----------------------------------------------------------
@pytest.mark.parametrize("hot", [True, False])
@pytest.mark.asyncio
async def test_a_router_takes_its_chosen_branch_when_another_branch_finishes_first(hot: bool) -> None:
    @cs.task(name="sc_pick")
    def pick() -> str:
        return "slow"

    @cs.task(name="sc_slow")
    async def slow() -> str:
        for _ in range(3):
            await asyncio.sleep(0)
        return "slow value"

    @cs.task(name="sc_fast")
    async def fast() -> str:
        await asyncio.sleep(0)
        return "fast value"

    f = fast()  # also used directly: it runs although the Router does not pick it, and ends first
    router = cs.Router(pick(), {"slow": slow(), "fast": f})
    assert await cs.Engine(hot_plans=hot).run(gather(router, f)) == ("slow value", "fast value")
