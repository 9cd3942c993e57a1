"""Telemetry: an engine's run and task events published as JSON on a connector.

Topic: ``cascade/telemetry/<run_id>/events`` (engine-wide events, whose ``run_id`` is ``""``, such as
``ConstraintChanged``, go to ``cascade/telemetry/engine/events``). Payload, schema version 1::

    {"schema": "cascade.telemetry/1", "type": "TaskExecutionFinished", "run_id": "run-1-3",
     "ts": 1764750000.123, "source": "cascade-4f2a...", "data": {"task_name": "fetch", "node": 0,
     "iteration": 7, "status": "Succeeded", "error": null}}

``type`` is the event class name, ``data`` its fields other than ``run_id`` (the same names as the
Python event), ``ts`` the wall-clock time it was published, ``source`` who published it. Fields are
only ever added within one schema version; a change in meaning bumps it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from time import time
from typing import Any, Callable

from ..runtime.events import Event, MessageBus

__all__ = ["SCHEMA", "TELEMETRY_ROOT", "TelemetryPublisher", "telemetry_record"]

_log = logging.getLogger("cascade.telemetry")

SCHEMA = "cascade.telemetry/1"
TELEMETRY_ROOT = "cascade/telemetry"


def telemetry_record(event: Event, source: str = "") -> dict[str, Any]:
    """The JSON-ready record of ``event`` (see the module docstring)."""
    data = {f.name: getattr(event, f.name) for f in dataclasses.fields(event) if f.name != "run_id"}
    return {"schema": SCHEMA, "type": type(event).__name__, "run_id": event.run_id, "ts": time(),
            "source": source, "data": data}


class TelemetryPublisher:
    """Publishes every event of ``bus`` (or of ``event_types``) to ``connector`` as it happens.

    The connector must offer ``publish_nowait(topic, payload)`` (both bundled connectors do): a bus
    handler is synchronous, so the message is queued by the connector (bounded) rather than sent from
    a Task of our own. Subscribing makes the bus active, so the engine creates events it otherwise
    would not: telemetry costs what the events cost.
    """

    def __init__(self, bus: MessageBus, connector: Any, *, root: str = TELEMETRY_ROOT,
                 event_types: tuple[type, ...] = (Event,), source: str = "") -> None:
        publish = getattr(connector, "publish_nowait", None)
        if not callable(publish):
            raise TypeError(f"TelemetryPublisher needs a connector with publish_nowait(), got {connector!r}")
        self._publish: Callable[[str, Any], Any] = publish
        self.bus = bus
        self.root = root
        self.event_types = event_types
        self.source = source or str(getattr(connector, "client_id", ""))
        self.published = 0
        self._unsubscribe: list[Callable[[], None]] = []

    def start(self) -> TelemetryPublisher:
        """Subscribe to the bus (idempotent); returns self."""
        if not self._unsubscribe:
            self._unsubscribe = [self.bus.subscribe(t, self._on_event) for t in self.event_types]
        return self

    def stop(self) -> None:
        """Unsubscribe from the bus."""
        while self._unsubscribe:
            self._unsubscribe.pop()()

    def _on_event(self, event: Event) -> None:
        topic = f"{self.root}/{event.run_id or 'engine'}/events"
        try:
            payload = json.dumps(telemetry_record(event, self.source), default=repr).encode()
            self._publish(topic, payload)
        except Exception:
            _log.exception("telemetry: could not publish %r", event)
            return
        self.published += 1
