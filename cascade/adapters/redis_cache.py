"""A cache backend in Redis, through redis-py's asyncio client (the optional ``redis`` extra).

Entries are Redis strings ``<prefix><key>`` holding the format of
:mod:`cascade.adapters.serialization` (bound to the key), with an optional TTL. ``redis`` is imported
when a :class:`RedisCache` first talks to the server, never by ``import cascade``.

An asyncio Redis client belongs to the event loop it first ran on, so the cache keeps one client
per running loop (``asyncio.run`` in a script, a fresh loop per test) and forgets it with its loop.
``await cache.aclose()`` closes the current loop's client; a client passed in (``client=``) is
the caller's to close.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from ..errors import StoreError
from .serialization import Serializer

__all__ = ["RedisCache"]


def import_redis_asyncio() -> Any:
    """``redis.asyncio``, or a clear error naming the extra to install."""
    try:
        import redis.asyncio as aioredis
    except ImportError:
        raise StoreError("RedisCache needs redis-py: pip install 'cascade-workflows[redis]'") from None
    return aioredis


class RedisCache:
    """Cache policy storing entries in Redis at ``url`` (``redis://host:port/db``).

    ``key``: HMAC secret (bytes/str, >= 16 bytes) to authenticate entries and allow pickled values;
    without it only plain data is cached. ``prefix``: prepended to every key (share one Redis
    between applications). ``ttl``: seconds an entry lives (``None``: until evicted by Redis).
    ``timeout``: socket timeout in seconds for each command. ``client``: an existing
    ``redis.asyncio.Redis`` to use instead of one made from ``url``.

    ``get``/``set`` are coroutines. They raise ``redis`` errors when the server is unreachable or
    slow, :class:`~cascade.errors.CorruptEntryError` for an entry that fails its check and
    :class:`~cascade.adapters.serialization.Unserialisable` for a value it must not store; the
    engine turns each into a miss (``cs.CacheBypassed``), never a failed run.
    """

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", *, key: bytes | str | None = None,
                 prefix: str = "cascade:cache:", ttl: float | None = None, timeout: float = 1.0,
                 client: Any = None) -> None:
        if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl > 0):
            raise ValueError(f"RedisCache(ttl=...) must be a number of seconds > 0 or None, got {ttl!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ValueError(f"RedisCache(timeout=...) must be a number of seconds > 0, got {timeout!r}")
        self.url = url
        self.prefix = prefix
        self.ttl = ttl
        self.timeout = float(timeout)
        self.serializer = Serializer(key)
        self._given = client
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()

    def _client(self) -> Any:
        if self._given is not None:
            return self._given
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            aioredis = import_redis_asyncio()
            client = aioredis.Redis.from_url(
                self.url, socket_timeout=self.timeout, socket_connect_timeout=self.timeout)
            self._clients[loop] = client
        return client

    async def get(self, key: str) -> tuple[bool, Any]:
        """``(True, value)`` when Redis holds an entry for ``key`` that passes its check."""
        entry = await self._client().get(self.prefix + key)
        if entry is None:
            return False, None
        return True, self.serializer.loads(entry, key.encode())

    async def set(self, key: str, value: Any) -> None:
        """Store the entry (``SET`` with ``PX`` when a TTL is configured): one atomic command."""
        entry = self.serializer.dumps(value, key.encode())
        px = None if self.ttl is None else max(1, int(self.ttl * 1000))
        await self._client().set(self.prefix + key, entry, px=px)

    async def aclose(self) -> None:
        """Close the client of the running loop (made by this cache; a given client is left open)."""
        if self._given is not None:
            return
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    def __repr__(self) -> str:
        return f"RedisCache({self.url!r}, prefix={self.prefix!r})"
