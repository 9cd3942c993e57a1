"""Exact cache keys (runtime/cachekey.py) and the engine's cache policy for odd inputs."""

from __future__ import annotations

import enum
from typing import Any

import pytest

import cascade as cs
from cascade.runtime.cachekey import UnkeyableInput, cache_key, encode_exact


def keyed(*args: Any, **kwargs: Any) -> str:
    return cache_key("fp#0", None, args, kwargs)


LOOKALIKES = [1, True, 1.0, "1", b"1", bytearray(b"1"), 1 + 0j, (1,), [1], {1}, frozenset({1}),
              0, False, 0.0, -0.0, "", b"", (), [], {}, None, float("inf"), float("-inf"),
              10**30, float(10**30), {"a": 1}, {"a": True}, {1: "a"}, {"1": "a"}, [[1]], [(1,)]]


def test_lookalike_literals_have_distinct_keys() -> None:
    keys = [keyed(x) for x in LOOKALIKES]
    assert len(set(keys)) == len(LOOKALIKES)


def test_position_keyword_names_task_and_version_are_part_of_the_key() -> None:
    assert keyed(1, 2) != keyed(2, 1)
    assert keyed(1, x=2) != keyed(1, y=2)
    assert keyed((1, 2)) != keyed(1, 2)
    assert keyed("ab") != keyed("a", "b")
    assert cache_key("fp#0", None, (1,), {}) != cache_key("fp#1", None, (1,), {})
    assert cache_key("fp#0", None, (1,), {}) != cache_key("fp#0", 2, (1,), {})
    assert cache_key("fp#0", 2, (1,), {}) != cache_key("fp#0", "2", (1,), {})


def test_equal_inputs_share_a_key() -> None:
    assert keyed({"a": 1, "b": [2]}) == keyed({"b": [2], "a": 1})  # insertion order is not an input
    assert keyed(x=1, y=2) == keyed(y=2, x=1)
    assert keyed(float("nan")) == keyed(float("-nan"))  # every NaN is one input
    assert keyed(10**5000) == keyed(10**5000)  # beyond int-to-str's digit limit
    assert keyed(10**5000) != keyed(10**5000 + 1)


def test_encoding_is_unambiguous_for_adjacent_strings() -> None:
    assert encode_exact(["ab", "c"]) != encode_exact(["a", "bc"])
    assert encode_exact([b"1:", b""]) != encode_exact([b"", b"1:"])


class Color(enum.Enum):
    RED = 1


class Shade(enum.IntEnum):
    RED = 1


class Point:
    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def __cascade_cache_key__(self) -> Any:
        return (self.x, self.y)


class BrokenHash:
    def __hash__(self) -> int:
        raise RuntimeError("broken __hash__")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("broken __eq__")

    __repr__ = object.__repr__


class BrokenEq:
    def __eq__(self, other: object) -> bool:
        raise RuntimeError("broken __eq__")

    __hash__ = object.__hash__


def test_enums_and_objects_with_a_key_hook_are_keyed_by_documented_encodings() -> None:
    assert keyed(Color.RED) != keyed(1) and keyed(Shade.RED) != keyed(1) != keyed(Color.RED)
    assert keyed(Point(1, 2)) == keyed(Point(1, 2)) != keyed(Point(2, 1))
    assert keyed(Point(1, 2)) != keyed((1, 2))


def test_inputs_without_exact_encoding_are_unkeyable() -> None:
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    for value, where in [(object(), "args[0]"), ([1, {"k": BrokenHash()}], "args[0][1]['k']"),
                         (cyclic, "args[0]"), ({BrokenEq(): 1}, "args[0] (a key)")]:
        with pytest.raises(UnkeyableInput) as info:
            keyed(value)
        assert info.value.path.startswith(where), (info.value.path, where)


def test_deep_nesting_is_keyed_without_recursion() -> None:
    deep: Any = 1
    for _ in range(20_000):
        deep = [deep]
    assert keyed(deep) != keyed([deep])


# -- through the engine --------------------------------------------------------------------------

def echo_and_calls() -> tuple[Any, list[Any]]:
    calls: list[Any] = []

    @cs.task
    def echo(x: Any) -> Any:
        calls.append(x)
        return (type(x).__name__, repr(x))

    return echo, calls


