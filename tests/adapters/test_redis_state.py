"""The Redis state backend: per-run namespaces, TTL, cleanup per iteration and per run, flat key
count over long loops, and a run that fails cleanly when Redis goes away."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis

import cascade as cs

from .redis_server import RedisServer


def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def test_protocol_round_trip_is_namespaced_by_run(redis_url: str) -> None:
    backend = cs.RedisStateBackend(redis_url, ttl=60)
    assert isinstance(backend, cs.StateBackend)
    backend.put_result("r1", (1, 0), {"v": (1, 2.0)})
    backend.put_result("r2", (1, 0), [True])
    backend.put_skip("r1", (1, 1), "ConditionFalse")
    assert backend.get_result("r1", (1, 0)) == {"v": (1, 2.0)}
    assert backend.get_result("r2", (1, 0)) == [True]
    assert backend.get_skip("r1", (1, 1)) == "ConditionFalse"
    assert backend.get_skip("r2", (1, 1)) is None
    with pytest.raises(KeyError):
        backend.get_result("r1", (1, 5))
    assert backend.keys() == [backend.run_key("r1"), backend.run_key("r2")]
    ttl = _client(redis_url).pttl(backend.run_key("r1"))
    assert 0 < ttl <= 60_000
    backend.clear("r1")
    assert backend.keys() == [backend.run_key("r2")]
    assert backend.get_result("r2", (1, 0)) == [True]
    # two backends (two processes) never share a run's hash, even for one run id
    other = cs.RedisStateBackend(redis_url)
    assert other.run_key("r2") != backend.run_key("r2")
    backend.close()
    other.close()


def test_a_tampered_result_is_rejected(redis_url: str) -> None:
    backend = cs.RedisStateBackend(redis_url, key=b"0123456789abcdef!")
    backend.put_result("r", (1, 0), 41)
    client = _client(redis_url)
    (field,) = client.hkeys(backend.run_key("r"))
    client.hset(backend.run_key("r"), field, client.hget(backend.run_key("r"), field)[:-2] + b"42")
    with pytest.raises(cs.CorruptEntryError, match="integrity"):
        backend.get_result("r", (1, 0))
    client.close()
    backend.close()


def test_a_tail_call_value_is_recorded_as_opaque(redis_url: str) -> None:
    @cs.task
    def f(x: int) -> int:
        return x

    backend = cs.RedisStateBackend(redis_url)
    backend.put_result("r", (1, 0), f(1))
    with pytest.raises(cs.StoreError, match="not serialisable"):
        backend.get_result("r", (1, 0))
    backend.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("hot", [True, False], ids=["hot", "slow"])
async def test_engine_records_each_iteration_and_cleans_up(redis_url: str, hot: bool) -> None:
    backend = cs.RedisStateBackend(redis_url)
    seen: list[tuple[int, dict[bytes, bytes]]] = []

    @cs.task
    def inc(x: int) -> int:
        return x + 1

    @cs.task
    def skipped(x: int) -> int:
        return x

    @cs.task
    def loop(n: int, value: int) -> Any:
        seen.append((n, _client(redis_url).hgetall(backend.run_key(run_ids[-1]))))
        if n == 0:
            return value
        return loop(n - 1, inc(value)).after(skipped(0).run_if(inc(0).run_if(inc(-1))))

    run_ids: list[str] = []
    engine = cs.Engine(state_backend=backend, hot_plans=hot)
    engine.bus.subscribe(cs.RunStarted, lambda e: run_ids.append(e.run_id))
    assert await engine.run(loop(3, 0)) == 3
    # while an iteration runs, the hash holds only that iteration's settled inputs
    for n, fields in seen[1:]:
        kinds = sorted(f[:1] for f in fields)
        assert kinds == [b"r", b"r", b"s", b"s"], (n, fields)  # inc(value), inc(-1); inc(0), skipped
    assert backend.keys() == []  # cleared at the end of the run
    backend.close()


@pytest.mark.asyncio
async def test_ten_thousand_iterations_keep_a_flat_key_count(redis_url: str) -> None:
    backend = cs.RedisStateBackend(redis_url)
    probe = _client(redis_url)
    samples: list[tuple[int, int]] = []

    @cs.task
    def add(x: int) -> int:
        return x + 1

    @cs.task
    def countdown(n: int, acc: int) -> Any:
        if n % 1000 == 0:
            samples.append((probe.dbsize(), probe.hlen(backend.run_key(ids[0]))))
        if n == 0:
            return acc
        return countdown(n - 1, add(acc))

    ids: list[str] = []
    engine = cs.Engine(state_backend=backend)
    engine.bus.subscribe(cs.RunStarted, lambda e: ids.append(e.run_id))
    assert await engine.run(countdown(10_000, 0)) == 10_000
    assert len(samples) == 11
    assert samples[1:] == [(1, 1)] * 10  # one hash, holding one settled input, at every 1000th iteration
    assert probe.dbsize() == 0
    probe.close()
    backend.close()


@pytest.mark.asyncio
async def test_redis_killed_mid_run_fails_the_run_cleanly() -> None:
    server = RedisServer()
    try:
        backend = cs.RedisStateBackend(server.url, timeout=0.5)
        torn_down: list[str] = []

        @cs.resource(name="conn")
        def conn() -> Any:
            yield "c"
            torn_down.append("conn")

        @cs.task
        async def work(i: int, c: str = cs.inject("conn")) -> int:
            await asyncio.sleep(0)
            return i

        @cs.task
        def loop(i: int, prev: int) -> Any:
            if i == 3:
                server.stop()
            return loop(i + 1, work(i))

        engine = cs.Engine(state_backend=backend, resources=[conn])
        finished: list[Any] = []
        engine.bus.subscribe(cs.RunFinished, finished.append)
        with pytest.raises(cs.StoreError, match="Redis state backend could not") as info:
            await engine.run(loop(0, 0))
        assert "run-" in str(info.value)
        assert torn_down == ["conn"]  # resources torn down
        assert [f.status for f in finished] == ["Failed"]
        # the failed clear at the end is attached to the error, not raised instead of it
        assert any("could not clear" in n for n in getattr(info.value, "__notes__", []))
        assert not [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        backend.close()
    finally:
        server.stop()


def test_state_backend_errors_name_the_operation(redis_url: str) -> None:
    backend = cs.RedisStateBackend("redis://127.0.0.1:1/0", timeout=0.2)
    with pytest.raises(cs.StoreError, match="could not record a result for run 'r'"):
        backend.put_result("r", (1, 0), 1)
    backend.close()
