"""The walkers' compiled argument forms: ``fn(x=previous)`` and ``fn([a, b])`` / ``fn((a, b))``.

Hot plans build these arguments from precompiled slots; they must give each call what the slow
path gives it: fresh containers of the container's own type, values in their slots.
"""

from __future__ import annotations

from typing import Any

import pytest

import cascade as cs


@cs.task(name="argm_kw")
async def by_keyword(x: Any) -> Any:
    return x + 1


@cs.task(name="argm_kw_sync")
def by_keyword_sync(x: Any) -> Any:
    return x * 2


@cs.task(name="argm_seq")
async def takes_seq(xs: Any) -> Any:
    got = (type(xs).__name__, *xs)
    if isinstance(xs, list):
        xs.append("mutated")  # a fresh list per call: nothing else can see this
    return got


@cs.task(name="argm_seq_sync")
def takes_seq_sync(xs: Any) -> Any:
    return (type(xs).__name__, len(xs), *xs)


@cs.task(name="argm_loop")
async def loop(n: int, acc: Any) -> Any:
    if n == 0:
        return acc
    a = by_keyword(x=n)
    b = by_keyword_sync(x=a)
    c = takes_seq([a, b])
    d = takes_seq((b, a))
    e = takes_seq_sync([c, d])
    return loop(n - 1, takes_seq_sync((acc, e)))


def expected(n: int) -> Any:
    acc: Any = ()
    for k in range(n, 0, -1):
        a = k + 1
        b = a * 2
        c = ("list", a, b)
        d = ("tuple", b, a)
        e = ("list", 2, c, d)
        acc = ("tuple", 2, acc, e)
    return acc


@pytest.mark.parametrize("hot", [True, False])
@pytest.mark.asyncio
async def test_keyword_and_sequence_inputs_get_their_values_in_fresh_containers(hot: bool) -> None:
    engine = cs.Engine(hot_plans=hot)
    assert await engine.run(loop(8, ())) == expected(8)
    assert await engine.run(loop(3, ())) == expected(3)  # the plan again, from a new run


@cs.task(name="argm_list1_loop")
async def list1_loop(n: int, acc: Any) -> Any:
    if n == 0:
        return acc
    a = takes_seq([n])  # a literal list
    b = takes_seq([a])  # one lazy input in a list: ``await fn([previous])`` in the walker
    c = takes_seq([b])
    return list1_loop(n - 1, takes_seq_sync([acc, c]))


@pytest.mark.parametrize("hot", [True, False])
@pytest.mark.asyncio
async def test_a_single_lazy_input_in_a_list_gets_a_fresh_list_per_call(hot: bool) -> None:
    acc: Any = ()
    for k in range(6, 0, -1):
        acc = ("list", 2, acc, ("list", ("list", ("list", k))))
    engine = cs.Engine(hot_plans=hot)
    assert await engine.run(list1_loop(6, ())) == acc


@cs.task(name="argm_second")
async def second_param(a: Any = "default", x: Any = None) -> Any:
    return (a, x)


@cs.task(name="argm_kwonly")
async def keyword_only(*, x: Any) -> Any:
    return ("kwonly", x)


@cs.task(name="argm_first")
def first_param(x: Any, y: Any = "y") -> Any:
    return (x, y)


@cs.task(name="argm_kw_loop")
async def kw_loop(n: int, acc: Any) -> Any:
    if n == 0:
        return acc
    a = second_param(x=first_param(x=n))  # x is not the first parameter: it must stay a keyword
    b = keyword_only(x=a)  # keyword-only: it cannot be passed by position
    c = first_param(x=b)  # the first parameter: by position or by keyword, the same binding
    return kw_loop(n - 1, first_param(x=(acc, c)))


@pytest.mark.parametrize("hot", [True, False])
@pytest.mark.asyncio
async def test_a_lazy_keyword_input_binds_to_its_own_parameter(hot: bool) -> None:
    engine = cs.Engine(hot_plans=hot)
    acc: Any = ()
    for k in range(5, 0, -1):
        acc = ((acc, (("kwonly", ("default", (k, "y"))), "y")), "y")
    assert await engine.run(kw_loop(5, ())) == acc


@cs.task(name="argm_either")
async def either(x: Any = None, y: Any = None) -> Any:
    return ("x", x) if y is None else ("y", y)


@cs.task(name="argm_pair")
async def pair(a: Any, b: Any) -> Any:
    return (a, b)


@cs.task(name="argm_alternate")
async def alternate(n: int, acc: Any) -> Any:
    if n == 0:
        return acc
    # The single keyword's name changes every iteration: the two templates must stay apart
    # (a plan compiled for ``x=`` bound to a ``y=`` call would pass the value to the wrong parameter).
    previous = pair(acc, n)  # a lazy input, passed by the changing keyword
    link = either(x=previous) if n % 2 else either(y=previous)
    return alternate(n - 1, link)


@pytest.mark.parametrize("hot", [True, False])
@pytest.mark.asyncio
async def test_a_single_keyword_that_changes_name_between_iterations_keeps_its_parameter(hot: bool) -> None:
    engine = cs.Engine(hot_plans=hot)
    expected: Any = 0
    for n in range(6, 0, -1):
        expected = ("x" if n % 2 else "y", (expected, n))
    assert await engine.run(alternate(6, 0)) == expected


class _Scale:
    """A callable object as a task's function: it has no ``__code__`` to read parameters from."""

    def __call__(self, x: Any) -> Any:
        return x * 3


scale = cs.task(_Scale(), name="argm_scale")


@cs.task(name="argm_scale_loop")
async def scale_loop(n: int, acc: Any) -> Any:
    if n == 0:
        return acc
    return scale_loop(n - 1, scale(x=by_keyword(x=acc)))  # a lazy input by keyword


@pytest.mark.parametrize("hot", [True, False])
@pytest.mark.asyncio
async def test_a_callable_object_task_takes_a_lazy_keyword_input(hot: bool) -> None:
    expected = 0
    for _ in range(4):
        expected = (expected + 1) * 3
    assert await cs.Engine(hot_plans=hot).run(scale_loop(4, 0)) == expected
