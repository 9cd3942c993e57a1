"""``with_cache`` on one call: key it, look it up, store its value, and never let the cache fail the run.

Policy (docs/stores.md): an input without an exact key runs the call uncached; a backend that
raises on ``get`` is a miss; an entry that fails its integrity check is a miss (and the call's
new value replaces it); a failing ``set`` leaves the value uncached. Each of these publishes
``cs.CacheBypassed`` and logs a warning (``unkeyable`` only at debug level: it is a property of the
inputs, not an incident). Cancellation is never caught.
"""

from __future__ import annotations

import inspect
import logging
from typing import TYPE_CHECKING, Any

from ..errors import CorruptEntryError
from .cachekey import UnkeyableInput, cache_key

if TYPE_CHECKING:
    from .program import Step

__all__ = ["cache_get", "cache_set", "step_cache_key"]

_log = logging.getLogger("cascade.cache")


def step_cache_key(st: Step, args: Any, kwargs: dict[str, Any]) -> tuple[str | None, str]:
    """``(key, "")``, or ``(None, why)`` when an input has no exact key. Parameters filled by
    ``cs.inject`` defaults are resources, not inputs: they are left out of the key."""
    skip = frozenset(param for param, _ in st.injected) if st.injected else frozenset()
    try:
        return cache_key(st.task.fingerprint, getattr(st.task, "cache_version", None), args, kwargs, skip), ""
    except UnkeyableInput as exc:
        why = f"{st.name}: {exc}"
        _log.debug("call of %s not cached: %s", st.name, why)
        return None, why


async def cache_get(cache: Any, key: str, name: str) -> tuple[bool, Any, str, str]:
    """``(hit, value, bypass reason, error)``; the reason is ``""`` when the cache answered."""
    try:
        out = cache.get(key)
        if inspect.isawaitable(out):
            out = await out
        hit, value = out
    except CorruptEntryError as exc:
        _log.warning("cache entry for %s rejected (treated as a miss): %s", name, exc)
        return False, None, "rejected", f"{type(exc).__name__}: {exc}"
    except Exception as exc:
        _log.warning("cache lookup for %s failed (treated as a miss): %r", name, exc)
        return False, None, "get-failed", f"{type(exc).__name__}: {exc}"
    return bool(hit), value if hit else None, "", ""


async def cache_set(cache: Any, key: str, value: Any, name: str) -> str:
    """Store ``value``; ``""`` on success, else the error (the value is returned uncached)."""
    try:
        out = cache.set(key, value)
        if inspect.isawaitable(out):
            await out
    except Exception as exc:
        _log.warning("cache store for %s failed (value not cached): %r", name, exc)
        return f"{type(exc).__name__}: {exc}"
    return ""
