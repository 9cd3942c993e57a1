"""A failing task's exception keeps its type and message and names the task (and map element)."""

from __future__ import annotations

import asyncio

import pytest

import cascade as cs


class Boom(Exception):
    pass


def cascade_notes(exc: BaseException) -> list[str]:
    return [n for n in getattr(exc, "__notes__", []) if n.startswith("cascade: task ")]


@cs.task
def ident(x):
    return x


@cs.task
def fails_on_two(x):
    if x == 2:
        raise Boom(f"bad {x}")
    return x


@cs.task
async def suspends_then_fails_on_two(x):
    await asyncio.sleep(0)
    if x == 2:
        raise Boom(f"bad {x}")
    return x


@cs.task
def total(xs):
    return sum(xs)


@pytest.mark.asyncio
async def test_single_call_failure_names_the_task(runner):
    with pytest.raises(Boom) as info:
        await runner.run(fails_on_two(2))
    assert str(info.value) == "bad 2"  # the message is untouched; the task is named in a note
    assert cascade_notes(info.value) == ["cascade: task 'fails_on_two' failed"]


@pytest.mark.asyncio
async def test_chain_failure_names_the_failing_step(runner):
    with pytest.raises(Boom) as info:
        await runner.run(ident(ident(fails_on_two(ident(2)))))
    assert str(info.value) == "bad 2"  # the message is untouched; the task is named in a note
    assert cascade_notes(info.value) == ["cascade: task 'fails_on_two' failed"]


@pytest.mark.parametrize("task", [fails_on_two, suspends_then_fails_on_two], ids=["sync", "suspending"])
@pytest.mark.asyncio
async def test_map_element_failure_names_task_and_index(runner, task):
    with pytest.raises(Boom) as info:
        await runner.run(total(task.map(x=[0, 1, 2, 3])))
    assert str(info.value) == "bad 2"  # the message is untouched; the task is named in a note
    assert cascade_notes(info.value) == [f"cascade: task {task.name!r} failed (element 2 of {task.name}.map)"]


@pytest.mark.asyncio
async def test_retried_failure_gets_one_note(runner):
    with pytest.raises(Boom) as info:
        await runner.run(total(fails_on_two.map(x=[2, 5]).with_retry(max_attempts=3)))
    assert str(info.value) == "bad 2"  # the message is untouched; the task is named in a note
    assert cascade_notes(info.value) == ["cascade: task 'fails_on_two' failed (element 0 of fails_on_two.map)"]


@pytest.mark.asyncio
async def test_nested_evaluation_names_the_innermost_task_once(runner):
    @cs.task
    def outer(x):
        return fails_on_two(x)  # not the target: evaluated nested, its value is outer's

    with pytest.raises(Boom) as info:
        await runner.run(ident(outer(2)))
    assert str(info.value) == "bad 2"  # the message is untouched; the task is named in a note
    assert cascade_notes(info.value) == ["cascade: task 'fails_on_two' failed"]


@pytest.mark.asyncio
async def test_tail_call_failure_names_the_task_of_its_iteration(runner):
    @cs.task
    def countdown(n):
        if n == 0:
            return fails_on_two(2)
        return countdown(n - 1)

    with pytest.raises(Boom) as info:
        await runner.run(countdown(3))
    assert str(info.value) == "bad 2"  # the message is untouched; the task is named in a note
    assert cascade_notes(info.value) == ["cascade: task 'fails_on_two' failed"]


@pytest.mark.asyncio
async def test_a_cancelled_call_gets_no_note(any_engine):
    started = asyncio.Event()

    @cs.task
    async def hang():
        started.set()
        await asyncio.Event().wait()

    run = asyncio.ensure_future(any_engine.run(ident(hang())))
    await started.wait()
    run.cancel()
    with pytest.raises(asyncio.CancelledError) as info:
        await run
    assert cascade_notes(info.value) == []
