"""The three cache backends behind ``with_cache``: exact keys, hits across processes, tampered
entries rejected, a store that goes away degrading to misses."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

import cascade as cs

from .redis_server import RedisServer

SECRET = b"0123456789abcdef-test-secret"


@pytest_asyncio.fixture(params=["memory", "file", "redis"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """Each backend, fresh; a Redis one closes its client after the test."""
    if request.param == "memory":
        yield cs.InMemoryCache()
    elif request.param == "file":
        yield cs.FileCache(tmp_path / "cache")
    else:
        url = request.getfixturevalue("redis_url")
        cache = cs.RedisCache(url)
        yield cache
        await cache.aclose()


def echo_task() -> tuple[Any, list[Any]]:
    seen: list[Any] = []

    @cs.task
    def echo(x: Any, *, tag: Any = None) -> Any:
        seen.append((x, tag))
        return [type(x).__name__, x, tag]

    return echo, seen


# Pairs that compare equal (or hash alike) but are different inputs; each must get its own entry.
LOOKALIKES = [1, True, 1.0, "1", b"1", 0, False, 0.0, -0.0, (1,), [1], (), [], None, "", b""]


@pytest.mark.asyncio
@pytest.mark.parametrize("hot", [True, False], ids=["hot", "slow"])
async def test_lookalike_inputs_get_their_own_entries_in_every_backend(backend: Any, hot: bool) -> None:
    echo, seen = echo_task()
    engine = cs.Engine(hot_plans=hot)
    first = [await engine.run(echo(x).with_cache(backend)) for x in LOOKALIKES]
    assert len(seen) == len(LOOKALIKES)  # no input was served another's entry
    for x, out in zip(LOOKALIKES, first):
        assert out[0] == type(x).__name__ and out[1] == x
        assert math.copysign(1, out[1]) == math.copysign(1, x) if type(x) is float else True
    again = [await engine.run(echo(x).with_cache(backend)) for x in LOOKALIKES]
    assert len(seen) == len(LOOKALIKES)  # every second call was a hit
    assert again == first


@pytest.mark.asyncio
async def test_nested_literals_and_keywords_are_part_of_the_key(backend: Any) -> None:
    echo, seen = echo_task()
    engine = cs.Engine()
    tags = [{"a": [1]}, {"a": [True]}, {"a": (1,)}, {"a": [1.0]}, {1: "a"}, {"1": "a"}]
    for t in tags:
        await engine.run(echo(0, tag=t).with_cache(backend))
    assert len(seen) == len(tags)
    out = await engine.run(echo(0, tag={"a": (1,)}).with_cache(backend))
    assert out == ["int", 0, {"a": (1,)}] and len(seen) == len(tags)


@pytest.mark.asyncio
async def test_nan_hits_its_own_entry(backend: Any) -> None:
    echo, seen = echo_task()
    engine = cs.Engine()
    a = await engine.run(echo(float("nan")).with_cache(backend))
    b = await engine.run(echo(float("nan")).with_cache(backend))
    assert len(seen) == 1 and math.isnan(a[1]) and math.isnan(b[1])


# -- across processes ------------------------------------------------------------------------------

SCRIPT = """
import asyncio, sys
import cascade as cs

@cs.task
def slow_square(x):
    print("EXECUTED", flush=True)
    return {"square": x * x, "input": (x, float(x))}

async def main():
    kind, where = sys.argv[1], sys.argv[2]
    cache = cs.FileCache(where) if kind == "file" else cs.RedisCache(where)
    bypassed = []
    engine = cs.Engine()
    engine.bus.subscribe(cs.CacheBypassed, bypassed.append)
    value = await engine.run(slow_square(7).with_cache(cache))
    if kind == "redis":
        await cache.aclose()
    print("VALUE", repr(value), "BYPASSED", len(bypassed), flush=True)

