"""Exceptions raised by Cascade itself (a task's own exceptions propagate unchanged)."""

from __future__ import annotations

__all__ = [
    "CascadeError",
    "CorruptEntryError",
    "CycleError",
    "DependencyMissingError",
    "ParamError",
    "ResourceError",
    "RouteError",
    "StoreError",
]


class CascadeError(Exception):
    """Base class of every error Cascade raises on its own behalf."""


class DependencyMissingError(CascadeError):
    """The run's target could not produce a value because it was skipped.

    ``reason`` is the skip reason (``ConditionFalse``, ``UpstreamSkipped_Data``, ...).
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class ParamError(CascadeError, ValueError):
    """A ``cs.Param`` or ``cs.Env`` has no value and no default, or its value has the wrong type."""


class ResourceError(CascadeError, LookupError):
    """A task injects a resource the engine does not know, or a resource generator misbehaves."""

    def __str__(self) -> str:  # LookupError would quote the message like a KeyError
        return str(self.args[0]) if self.args else ""


class RouteError(CascadeError, ValueError):
    """A ``cs.Router`` selector produced a value that has no route."""


class CycleError(CascadeError, ValueError):
    """The graph has a cycle, so it has no topological order."""


class StoreError(CascadeError):
    """A store outside the process (a file or Redis cache, a Redis state backend) failed or refused.

    A state backend raising it fails the run; a cache raising it degrades to a miss
    (``cs.CacheBypassed`` event). See docs/stores.md.
    """


class CorruptEntryError(StoreError):
    """A stored entry failed its integrity check (truncated, tampered, unknown format, wrong key):
    it is rejected, never decoded further, and the lookup counts as a miss."""
