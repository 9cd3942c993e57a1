"""A lazy result is one object: its positional arguments inline, its inputs recorded without a
tuple of their own where they are positional arguments (spec/lazy.py), and its keyword arguments a
read-only view. What users see (``args``, ``kwargs``, ``_deps``) is the same in every layout."""

from __future__ import annotations

import gc

import pytest

import cascade as cs
from cascade.spec import lazy as lazy_mod


@cs.task
def inc(x):
    return x + 1


@cs.task
def two_args(n, xs):
    return (n, xs)


@cs.task
def four(a, b, c, d, *, k=0):
    return (a, b, c, d, k)


def test_no_keyword_arguments_is_a_read_only_empty_mapping_no_call_can_change() -> None:
    first, second = inc(1), inc(2)
    with pytest.raises(TypeError):
        first.kwargs["x"] = 5  # type: ignore[index]
    assert dict(first.kwargs) == {} and dict(second.kwargs) == {}
    assert four(1, 2, 3, 4, k=9).kwargs == {"k": 9}


def test_a_call_and_its_arguments_are_one_tracked_object() -> None:
    # the argument tuple and the empty kwargs dict of the old layout are gone: creating a chain
    # step allocates exactly one container the collector tracks
    # (what the call itself refers to, not a count of the heap: other threads allocate too)
    link = inc(0)
    for call in (inc(link), inc(1), four(1, link, 2, 3)):
        held = [r for r in gc.get_referents(call)
                if gc.is_tracked(r) and r is not type(call) and r is not call.task and r is not link
                and type(r) is not lazy_mod._At]  # argument positions: one per pattern (test below)
        assert held == [], held
    assert inc(link).args == (link,)


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda a, b: four(a, b, 1, 2), "ab"),  # every lazy argument leading
        (lambda a, b: four(1, a, 2, b), "ab"),  # lazy inputs between literals: kept as positions
        (lambda a, b: four(b, 1, a, 2), "ba"),
        (lambda a, b: four(a, b, a, b), "abab"),  # all positional arguments are inputs
        (lambda a, b: four(1, 2, 3, a, k=b), "ab"),  # a keyword input: the inputs are listed
        (lambda a, b: four(1, 2, 3, [a, b]), "ab"),
    ],
    ids=["leading", "between", "reversed", "all", "keyword", "nested"],
)
def test_inputs_are_listed_in_argument_order_whatever_the_layout(make, expected) -> None:
    a, b = inc(1), inc(2)
    lr = make(a, b)
    assert lr._deps == tuple({"a": a, "b": b}[c] for c in expected)
    assert lr._deps == lazy_mod.deps_of(lr)


def test_the_same_pattern_shares_its_argument_positions() -> None:
    a = inc(1)
    one, other = four(1, a, 2, 3), four(4, inc(5), 6, 7)
    assert one[lazy_mod.DEPS] is other[lazy_mod.DEPS] == (1,)
    assert four(a, 1, 2, 3)[lazy_mod.DEPS] == (0,)


def test_a_plain_object_argument_gives_one_template_before_and_after_its_type_is_known() -> None:
    # The first call with an instance of a new class scans it (the general loop) and learns that
    # its type is plain; later calls take the positional fast path. Both make the same template.
    class Agent:
        pass

    me, a = Agent(), inc(1)
    assert type(me) not in lazy_mod._PLAIN_OBJECTS
    first = four(me, 0.5, None, a)
    assert type(me) in lazy_mod._PLAIN_OBJECTS
    again = four(me, 0.7, None, inc(2))
    assert first._shape == again._shape
    assert first[: lazy_mod.A0] == (four, lazy_mod.NO_KWARGS, (3,), 1, first._shape, 1, None, first._shape)
    assert again[: lazy_mod.A0] == (four, lazy_mod.NO_KWARGS, (3,), 1, again._shape, 1, None, again._shape)
    assert four(a, a, a, a)[lazy_mod.DEPS] is None  # the inputs are all the positional arguments
    assert four(me, 0.5, a, a)._deps == (a, a)


def test_a_literal_and_a_list_of_one_input_give_the_general_loops_template(monkeypatch: pytest.MonkeyPatch) -> None:
    # ``loop(n - 1, [previous])`` has a path of its own; with ints not known as literals the same
    # call goes through the general loop, which must make the same lazy result.
    a = inc(1)
    fast = lazy_mod.new_lazy(two_args, 5, [a])
    monkeypatch.setattr(lazy_mod, "_ATOMIC", frozenset({str}))
    monkeypatch.setattr(lazy_mod, "_PLAIN_OBJECTS", set())
    general = lazy_mod.new_lazy(two_args, 5, [a])
    assert fast[: lazy_mod.A0] == general[: lazy_mod.A0] and fast[lazy_mod.DEPS] == (a,)
    assert fast.args == general.args == (5, [a])


@pytest.mark.parametrize("mask", range(16))
def test_four_positional_arguments_give_the_general_loops_template(mask: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # Four positional arguments have an unrolled path of their own (an agent's step); with the
    # literals' types not known as such, the same call goes through the general loop.
    a, b = inc(1), inc(2)
    values = [[a, b, inc(3), b][i] if mask >> i & 1 else [7, 0.5, None, "s"][i] for i in range(4)]
    fast = lazy_mod.new_lazy(four, *values)
    monkeypatch.setattr(lazy_mod, "_ATOMIC", frozenset({bytes}))
    monkeypatch.setattr(lazy_mod, "_PLAIN_OBJECTS", set())
    general = lazy_mod.new_lazy(four, *values)
    assert fast[: lazy_mod.A0] == general[: lazy_mod.A0]
    assert fast.args == general.args == tuple(values)
    assert fast._deps == tuple(v for v in values if type(v) is lazy_mod.LazyResult)


def test_argument_position_patterns_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lazy_mod, "_AT_BY_MASK", {})
    monkeypatch.setattr(lazy_mod, "_AT_PATTERNS", 2)
    for mask in (1, 2, 3, 5, 6):
        assert lazy_mod._at(mask) == tuple(i for i in range(3) if mask >> i & 1)
    assert len(lazy_mod._AT_BY_MASK) == 2


@pytest.mark.asyncio
async def test_calls_with_inputs_between_literals_run_hot_as_slow() -> None:
    @cs.task
    def loop(n, total, step):
        if n == 0:
            return total
        return loop(n - 1, inc(total), 1)

    hot, slow = cs.Engine(), cs.Engine(hot_plans=False)
    for engine in (hot, slow):
        assert await engine.run(loop(50, 0, 1)) == 50
    assert hot.stats.hot_plan_hits > 40  # bound through the inputs' argument positions
