"""Engine behaviour that surviving mutants showed untested (docs/mutation.md lists each mutant)."""

from __future__ import annotations

import asyncio

import pytest

import cascade as cs


@cs.task(name="gap_noop")
def noop(x):
    return x


@cs.task(name="gap_grow")
def grow(n, prev):
    if n == 0:
        return prev
    x = noop(n)
    for _ in range(n):  # one node longer than the previous iteration: a new template every time
        x = noop(x)
    return grow(n + 1 if n < 6 else 0, x)


@pytest.mark.asyncio
async def test_run_from_a_running_loop_says_what_to_use_instead():
    with pytest.raises(RuntimeError) as info:
        cs.run(noop(1))
    assert str(info.value) == "cs.run() cannot be called from a running event loop; use await Engine().run(...)"


@pytest.mark.asyncio
async def test_changing_shape_warning_names_the_task_the_streak_and_the_remedy(caplog):
    engine = cs.Engine()
    events = []
    engine.bus.subscribe(cs.Event, events.append)
    with caplog.at_level("WARNING"):
        assert await engine.run(grow(1, None)) == 6
    warnings = [e for e in events if isinstance(e, cs.StaticAnalysisWarning)]
    run_ids = {e.run_id for e in events if isinstance(e, cs.RunStarted)}
    assert [(w.code, w.task_name, w.run_id in run_ids) for w in warnings] == [("CS-W001", "gap_grow", True)]
    expected = (
        "task 'gap_grow' recurses with a graph whose shape changes on every iteration "
        "(4 new templates in a row), so it can never use a hot plan. "
        "Keep each iteration's graph the same shape (pass what changes as literal arguments "
        "rather than building a different number of calls), or use Engine(hot_plans=False)."
    )
    assert warnings[0].message == expected
    assert expected in caplog.messages


def test_clearing_a_run_that_left_no_state_is_a_no_op():
    backend = cs.InMemoryStateBackend()
    backend.clear("never-ran")
    backend.clear("never-ran")


@cs.task(name="gap_cached_kw")
def cached_kw(x, *, y):
    return x + sum(y)


@pytest.mark.parametrize("hot", [True, False])
@pytest.mark.asyncio
async def test_cache_key_covers_unhashable_keyword_arguments(hot):
    engine = cs.Engine(hot_plans=hot)
    cache = cs.InMemoryCache()
    assert await engine.run(cached_kw(1, y=[2]).with_cache(cache)) == 3
    assert await engine.run(cached_kw(1, y=[5]).with_cache(cache)) == 6
    assert await engine.run(cached_kw(1, y=[2]).with_cache(cache)) == 3


@cs.task(name="gap_cancels_itself")
async def cancels_itself(x):
    await asyncio.sleep(0)
    raise asyncio.CancelledError()


@cs.task(name="gap_pair")
def pair(a, b):
    return a, b


@pytest.mark.parametrize("hot", [True, False])
@pytest.mark.asyncio
async def test_a_suspended_step_that_raises_cancelled_error_fails_the_run(hot):
    engine = cs.Engine(hot_plans=hot)
    with pytest.raises(asyncio.CancelledError):
        await engine.run(pair(cancels_itself(1), cancels_itself(2)))
    assert await engine.run(pair(noop(1), noop(2))) == (1, 2)  # the engine is still usable


@cs.task(name="gap_fails_soon")
async def fails_soon():
    await asyncio.sleep(0)
    raise ValueError("soon")


@cs.task(name="gap_waits_forever")
async def waits_forever(log):
    try:
        await asyncio.Event().wait()
    finally:
        log.append("closed")


@pytest.mark.parametrize("hot", [True, False])
@pytest.mark.asyncio
async def test_a_failure_interrupting_an_inline_await_leaves_the_caller_uncancelled(hot):
    # waits_forever is awaited inline (the root needs it, nothing else is pending) while fails_soon
    # runs in a Task of its own; its failure cancels the inline await, which must not leave a
    # cancellation request on the caller's task.
    engine = cs.Engine(hot_plans=hot)
    log = []
    with pytest.raises(ValueError, match="soon"):
        await engine.run(pair(fails_soon(), waits_forever(log)))
    assert asyncio.current_task().cancelling() == 0
    assert log == ["closed"]
    await asyncio.sleep(0)  # would raise CancelledError if a cancellation were still pending
