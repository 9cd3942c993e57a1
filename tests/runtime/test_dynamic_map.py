"""Dynamic map: ``task.map(x=lazy)`` fans out over a value known only at run time, on hot and slow paths."""

from __future__ import annotations

import asyncio

import pytest

import cascade as cs


@cs.task
def extract(n):
    return [f"r{i}" for i in range(n)]


@cs.task
async def transform(rec, times=1):
    # later elements finish first: the result must still be in input order
    await asyncio.sleep(0.001 * (5 - int(rec[1:]) % 5))
    return rec.upper() * times


@cs.task
def load(rows):
    return " ".join(rows)


@cs.task
def numbers(n):
    return range(n)


@cs.task
def square(x):
    return x * x


@pytest.mark.asyncio
async def test_map_over_an_upstream_result_gives_results_in_input_order(any_engine):
    assert await any_engine.run(load(transform.map(rec=extract(6)))) == "R0 R1 R2 R3 R4 R5"
    assert await any_engine.run(square.map(x=numbers(4))) == [0, 1, 4, 9]  # any iterable: a range


@pytest.mark.asyncio
async def test_empty_input_gives_an_empty_list(any_engine):
    assert await any_engine.run(transform.map(rec=extract(0))) == []
    assert await any_engine.run(load(transform.map(rec=extract(0)))) == ""


@pytest.mark.asyncio
async def test_lazy_and_concrete_columns_mix_and_maps_chain(any_engine):
    assert await any_engine.run(transform.map(rec=extract(2), times=[2, 3])) == ["R0R0", "R1R1R1"]
    assert await any_engine.run(square.map(x=square.map(x=numbers(3)))) == [0, 1, 16]
    assert await any_engine.run(square.map(x=square.map(x=[1, 2]))) == [1, 16]  # a static map as input


@pytest.mark.asyncio
async def test_unequal_lengths_fail_when_the_run_gets_there_naming_task_and_lengths(any_engine):
    with pytest.raises(ValueError, match=r"^transform\.map\(\) needs iterables of equal length, got rec=2, times=1\n") as info:
        await any_engine.run(transform.map(rec=extract(2), times=[1]))
    assert info.value.__notes__ == ["cascade: task 'transform.map' failed"]


@pytest.mark.asyncio
@pytest.mark.parametrize(("value", "shown"), [(5, "int 5"), ("abc", "str 'abc'")])
async def test_a_non_iterable_input_fails_naming_task_and_argument(any_engine, value, shown):
    @cs.task
    def give():
        return value

    with pytest.raises(TypeError, match=rf"^square\.map\(x=\.\.\.\) needs an iterable.*input gave {shown}\n"):
        await any_engine.run(square.map(x=give()))


def test_a_static_string_column_is_still_refused_at_once():
    with pytest.raises(TypeError, match=r"square\.map\(x=\.\.\.\) needs a list, tuple or other iterable"):
        square.map(x="abc")


@pytest.mark.asyncio
async def test_retry_cache_and_constraints_apply_to_every_element_call(any_engine):
    attempts: dict[int, int] = {}

    @cs.task
    def flaky(x):
        attempts[x] = attempts.get(x, 0) + 1
        if attempts[x] < 2:
            raise ConnectionError(x)
        return x * 10

    assert await any_engine.run(flaky.map(x=numbers(3)).with_retry(max_attempts=2)) == [0, 10, 20]
    assert attempts == {0: 2, 1: 2, 2: 2}

    calls: list[int] = []

    @cs.task
    def costly(x):
        calls.append(x)
        return -x

    cache = cs.InMemoryCache()
    for _ in range(2):
        assert await any_engine.run(costly.map(x=numbers(3)).with_cache(cache)) == [0, -1, -2]
    assert calls == [0, 1, 2]


@pytest.mark.asyncio
@pytest.mark.parametrize("hot", [True, False], ids=["hot", "slow"])
async def test_constraints_hold_each_element_call(hot):
    engine = cs.Engine(hot_plans=hot, system_resources={"slots": 2})
    running = {"now": 0, "max": 0}

    @cs.task
    async def work(x):
        running["now"] += 1
        running["max"] = max(running["max"], running["now"])
        await asyncio.sleep(0.002)
        running["now"] -= 1
        return x

    mapped = work.map(x=numbers(6)).with_constraints(slots=1).with_retry(max_attempts=2)
    assert await engine.run(mapped) == [0, 1, 2, 3, 4, 5]
    assert running["max"] == 2


def test_element_policy_errors_name_the_mapped_task():
    with pytest.raises(ValueError, match="task 'square'.*max_attempts"):
        square.map(x=numbers(2)).with_retry(max_attempts=0)
    with pytest.raises(ValueError, match="task 'square'"):
        square.map(x=numbers(2)).with_constraints(slots=-1)


@pytest.mark.asyncio
async def test_run_if_applies_to_the_map_as_a_whole(any_engine):
    @cs.task
    def yes(flag):
        return flag

    ran: list[int] = []

    @cs.task
    def note(x):
        ran.append(x)
        return x

    assert await any_engine.run(note.map(x=numbers(2)).run_if(yes(True))) == [0, 1]
    with pytest.raises(cs.DependencyMissingError) as info:
        await any_engine.run(note.map(x=numbers(2)).run_if(yes(False)))
    assert info.value.reason == "ConditionFalse"
    assert ran == [0, 1]


@cs.task
def sizes(n):
    return list(range(n % 4))


@cs.task
def step(n, squares):
    if n == 0:
        return squares
    return step(n - 1, square.map(x=sizes(n - 1)))


@pytest.mark.asyncio
async def test_a_loop_over_dynamic_maps_of_changing_length_is_the_same_hot_and_slow():
    results = []
    for hot in (True, False):
        engine = cs.Engine(hot_plans=hot)
        events: list[tuple[str, str]] = []
        engine.bus.subscribe(cs.Event, lambda e, out=events: out.append((type(e).__name__, getattr(e, "task_name", ""))))
        value = await engine.run(step(9, []))
        results.append((value, [e for e in events if e[0] != "RunStarted"]))
        if hot:
            assert engine.stats.hot_plan_hits > 0
    assert results[0] == results[1]
    assert results[0][0] == []  # the last map is over sizes(0) == []
    finished = [name for kind, name in results[0][1] if kind == "TaskExecutionFinished"]
    # sizes(8..0) = 0,3,2,1,0,3,2,1,0 elements: 12 square calls in all
    assert finished.count("square") == 12
    assert finished.count("square.map") == 9


@pytest.mark.asyncio
async def test_events_of_the_element_calls_are_published(any_engine, make_recorder):
    rec = make_recorder(any_engine.bus, cs.TaskExecutionFinished)
    assert await any_engine.run(square.map(x=numbers(3))) == [0, 1, 4]
    names = sorted(e.task_name for e in rec.events)
    assert names == ["numbers", "square", "square", "square", "square.map"]
