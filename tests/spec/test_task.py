"""@cs.task: wrapping sync and async functions; calling describes a call and runs nothing."""

from __future__ import annotations

import asyncio

import pytest

import cascade as cs

calls: list[str] = []


@cs.task
def sync_add(x, y):
    calls.append("sync_add")
    return x + y


@cs.task
async def async_add(x, y):
    calls.append("async_add")
    await asyncio.sleep(0)
    return x + y


@cs.task(name="renamed", pure=True)
def with_options(x):
    return x


@pytest.fixture(autouse=True)
def _clear_calls():
    calls.clear()


def test_task_wraps_sync_function():
    assert isinstance(sync_add, cs.Task)
    assert sync_add.is_async is False
    assert sync_add.name == "sync_add"
    assert sync_add.pure is False


def test_task_wraps_async_function():
    assert isinstance(async_add, cs.Task)
    assert async_add.is_async is True
    assert async_add.name == "async_add"


def test_task_name_and_pure_options():
    assert with_options.name == "renamed"
    assert with_options.pure is True


def test_task_keeps_function_metadata():
    assert sync_add.__name__ == "sync_add"
    assert sync_add.fn(2, 3) == 5  # the original function is reachable and unchanged


def test_calling_a_sync_task_returns_lazy_result_and_runs_nothing():
    lr = sync_add(1, 2)
    assert isinstance(lr, cs.LazyResult)
    assert lr.task is sync_add
    assert lr.args == (1, 2)
    assert lr.kwargs == {}
    assert calls == []


def test_calling_an_async_task_runs_nothing_and_creates_no_coroutine():
    lr = async_add(1, y=2)
    assert isinstance(lr, cs.LazyResult)
    assert lr.args == (1, 2)  # ``y`` binds as the second positional argument: stored as one
    assert lr.kwargs == {}
    assert calls == []


def test_sync_and_async_tasks_run():
    assert cs.run(sync_add(2, 3)) == 5
    assert cs.run(async_add(sync_add(1, 1), 10)) == 12
    assert calls == ["sync_add", "sync_add", "async_add"]


def test_lazy_result_refuses_truth_value():
    with pytest.raises(TypeError, match="sync_add"):
        bool(sync_add(1, 2))


def test_lazy_result_cannot_be_constructed_directly():
    with pytest.raises(TypeError):
        cs.LazyResult(sync_add, (), {})


def test_decorating_a_task_again_wraps_the_same_function():
    again = cs.task(sync_add)
    assert again.fn is sync_add.fn
    assert cs.run(again(4, 5)) == 9


def test_bad_task_name_is_rejected():
    with pytest.raises(TypeError, match="name"):
        cs.task(name="")(lambda: None)


def _make_fetch(offset):
    @cs.task
    async def fetch(n):
        return n + offset

    return fetch


class Holder:
    @cs.task
    @staticmethod
    def method_task(x):
        return x


def test_default_name_is_the_plain_function_name_not_the_qualified_one():
    fetch = _make_fetch(0)
    assert fetch.fn.__qualname__ == "_make_fetch.<locals>.fetch"
    assert fetch.name == "fetch"
    assert Holder.method_task.name == "method_task"


@pytest.mark.asyncio
@pytest.mark.parametrize("hot", [True, False], ids=["hot", "slow"])
async def test_tasks_sharing_a_default_name_keep_distinct_identities(hot):
    plus_one, plus_ten = _make_fetch(1), _make_fetch(10)
    assert plus_one.name == plus_ten.name == "fetch"
    assert plus_one.fingerprint != plus_ten.fingerprint

    @cs.task
    def pair(a, b):
        return (a, b)

    engine = cs.Engine(hot_plans=hot)
    started = []
    engine.bus.subscribe(cs.TaskExecutionStarted, lambda e: started.append(e.task_name))
    for _ in range(2):  # the second run takes the hot plan on the hot engine
        assert await engine.run(pair(plus_one(1), plus_ten(1))) == (2, 11)
    assert started == ["fetch", "fetch", "pair"] * 2
