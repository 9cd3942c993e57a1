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


async def _outcome(awaitable: Any) -> tuple[Any, ...]:
    try:
        return ("ok", await awaitable)
    except Exception as exc:  # compared, then re-raised by Runner.run
        return ("error", exc)


class Gauge:
    """Counts calls running at once (``max``) and in all (``calls``): tasks call enter/leave."""

    def __init__(self) -> None:
        self.current = 0
        self.max = 0
        self.calls = 0

    def enter(self) -> None:
        self.calls += 1
        self.current += 1
        self.max = max(self.max, self.current)

    def leave(self) -> None:
        self.current -= 1


class Runner:
    """Runs targets on one engine in one of three modes.

    ``slow``: ``Engine(hot_plans=False)``. ``hot``: ``Engine(hot_plans=True)``, each target run once
    (its first iteration compiles, so a one-iteration target takes the slow path). ``warm``: a hot
    engine that runs every target twice, calls the registered reset hooks in between, checks that
    both runs gave the same result or exception and that the second one hit a hot plan, and hands
    back the second: so the test's assertions see a run that took the hot path.
    """

    def __init__(self, mode: str, **engine_options: Any) -> None:
        self.mode = mode
        self.engine = cs.Engine(hot_plans=mode != "slow", **engine_options)
        self._resets: list[Any] = []

    def on_reset(self, hook: Any) -> None:
        self._resets.append(hook)

    def recorder(self, event_type: type = cs.Event) -> Recorder:
        rec = Recorder(self.engine.bus, event_type)
        self.on_reset(rec.events.clear)
        return rec

    async def run(self, target: Any, params: Any = None) -> Any:
        if self.mode == "warm":
            first = await _outcome(self.engine.run(target, params))
            for hook in self._resets:
                hook()
            hits = self.engine.stats.hot_plan_hits
            second = await _outcome(self.engine.run(target, params))
            assert self.engine.stats.hot_plan_hits > hits, "the second run did not take a hot plan"
            assert first[0] == second[0], (first, second)
            if first[0] == "ok":
                assert first[1] == second[1]
            else:
                assert type(first[1]) is type(second[1]) and str(first[1]) == str(second[1])
            outcome = second
        else:
            outcome = await _outcome(self.engine.run(target, params))
        if outcome[0] == "error":
            raise outcome[1]
        return outcome[1]


@pytest.fixture(params=["slow", "hot", "warm"])
def runner(request: pytest.FixtureRequest) -> Runner:
    """Slow path, hot engine on a first run, and hot engine on an already-compiled plan."""
    return Runner(request.param)


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
