"""A state backend in Redis: per-run results and skip reasons, namespaced, with a TTL.

Layout: one Redis hash per run, ``<prefix><namespace>:<run id>``; field ``r`` + the exact encoding
of the node key (``(iteration, position)``) holds a result entry (format of
:mod:`cascade.adapters.serialization`, bound to the field), field ``s`` + the same encoding holds a
skip reason (UTF-8 text). ``namespace`` defaults to a random token per backend object, so runs of
two processes (whose run ids may coincide) never share a hash.

Every write is one ``MULTI``/``EXEC`` transaction (``HSET`` then ``EXPIRE ttl``): a write is all
there or not there, and a hash left behind by a process that died expires after ``ttl`` seconds.
``clear(run_id)`` deletes the hash; the engine calls it when each tail-call iteration starts and
when the run ends, so a run holds at most one hash with one iteration's fields, whatever the number
of iterations.

The engine calls a state backend synchronously (from the scheduler, between steps), so this
backend uses redis-py's blocking client: each write is one round trip while the event loop waits.
Every failure is raised as :class:`~cascade.errors.StoreError` naming the operation and the run;
the engine fails the run with it (docs/stores.md).

A result the format cannot hold (a lazy result a tail call returned, an object without an HMAC
key to pickle it) is recorded as *opaque*: the field exists, and ``get_result`` raises
:class:`~cascade.errors.StoreError` saying the value was not serialisable.
"""

from __future__ import annotations

import uuid
from typing import Any, Hashable

from ..errors import StoreError
from ..runtime.cachekey import UnkeyableInput, encode_exact
from .serialization import Serializer, Unserialisable

__all__ = ["RedisStateBackend"]

_OPAQUE = b"CSO1"


class RedisStateBackend:
    """State backend on Redis at ``url`` (pass as ``cs.Engine(state_backend=...)``).

    ``ttl``: seconds a run's hash outlives its last write (default one day). ``namespace``: the
    part of the Redis key shared by this backend's runs (default: a random token). ``key``: HMAC
    secret for result entries (and pickling of values that are not plain data). ``timeout``:
    socket timeout per command. ``client``: an existing ``redis.Redis`` (blocking) client.
    """

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", *, ttl: float = 86400.0,
                 namespace: str | None = None, prefix: str = "cascade:state:",
                 key: bytes | str | None = None, timeout: float = 5.0, client: Any = None) -> None:
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl > 0:
            raise ValueError(f"RedisStateBackend(ttl=...) must be a number of seconds > 0, got {ttl!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ValueError(f"RedisStateBackend(timeout=...) must be a number of seconds > 0, got {timeout!r}")
        self.url = url
        self.ttl_ms = max(1, int(ttl * 1000))
        self.namespace = namespace if namespace is not None else uuid.uuid4().hex[:16]
        self.prefix = prefix
        self.serializer = Serializer(key)
        if client is None:
            try:
                import redis
            except ImportError:
                raise StoreError("RedisStateBackend needs redis-py: pip install 'cascade-workflows[redis]'") from None
            client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self.client = client

    def run_key(self, run_id: str) -> str:
        """The Redis key of ``run_id``'s hash."""
        return f"{self.prefix}{self.namespace}:{run_id}"

    @staticmethod
    def _field(kind: bytes, key: Hashable) -> bytes:
        try:
            return kind + encode_exact(key, "state key")
        except UnkeyableInput as exc:
            raise StoreError(f"state key {key!r} has no exact encoding: {exc}") from None

    def _write(self, op: str, run_id: str, field: bytes, data: bytes) -> None:
        name = self.run_key(run_id)
        try:
            pipe = self.client.pipeline(transaction=True)
            pipe.hset(name, field, data)
            pipe.pexpire(name, self.ttl_ms)
            pipe.execute()
        except Exception as exc:
            raise StoreError(f"Redis state backend could not {op} for run {run_id!r} at {self.url}: {exc}") from exc

    def put_result(self, run_id: str, key: Hashable, value: Any) -> None:
        """Record a node's value (an opaque marker when the format cannot hold it)."""
        field = self._field(b"r", key)
        try:
            data = self.serializer.dumps(value, field)
        except Unserialisable as exc:
            data = _OPAQUE + f"{type(value).__module__}.{type(value).__qualname__}: {exc}".encode()
        self._write("record a result", run_id, field, data)

    def put_skip(self, run_id: str, key: Hashable, reason: str) -> None:
        """Record a node's skip reason."""
        self._write("record a skip", run_id, self._field(b"s", key), str(reason).encode("utf-8"))

    def _read(self, run_id: str, field: bytes) -> Any:
        try:
            return self.client.hget(self.run_key(run_id), field)
        except Exception as exc:
            raise StoreError(f"Redis state backend could not read run {run_id!r} at {self.url}: {exc}") from exc

    def get_result(self, run_id: str, key: Hashable) -> Any:
        """The recorded value; ``KeyError`` when there is none, :class:`StoreError` when it was
        opaque, :class:`~cascade.errors.CorruptEntryError` when it fails its check."""
        field = self._field(b"r", key)
        data = self._read(run_id, field)
        if data is None:
            raise KeyError(key)
        if data.startswith(_OPAQUE):
            raise StoreError(f"result {key!r} of run {run_id!r} was not serialisable "
                             f"({data[len(_OPAQUE):].decode('utf-8', 'replace')})")
        return self.serializer.loads(data, field)

    def get_skip(self, run_id: str, key: Hashable) -> str | None:
        """The recorded skip reason, or ``None``."""
        data = self._read(run_id, self._field(b"s", key))
        return None if data is None else data.decode("utf-8")

    def clear(self, run_id: str) -> None:
        """Delete everything recorded for ``run_id``."""
        try:
            self.client.delete(self.run_key(run_id))
        except Exception as exc:
            raise StoreError(f"Redis state backend could not clear run {run_id!r} at {self.url}: {exc}") from exc

    def keys(self) -> list[str]:
        """The Redis keys of this backend's namespace (runs with state recorded right now)."""
        try:
            return sorted(k.decode() for k in self.client.scan_iter(match=f"{self.prefix}{self.namespace}:*"))
        except Exception as exc:
            raise StoreError(f"Redis state backend could not list keys at {self.url}: {exc}") from exc

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()

    def __repr__(self) -> str:
        return f"RedisStateBackend({self.url!r}, namespace={self.namespace!r})"
