"""Keyword arguments that bind exactly as positional ones are stored as positional ones.

``step(x=previous)`` and ``step(previous)`` are one call of a plain function whose first parameter
is ``x``: one lazy result layout, one template (shape), one identity, one value. What cannot bind
the same by position (a keyword after a gap, a keyword-only or positional-only parameter, a
function whose parameters are not read from its code) stays a keyword argument, as written.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest

import cascade as cs


@cs.task
def inc(x):
    return x + 1


@cs.task
def five(a, b=2, c=3, d=4, e=5):
    return (a, b, c, d, e)


@cs.task
def labelled(x, *, tag="t"):
    return f"{tag}{x}"


@cs.task
def first_only(a, /, **rest):
    return (a, rest)


@cs.task
def anything(*args, **kwargs):
    return (args, kwargs)


@cs.task
def locals_named(task, args, kwargs=0):  # the names of the lazy-result builder's own variables
    return (task, args, kwargs)


@cs.task
def h(a, t, nargs=0):
    return (a, t, nargs)


def _wrapper(fn):
    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        return fn(*args, **kwargs)

    return wrapped


@cs.task
@_wrapper
def wrapped_pair(x, y=0):
    return (x, y)


def _ids(target: Any) -> tuple[str, str]:
    g = cs.build_graph(target)
    return g.structural_id, g.template_id


def _split(lazy: cs.LazyResult) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return lazy.args, dict(lazy.kwargs)


@pytest.mark.parametrize(
    ("make", "args", "kwargs", "value"),
    [
        (lambda: five(a=1), (1,), {}, (1, 2, 3, 4, 5)),
        (lambda: five(1, b=7), (1, 7), {}, (1, 7, 3, 4, 5)),
        (lambda: five(b=7, a=1), (1, 7), {}, (1, 7, 3, 4, 5)),  # in parameter order, not call order
        (lambda: five(1, 2, 3, e=9, d=8), (1, 2, 3, 8, 9), {}, (1, 2, 3, 8, 9)),  # past the first two
        (lambda: five(1, c=7), (1,), {"c": 7}, (1, 2, 7, 4, 5)),  # after a gap: stays a keyword
        (lambda: five(1, b=2, d=4), (1, 2), {"d": 4}, (1, 2, 3, 4, 5)),
        (lambda: labelled(x=3, tag="k"), (3,), {"tag": "k"}, "k3"),  # keyword-only stays
        (lambda: first_only(1, a=2), (1,), {"a": 2}, (1, {"a": 2})),  # positional-only: no keyword binds it
        (lambda: anything(1, x=2), (1,), {"x": 2}, ((1,), {"x": 2})),
        (lambda: wrapped_pair(1, y=2), (1,), {"y": 2}, (1, 2)),  # a wrapper's parameters are its own
        (lambda: locals_named(task=1, args=2, kwargs=3), (1, 2, 3), {}, (1, 2, 3)),
        (lambda: h(t=2, a=1, nargs=3), (1, 2, 3), {}, (1, 2, 3)),
    ],
    ids=["first", "second", "any-order", "past-the-slots", "gap", "gap-later", "keyword-only",
         "positional-only", "var-keyword", "wrapper", "builder-local-names", "builder-local-names-2"],
)
def test_a_keyword_is_stored_by_position_exactly_when_it_binds_the_same(make, args, kwargs, value):
    lazy = make()
    assert _split(lazy) == (args, kwargs)
    assert cs.run(lazy) == value


def test_a_folded_call_is_the_positional_call_template_identity_and_value():
    previous = inc(1)
    by_keyword = five(previous, b=inc(previous))
    by_position = five(previous, inc(previous))
    assert by_keyword._shape == by_position._shape
    assert by_keyword._mode == by_position._mode
    assert _ids(by_keyword) == _ids(by_position)
    assert cs.run(by_keyword) == cs.run(by_position) == (2, 3, 3, 4, 5)
    assert inc(x=previous)._shape == inc(previous)._shape


@pytest.mark.parametrize("hot", [True, False])
@pytest.mark.asyncio
async def test_a_loop_written_with_keywords_runs_as_the_positional_one(hot):
    @cs.task
    def step(x):
        return x + 1

    @cs.task
    def loop(n, value):
        if n == 0:
            return value
        return loop(n - 1, value=step(x=value))

    engine = cs.Engine(hot_plans=hot)
    assert await engine.run(loop(n=50, value=0)) == 50
    if hot:
        assert engine.stats.hot_plan_hits >= 45


def test_injected_parameters_are_never_folded():
    @cs.task
    def uses(x, db=cs.inject("db")):
        return (x, db)

    assert _split(uses(1, db="given")) == ((1,), {"db": "given"})


def test_each_task_binds_its_own_parameter_names():
    @cs.task
    def one(p):
        return p

    @cs.task
    def other(q):
        return q

    assert _split(one(p=1)) == ((1,), {})
    assert _split(other(q=1)) == ((1,), {})
    with pytest.raises(TypeError, match="other"):
        other(p=1)  # one's parameter is not other's
    assert type(one) is not type(other) and isinstance(one, cs.Task) and isinstance(other, cs.Task)


def test_a_subclass_of_task_keeps_its_own_behaviour():
    class Labelled(cs.Task):
        def label(self) -> str:
            return f"<{self.name}>"

    def pair(x, y):
        return (x, y)

    t = Labelled(pair)
    assert isinstance(t, Labelled) and t.label() == "<pair>"
    assert _split(t(1, y=2)) == ((1, 2), {})
    assert cs.run(t(y=2, x=1)) == (1, 2)
