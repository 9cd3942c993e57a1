"""The contract of ``with_cache`` around one call (runtime/caching.py) in detail: what a rejected
entry, a failing backend and an unkeyable input each lead to (the result, the ``cs.CacheBypassed``
event, the log line a user reads), and that ``cache_version`` is part of the key of a task whose
fingerprint stays the same.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

import cascade as cs


class Tampered(cs.InMemoryCache):
    """An in-memory cache whose entries for the keys in ``corrupt`` fail their integrity check."""

    def __init__(self) -> None:
        super().__init__()
        self.stored: set[str] = set()
        self.corrupt: set[str] = set()

    def get(self, key: str) -> tuple[bool, Any]:
        """Raise ``CorruptEntryError`` for a corrupt key, else answer like ``InMemoryCache``."""
        if key in self.corrupt:
            raise cs.CorruptEntryError("checksum mismatch")
        return super().get(key)

    def set(self, key: str, value: Any) -> None:
        """Store ``value``; a new value replaces a corrupt entry."""
        self.stored.add(key)
        self.corrupt.discard(key)
        super().set(key, value)


class Down:
    """A backend that cannot answer a lookup nor store a value."""

    def get(self, key: str) -> Any:
        """Fail like an unreachable store."""
        raise ConnectionError("store unreachable")

    async def set(self, key: str, value: Any) -> None:
        """Fail like a full disk."""
        raise OSError("disk full")


def cache_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    """``(level, message)`` of every record the ``cascade.cache`` logger emitted."""
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "cascade.cache"]


@pytest.mark.asyncio
async def test_a_rejected_entry_is_a_miss_whose_new_value_replaces_it(
        any_engine: cs.Engine, make_recorder: Any, caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []

    @cs.task(name="cc_double")
    def double(x: int) -> int:
        calls.append(x)
        return 2 * x

    cache = Tampered()
    assert await any_engine.run(double(21).with_cache(cache)) == 42
    cache.corrupt.update(cache.stored)  # every stored entry now fails its check
    rec = make_recorder(any_engine.bus, cs.CacheBypassed)
    with caplog.at_level(logging.WARNING, logger="cascade.cache"):
        assert await any_engine.run(double(21).with_cache(cache)) == 42
    assert calls == [21, 21]
    assert [(e.task_name, e.reason, e.error) for e in rec.events] == [
        ("cc_double", "rejected", "CorruptEntryError: checksum mismatch")]
    assert cache_lines(caplog) == [
        (logging.WARNING, "cache entry for cc_double rejected (treated as a miss): checksum mismatch")]
    assert await any_engine.run(double(21).with_cache(cache)) == 42  # the replacement is a hit
    assert calls == [21, 21] and len(rec.events) == 1


@pytest.mark.asyncio
async def test_a_failing_lookup_and_store_are_warnings_naming_the_call_and_the_error(
        any_engine: cs.Engine, caplog: pytest.LogCaptureFixture) -> None:
    @cs.task(name="cc_echo")
    def echo(x: int) -> int:
        return x

    with caplog.at_level(logging.WARNING, logger="cascade.cache"):
        assert await any_engine.run(echo(7).with_cache(Down())) == 7
    assert cache_lines(caplog) == [
        (logging.WARNING, "cache lookup for cc_echo failed (treated as a miss): ConnectionError('store unreachable')"),
        (logging.WARNING, "cache store for cc_echo failed (value not cached): OSError('disk full')"),
    ]


@pytest.mark.asyncio
async def test_an_unkeyable_input_is_logged_at_debug_level_with_the_reason_of_its_event(
        any_engine: cs.Engine, make_recorder: Any, caplog: pytest.LogCaptureFixture) -> None:
    @cs.task(name="cc_keep")
    def keep(x: Any) -> str:
        return "ran"

    rec = make_recorder(any_engine.bus, cs.CacheBypassed)
    with caplog.at_level(logging.DEBUG, logger="cascade.cache"):
        assert await any_engine.run(keep(object()).with_cache(cs.InMemoryCache())) == "ran"
    (event,) = rec.events
    assert event.reason == "unkeyable" and event.error.startswith("cc_keep: ")
    assert cache_lines(caplog) == [(logging.DEBUG, f"call of cc_keep not cached: {event.error}")]


@pytest.mark.asyncio
async def test_cache_version_is_part_of_the_key_of_a_task_with_the_same_fingerprint(any_engine: cs.Engine) -> None:
    # A task rebuilt with the fingerprint of another (as in a later process, or on a remote worker)
    # shares its entries only while its cache_version is the same.
    calls: list[int] = []

    def body(x: int) -> int:
        calls.append(x)
        return x + 1

    v1 = cs.Task(body, name="cc_body", cache_version=1)
    same = cs.Task(body, name="cc_body", fingerprint=v1.fingerprint, cache_version=1)
    v2 = cs.Task(body, name="cc_body", fingerprint=v1.fingerprint, cache_version=2)
    unversioned = cs.Task(body, name="cc_body", fingerprint=v1.fingerprint)
    cache = cs.InMemoryCache()
    assert await any_engine.run(v1(1).with_cache(cache)) == 2
    assert await any_engine.run(same(1).with_cache(cache)) == 2
    assert calls == [1]
    assert await any_engine.run(v2(1).with_cache(cache)) == 2
    assert calls == [1, 1]
    assert await any_engine.run(unversioned(1).with_cache(cache)) == 2
    assert calls == [1, 1, 1]
    assert await any_engine.run(v2(1).with_cache(cache)) == 2
    assert calls == [1, 1, 1]