@pytest.mark.asyncio
async def test_f1_ftrue_f1point0_are_three_cache_entries(any_engine: cs.Engine) -> None:
    echo, calls = echo_and_calls()
    cache = cs.InMemoryCache()
    assert [await any_engine.run(echo(x).with_cache(cache)) for x in (1, True, 1.0, 1)] == [
        ("int", "1"), ("bool", "True"), ("float", "1.0"), ("int", "1")]
    assert calls == [1, True, 1.0] and len(cache) == 3


@pytest.mark.asyncio
async def test_equal_reprs_never_share_an_entry(any_engine: cs.Engine, make_recorder: Any) -> None:
    class Truncated:  # two different objects with one repr, as a truncated array repr would be
        def __init__(self, data: list[int]) -> None:
            self.data = data

        def __repr__(self) -> str:
            return "Truncated([...])"

    @cs.task
    def total(x: Truncated) -> int:
        return sum(x.data)

    cache = cs.InMemoryCache()
    rec = make_recorder(any_engine.bus, cs.CacheBypassed)
    assert await any_engine.run(total(Truncated([1, 2])).with_cache(cache)) == 3
    assert await any_engine.run(total(Truncated([5, 5])).with_cache(cache)) == 10
    assert len(cache) == 0
    assert [(e.task_name, e.reason) for e in rec.events] == [("total", "unkeyable")] * 2
    assert "args[0] is a " in rec.events[0].error and "Truncated" in rec.events[0].error


@pytest.mark.asyncio
async def test_a_broken_hash_or_eq_never_leaks_from_the_cache_path(any_engine: cs.Engine, make_recorder: Any) -> None:
    @cs.task
    def keep(x: Any) -> str:
        return "ran"

    rec = make_recorder(any_engine.bus, cs.CacheBypassed)
    cache = cs.InMemoryCache()
    assert await any_engine.run(keep(BrokenHash()).with_cache(cache)) == "ran"
    assert await any_engine.run(keep([BrokenHash()]).with_cache(cache)) == "ran"
    assert [e.reason for e in rec.events] == ["unkeyable", "unkeyable"]


@pytest.mark.asyncio
async def test_cache_version_invalidates_entries(any_engine: cs.Engine) -> None:
    calls: list[int] = []

    def body(x: int) -> int:
        calls.append(x)
        return x

    v1 = cs.task(body, name="body", cache_version=1)
    cache = cs.InMemoryCache()
    await any_engine.run(v1(1).with_cache(cache))
    await any_engine.run(v1(1).with_cache(cache))
    assert calls == [1]
    v2 = cs.task(body, name="body", cache_version=2)
    await any_engine.run(v2(1).with_cache(cache))
    assert calls == [1, 1]
    with pytest.raises(TypeError, match="cache_version"):
        cs.task(body, cache_version=True)


@pytest.mark.asyncio
async def test_injected_resources_are_not_part_of_the_key(any_engine: cs.Engine) -> None:
    opened: list[object] = []

    @cs.resource(name="db")
    def db() -> Any:
        conn = object()  # a new, unkeyable object every run
        opened.append(conn)
        yield conn

    calls: list[int] = []

    @cs.task
    def lookup(x: int, conn: Any = cs.inject("db")) -> int:
        calls.append(x)
        return x * 2

    any_engine.register(db)
    cache = cs.InMemoryCache()
    assert await any_engine.run(lookup(4).with_cache(cache)) == 8
    assert await any_engine.run(lookup(4).with_cache(cache)) == 8
    assert calls == [4] and len(opened) == 2


@pytest.mark.asyncio
async def test_a_failing_cache_backend_is_a_miss_and_the_run_goes_on(any_engine: cs.Engine, make_recorder: Any) -> None:
    class Down:
        def get(self, key: str) -> Any:
            raise ConnectionError("store unreachable")

        async def set(self, key: str, value: Any) -> None:
            raise OSError("disk full")

    echo, calls = echo_and_calls()
    rec = make_recorder(any_engine.bus, cs.CacheBypassed)
    assert await any_engine.run(echo(1).with_cache(Down())) == ("int", "1")
    assert calls == [1]
    assert [(e.reason, e.error) for e in rec.events] == [
        ("get-failed", "ConnectionError: store unreachable"), ("set-failed", "OSError: disk full")]
