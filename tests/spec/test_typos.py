"""Silent typos made loud: a task passed without calling it, a class as a task, a param nobody reads."""

from __future__ import annotations

import logging

import pytest

import cascade as cs


@cs.task
def add(a, b=1):
    return a + b


@cs.task
def use(f):
    return f


@cs.task
def scale(x, factor=1):
    return x * factor


@cs.task
async def countdown(n, step=1):
    if n <= 0:
        return "done"
    return countdown(n - step, step)


# -- a Task passed as an argument ----------------------------------------------------------------

UNCALLED = [
    (lambda: use(add), "use", "argument 'f'"),  # named by its parameter, like a keyword
    (lambda: use(f=add), "use", "argument 'f'"),
    (lambda: use([1, {"k": add}]), "use", "argument 'f'"),  # nested in containers too
    (lambda: add(1, add), "add", "argument 'b'"),
    (lambda: use.map(f=[1, add]), "use", "argument 'f'"),
]


@pytest.mark.parametrize(("make", "receiver", "where"), UNCALLED,
                         ids=["positional", "keyword", "nested", "second", "map"])
def test_a_task_passed_without_calling_it_fails_at_call_time_naming_both(make, receiver, where):
    with pytest.raises(TypeError) as info:
        make()
    assert str(info.value) == (
        f"task {receiver!r} {where} is the task 'add' itself, not a call of it: write add(...) to pass "
        "its result; to hand over the function, pass add.fn"
    )


def test_the_called_task_and_its_plain_function_are_accepted():
    assert cs.run(use(add(1))) == 2
    assert cs.run(use(add.fn)) is add.fn


# -- a class as a task ---------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [int, dict, cs.RetryPolicy])
def test_a_class_is_not_a_task(cls):
    with pytest.raises(TypeError, match=rf"@cs.task needs a function, got the class '{cls.__qualname__}'"):
        cs.task(cls)
    with pytest.raises(TypeError, match="wrap it in one"):
        cs.task(name="x")(cls)


def test_builtin_functions_and_callable_objects_stay_tasks():
    class Doubler:
        def __call__(self, x):
            return 2 * x

    assert cs.run(cs.task(len)([1, 2, 3])) == 3
    assert cs.run(cs.task(Doubler())(4)) == 8


# -- params no task reads ------------------------------------------------------------------------

def unread_warnings(events):
    return [(e.code, e.task_name) for e in events if isinstance(e, cs.StaticAnalysisWarning)]


@pytest.mark.asyncio
async def test_a_param_no_task_reads_is_warned_about_naming_it(any_engine, caplog):
    seen = []
    any_engine.bus.subscribe(cs.StaticAnalysisWarning, seen.append)
    with caplog.at_level(logging.WARNING, logger="cascade.engine"):
        value = await any_engine.run(scale(3, cs.Param("factor", default=1)), params={"factr": 5, "factor": 2})
    assert value == 6
    assert unread_warnings(seen) == [("CS-W003", "scale")]
    [event] = seen
    assert "got 'factr', which no task of this run read" in event.message
    assert "params read were: 'factor'" in event.message
    assert [r.getMessage() for r in caplog.records if r.name == "cascade.engine"] == [event.message]


@pytest.mark.asyncio
async def test_params_that_are_all_read_or_absent_give_no_warning(any_engine, caplog):
    seen = []
    any_engine.bus.subscribe(cs.StaticAnalysisWarning, seen.append)
    with caplog.at_level(logging.WARNING, logger="cascade.engine"):
        assert await any_engine.run(scale(3, cs.Param("factor")), params={"factor": 2}) == 6
        assert await any_engine.run(scale(3, cs.Param("factor", default=4))) == 12
        assert await any_engine.run(scale(3)) == 3
    assert seen == []
    assert not [r for r in caplog.records if r.name == "cascade.engine"]


@pytest.mark.asyncio
async def test_a_param_read_only_in_a_later_tail_call_iteration_counts_as_read(any_engine):
    @cs.task
    def first(n):
        return countdown(n, cs.Param("step"))

    seen = []
    any_engine.bus.subscribe(cs.StaticAnalysisWarning, seen.append)
    assert await any_engine.run(first(10), params={"step": 3}) == "done"
    assert await any_engine.run(first(10), params={"step": 3, "stpe": 2}) == "done"
    assert unread_warnings(seen) == [("CS-W003", "first")]
    assert "'stpe'" in seen[0].message and "'step'" not in seen[0].message.split("read were")[0]


@pytest.mark.asyncio
async def test_a_failed_run_does_not_warn_about_unread_params(any_engine):
    @cs.task
    def boom(x):
        raise RuntimeError("boom")

    seen = []
    any_engine.bus.subscribe(cs.StaticAnalysisWarning, seen.append)
    with pytest.raises(RuntimeError, match="boom"):
        await any_engine.run(boom(1), params={"never": 1})
    assert seen == []


def test_a_missing_param_error_lists_the_params_given():
    with pytest.raises(cs.ParamError, match=r"missing param 'factor'.*\(given: 'factr'\)"):
        cs.run(scale(3, cs.Param("factor")), params={"factr": 5})
