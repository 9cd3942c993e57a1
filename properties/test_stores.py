"""Stores outside the process: invariant 1 with Redis, and runs sharing a Redis state backend.

A real redis-server is started for this module (a free loopback port) and stopped after.

- ``test_hot_slow_model_with_redis_stores``: hot = slow = model (:func:`check_hot_slow_model`) with
  a :class:`cs.RedisStateBackend` on every engine and every cached call of the workflow going to a
  :class:`cs.RedisCache` (in a namespace of its own per run, as the model's cache is per run).
  Redis calls really suspend, and how long decides how concurrent calls of an iteration interleave,
  so hot and slow events are compared as multisets, and the workflows are those whose outcome
  cannot depend on that timing: no failure (the model says the run succeeds), no sub-loops (nested
  evaluations number their iterations as they start), no constraints (who waits for a slot).
- ``test_runs_sharing_a_redis_state_backend_keep_their_own_state``: two runs of a workflow at once
  on one engine with an auditing Redis state backend: whenever a run writes or clears, everything
  it recorded since its iteration began must still read back as written (values compared
  type-exactly). After the runs, no key is left in Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis
from hypothesis import assume, given

import cascade as cs
from cascade.spec.lazy import LazyResult, MappedLazyResult
from tests.adapters.redis_server import RedisServer

from . import builder
from .builder import Built, Recorder, fresh_prefix, make_engine, run_recorded
from .model import KINDS, Workflow, canon, run_model
from .profiles import ci_settings
from .strategies import workflows
from .test_equivalence import assert_matches_model, check_hot_slow_model

EXAMPLES = 20  # ci budget: every example starts three engines and talks to Redis
# cached calls drawn often (weighted by repetition), so that Redis really serves hits
STORE_KINDS = tuple(k for k in KINDS if k not in ("sub", "constrained")) + ("cached",) * 6


@pytest.fixture(scope="module", autouse=True)
def redis_url() -> Iterator[str]:
    """A redis-server for this module, stopped after."""
    server = RedisServer()
    STORES.url = server.url
    yield server.url
    server.stop()


class _Stores:
    url = ""


STORES = _Stores()


def _flushed_client() -> redis.Redis:
    client = redis.Redis.from_url(STORES.url)
    client.flushall()
    return client


class RedisRunCache:
    """The workflows' cache policy, backed by a :class:`cs.RedisCache`: keys are put in a namespace
    of the run using it (its :class:`Recorder`), so every run starts with an empty cache, as the
    model's does, unless ``shared`` names one namespace for every run. One object for every
    description (its identity is part of templates); the RedisCache behind it is made per example,
    inside the example's event loop. Counts each run's lookups and hits in its recorder."""

    cache: cs.RedisCache | None = None
    shared: str | None = None

    def _ns(self, key: str) -> str:
        ns = self.shared or builder._rec().cache.setdefault("redis-ns", uuid.uuid4().hex)
        return ns + ":" + key

    async def get(self, key: str) -> tuple[bool, Any]:
        assert self.cache is not None
        hit, value = await self.cache.get(self._ns(key))
        counts = builder._rec().cache
        counts["gets"] = counts.get("gets", 0) + 1
        counts["hits"] = counts.get("hits", 0) + hit
        return hit, value

    async def set(self, key: str, value: Any) -> None:
        assert self.cache is not None
        await self.cache.set(self._ns(key), value)


REDIS_RUN_CACHE = RedisRunCache()


@contextlib.asynccontextmanager
async def redis_stores() -> AsyncIterator[dict[str, Any]]:
    """Engine options for one example: a Redis state backend; the Redis cache behind the workflows'
    cache policy. Checks that no run left state behind."""
    state = cs.RedisStateBackend(STORES.url, ttl=60)
    REDIS_RUN_CACHE.cache = cs.RedisCache(STORES.url, prefix=f"cascade:test:{uuid.uuid4().hex}:")
    try:
        yield {"state_backend": state}
        assert state.keys() == [], f"state left in Redis after the runs: {state.keys()}"
    finally:
        await REDIS_RUN_CACHE.cache.aclose()
        REDIS_RUN_CACHE.cache = None
        state.close()


@contextlib.contextmanager
def redis_cache_for_workflows() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(builder, "RUN_CACHE", REDIS_RUN_CACHE)
        yield


async def _run_twice(built: Built) -> tuple[Any, Recorder, Any, Recorder]:
    async with redis_stores() as options:
        REDIS_RUN_CACHE.shared = uuid.uuid4().hex
        try:
            engine = make_engine(True, **options)
            first, second = Recorder(), Recorder()
            out1 = await run_recorded(engine, built.target(), first)
            out2 = await run_recorded(engine, built.target(), second)
        finally:
            REDIS_RUN_CACHE.shared = None
    return out1, first, out2, second


def check_with_redis_stores(wf: Workflow) -> None:
    """Invariant 1 with Redis stores, then: the workflow run twice sharing one Redis cache
    namespace gives the same value, every cached call of the second run is a hit, and exactly
    the hits are calls the second run did not make."""
    assume(run_model(wf, fresh_prefix()).ok)
    _flushed_client().close()
    with redis_cache_for_workflows():
        check_hot_slow_model(wf, setup=redis_stores, ordered_events=False)
        built = Built(wf)
        out1, first, out2, second = asyncio.run(_run_twice(built))
    assert out2 == out1, f"second run with a warm Redis cache gave {out2}, first {out1}"
    gets1, hits1 = first.cache.get("gets", 0), first.cache.get("hits", 0)
    gets2, hits2 = second.cache.get("gets", 0), second.cache.get("hits", 0)
    assert gets2 == gets1 and hits2 == gets2, f"lookups/hits: first run {gets1}/{hits1}, second {gets2}/{hits2}"
    saved = sum(first.calls.values()) - sum(second.calls.values())
    assert saved == hits2 - hits1, f"the second run made {saved} calls fewer, but had {hits2 - hits1} more hits"
    assert second.calls <= first.calls, f"calls only the second run made: {second.calls - first.calls}"


@ci_settings(EXAMPLES)
@given(workflows(kinds=STORE_KINDS, max_subs=0))
def test_hot_slow_model_with_redis_stores(wf: Workflow) -> None:
    check_with_redis_stores(wf)


# -- runs sharing one state backend -----------------------------------------------------------------

_OPAQUE = object()


def _stored_form(value: Any) -> Any:
    return _OPAQUE if isinstance(value, (LazyResult, MappedLazyResult)) else canon(value)


class AuditingRedisState(cs.RedisStateBackend):
    """A Redis state backend that checks, at every write and clear of a run, that what the run
    recorded since its last clear still reads back (another run's clear or write must not touch it)."""

    def __init__(self, url: str) -> None:
        super().__init__(url, ttl=60)
        self.mirror: dict[str, dict[Any, Any]] = {}

    def _audit(self, run_id: str) -> None:
        for (kind, key), want in self.mirror.get(run_id, {}).items():
            if kind == "skip":
                got = self.get_skip(run_id, key)
                assert got == want, f"run {run_id}: skip {key} reads back {got!r}, wrote {want!r}"
                continue
            try:
                got = _stored_form(self.get_result(run_id, key))
            except KeyError:
                raise AssertionError(f"run {run_id}: result {key} is gone") from None
            except cs.StoreError as exc:
                assert want is _OPAQUE, f"run {run_id}: result {key}: {exc}"
                continue
            assert got == want, f"run {run_id}: result {key} reads back {got!r}, wrote {want!r}"

    def put_result(self, run_id: str, key: Any, value: Any) -> None:
        self._audit(run_id)
        super().put_result(run_id, key, value)
        self.mirror.setdefault(run_id, {})[("result", key)] = _stored_form(value)

    def put_skip(self, run_id: str, key: Any, reason: str) -> None:
        self._audit(run_id)
        super().put_skip(run_id, key, reason)
        self.mirror.setdefault(run_id, {})[("skip", key)] = reason

    def clear(self, run_id: str) -> None:
        self._audit(run_id)
        super().clear(run_id)
        self.mirror.pop(run_id, None)


async def _two_runs(wf: Workflow, built: Built, state: AuditingRedisState) -> list[tuple[Any, Recorder]]:
    engine = make_engine(True, state_backend=state)
    recs = [Recorder(), Recorder()]

    async def one(rec: Recorder) -> tuple[Any, Recorder]:
        return await run_recorded(engine, built.target(), rec), rec

    return list(await asyncio.gather(*(one(r) for r in recs)))


def check_shared_state(wf: Workflow) -> None:
    built = Built(wf)
    m = run_model(wf, built.prefix)
    client = _flushed_client()
    state = AuditingRedisState(STORES.url)
    try:
        for out, rec in asyncio.run(_two_runs(wf, built, state)):
            assert_matches_model(m, out, rec.calls, None, "shared state backend")
        assert client.dbsize() == 0, f"keys left in Redis: {client.keys('*')}"
    finally:
        state.close()
        client.close()


INTERLEAVING = ("suspend", "sync", "spred", "pred", "select", "map", "pure", "router", "async")


@ci_settings(EXAMPLES)
@given(workflows(kinds=INTERLEAVING, max_subs=0))
def test_runs_sharing_a_redis_state_backend_keep_their_own_state(wf: Workflow) -> None:
    check_shared_state(wf)

