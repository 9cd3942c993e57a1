"""Events and the message bus.

Every event carries the ``run_id`` of the run that emitted it. Handlers are plain functions called
synchronously, in subscription order, at the moment the event happens; a handler that raises is
logged and does not disturb the run. With no subscriber for an event type, the engine does not
even create the event object (``MessageBus.wants``).
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from typing import Any, Callable

__all__ = [
    "ConstraintChanged", "ConstraintRejected", "CacheBypassed", "Event", "MessageBus", "ResourceAcquired", "ResourceReleased", "RunFinished", "RunStarted",
    "StaticAnalysisWarning", "TaskBlocked", "TaskExecutionFinished", "TaskExecutionStarted",
    "TaskRetrying", "TaskSkipped",
]

_log = logging.getLogger("cascade.events")


@dataclass(frozen=True, slots=True)
class Event:
    """Base of all events; subscribing to ``Event`` receives every event."""

    run_id: str


@dataclass(frozen=True, slots=True)
class RunStarted(Event):
    """A run began; ``target`` is the name of its target's task."""

    target: str


@dataclass(frozen=True, slots=True)
class RunFinished(Event):
    """A run ended: ``status`` ``"Succeeded"``, ``"Failed"`` or ``"Cancelled"``; ``error`` the
    ``repr`` of the exception that failed it (``None`` otherwise). Published after teardowns."""

    status: str  # "Succeeded", "Failed" or "Cancelled"
    error: str | None = None


@dataclass(frozen=True, slots=True)
class _NodeEvent(Event):
    """Fields of every node event: ``task_name``, ``node`` (position in the iteration's plan) and
    ``iteration`` (1-based per run, nested evaluations included)."""

    task_name: str
    node: int  # position of the node in its iteration's plan
    iteration: int


@dataclass(frozen=True, slots=True)
class TaskExecutionStarted(_NodeEvent):
    """An attempt of a call starts (``attempt`` counts from 1). Not published for a cache hit."""

    attempt: int = 1


@dataclass(frozen=True, slots=True)
class TaskExecutionFinished(_NodeEvent):
    """A call settled: ``status`` ``"Succeeded"``, ``"Failed"`` (after its last attempt; ``error`` is
    the exception's ``repr``) or ``"Cached"`` (a cache hit, with no ``TaskExecutionStarted``)."""

    status: str = "Succeeded"  # "Succeeded", "Failed" or "Cached"
    error: str | None = None


@dataclass(frozen=True, slots=True)
class TaskSkipped(_NodeEvent):
    """A call did not run; ``reason`` is ``ConditionFalse``, ``UpstreamSkipped_Data``,
    ``UpstreamSkipped_Condition``, ``UpstreamSkipped_Sequence`` or ``UpstreamSkipped_Route``."""

    reason: str = ""


@dataclass(frozen=True, slots=True)
class TaskRetrying(_NodeEvent):
    """An attempt failed and another follows after ``delay`` seconds; ``error`` is the failure's
    ``repr``, ``attempt`` the number of the attempt about to start."""

    attempt: int = 0  # the attempt about to start
    delay: float = 0.0
    error: str = ""


@dataclass(frozen=True, slots=True)
class TaskBlocked(_NodeEvent):
    """A call is held before it starts: ``reason`` ``"paused"``, ``"concurrency_limit"``,
    ``"rate_limit"`` (governance constraints) or ``"constraints"`` (waiting for ``with_constraints``
    capacity)."""

    reason: str = ""


@dataclass(frozen=True, slots=True)
class CacheBypassed(_NodeEvent):
    """A ``with_cache`` call went on without its cache.

    ``reason``: ``"unkeyable"`` (an input has no exact key: the call runs and is not stored),
    ``"get-failed"`` (the backend could not answer: a miss), ``"rejected"`` (the stored entry
    failed its integrity check: a miss), ``"set-failed"`` (the value could not be stored, e.g. not
    serialisable or the store is down: the result is returned anyway). ``error`` says why.
    """

    reason: str = ""
    error: str = ""


@dataclass(frozen=True, slots=True)
class ResourceAcquired(Event):
    """The resource named ``resource`` was set up; ``scope`` is ``"run"`` or ``"task"``."""

    resource: str
    scope: str


@dataclass(frozen=True, slots=True)
class ResourceReleased(Event):
    """The resource named ``resource`` was torn down; ``scope`` is ``"run"`` or ``"task"``."""

    resource: str
    scope: str


@dataclass(frozen=True, slots=True)
class StaticAnalysisWarning(Event):
    """A warning about the workflow itself, also logged on ``cascade.engine``: ``code`` CS-W001 (a
    recursion whose template changes every iteration), CS-W002 (a constraint on a capacity the engine
    lacks) or CS-W003 (run params no task read); ``task_name`` the task concerned."""

    code: str
    task_name: str
    message: str


@dataclass(frozen=True, slots=True)
class ConstraintChanged(Event):
    """A pause or limit was set, replaced or removed (engine-wide: ``run_id`` is ``""``).

    ``value``: the new settings (``{}`` for a pause, ``{"limit": n}``, ``{"rate": r, "burst": b}``),
    ``None`` when it was removed; ``source``: ``"api"``, the topic it came from, or ``"ttl"``.
    """

    scope: str
    kind: str
    value: dict[str, Any] | None
    source: str


@dataclass(frozen=True, slots=True)
class ConstraintRejected(Event):
    """A constraint message from outside was malformed and ignored (``run_id`` is ``""``)."""

    source: str  # the topic
    reason: str


Handler = Callable[[Any], Any]


class MessageBus:
    """Publish/subscribe for events, matched by class (a handler of a base class sees subclasses)."""

    def __init__(self) -> None:
        self._handlers: dict[type, list[Handler]] = {}
        self._routes: dict[type, tuple[Handler, ...]] = {}
        self.active = False  # True once anyone subscribed: the executors' one cheap check

    def subscribe(self, event_type: type, handler: Handler) -> Callable[[], None]:
        """Call ``handler(event)`` for every event of ``event_type``; returns an unsubscribe function."""
        if not (isinstance(event_type, type) and issubclass(event_type, Event)):
            raise TypeError(f"subscribe() needs an event class such as cs.TaskSkipped, got {event_type!r}")
        if not callable(handler):
            raise TypeError(f"subscribe() needs a callable handler, got {handler!r}")
        if inspect.iscoroutinefunction(handler):
            raise TypeError("event handlers are called synchronously; pass a plain function")
        self._handlers.setdefault(event_type, []).append(handler)
        self._changed()

        def unsubscribe() -> None:
            handlers = self._handlers.get(event_type, [])
            if handler in handlers:
                handlers.remove(handler)
                self._changed()

        return unsubscribe

    def _changed(self) -> None:
        self._routes.clear()
        self.active = any(self._handlers.values())

    def wants(self, event_type: type) -> bool:
        """Whether publishing an ``event_type`` would reach anyone."""
        return bool(self._route(event_type))

    def _route(self, event_type: type) -> tuple[Handler, ...]:
        route = self._routes.get(event_type)
        if route is None:
            route = tuple(h for cls in event_type.__mro__ for h in self._handlers.get(cls, ()))
            self._routes[event_type] = route
        return route

    def publish(self, event: Event) -> None:
        """Deliver ``event`` to its subscribers now."""
        for handler in self._route(type(event)):
            try:
                handler(event)
            except Exception:
                _log.exception("event handler %r failed on %r", handler, event)
