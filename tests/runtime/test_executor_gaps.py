"""Scheduler behaviour that surviving mutants of cascade/runtime/executor.py showed untested.

docs/mutation.md lists the mutants; each test here says what a user would see if it broke.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import cascade as cs

# A literal that every iteration passes inside its container argument. Tasks mutate what they are
# given; the engine hands each call a copy of every list, tuple and dict, so this never changes.
SHARED: list[int] = []


@cs.task(name="egap_noop")
def noop(x: Any) -> Any:
    return x


@cs.task(name="egap_take")
def take(c: Any) -> tuple[str, Any, int]:
    """Reports the container it got and mutates the list inside it, as a careless task would."""
    v, extra = (c["v"], c["xs"]) if type(c) is dict else (c[0], c[1])
    if type(extra) is not list:
        return (type(c).__name__, v, -1)
    extra.append(1)
    return (type(c).__name__, v, len(extra))


@cs.task(name="egap_collect")
def collect(seen: list[Any], item: Any) -> list[Any]:
    return [*seen, item]


@cs.task(name="egap_container_loop")
def container_loop(n: int, kind: str, seen: Any) -> Any:
    if n == 0:
        return seen
    # A literal's type is not part of the template: iterations alternate a plain literal and a list.
    v, extra = noop(n), (SHARED if n % 2 else 0)
    arg: Any = {"v": v, "xs": extra} if kind == "dict" else [v, extra]
    if kind == "tuple":
        arg = tuple(arg)
    return container_loop(n - 1, kind, collect(seen, take(arg)))


@pytest.mark.parametrize("kind", ["dict", "list", "tuple"])
@pytest.mark.parametrize("hot", [True, False])
@pytest.mark.asyncio
async def test_containers_holding_lazy_inputs_and_literal_containers_are_copied_per_call(hot: bool, kind: str) -> None:
    # Six iterations: the hot plan is compiled after the first few and runs the rest.
    result = await cs.Engine(hot_plans=hot).run(container_loop(6, kind, []))
    assert result == [(kind, n, 1 if n % 2 else -1) for n in range(6, 0, -1)]
    assert SHARED == []


@cs.task(name="egap_take_flat")
def take_flat(c: Any) -> tuple[str, Any]:
    return (type(c).__name__, c)


@cs.task(name="egap_flat_loop")
def flat_loop(n: int, seen: Any) -> Any:
    if n == 0:
        return seen
    v = noop(n)
    item = collect([], take_flat({"v": v, "k": "lit"}))
    item = collect(item, take_flat((v, "lit")))
    return flat_loop(n - 1, collect(seen, collect(item, take_flat([v, "lit"]))))


@pytest.mark.parametrize("hot", [True, False])
@pytest.mark.asyncio
async def test_flat_containers_keep_their_type_and_get_each_lazy_value(hot: bool) -> None:
    result = await cs.Engine(hot_plans=hot).run(flat_loop(5, []))
    assert result == [
        [("dict", {"v": n, "k": "lit"}), ("tuple", (n, "lit")), ("list", [n, "lit"])] for n in range(5, 0, -1)
    ]


# -- a suspended call that cancels itself while another call is awaited inline --------------------
@cs.task(name="egap_cancels_itself")
async def cancels_itself(x: int) -> int:
    await asyncio.sleep(0)
    raise asyncio.CancelledError()


@cs.task(name="egap_waits")
async def waits_forever(log: list[str]) -> None:
    try:
        await asyncio.Event().wait()
    finally:
        log.append("closed")


@cs.task(name="egap_pair")
def pair(a: Any, b: Any) -> tuple[Any, Any]:
    return a, b


@pytest.mark.parametrize("governed", [False, True])
@pytest.mark.parametrize("hot", [True, False])
@pytest.mark.asyncio
async def test_a_call_that_cancels_itself_fails_the_run_and_closes_the_call_awaited_inline(
        hot: bool, governed: bool) -> None:
    # No subscribers: the suspended call runs in a bare Task settled by its done-callback (the
    # governed variant, with a timeout policy, in a Task of the engine's own). Its cancellation
    # must fail the run and interrupt the call the run awaits inline, or the run waits forever.
    engine = cs.Engine(hot_plans=hot)
    log: list[str] = []
    first = cancels_itself(1).with_retry(2) if governed else cancels_itself(1)
    run = asyncio.ensure_future(engine.run(pair(first, waits_forever(log))))
    # A guard against a hang, not a speed assertion. (Not ``asyncio.timeout``: its own cancellation
    # would satisfy an expected CancelledError, so a hang would pass.)
    done, _ = await asyncio.wait({run}, timeout=30)
    if not done:
        run.cancel()
        raise AssertionError("the run still waits: the cancellation did not fail it")
    assert run.cancelled()  # the call's CancelledError ended the run
    assert log == ["closed"]
    assert await engine.run(pair(noop(1), noop(2))) == (1, 2)


# -- routes -----------------------------------------------------------------------------------------
@cs.task(name="egap_left")
def left(x: Any) -> Any:
    return x


@cs.task(name="egap_right")
def right(x: Any) -> Any:
    return x


@pytest.mark.parametrize("hot", [True, False])
@pytest.mark.asyncio
async def test_a_missing_route_names_every_consumer_sorted(hot: bool) -> None:
    router = cs.Router(noop(3), {1: noop("one"), 2: noop("two")})
    with pytest.raises(cs.RouteError) as info:
        await cs.Engine(hot_plans=hot).run(pair(right(router), left(router)))
    assert str(info.value) == (
        "Router selector returned 3, which has no route (routes: 1, 2; used by egap_left, egap_right)"
    )


# -- where a bypassed cache and a skip are reported -------------------------------------------------
class _Opaque:
    """No exact cache key: a cached call taking one runs without its cache."""


@cs.task(name="egap_cached")
def cached(x: Any, n: int) -> int:
    return n


@cs.task(name="egap_cache_loop")
def cache_loop(n: int, acc: Any, cache: Any) -> Any:
    if n == 0:
        return acc
    return cache_loop(n - 1, cached(_Opaque(), noop(n)).with_cache(cache), cache)


@pytest.mark.parametrize("hot", [True, False])
@pytest.mark.asyncio
async def test_cache_bypassed_names_the_run_node_and_iteration_of_its_call(hot: bool) -> None:
    engine = cs.Engine(hot_plans=hot)
    events: list[Any] = []
    engine.bus.subscribe(cs.Event, events.append)
    assert await engine.run(cache_loop(5, 0, cs.InMemoryCache())) == 1
    (run_id,) = {e.run_id for e in events if isinstance(e, cs.RunStarted)}
    bypassed = [(e.run_id, e.node, e.iteration) for e in events if isinstance(e, cs.CacheBypassed)]
    started = [(e.run_id, e.node, e.iteration) for e in events
               if isinstance(e, cs.TaskExecutionStarted) and e.task_name == "egap_cached"]
    assert len(bypassed) == 5
    assert bypassed == started
    assert {r for r, _, _ in bypassed} == {run_id}
    assert len({it for _, _, it in bypassed}) == 5


@cs.task(name="egap_skip_loop")
def skip_loop(n: int) -> Any:
    if n == 0:  # the last iteration skips two calls
        return noop(0).after(noop(1).run_if(noop(False)), noop(2).run_if(noop(False)))
    return skip_loop(n - 1)


class _Recording(cs.InMemoryStateBackend):
    """The in-memory backend, remembering under which keys skips were written."""

    def __init__(self) -> None:
        super().__init__()
        self.skip_keys: list[Any] = []

    def put_skip(self, run_id: str, key: Any, reason: str) -> None:
        self.skip_keys.append(key)
        super().put_skip(run_id, key, reason)


@pytest.mark.asyncio
async def test_skips_are_stored_per_iteration_and_node() -> None:
    backend = _Recording()
    engine = cs.Engine(state_backend=backend)
    events: list[Any] = []
    engine.bus.subscribe(cs.TaskSkipped, events.append)
    await engine.run(skip_loop(3))
    assert events, "the workflow skips calls"
    assert backend.skip_keys == [(e.iteration, e.node) for e in events]
    assert len(set(backend.skip_keys)) == len(events)


class _SkipStoreDown(cs.InMemoryStateBackend):
    """A state backend that cannot store skips (a store that went away mid-run)."""

    def put_skip(self, run_id: str, key: Any, reason: str) -> None:
        raise ConnectionError("skip store down")


@pytest.mark.asyncio
async def test_a_skip_that_cannot_be_stored_fails_the_run_with_the_stores_error() -> None:
    engine = cs.Engine(state_backend=_SkipStoreDown())
    with pytest.raises(ConnectionError, match="skip store down"):
        await engine.run(skip_loop(2))


@cs.task(name="egap_hinted")
def hinted(x: int) -> int:
    exc = ValueError(f"bad {x}")
    exc.add_note("hint from the task")
    raise exc


@pytest.mark.parametrize("hot", [True, False])
@pytest.mark.asyncio
async def test_a_failure_that_already_has_notes_still_names_its_task(hot: bool) -> None:
    with pytest.raises(ValueError, match="bad 1") as info:
        await cs.Engine(hot_plans=hot).run(pair(noop(0), hinted(1)))
    assert info.value.__notes__ == ["hint from the task", "cascade: task 'egap_hinted' failed"]


@cs.task(name="egap_late_key")
async def late_key(k: int) -> int:
    for _ in range(3):  # decide after the eagerly run branch below was skipped
        await asyncio.sleep(0)
    return k


@pytest.mark.parametrize("hot", [True, False])
@pytest.mark.asyncio
async def test_a_route_to_a_branch_already_skipped_is_skipped_too(hot: bool) -> None:
    branch = noop(1).run_if(noop(False))  # also an input of another call, so it runs before routing
    router = cs.Router(late_key(0), {0: branch, 1: noop(2)})
    async with asyncio.timeout(30):  # a guard against a hang, not a speed assertion
        with pytest.raises(cs.DependencyMissingError) as info:
            await cs.Engine(hot_plans=hot).run(pair(router, noop(5).after(branch)))
    assert info.value.reason == "UpstreamSkipped_Data"


@pytest.mark.parametrize("hot", [True, False])
@pytest.mark.asyncio
async def test_a_chosen_route_starts_its_dormant_inputs_once_they_are_ready(hot: bool) -> None:
    # The chosen branch has two inputs: one the target needs anyway, one only the route needs. Both
    # must run, and the branch only after both.
    shared = noop(1)
    branch = pair(noop(2), shared)
    router = cs.Router(late_key(0), {0: branch, 1: noop(3)})
    async with asyncio.timeout(30):  # a guard against a hang, not a speed assertion
        assert await cs.Engine(hot_plans=hot).run(pair(router, shared)) == ((2, 1), 1)
