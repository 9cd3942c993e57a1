"""Telemetry: run and task events as versioned JSON on cascade/telemetry/<run_id>/events."""

from __future__ import annotations

import asyncio
import json

import pytest

import cascade as cs
from cascade.adapters.telemetry import SCHEMA, TelemetryPublisher


@cs.task
async def tel_double(x):
    return 2 * x


@cs.task
def tel_loop(n, acc):
    return acc if n == 0 else tel_loop(n - 1, tel_double(acc))


@pytest.mark.asyncio
async def test_every_event_of_a_run_is_published_as_json_on_its_run_topic():
    engine = cs.Engine()
    got: list[cs.Message] = []
    await engine.connector.subscribe("cascade/telemetry/#", got.append)
    publisher = TelemetryPublisher(engine.bus, engine.connector, source="test").start()
    assert await engine.run(tel_loop(2, 1)) == 4
    records = [json.loads(m.payload) for m in got]
    run_id = records[0]["run_id"]
    assert {m.topic for m in got} == {f"cascade/telemetry/{run_id}/events"}
    assert all(r["schema"] == SCHEMA == "cascade.telemetry/1" and r["source"] == "test" for r in records)
    assert [r["type"] for r in records] == [
        "RunStarted",
        # iteration 1: tel_loop(2, 1); 2: tel_double(1), tel_loop(1, .); 3: tel_double(2), tel_loop(0, .)
        *["TaskExecutionStarted", "TaskExecutionFinished"] * 5,
        "RunFinished",
    ]
    assert records[0]["data"] == {"target": "tel_loop"}
    assert records[2]["data"] == {"task_name": "tel_loop", "node": 0, "iteration": 1, "status": "Succeeded",
                                  "error": None}
    assert records[-1]["data"] == {"status": "Succeeded", "error": None}
    assert publisher.published == len(records)
    publisher.stop()
    await engine.run(tel_double(1))
    assert len(got) == len(records)  # stopped: nothing more


@pytest.mark.asyncio
async def test_engine_wide_events_go_to_the_engine_topic():
    engine = cs.Engine()
    got: list[cs.Message] = []
    await engine.connector.subscribe("cascade/telemetry/engine/events", got.append)
    TelemetryPublisher(engine.bus, engine.connector).start()
    engine.constraints.limit("task:tel_*", concurrency=2)
    engine.constraints.clear("task:tel_*")
    await asyncio.sleep(0)
    assert [(r["type"], r["data"]["value"]) for r in map(json.loads, (m.payload for m in got))] == [
        ("ConstraintChanged", {"limit": 2}), ("ConstraintChanged", None)]


def test_a_connector_without_publish_nowait_is_refused():
    class Bare:
        async def publish(self, topic, payload, retain=False):
            pass

    with pytest.raises(TypeError, match="publish_nowait"):
        TelemetryPublisher(cs.MessageBus(), Bare())
