"""The written-out walk of a hot program (cascade/runtime/straight.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import cascade as cs
from cascade.runtime.straight import MAX_STEPS


@cs.task
async def add(x: int, y: int) -> int:
    return x + y


@cs.task
def total(xs: list[int]) -> int:
    return sum(xs)


@cs.task
async def scaled(x: int, *, factor: int = 1) -> int:
    return x * factor


@cs.task
async def nap(x: int) -> int:
    await asyncio.sleep(0)
    return x


@cs.task
def shape_loop(n: int, acc: int) -> Any:
    """Every argument mode the written-out walk writes: literals, literal keywords, some inputs
    among literals, a list of inputs, a map, an input by keyword, and a call that suspends."""
    if n == 0:
        return acc
    a = add(n, 10)  # literals
    b = scaled(a, factor=3)  # an input and a literal keyword
    c = add(acc, b)  # every argument an input
    d = total([a, b, c])  # a list of inputs
    e = total(add.map(x=[1, 2], y=[n, n]))  # a map of literal calls
    f = nap(x=e)  # an input by keyword, suspending
    return shape_loop(n - 1, add(c, add(d, f)))


def _expected(n: int, acc: int) -> int:
    while n:
        a = n + 10
        b = 3 * a
        c = acc + b
        d = a + b + c
        e = 3 + 2 * n
        acc = c + d + e
        n -= 1
    return acc


def _programs(engine: cs.Engine) -> list[Any]:
    return [p for bucket in engine._plans.values() for p in bucket]


@pytest.mark.asyncio
async def test_a_loop_runs_its_written_out_walk_and_gets_the_walkers_value() -> None:
    engine = cs.Engine()
    assert await engine.run(shape_loop(6, 1)) == _expected(6, 1)
    walks = [p.straight for p in _programs(engine) if p.size > 1]
    assert walks and all(walks), walks
    # the same again, written-out walks from the first iteration on
    assert await engine.run(shape_loop(5, 2)) == _expected(5, 2)


@pytest.mark.asyncio
async def test_with_a_subscriber_the_walker_runs_and_gives_the_same() -> None:
    engine = cs.Engine()
    events: list[Any] = []
    engine.bus.subscribe(cs.TaskExecutionFinished, events.append)
    assert await engine.run(shape_loop(6, 1)) == _expected(6, 1)
    assert len(events) == 6 * 11 + 1  # every call of every iteration, and the last iteration's


@pytest.mark.asyncio
async def test_a_program_run_once_is_not_written_out() -> None:
    engine = cs.Engine()
    assert await engine.run(add(add(1, 2), 3)) == 6
    (prog,) = _programs(engine)
    assert prog.straight is None  # made on a program's first hit only


@pytest.mark.asyncio
async def test_a_program_longer_than_the_limit_keeps_the_walker() -> None:
    @cs.task
    def long_loop(n: int, x: Any) -> Any:
        if n == 0:
            return x
        for _ in range(MAX_STEPS):
            x = add(x, 1)
        return long_loop(n - 1, x)

    engine = cs.Engine()
    assert await engine.run(long_loop(3, 0)) == 3 * MAX_STEPS
    assert [p.straight for p in _programs(engine) if p.size > MAX_STEPS] == [False]


@pytest.mark.asyncio
async def test_a_failure_in_a_written_out_walk_names_its_task() -> None:
    @cs.task
    def boom(n: int) -> int:
        if n == 2:
            raise ValueError("no two")
        return n

    @cs.task
    def count(n: int, x: Any) -> Any:
        return x if n == 0 else count(n - 1, add(boom(n), 1))

    engine = cs.Engine()
    with pytest.raises(ValueError, match="no two") as info:
        await engine.run(count(5, 0))
    assert "cascade: task 'boom' failed" in info.value.__notes__
    assert [bool(p.straight) for p in _programs(engine) if p.size > 1] == [True]  # it failed in the written-out walk


@pytest.mark.asyncio
async def test_a_pause_set_while_a_call_is_suspended_holds_back_the_next_call() -> None:
    started: list[str] = []

    @cs.task
    async def first(n: int) -> int:
        started.append("first")
        await asyncio.sleep(0)
        return n

    @cs.task
    async def second(n: int) -> int:
        started.append("second")
        return n

    @cs.task
    def loop(n: int, x: Any) -> Any:
        return x if n == 0 else loop(n - 1, second(first(n)))

    engine = cs.Engine()
    run = asyncio.ensure_future(engine.run(loop(3, 0)))
    while started.count("first") < 2:  # the second iteration's first call: a written-out walk
        await asyncio.sleep(0)
    engine.pause("second")  # while ``first`` is suspended
    for _ in range(10):
        await asyncio.sleep(0)
    assert started == ["first", "second", "first"]
    engine.resume("second")
    assert await run == 1
    assert [bool(p.straight) for p in _programs(engine) if p.size > 1] == [True]


@cs.task
def pair_loop(n: int, x: Any) -> Any:
    if n == 0:
        return x
    a = add(x, 1)
    return pair_loop(n - 1, add(a, add(a, n)))  # ``a`` is shared: an edge checked by identity


@pytest.mark.asyncio
async def test_the_written_out_binder_gives_what_bind_gives() -> None:
    from cascade.runtime.binding import bind

    engine = cs.Engine()
    x = 0
    for n in range(4, 0, -1):  # a = x + 1; the next x = a + (a + n)
        x = 2 * (x + 1) + n
    assert await engine.run(pair_loop(4, 0)) == x == 79
    (prog,) = [p for p in _programs(engine) if p.size > 1]
    assert callable(prog.binder)
    a = add(7, 1)
    target = pair_loop(2, add(a, add(a, 3)))
    objs = bind(prog, target)
    assert objs is not None and len(objs) == 4 and objs[-1] is target
    assert prog.binder(target, None) == objs
    into = [None] * 4
    assert prog.binder(target, into) is into and into == objs
    # the same shapes, but the two reads of ``a`` are two objects now: another graph
    unshared = pair_loop(2, add(add(7, 1), add(add(7, 1), 3)))
    assert bind(prog, unshared) is None and prog.binder(unshared, None) is None
    # another task at the top
    assert prog.binder(add(add(7, 1), add(add(7, 1), 3)), None) is None


@pytest.mark.asyncio
async def test_a_waiting_iteration_keeps_no_lazy_result_of_the_iteration_before() -> None:
    # A loop alternating between a three-step and a two-step template (an agent that listens, then
    # flashes): the list a finished iteration leaves behind holds its values, not its calls.
    from cascade.spec.lazy import LazyResult

    gate = asyncio.Event()

    @cs.task
    async def hold(x: int) -> int:
        if x >= 4:
            await gate.wait()
        return x

    @cs.task
    def alternate(n: int, x: Any) -> Any:
        if n == 0:
            return x
        return alternate(n - 1, add(hold(x), 1) if n % 2 else add(x, 1))

    engine = cs.Engine()
    run = asyncio.ensure_future(engine.run(alternate(6, 0)))
    while not any(bool(p.straight) for p in _programs(engine) if p.size == 3) or engine.stats.tail_calls < 5:
        await asyncio.sleep(0)
    for _ in range(3):
        await asyncio.sleep(0)
    frame = run.get_coro().cr_frame  # drive, waiting in the last iteration's hold(5)
    spare, current = frame.f_locals["spare"], frame.f_locals["current"]
    assert spare is not None
    assert [o for o in spare if type(o) is LazyResult and o is not current] == []
    gate.set()
    assert await run == 6


@pytest.mark.asyncio
async def test_a_loop_of_sync_tasks_waits_in_the_run_itself_with_no_frame_of_its_walk() -> None:
    # An agent's loop (cs.recv, cs.publish, its own step: sync tasks, one returning a future): its
    # walk is plain functions, so a waiting iteration is the run's coroutine awaiting the future.
    inbox: list[asyncio.Future[int]] = []

    @cs.task
    def listen(n: int) -> Any:
        fut = asyncio.get_running_loop().create_future()
        inbox.append(fut)
        return fut

    @cs.task
    def step(n: int, got: int, acc: int) -> Any:
        return acc + got if n == 0 else step(n - 1, listen(n), acc + got)

    engine = cs.Engine()
    run = asyncio.ensure_future(engine.run(step(4, listen(5), 0)))
    for sent in range(10, 15):
        while len(inbox) < sent - 9:
            await asyncio.sleep(0)
        if sent >= 12:  # from the third iteration on, the program's walk is written out
            (prog,) = [p for p in _programs(engine) if p.size == 2]
            assert type(prog.straight) is tuple
            assert not asyncio.iscoroutine(run.get_coro().cr_await)  # the future, no walk coroutine
        inbox[-1].set_result(sent)
    assert await run == sum(range(10, 15))


@pytest.mark.asyncio
async def test_an_input_by_a_keyword_that_is_no_identifier_reaches_the_call() -> None:
    @cs.task
    async def bag(**kw: int) -> int:
        return kw["a-b"] + kw.get("n", 0)

    @cs.task
    def keyed(n: int, x: Any) -> Any:
        return x if n == 0 else keyed(n - 1, bag(**{"a-b": add(x, n)}))

    engine = cs.Engine()
    assert await engine.run(keyed(5, 0)) == sum(range(1, 6))
    assert [bool(p.straight) for p in _programs(engine) if p.size > 1] == [True]


@cs.task
async def both(n: Any, pair: list[Any]) -> Any:
    return (n, pair)


@cs.task
def listed(n: int, acc: Any) -> Any:
    if n == 0:
        return acc
    # an input in a list beside a literal that is a container on even iterations only (resolved
    # in general then), and an input in a tuple
    extra: Any = [n] if n % 2 == 0 else n
    got = both(n, [add(n, 1), extra])
    return listed(n - 1, both(got, (add(n, 2),)))


@pytest.mark.asyncio
async def test_inputs_in_lists_and_tuples_among_literals_are_passed_as_the_walker_passes_them() -> None:
    expected: Any = 0
    for n in range(4, 0, -1):
        expected = ((n, [n + 1, [n] if n % 2 == 0 else n]), (n + 2,))
    engine = cs.Engine()
    assert await engine.run(listed(4, 0)) == expected
    events: list[Any] = []
    slow = cs.Engine(hot_plans=False)
    slow.bus.subscribe(cs.TaskExecutionFinished, events.append)
    assert await slow.run(listed(4, 0)) == expected
    assert [bool(p.straight) for p in _programs(engine) if p.size > 1] == [True]


@pytest.mark.asyncio
@pytest.mark.parametrize("waits_at", [0, 5, 8, 9, 13, 19])
async def test_a_long_loop_of_sync_tasks_goes_on_in_place_past_the_inline_limit(waits_at: int) -> None:
    # A plain walk writes up to _INLINE steps out in place, then calls the next step's finish: a
    # 20-step iteration of sync tasks, one of them returning a future to wait for, whichever it is.
    from cascade.runtime.straight import _INLINE

    assert _INLINE < 20
    futures: list[asyncio.Future[int]] = []

    @cs.task
    def inc(x: int, i: int) -> Any:
        if i == waits_at:
            fut = asyncio.get_running_loop().create_future()
            futures.append(fut)
            return fut  # awaited by the engine; its value is what the test sends: x + 1
        return x + 1

    @cs.task
    def steps(n: int, x: int) -> Any:
        if n == 0:
            return x
        for i in range(19):
            x = inc(x, i)
        return steps(n - 1, inc(x, 19))

    engine = cs.Engine()
    run = asyncio.ensure_future(engine.run(steps(5, 0)))
    for sent in range(5):
        for _ in range(1000):  # bounded: a walk that skipped the waiting step never asks
            if len(futures) > sent or run.done():
                break
            await asyncio.sleep(0)
        assert len(futures) > sent, f"iteration {sent + 1} never waited at step {waits_at}"
        futures[sent].set_result(20 * sent + waits_at + 1)
    assert await run == 100
    (prog,) = [p for p in _programs(engine) if p.size == 21]
    assert type(prog.straight) is tuple and len(prog.straight[1]) == 21


@pytest.mark.asyncio
@pytest.mark.parametrize("alternating", [False, True])
async def test_a_subscriber_that_comes_mid_loop_sees_every_later_call(alternating: bool) -> None:
    # Once a loop repeats its template (or alternates between two), an iteration goes from binding
    # straight to the written-out walk (drive's lane); a subscriber that comes then still gets the
    # events of every later call, which the walker publishes.
    gate = asyncio.Event()
    released: list[int] = []

    @cs.task
    async def wait_turn(n: int) -> int:
        await asyncio.sleep(0)  # always suspends: the test runs between two iterations
        await gate.wait()
        released.append(n)
        return n

    @cs.task
    def turns(n: int, x: Any) -> Any:
        if n == 0:
            return x
        if alternating and n % 2:
            return turns(n - 1, add(wait_turn(n), add(x, 1)))
        return turns(n - 1, add(wait_turn(n), x))

    engine = cs.Engine()
    gate.set()
    run = asyncio.ensure_future(engine.run(turns(12, 0)))
    for _ in range(1000):  # bounded: the first 6 iterations run freely
        if len(released) >= 6:
            break
        await asyncio.sleep(0)
    gate.clear()
    events: list[Any] = []
    engine.bus.subscribe(cs.TaskExecutionStarted, events.append)
    gate.set()
    assert await run == sum(range(1, 13)) + (6 if alternating else 0)
    later = sorted({e.iteration for e in events if e.task_name == "wait_turn"})
    first = min(later)
    assert first <= 9 and later == list(range(first, 14)), later  # iterations 2..13 call it


@cs.task
def typed_use(lit: int, typed: Any, x: Any) -> Any:
    return [lit, typed, x]


@cs.task
def typed_loop(n: int, acc: Any, mapped: bool) -> Any:
    if n == 0:
        return acc
    x = add.map(x=[n], y=[1]) if mapped else add(n, 1)
    # the same template every iteration: a literal's type is not part of it (an empty list, then None)
    return typed_loop(n - 1, typed_use(n, [] if n % 2 == 0 else None, x), mapped)


@pytest.mark.asyncio
@pytest.mark.parametrize("mapped", [False, True])
@pytest.mark.parametrize("listening", [False, True])
async def test_a_literal_container_in_one_iteration_and_none_in_the_next_run_as_on_the_slow_path(
        mapped: bool, listening: bool) -> None:
    # A literal list with no input in it was compiled as a container to copy: the next iteration's
    # None at its place then failed on the hot path (found by the nightly equivalence property).
    results = []
    for hot in (True, False):
        engine = cs.Engine(hot_plans=hot)
        if listening:
            engine.bus.subscribe(cs.Event, lambda event: None)
        results.append(await engine.run(typed_loop(6, None, mapped)))
    assert results[0] == results[1] == [1, None, [2] if mapped else 2]
