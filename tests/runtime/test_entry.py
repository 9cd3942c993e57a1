"""A template's whole run written out from ``engine.run`` on (``Program.entry``, runtime/straight.py).

Each test runs a template until the engine has written its run out, then checks that the entry
does what ``drive`` does: the value, failures named, gates, subscribers, tail calls, resources.
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

import pytest

import cascade as cs


@cs.task
async def nap(x: int) -> int:
    await asyncio.sleep(0)
    return x


@cs.task
async def double(x: int) -> int:
    return 2 * x


@cs.task
async def add(x: int, y: int) -> int:
    return x + y


def _chain(i: int) -> Any:
    return add(double(nap(i)), i)


def _is_entry(run: Any) -> bool:
    return run.cr_code.co_filename.startswith("<cascade run of")


async def _warm(engine: cs.Engine, make: Any) -> None:
    """Run ``make(i)`` until the engine runs it through its entry."""
    for i in range(3):
        run = engine.run(make(i))
        if _is_entry(run):
            run.close()
            return
        await run
    raise AssertionError("the template never got an entry")


@pytest.mark.asyncio
async def test_a_template_run_before_runs_through_its_entry_with_the_same_value() -> None:
    engine = cs.Engine()
    first = engine.run(_chain(1))
    assert not _is_entry(first)  # a new template: drive compiles it
    assert await first == 3
    await engine.run(_chain(2))  # its first hit writes it out
    hits = engine.stats.hot_plan_hits
    run = engine.run(_chain(5))
    assert _is_entry(run)
    assert await run == 15
    assert engine.stats.hot_plan_hits == hits + 1
    assert await asyncio.gather(*(engine.run(_chain(i)) for i in range(50))) == [3 * i for i in range(50)]


@pytest.mark.asyncio
async def test_a_run_given_params_runs_through_drive(caplog: pytest.LogCaptureFixture) -> None:
    engine = cs.Engine()
    await _warm(engine, _chain)
    run = engine.run(_chain(4), params={"unused": 1})
    assert not _is_entry(run)
    assert await run == 12
    assert "'unused'" in caplog.text  # CS-W003: drive checks which params the run read


@pytest.mark.asyncio
async def test_a_target_that_does_not_bind_to_the_entry_runs_through_drive() -> None:
    # ``add(n, n)`` (one shared call) and ``add(nap(1), nap(1))`` (two calls) have one shape
    calls: list[int] = []

    @cs.task
    async def seen(x: int) -> int:
        calls.append(x)
        return x

    def shared(i: int) -> Any:
        n = seen(i)
        return add(n, n)

    engine = cs.Engine()
    await _warm(engine, shared)
    calls.clear()
    run = engine.run(add(seen(7), seen(7)))
    assert _is_entry(run)  # the shared template's entry: the target does not bind to it
    assert await run == 14
    assert calls == [7, 7]
    assert await engine.run(shared(3)) == 6
    assert calls == [7, 7, 3]


@pytest.mark.asyncio
async def test_an_entry_with_a_subscriber_publishes_what_drive_publishes() -> None:
    def events_of(engine: cs.Engine) -> list[Any]:
        seen: list[Any] = []
        engine.bus.subscribe(cs.Event, lambda e: seen.append((type(e).__name__, getattr(e, "task_name", None))))
        return seen

    warm = cs.Engine()
    await _warm(warm, _chain)
    got = events_of(warm)
    assert await warm.run(_chain(3)) == 9
    fresh = cs.Engine(hot_plans=False)
    expected = events_of(fresh)
    assert await fresh.run(_chain(3)) == 9
    assert got == expected
    assert got[0][0] == "RunStarted" and got[-1][0] == "RunFinished"


@pytest.mark.asyncio
async def test_a_subscriber_that_comes_during_an_entry_run_gets_its_run_finished() -> None:
    engine = cs.Engine()
    finished: list[Any] = []

    @cs.task
    async def subscribe(x: int) -> int:
        if x == 9:
            engine.bus.subscribe(cs.RunFinished, finished.append)
        return x

    def make(i: int) -> Any:
        return add(subscribe(nap(i)), i)

    await _warm(engine, make)
    run = engine.run(make(9))
    assert _is_entry(run)
    assert await run == 18
    assert [e.status for e in finished] == ["Succeeded"]


@pytest.mark.asyncio
async def test_a_concurrency_limit_hands_entry_runs_to_the_scheduler() -> None:
    running = peak = 0

    @cs.task
    async def held(x: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        running -= 1
        return x

    def make(i: int) -> Any:
        return add(held(i), double(i))

    engine = cs.Engine()
    await _warm(engine, make)
    engine.set_concurrency_limit(held, 1)
    runs = [engine.run(make(i)) for i in range(20)]
    assert all(_is_entry(r) for r in runs)
    assert await asyncio.gather(*runs) == [3 * i for i in range(20)]
    assert peak == 1


@pytest.mark.asyncio
async def test_a_failure_in_an_entry_run_names_its_task() -> None:
    @cs.task
    async def boom(x: int) -> int:
        if x == 4:
            raise ValueError("no four")
        return x

    def make(i: int) -> Any:
        return add(boom(i), 1)

    engine = cs.Engine()
    await _warm(engine, make)
    run = engine.run(make(4))
    assert _is_entry(run)
    with pytest.raises(ValueError, match="no four") as info:
        await run
    assert "cascade: task 'boom' failed" in info.value.__notes__


@cs.task
async def countdown(n: int) -> Any:
    return n if n <= 0 else tick(nap(n - 1))


@cs.task
async def tick(n: int) -> Any:
    return countdown(n)


@pytest.mark.asyncio
async def test_an_entry_hands_its_tail_call_to_the_loop() -> None:
    engine = cs.Engine()
    await _warm(engine, lambda i: tick(nap(i)))
    calls = engine.stats.tail_calls
    run = engine.run(tick(nap(30)))
    assert _is_entry(run)
    assert await run == 0
    assert engine.stats.tail_calls == calls + 61  # tick to countdown 31 times (30..0), back 30 times


@pytest.mark.asyncio
async def test_run_resources_a_tail_call_opens_after_an_entry_are_torn_down() -> None:
    log: list[str] = []

    @cs.resource(name="conn", scope="run")
    def conn() -> Any:
        log.append("open")
        yield "conn"
        log.append("close")

    @cs.task
    async def use(x: int, conn: str = cs.inject("conn")) -> Any:
        return x

    @cs.task
    async def then(x: int) -> Any:
        return use(x) if x >= 100 else x

    engine = cs.Engine()
    engine.register(conn)
    await _warm(engine, lambda i: then(nap(i)))
    run = engine.run(then(nap(100)))
    assert _is_entry(run)
    assert await run == 100
    assert log == ["open", "close"]


@pytest.mark.asyncio
async def test_an_entry_keeps_nothing_of_its_iteration_while_a_tail_call_runs() -> None:
    class Box:
        pass

    boxes: list[weakref.ref[Box]] = []
    gate = asyncio.Event()

    @cs.task
    async def make_box(x: int) -> Box:
        box = Box()
        boxes.append(weakref.ref(box))
        return box

    @cs.task
    async def wait(x: int) -> int:
        await gate.wait()
        return x

    @cs.task
    async def unbox(box: Box, x: int) -> Any:
        return wait(x) if x else x

    engine = cs.Engine()
    await _warm(engine, lambda i: unbox(make_box(i), 0))
    boxes.clear()
    run = asyncio.ensure_future(engine.run(unbox(make_box(1), 1)))
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(boxes) == 1 and not run.done()
    gc.collect()
    assert boxes[0]() is None  # the tail call waits; the first iteration's values are gone
    gate.set()
    assert await run == 1


@pytest.mark.asyncio
async def test_a_run_made_before_its_templates_entry_existed_moves_to_it_when_it_starts() -> None:
    import sys

    stacks: list[list[str]] = []

    @cs.task
    async def where(x: int) -> int:
        frame, names = sys._getframe(), []
        while frame is not None:
            names.append(frame.f_code.co_filename)
            frame = frame.f_back
        stacks.append(names)
        return x

    engine = cs.Engine()
    runs = [engine.run(add(where(i), 1)) for i in range(3)]  # all made before anything compiled
    assert not any(_is_entry(r) for r in runs)
    assert [await r for r in runs] == [1, 2, 3]  # compiled, first hit (written out), then the entry
    in_entry = [any(n.startswith("<cascade run of") for n in names) for names in stacks]
    assert in_entry == [False, False, True]


@pytest.mark.asyncio
async def test_cancelling_an_entry_run_cancels_its_waiting_call_and_frees_its_slot() -> None:
    closed: list[int] = []
    gate = asyncio.Event()

    @cs.task
    async def held(x: int) -> int:
        try:
            if x:
                await gate.wait()
            return x
        finally:
            closed.append(x)

    engine = cs.Engine()
    engine.set_concurrency_limit(held, 1)
    await _warm(engine, lambda i: add(held(0), i))
    closed.clear()
    run = engine.run(add(held(1), 1))
    assert _is_entry(run)
    task = asyncio.ensure_future(run)
    for _ in range(5):
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert closed == [1]  # the waiting call was cancelled, its finally ran
    assert await engine.run(add(held(0), 5)) == 5  # the limit's slot was given back
    assert engine.constraints.waiting == 0
