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