asyncio.run(main())
"""


def _run_script(script: Path, kind: str, where: str) -> str:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(cs.__file__).parent.parent), env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, str(script), kind, where], capture_output=True, text=True,
                         timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.parametrize("kind", ["file", "redis"])
def test_a_value_cached_by_one_process_is_a_hit_in_another(kind: str, tmp_path: Path,
                                                           request: pytest.FixtureRequest) -> None:
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent(SCRIPT))
    where = str(tmp_path / "cache") if kind == "file" else request.getfixturevalue("redis_url")
    first = _run_script(script, kind, where)
    second = _run_script(script, kind, where)
    expected = "VALUE {'square': 49, 'input': (7, 7.0)} BYPASSED 0"
    assert first.split("\n")[:2] == ["EXECUTED", expected]
    assert second.split("\n")[:1] == [expected]  # the second process did not execute the task


# -- tampered entries ------------------------------------------------------------------------------

def _entries(cache: Any) -> list[Path]:
    return sorted(p for p in cache.directory.glob("??/*"))


@pytest.mark.asyncio
@pytest.mark.parametrize("damage", ["flip", "truncate", "pickle"])
async def test_a_tampered_file_entry_is_rejected_as_a_miss_and_replaced(tmp_path: Path, damage: str) -> None:
    calls: list[int] = []

    @cs.task
    def double(x: int) -> int:
        calls.append(x)
        return 2 * x

    cache = cs.FileCache(tmp_path / "c")
    engine = cs.Engine()
    events: list[Any] = []
    engine.bus.subscribe(cs.CacheBypassed, events.append)
    assert await engine.run(double(21).with_cache(cache)) == 42
    (path,) = _entries(cache)
    raw = path.read_bytes()
    if damage == "flip":  # a valid-looking value changed: 42 -> 43
        assert raw.endswith(b"42")
        path.write_bytes(raw[:-2] + b"43")
    elif damage == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    else:  # an attacker's pickle in place of the entry: must never be loaded
        import pickle

        path.write_bytes(raw[:4] + b"PS" + raw[6:38] + pickle.dumps(SystemExit("pwned")))
    assert await engine.run(double(21).with_cache(cache)) == 42
    assert calls == [21, 21]  # the damaged entry was a miss: the task ran again
    assert [e.reason for e in events] == ["rejected"]
    assert "integrity" in events[0].error or "truncated" in events[0].error
    assert await engine.run(double(21).with_cache(cache)) == 42
    assert calls == [21, 21]  # the new value replaced the damaged entry


@pytest.mark.asyncio
async def test_a_tampered_redis_entry_is_rejected(redis_url: str) -> None:
    import redis.asyncio as aioredis

    calls: list[int] = []

    @cs.task
    def double(x: int) -> int:
        calls.append(x)
        return 2 * x

    cache = cs.RedisCache(redis_url, key=SECRET)
    engine = cs.Engine()
    events: list[Any] = []
    engine.bus.subscribe(cs.CacheBypassed, events.append)
    assert await engine.run(double(5).with_cache(cache)) == 10
    client = aioredis.Redis.from_url(redis_url)
    (name,) = await client.keys("cascade:cache:*")
    entry = await client.get(name)
    await client.set(name, entry[:-2] + b"11")  # value 10 -> 11, HMAC not updated
    assert await engine.run(double(5).with_cache(cache)) == 10
    assert calls == [5, 5] and [e.reason for e in events] == ["rejected"]
    await client.aclose()
    await cache.aclose()


@pytest.mark.asyncio
async def test_values_that_are_not_plain_data_are_pickled_only_with_a_key(tmp_path: Path) -> None:
    calls: list[int] = []

    @cs.task
    def make(x: int) -> Any:
        calls.append(x)
        return Path(f"/p/{x}")

    engine = cs.Engine()
    events: list[Any] = []
    engine.bus.subscribe(cs.CacheBypassed, events.append)
    plain = cs.FileCache(tmp_path / "plain")
    assert await engine.run(make(1).with_cache(plain)) == Path("/p/1")
    assert len(plain) == 0 and [e.reason for e in events] == ["set-failed"]
    signed = cs.FileCache(tmp_path / "signed", key=SECRET)
    assert await engine.run(make(1).with_cache(signed)) == Path("/p/1")
    assert await engine.run(make(1).with_cache(signed)) == Path("/p/1")
    assert calls == [1, 1] and len(signed) == 1
    # a reader with another key rejects the entry instead of unpickling it
    other = cs.FileCache(tmp_path / "signed", key=b"another-secret-of-16+")
    assert await engine.run(make(1).with_cache(other)) == Path("/p/1")
    assert calls == [1, 1, 1] and events[-1].reason == "rejected"


# -- the store goes away ------------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_redis_cache_killed_mid_run_degrades_to_misses() -> None:
    server = RedisServer()
    try:
        cache = cs.RedisCache(server.url, timeout=0.5)
        calls: list[int] = []

        @cs.task
        async def step(i: int) -> int:
            calls.append(i)
            return i * 10

        @cs.task
        async def loop(i: int, acc: int) -> Any:
            if i == 3:
                server.stop()  # Redis dies between two cached calls of one run
            if i == 6:
                return acc
            return loop(i + 1, step(i).with_cache(cache))

        engine = cs.Engine()
        events: list[Any] = []
        engine.bus.subscribe(cs.CacheBypassed, events.append)
        assert await engine.run(loop(0, 0)) == 50
        assert calls == [0, 1, 2, 3, 4, 5]
        # each cached call after the kill: the lookup fails (a miss), then the store fails
        assert [e.reason for e in events] == ["get-failed", "set-failed"] * 3
        assert [e.task_name for e in events] == ["step"] * 6
        await cache.aclose()
    finally:
        server.stop()


@pytest.mark.asyncio
async def test_a_file_cache_on_an_unwritable_directory_degrades(tmp_path: Path) -> None:
    @cs.task
    def inc(x: int) -> int:
        return x + 1

    cache = cs.FileCache(tmp_path / "c")
    blocker = tmp_path / "c" / "aa"
    engine = cs.Engine()
    events: list[Any] = []
    engine.bus.subscribe(cs.CacheBypassed, events.append)
    # every shard directory is a regular file: no entry can be written
    for a in "0123456789abcdef":
        for b in "0123456789abcdef":
            (tmp_path / "c" / (a + b)).write_bytes(b"")
    assert blocker.is_file()
    assert await engine.run(inc(1).with_cache(cache)) == 2
    assert [e.reason for e in events] == ["get-failed", "set-failed"]
