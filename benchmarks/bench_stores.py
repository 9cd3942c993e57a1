"""pytest-benchmark: cache hit and miss latency of each cache backend, and a run through each.

Not part of the test run; ``nox -s pybench -- -k stores`` or
``python -m pytest benchmarks/bench_stores.py -o python_files=bench_*.py -o python_functions=bench_* --benchmark-only``.
A redis-server is started on a free loopback port for the module (tests/adapters/redis_server.py).

- ``bench_backend_op``: 100 ``get`` of a stored key (hit), of keys never stored (miss), or 100
  ``set`` of new keys, awaited in one coroutine (the in-memory and file caches are plain methods);
  divide by 100 for one operation.
- ``bench_engine_run``: ``engine.run(f(x).with_cache(cache))`` on a hit, on a miss (a new ``x`` every
  time: key, lookup, call, store), and the same run without a cache (the baseline, in this run).
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import cascade as cs
from cascade.runtime.cachekey import cache_key
from tests.adapters.redis_server import RedisServer

BACKENDS = ["memory", "file", "redis"]


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    server = RedisServer()
    yield server.url
    server.stop()


@pytest.fixture
def cache(request: pytest.FixtureRequest, tmp_path: Path, loop: asyncio.AbstractEventLoop) -> Iterator[Any]:
    kind = request.param
    if kind == "none":
        yield None
    elif kind == "memory":
        yield cs.InMemoryCache(maxsize=1_000_000)
    elif kind == "file":
        yield cs.FileCache(tmp_path / "cache")
    else:
        c = cs.RedisCache(request.getfixturevalue("redis_url"), prefix=f"bench:{request.node.name}:")
        yield c
        loop.run_until_complete(c.aclose())


async def _call(out: Any) -> Any:
    return await out if inspect.isawaitable(out) else out


VALUE = {"rows": [1, 2, 3], "label": "result", "score": 0.5}


BATCH = 100  # operations per timed round (one event-loop entry): divide the times by this


@pytest.mark.parametrize("cache", BACKENDS, indirect=True)
@pytest.mark.parametrize("op", ["hit", "miss", "set"])
def bench_backend_op(benchmark: Any, loop: asyncio.AbstractEventLoop, cache: Any, op: str) -> None:
    stored = cache_key("bench#0", None, (1,), {})
    loop.run_until_complete(_call(cache.set(stored, VALUE)))
    fresh = iter([cache_key("bench#0", None, (i,), {}) for i in range(10**6, 10**6 + BATCH * 60)])

    async def batch() -> Any:
        out = None
        for _ in range(BATCH):
            if op == "hit":
                out = await _call(cache.get(stored))
            elif op == "miss":
                out = await _call(cache.get(next(fresh)))
            else:
                out = await _call(cache.set(next(fresh), VALUE))
        return out

    benchmark.extra_info["ops_per_round"] = BATCH
    out = benchmark.pedantic(lambda: loop.run_until_complete(batch()), rounds=50, warmup_rounds=2)
    if op == "hit":
        assert out == (True, VALUE)
    elif op == "miss":
        assert out == (False, None)


@pytest.mark.parametrize("cache", BACKENDS + ["none"], indirect=True)
@pytest.mark.parametrize("op", ["hit", "miss"])
def bench_engine_run(benchmark: Any, loop: asyncio.AbstractEventLoop, cache: Any, op: str) -> None:
    @cs.task
    def compute(x: int) -> dict[str, Any]:
        return {"rows": [x, x + 1], "label": "result"}

    engine = cs.Engine()
    counter = itertools.count()
    if cache is None:
        def once() -> Any:
            return loop.run_until_complete(engine.run(compute(1 if op == "hit" else next(counter))))
    elif op == "hit":
        loop.run_until_complete(engine.run(compute(1).with_cache(cache)))

        def once() -> Any:
            return loop.run_until_complete(engine.run(compute(1).with_cache(cache)))
    else:
        def once() -> Any:
            return loop.run_until_complete(engine.run(compute(next(counter) + 10).with_cache(cache)))
    out = benchmark.pedantic(once, rounds=2000, warmup_rounds=50)
    assert out["label"] == "result"
