"""A task's call binds its arguments as its function does, however they are written.

Hypothesis draws a function signature (positional-only, positional-or-keyword parameters with and
without defaults, ``*args``, keyword-only parameters, ``**kwargs``; names include those of the lazy
result builder's own variables) and a call: some positional arguments, then keywords in any order,
an unknown keyword now and then, some values passed as lazy results. The function returns every
parameter's value, so any argument that lands in the wrong place changes the result.

- The call is refused with ``TypeError`` when it is made exactly when the function refuses it;
- otherwise the lazy result's ``args``/``kwargs`` are the call's ``inspect.BoundArguments``
  ``args``/``kwargs`` (keywords that bind as positional arguments are stored as positional ones), and
- running it, on a slow engine and twice on one hot engine (the second run reuses the plan), gives
  what the function gives for the call as written.
"""

from __future__ import annotations

import asyncio
import inspect
from dataclasses import dataclass
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

import cascade as cs

from .profiles import ci_settings

EXAMPLES = 500

# Plain names and names of new_lazy's own variables (renamed out of the way in a task's own copy).
_NAMES = ["x", "y", "value", "n", "a", "t", "h", "task", "args", "kwargs", "name", "deps", "mode"]


@cs.task
def lazy_of(v: Any) -> Any:
    return v


@dataclass(frozen=True)
class Case:
    """A function's source and one call of it: positional values, then keywords in call order."""

    source: str
    positional: tuple[Any, ...]
    keywords: tuple[tuple[str, Any], ...]
    lazy: tuple[bool, ...]  # per value, positional then keywords: passed as a lazy result

    def __repr__(self) -> str:  # what a failing example shows
        call = ", ".join([*map(repr, self.positional), *(f"{k}={v!r}" for k, v in self.keywords)])
        return f"Case({self.source!r}, call=({call}), lazy={self.lazy})"


@st.composite
def cases(draw: st.DrawFn) -> Case:
    names = draw(st.lists(st.sampled_from(_NAMES), min_size=1, max_size=7, unique=True))
    n_plain = draw(st.integers(0, min(5, len(names))))
    # Positional-only parameters in a third of the signatures: the others can fold every keyword.
    n_posonly = draw(st.integers(0, min(2, n_plain))) if draw(st.integers(0, 2)) == 0 else 0
    # Defaults from a drawn parameter on; half the time a positional-only one has one too.
    first_default = draw(st.integers(0, n_posonly - 1 if n_posonly and draw(st.booleans()) else n_plain))
    star = draw(st.booleans())
    kwonly = names[n_plain:]
    kw_defaults = [draw(st.booleans()) for _ in kwonly]
    double_star = draw(st.booleans())
    params: list[str] = []
    for i, name in enumerate(names[:n_plain]):
        params.append(f"{name}={100 + i}" if i >= first_default else name)
        if i + 1 == n_posonly:
            params.append("/")
    if star:
        params.append("*rest")
    elif kwonly:
        params.append("*")
    params += [f"{name}={200 + i}" if d else name for i, (name, d) in enumerate(zip(kwonly, kw_defaults))]
    if double_star:
        params.append("**more")
    returned = [*names[:n_plain], *(["rest"] if star else []), *kwonly, *(["more"] if double_star else [])]
    source = f"def f({', '.join(params)}):\n    return ({', '.join(returned)}{',' if returned else ''})\n"

    m = draw(st.integers(0, n_plain + (2 if star else 0)))
    positional = tuple(range(m))
    # Mostly calls the function accepts (the keywords it can bind, in any order), now and then one
    # it refuses: a positional-only name, a name given by position too, an unknown name.
    required = {*names[:first_default], *(k for k, d in zip(kwonly, kw_defaults) if not d)}
    bindable = [*names[max(m, n_posonly):n_plain], *kwonly]
    # Half the calls give every parameter they can by keyword (long runs to fold, in any order).
    every = draw(st.booleans())
    chosen = [k for k in bindable if every or draw(st.integers(0, 9)) < (9 if k in required else 5)]
    keys = list(draw(st.permutations(chosen)))
    if n_posonly and double_star and draw(st.booleans()):
        # a keyword named like a positional-only parameter: Python passes it to ``**more`` (where
        # that parameter has a default or is given by position, the call is good)
        keys.insert(draw(st.integers(0, len(keys))), names[draw(st.integers(0, n_posonly - 1))])
    elif draw(st.integers(0, 4)) == 0:
        bad = [*names[:min(m, n_plain)], *names[:n_posonly], "unknown"]
        extra = draw(st.sampled_from(bad))
        if extra not in keys:
            keys.insert(draw(st.integers(0, len(keys))), extra)
    keywords = tuple((k, 10 + i) for i, k in enumerate(keys))
    lazy = tuple(draw(st.lists(st.booleans(), min_size=len(positional) + len(keywords),
                               max_size=len(positional) + len(keywords))))
    return Case(source, positional, keywords, lazy)


def _function(source: str) -> Any:
    namespace: dict[str, Any] = {}
    exec(compile(source, "<drawn signature>", "exec"), namespace)  # noqa: S102 - drawn test code
    return namespace["f"]


def _bound(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``inspect.BoundArguments`` ``args`` and ``kwargs`` of the call. ``Signature.bind`` refuses a
    keyword named like a positional-only parameter even where Python passes it to ``**kwargs``,
    so such keywords are bound apart and kept as keywords."""
    params = inspect.signature(fn).parameters
    var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
    apart = {k: v for k, v in kwargs.items()
             if var_kw and k in params and params[k].kind is inspect.Parameter.POSITIONAL_ONLY}
    bound = inspect.signature(fn).bind(*args, **{k: v for k, v in kwargs.items() if k not in apart})
    return bound.args, {**bound.kwargs, **apart}


def check_keyword_binding(case: Case) -> None:
    fn = _function(case.source)
    task = cs.task(fn)
    kw = dict(case.keywords)
    try:
        expected: Any = fn(*case.positional, **kw)
    except TypeError:
        expected = TypeError
    wrap = iter(case.lazy)
    pos = tuple(lazy_of(v) if next(wrap) else v for v in case.positional)
    kwl = {k: lazy_of(v) if next(wrap) else v for k, v in case.keywords}
    try:
        call = task(*pos, **kwl)
    except TypeError:
        assert expected is TypeError, f"the call was refused, the function returns {expected!r}"
        return
    assert expected is not TypeError, "the function refuses the call, the task accepted it"
    assert (call.args, dict(call.kwargs)) == _bound(fn, pos, kwl)
    assert cs.run(call) == expected

    async def twice() -> tuple[Any, Any, int]:
        engine = cs.Engine()
        first = await engine.run(task(*pos, **kwl))
        second = await engine.run(task(*pos, **kwl))
        return first, second, engine.stats.hot_plan_hits

    first, second, hits = asyncio.run(twice())
    assert first == second == expected
    assert hits >= 1


@ci_settings(EXAMPLES)
@given(cases())
def test_a_task_call_binds_as_its_function_does_however_it_is_written(case: Case) -> None:
    check_keyword_binding(case)
