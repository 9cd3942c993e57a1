"""Shared fixtures: a fresh engine, an event recorder, and helpers to compare engines."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

import cascade as cs


class Recorder:
    """Records every event published on a bus (subscribed to ``cs.Event``)."""

    def __init__(self, bus: cs.MessageBus, event_type: type = cs.Event) -> None:
        self.events: list[Any] = []
        self.unsubscribe = bus.subscribe(event_type, self.events.append)

    def of(self, event_type: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, event_type)]

    def skips(self) -> list[tuple[str, str]]:
        """(task_name, reason) of every TaskSkipped, in emission order."""
        return [(e.task_name, e.reason) for e in self.of(cs.TaskSkipped)]

    def skip_reasons(self) -> dict[str, str]:
        return {e.task_name: e.reason for e in self.of(cs.TaskSkipped)}

    def started(self) -> list[str]:
        return [e.task_name for e in self.of(cs.TaskExecutionStarted)]

    def run_ids(self) -> set[str]:
        return {e.run_id for e in self.events}

    def comparable(self) -> list[tuple[Any, ...]]:
        """Events as (type name, every field but run_id), to compare two engines' event streams."""
        return [event_key(e) for e in self.events]


def event_key(event: Any) -> tuple[Any, ...]:
    fields = tuple(
        (f.name, getattr(event, f.name)) for f in dataclasses.fields(event) if f.name != "run_id"
    )
    return (type(event).__name__,) + fields


@pytest.fixture
def engine() -> cs.Engine:
    """A fresh engine with default options (hot plans on)."""
    return cs.Engine()


@pytest.fixture
def recorder(engine: cs.Engine) -> Recorder:
    """Records every event of the ``engine`` fixture."""
    return Recorder(engine.bus)


@pytest.fixture(params=[True, False], ids=["hot", "slow"])
def any_engine(request: pytest.FixtureRequest) -> cs.Engine:
    """The same test against Engine(hot_plans=True) and Engine(hot_plans=False)."""
    return cs.Engine(hot_plans=request.param)


@pytest.fixture
def make_recorder():
    """Factory: ``make_recorder(bus, event_type=cs.Event)``."""
    return Recorder
