"""Per-call policies: retry and cache."""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = ["CachePolicy", "InMemoryCache", "RetryPolicy"]


def check_amount(what: str, value: Any) -> None:
    """``value`` must be a finite real number >= 0 (not a ``bool``); ``what`` names the argument.

    Raises ``TypeError`` for a non-number, ``ValueError`` for nan, infinity or a negative number.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a finite number >= 0, got {type(value).__name__} {value!r}")
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an int too large for a float
        finite = False
    if not finite or value < 0:
        raise ValueError(f"{what} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``max_attempts`` counts every attempt, the first included; delays grow by ``backoff``."""

    max_attempts: int = 3
    delay: float = 0.0
    backoff: float = 1.0

    def __post_init__(self) -> None:
        """Raises ``TypeError`` for a non-number (``bool`` included), ``ValueError`` out of range.

        ``max_attempts``: an int >= 1; ``delay`` and ``backoff``: finite numbers >= 0 whose longest
        wait, ``delay * backoff ** (max_attempts - 2)``, is finite too.
        """
        n = self.max_attempts
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"with_retry(max_attempts=...) must be an int >= 1, got {type(n).__name__} {n!r}")
        if n < 1:
            raise ValueError(f"with_retry(max_attempts=...) must be an int >= 1, got {n!r}")
        for arg in ("delay", "backoff"):
            check_amount(f"with_retry({arg}=...)", getattr(self, arg))
        if self.delay > 0 and n > 2:
            try:
                longest = self.delay_before(n)
            except OverflowError:
                longest = math.inf
            if not math.isfinite(longest):
                raise ValueError(
                    f"with_retry(delay={self.delay!r}, backoff={self.backoff!r}, max_attempts={n}): "
                    "the wait before the last attempt is not a finite number of seconds"
                )

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before attempt number ``attempt`` (2 for the first retry)."""
        if not self.delay:
            return 0.0
        # In floats: int settings must not build a huge int (the constructor bounds the result)
        return float(self.delay) * float(self.backoff) ** (attempt - 2)


@runtime_checkable
class CachePolicy(Protocol):
    """A cache backend: where ``with_cache`` looks a call up and stores its value.

    ``key`` is a string (a SHA-256 hex digest, see :mod:`cascade.runtime.cachekey`) covering the
    task's fingerprint, its ``cache_version`` and every resolved input, type-exact. ``get`` and
    ``set`` may be plain methods or coroutine functions (the engine awaits what they return). A
    backend that cannot answer raises: the engine then treats the call as a miss (or does not
    store the value) and publishes ``cs.CacheBypassed``; it never fails the run. Implementations:
    :class:`InMemoryCache`, ``cs.FileCache``, ``cs.RedisCache`` (docs/stores.md).
    """

    def get(self, key: str) -> Any:
        """``(True, value)`` on a hit, ``(False, None)`` on a miss (or an awaitable of that)."""

    def set(self, key: str, value: Any) -> Any:
        """Store ``value`` for ``key`` (may return an awaitable)."""


class InMemoryCache:
    """A bounded LRU cache policy living in this process (``maxsize`` entries).

    Values are kept as they are (no serialisation), so a cached mutable value is shared by every
    hit; stores outside the process (``cs.FileCache``, ``cs.RedisCache``) return copies.
    """

    def __init__(self, maxsize: int = 1024) -> None:
        if maxsize < 1:
            raise ValueError("InMemoryCache(maxsize=...) must be >= 1")
        self.maxsize = maxsize
        self._data: OrderedDict[str, Any] = OrderedDict()

    def get(self, key: str) -> tuple[bool, Any]:
        """``(True, value)`` on a hit, ``(False, None)`` on a miss."""
        try:
            value = self._data[key]
        except KeyError:
            return False, None
        self._data.move_to_end(key)
        return True, value

    def set(self, key: str, value: Any) -> None:
        """Store ``value`` for ``key``, evicting the least recently used entry beyond ``maxsize``."""
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.maxsize:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)
