"""Constraints from outside: retained topics on a connector, applied to an engine's constraints.

One retained topic per scope and kind: ``cascade/constraints/<scope>/<kind>`` (``<scope>`` is
``global`` or ``task:<glob>``, ``<kind>`` is ``pause``, ``concurrency`` or ``rate``), so a rate limit
never overwrites the concurrency limit of its scope. Payload: a JSON object (schema version 1)

- ``pause``: ``{}``
- ``concurrency``: ``{"limit": N}`` (an int >= 1)
- ``rate``: ``{"rate": R, "burst": B}`` (R calls per second, a finite number > 0; B an int >= 1,
  default 1)

each optionally with ``"ttl"`` (seconds > 0, counted from when the engine receives it) or
``"expires_at"`` (``time.time()`` seconds; wins over ``ttl``, so a retained constraint re-delivered
after a reconnect keeps its original deadline) and ``"v": 1``. An empty payload (the retained
message cleared) removes the constraint.

Anything else (bad JSON, a non-object, unknown or mistyped fields, negative, NaN or infinite
numbers, an unknown kind or scope, a payload over :data:`MAX_PAYLOAD` bytes, a topic of the wrong
shape) is *rejected*: published as :class:`~cascade.ConstraintRejected` on the engine's bus and
logged, and otherwise ignored; the constraint of that topic, if any, stays as it was. A message is
handled synchronously as it is delivered: no task, nothing to stall.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from .constraints import KINDS, ConstraintManager, parse_scope
from .events import ConstraintRejected

__all__ = [
    "CONSTRAINT_ROOT", "MAX_PAYLOAD", "ConstraintListener", "constraint_payload", "constraint_topic",
    "parse_constraint_message",
]

_log = logging.getLogger("cascade.control")

CONSTRAINT_ROOT = "cascade/constraints"
MAX_PAYLOAD = 4096  # bytes
SCHEMA_VERSION = 1
_FIELDS = {
    "pause": frozenset(),
    "concurrency": frozenset({"limit"}),
    "rate": frozenset({"rate", "burst"}),
}
_COMMON = frozenset({"ttl", "expires_at", "v"})


def constraint_topic(scope: Any, kind: str, root: str = CONSTRAINT_ROOT) -> str:
    """The retained topic of one scope and kind (the scope is checked and canonicalised)."""
    if kind not in KINDS:
        raise ValueError(f"unknown constraint kind {kind!r}; expected one of {', '.join(KINDS)}")
    return f"{root}/{parse_scope(scope)}/{kind}"


def constraint_payload(kind: str, *, limit: int | None = None, rate: float | None = None,
                       burst: int | None = None, ttl: float | None = None,
                       expires_at: float | None = None) -> bytes:
    """The JSON payload for ``kind`` (validated by the same rules the engine applies)."""
    body: dict[str, Any] = {"v": SCHEMA_VERSION}
    if limit is not None:
        body["limit"] = limit
    if rate is not None:
        body["rate"] = rate
    if burst is not None:
        body["burst"] = burst
    if ttl is not None:
        body["ttl"] = ttl
    if expires_at is not None:
        body["expires_at"] = expires_at
    data = json.dumps(body, allow_nan=True).encode()
    _parse_body(kind, data)  # raises ValueError for what the engine would reject
    return data


def _number(body: dict[str, Any], key: str, *, integer: bool = False, low: float = 0.0) -> Any:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        raise ValueError(f"{key!r} must be {'an int' if integer else 'a number'}, got {value!r}")
    if not math.isfinite(value) or value < low or (not integer and value == low and key != "expires_at"):
        bound = f">= {low:g}" if integer else f"> {low:g}"
        raise ValueError(f"{key!r} must be a finite number {bound}, got {value!r}")
    return value


def _parse_body(kind: str, payload: Any) -> dict[str, Any]:
    if isinstance(payload, (bytes, bytearray, memoryview)):
        payload = bytes(payload)
        if len(payload) > MAX_PAYLOAD:
            raise ValueError(f"payload of {len(payload)} bytes is over the limit of {MAX_PAYLOAD}")
        try:
            body = json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"payload is not JSON: {exc}") from None
    elif isinstance(payload, str):
        if len(payload.encode()) > MAX_PAYLOAD:
            raise ValueError(f"payload is over the limit of {MAX_PAYLOAD} bytes")
        try:
            body = json.loads(payload)
        except json.JSONDecodeError as exc:
            raise ValueError(f"payload is not JSON: {exc}") from None
    elif isinstance(payload, dict):
        body = payload
    else:
        raise ValueError(f"payload must be JSON bytes or text, got {type(payload).__name__}")
    if not isinstance(body, dict):
        raise ValueError(f"payload must be a JSON object, got {type(body).__name__}")
    unknown = sorted(set(body) - _FIELDS[kind] - _COMMON)
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(map(repr, unknown))} for kind {kind!r}")
    if "v" in body and (isinstance(body["v"], bool) or body["v"] != SCHEMA_VERSION):
        raise ValueError(f"unsupported schema version {body['v']!r} (this engine reads {SCHEMA_VERSION})")
    out: dict[str, Any] = {
        "ttl": _number(body, "ttl"),
        "expires_at": _number(body, "expires_at", low=-math.inf),
    }
    if kind == "concurrency":
        limit = _number(body, "limit", integer=True, low=1)
        if limit is None:
            raise ValueError("a concurrency payload needs 'limit'")
        out["value"] = limit
    elif kind == "rate":
        rate = _number(body, "rate")
        if rate is None:
            raise ValueError("a rate payload needs 'rate' (calls per second)")
        out["value"] = float(rate)
        out["burst"] = _number(body, "burst", integer=True, low=1)
    return out


def parse_constraint_message(topic: Any, payload: Any, root: str = CONSTRAINT_ROOT
                             ) -> tuple[str, str, dict[str, Any] | None]:
    """``(scope, kind, settings)`` of one constraint message; ``settings`` is ``None`` for a clear
    (empty payload), else keyword arguments for :meth:`ConstraintManager.set`. Raises
    ``ValueError`` naming what is wrong."""
    prefix = root + "/"
    if not isinstance(topic, str) or not topic.startswith(prefix):
        raise ValueError(f"topic {topic!r} is not under {root}/")
    rest = topic[len(prefix):].split("/")
    if len(rest) != 2:
        raise ValueError(f"topic {topic!r} must be {root}/<scope>/<kind>")
    raw_scope, kind = rest
    if kind not in KINDS:
        raise ValueError(f"unknown constraint kind {kind!r}; expected one of {', '.join(KINDS)}")
    if raw_scope != "global" and not raw_scope.startswith("task:"):
        raise ValueError(f"unknown scope {raw_scope!r}: scopes are 'global' and 'task:<glob>'")
    scope = parse_scope(raw_scope)
    if payload is None or (isinstance(payload, (bytes, bytearray, memoryview, str)) and len(payload) == 0):
        return scope, kind, None
    return scope, kind, _parse_body(kind, payload)


class ConstraintListener:
    """Keeps an engine's constraints in step with the retained topics under ``root`` on a connector.

    ``await listener.start()`` subscribes to ``root/#``; when it returns, every retained constraint
    the connector delivers on subscribe is in force. A connector that can lose its connection and
    re-deliver retained messages after reconnecting (``supports_resync``) also reports which topics
    it found retained then; constraints from topics no longer retained are removed, so a clear sent
    while the engine was disconnected is not missed. ``rejected`` counts malformed messages.
    """

    def __init__(self, constraints: ConstraintManager, connector: Any, *, root: str = CONSTRAINT_ROOT) -> None:
        self.constraints = constraints
        self.connector = connector
        self.root = root
        self.rejected = 0
        self.applied = 0
        self._from_topics: dict[str, tuple[str, str]] = {}  # topic -> (scope, kind) it put in force
        self._sub: Any = None

    async def start(self) -> None:
        """Subscribe and apply the retained constraints (idempotent)."""
        if self._sub is not None:
            return
        flt = f"{self.root}/#"
        if getattr(self.connector, "supports_resync", False):
            self._sub = await self.connector.subscribe(flt, self.on_message, on_resync=self.on_resync)
        else:
            self._sub = await self.connector.subscribe(flt, self.on_message)

    async def stop(self) -> None:
        """Unsubscribe; the constraints in force stay as they are."""
        sub, self._sub = self._sub, None
        if sub is not None:
            await sub.unsubscribe()

    def on_message(self, message: Any) -> None:
        """Apply one message (a :class:`~cascade.adapters.connector.Message`); never raises."""
        topic = getattr(message, "topic", None)
        try:
            scope, kind, settings = parse_constraint_message(topic, getattr(message, "payload", None), self.root)
            if settings is None:
                self.constraints.clear(scope, kind)
                self._from_topics.pop(topic, None)  # type: ignore[arg-type]
            else:
                self.constraints.set(scope, kind, settings.get("value"), burst=settings.get("burst"),
                                     ttl=settings["ttl"], expires_at=settings["expires_at"], source=str(topic))
                self._from_topics[str(topic)] = (scope, kind)
            self.applied += 1
        except Exception as exc:  # a malformed message must never reach the connector's reader
            self.rejected += 1
            reason = str(exc) or type(exc).__name__
            _log.warning("ignored constraint message on %r: %s", topic, reason)
            bus = self.constraints.bus
            if bus is not None and bus.active:
                bus.publish(ConstraintRejected("", str(topic), reason))

    def on_resync(self, retained_topics: set[str]) -> None:
        """After a reconnect: drop constraints whose topic is no longer retained."""
        for topic, (scope, kind) in list(self._from_topics.items()):
            if topic not in retained_topics:
                del self._from_topics[topic]
                self.constraints.clear(scope, kind)
