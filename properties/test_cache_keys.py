"""Exact cache keys: distinct literals never share a cache entry, equal literals always hit.

Literals are drawn from mixed types (ints small and huge, floats with ``-0.0``, NaN and infinities,
bools, str, bytes, None, and tuples, lists and dicts of them, nested), with look-alikes side by
side (``1``, ``True``, ``1.0``, ``"1"``, ``b"1"``) and deep copies (equal values, other objects).
Each literal is passed to one cached task, in order, on one engine with one cache (in memory, or a
:class:`cs.FileCache`, whose entries make the round trip through the on-disk format). The task
returns the literal's type-exact canonical form (:func:`properties.model.canon`), so a call
served another literal's entry returns the wrong form; and the task must run exactly once per
distinct canonical form.
"""

from __future__ import annotations

import asyncio
import copy
import tempfile
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

import cascade as cs

from .model import canon
from .profiles import ci_settings

EXAMPLES = 150

_ATOMS = st.one_of(
    st.sampled_from([0, 1, True, False, 1.0, 0.0, -0.0, "1", b"1", "", b"", None,
                     float("nan"), float("inf"), float("-inf")]),
    st.integers(), st.integers(min_value=2**64, max_value=2**200),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(), st.text(max_size=4), st.binary(max_size=4), st.none(),
)
_KEYS = st.one_of(st.integers(-3, 3), st.text(max_size=2), st.booleans(), st.binary(max_size=2), st.none())
literals = st.recursive(
    _ATOMS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(_KEYS, inner, max_size=3),
    ),
    max_leaves=8,
)


def twins(v: Any) -> list[Any]:
    """Values equal to ``v`` (or alike) but of another type or sign: what an ``==`` key confuses."""
    t = type(v)
    out: list[Any] = []
    if t is bool:
        out += [int(v), float(v)]
    elif t is int:
        out += [float(v)] if abs(v) < 2**53 else []
        out += [bool(v)] if v in (0, 1) else []
    elif t is float:
        if v == v and v not in (float("inf"), float("-inf")) and v == int(v):
            out += [int(v), -v]
    elif t is tuple:
        out += [list(v)]
    elif t is list:
        out += [tuple(v)]
    elif t is str:
        out += [v.encode("utf-8", "surrogatepass")]
    elif t is bytes:
        out += [bytearray(v)]
    elif t is dict:
        out += [{k: twins(x)[0] if twins(x) else x for k, x in v.items()}]
    return out


@st.composite
def call_sequences(draw: Any) -> list[Any]:
    """Literals in calling order: a pool, look-alikes of its members (``twins``), repeats (deep
    copies), in a drawn order."""
    pool = draw(st.lists(literals, min_size=1, max_size=5))
    pool += [t for v in pool for t in twins(v) if draw(st.booleans())]
    order = draw(st.lists(st.integers(0, len(pool) - 1), min_size=1, max_size=10))
    return [copy.deepcopy(pool[i]) for i in order] + pool


async def _calls(values: list[Any], cache: Any, hot: bool) -> tuple[list[Any], list[Any]]:
    executed: list[Any] = []

    @cs.task
    def identify(x: Any) -> Any:
        executed.append(canon(x))
        return canon(x)

    engine = cs.Engine(hot_plans=hot)
    bypassed: list[Any] = []
    engine.bus.subscribe(cs.CacheBypassed, bypassed.append)
    results = [await engine.run(identify(v).with_cache(cache)) for v in values]
    assert not bypassed, f"the cache was bypassed: {bypassed}"
    return results, executed


def check_exact_cache_keys(values: list[Any]) -> None:
    expected = [canon(v) for v in values]
    distinct: list[Any] = []
    for form in expected:
        if form not in distinct:
            distinct.append(form)
    with tempfile.TemporaryDirectory() as tmp:
        for label, cache, hot in (("memory", cs.InMemoryCache(), True), ("file", cs.FileCache(tmp), False)):
            results, executed = asyncio.run(_calls(values, cache, hot))
            for v, want, got in zip(values, expected, results):
                assert got == want, f"{label}: the call with {v!r} was served {got!r} (another literal's entry)"
            assert executed == distinct, (
                f"{label}: executed {len(executed)} calls for {len(distinct)} distinct literals: {executed}"
            )


@ci_settings(EXAMPLES)
@given(call_sequences())
def test_distinct_inputs_never_share_a_cache_entry(values: list[Any]) -> None:
    check_exact_cache_keys(values)
