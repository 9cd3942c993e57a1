"""Per-call policies: retry and cache."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Hashable, Protocol, runtime_checkable

__all__ = ["CachePolicy", "InMemoryCache", "RetryPolicy"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``max_attempts`` counts every attempt, the first included; delays grow by ``backoff``."""

    max_attempts: int = 3
    delay: float = 0.0
    backoff: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise ValueError(f"with_retry(max_attempts=...) must be an int >= 1, got {self.max_attempts!r}")
        if self.delay < 0 or self.backoff < 0:
            raise ValueError("with_retry(delay=..., backoff=...) must not be negative")

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before attempt number ``attempt`` (2 for the first retry)."""
        return self.delay * self.backoff ** (attempt - 2)


@runtime_checkable
class CachePolicy(Protocol):
    """Where ``with_cache`` looks a call up; ``key`` covers the task and every resolved input."""

    def get(self, key: Hashable) -> tuple[bool, Any]:
        """Return ``(True, value)`` on a hit, ``(False, None)`` on a miss."""

    def set(self, key: Hashable, value: Any) -> None:
        """Store ``value`` for ``key``."""


class InMemoryCache:
    """A bounded LRU cache policy living in this process (``maxsize`` entries)."""

    def __init__(self, maxsize: int = 1024) -> None:
        if maxsize < 1:
            raise ValueError("InMemoryCache(maxsize=...) must be >= 1")
        self.maxsize = maxsize
        self._data: OrderedDict[Hashable, Any] = OrderedDict()

    def get(self, key: Hashable) -> tuple[bool, Any]:
        try:
            value = self._data[key]
        except KeyError:
            return False, None
        self._data.move_to_end(key)
        return True, value

    def set(self, key: Hashable, value: Any) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.maxsize:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)
