"""The control plane end to end against a real mosquitto: the ``cascade`` command line (typer's test
runner, in a worker thread with its own event loop) governs an engine whose loops run hot in the
test's event loop, through retained topics on the broker."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from typer.testing import CliRunner

import cascade as cs
from cascade.adapters.mqtt import MQTTConnector
from cascade.adapters.telemetry import TelemetryPublisher
from cascade.cli.main import app
from cascade.runtime.control import ConstraintListener


async def until(predicate: Any, timeout: float = 15.0) -> None:
    """Wait for ``predicate()``; the timeout only bounds a hang (broker I/O), it asserts no speed."""
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout)


class Governed:
    """An engine connected to the broker: constraints from its retained topics, events recorded."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.connector = MQTTConnector(url, backoff=(0.02, 0.2))
        self.engine = cs.Engine(connector=self.connector)
        self.listener = ConstraintListener(self.engine.constraints, self.connector)
        self.events: list[Any] = []
        self.engine.bus.subscribe(cs.ConstraintChanged, self.events.append)
        self.engine.bus.subscribe(cs.ConstraintRejected, self.events.append)
        self.engine.bus.subscribe(cs.TaskBlocked, self.events.append)

    async def start(self) -> None:
        await self.connector.connect()
        await self.listener.start()

    async def stop(self) -> None:
        await self.listener.stop()
        await self.connector.disconnect()

    def in_force(self) -> set[tuple[str, str]]:
        return {(c.scope, c.kind) for c in self.engine.constraints.active()}

    async def cli(self, *args: str) -> Any:
        """``cascade ARGS --broker URL`` in a worker thread; returns typer's Result."""
        result = await asyncio.to_thread(CliRunner().invoke, app, [*args, "--broker", self.url])
        assert result.exit_code == 0, (args, result.stdout, result.stderr)
        return result


@pytest_asyncio.fixture
async def governed(mosquitto: Any) -> AsyncIterator[Governed]:
    g = Governed(mosquitto.url)
    await g.start()
    yield g
    await g.stop()


progress: list[int] = []


@cs.task
async def cp_step(n: int) -> int:
    progress.append(n)
    await asyncio.sleep(0.001)
    return n


@cs.task
def cp_loop(n: int) -> Any:
    return "done" if n == 0 else cp_loop(cp_step(n - 1))


@pytest.mark.asyncio
async def test_pause_a_running_hot_loop_from_the_cli_then_resume_it(governed):
    progress.clear()
    run = asyncio.ensure_future(governed.engine.run(cp_loop(1500)))
    await until(lambda: len(progress) >= 5)
    result = await governed.cli("pause", "task:cp_step")
    assert result.stdout == "paused task:cp_step (cascade/constraints/task:cp_step/pause)\n"
    await until(lambda: ("task:cp_step", "pause") in governed.in_force())
    await until(lambda: governed.engine.constraints.waiting == 1)
    held_at = len(progress)
    await asyncio.sleep(0.3)
    assert len(progress) == held_at and not run.done()  # no progress while paused
    assert any(isinstance(e, cs.TaskBlocked) and e.reason == "paused" for e in governed.events)
    result = await governed.cli("resume", "task:cp_step")
    assert result.stdout == "resumed task:cp_step (cascade/constraints/task:cp_step/pause cleared)\n"
    assert await asyncio.wait_for(run, 60) == "done"
    assert len(progress) == 1500 and progress[-1] == 0
    assert governed.engine.stats.hot_plan_hits > 1000  # it ran hot, before and after the pause


gauge = {"now": 0, "max": 0}


@cs.task
async def io_read(i: int) -> int:
    gauge["now"] += 1
    gauge["max"] = max(gauge["max"], gauge["now"])
    await asyncio.sleep(0.005)
    gauge["now"] -= 1
    return i


@cs.task
def cp_gather(*xs: int) -> list[int]:
    return list(xs)


@pytest.mark.asyncio
async def test_concurrency_one_from_the_cli_and_status_shows_it(governed):
    gauge.update(now=0, max=0)
    assert await governed.engine.run(cp_gather(*[io_read(i) for i in range(6)])) == list(range(6))
    assert gauge["max"] == 6  # unconstrained, they overlap
    result = await governed.cli("limit", "task:io_*", "--concurrency", "1")
    assert result.stdout == "limited task:io_*: at most 1 running\n"
    await until(lambda: ("task:io_*", "concurrency") in governed.in_force())
    gauge.update(now=0, max=0)
    assert await governed.engine.run(cp_gather(*[io_read(i) for i in range(6)])) == list(range(6))
    assert gauge["max"] == 1
    status = (await governed.cli("status")).stdout
    assert "task:io_*" in status and "concurrency" in status and "at most 1 running" in status
    assert f"engine {governed.connector.client_id}: online" in status


ticks: list[float] = []


@cs.task
def cp_tick() -> None:
    ticks.append(time.monotonic())


@cs.task
def cp_ticking(deadline: float, _: Any = None) -> Any:
    if time.monotonic() >= deadline:
        return len(ticks)
    return cp_ticking(deadline, cp_tick())


@pytest.mark.asyncio
async def test_a_rate_limit_of_20_per_second_from_the_cli_is_observed(governed):
    ticks.clear()
    await governed.engine.run(cp_ticking(time.monotonic() + 0.2))
    unlimited = len(ticks)
    assert unlimited > 200  # without the limit, hundreds of ticks in 0.2 s
    result = await governed.cli("limit", "task:cp_tick", "--rate", "20/s")
    assert result.stdout == "limited task:cp_tick: 20 starts/s (burst 1)\n"
    await until(lambda: ("task:cp_tick", "rate") in governed.in_force())
    ticks.clear()
    count = await governed.engine.run(cp_ticking(time.monotonic() + 2.0))
    # a token bucket of 1 at 20/s allows 1 + 20 * 2 = 41 starts in 2 s; wide tolerance for a busy machine
    assert 30 <= count <= 50, count
    assert any(isinstance(e, cs.TaskBlocked) and e.reason == "rate_limit" for e in governed.events)


@cs.task
async def cp_late(x: int) -> int:
    return x


@pytest.mark.asyncio
async def test_a_ttl_from_the_cli_expires_by_itself(governed):
    result = await governed.cli("pause", "task:cp_late", "--ttl", "300ms")
    assert result.stdout == "paused task:cp_late for 300ms (cascade/constraints/task:cp_late/pause)\n"
    await until(lambda: ("task:cp_late", "pause") in governed.in_force())
    run = asyncio.ensure_future(governed.engine.run(cp_late(5)))
    await until(lambda: governed.engine.constraints.waiting == 1)
    assert await asyncio.wait_for(run, 15) == 5  # released by the TTL, nobody resumed it
    assert governed.in_force() == set()
    assert [(e.scope, e.kind, e.source) for e in governed.events if isinstance(e, cs.ConstraintChanged)][-1] == (
        "task:cp_late", "pause", "ttl")
    # the retained message is still on the broker, but its expires_at has passed: status omits it
    assert (await governed.cli("status")).stdout == "no constraints in force\n" + (
        f"engine {governed.connector.client_id}: online\n")


@pytest.mark.asyncio
async def test_malformed_payloads_on_the_broker_are_rejected_and_the_engine_keeps_serving(governed, mqtt):
    bad = [
        ("cascade/constraints/global/pause", b"{oops"),
        ("cascade/constraints/task:x/concurrency", b'{"limit": "one"}'),
        ("cascade/constraints/task:x/rate", b'{"rate": NaN}'),
        ("cascade/constraints/task:x/rate", b'{"rate": -3}'),
        ("cascade/constraints/task:x/warp", b"{}"),
        ("cascade/constraints/global/pause", b'{"ttl": 5, "pad": "' + b"x" * 5000 + b'"}'),
    ]
    for topic, payload in bad:
        await mqtt.publish(topic, payload, retain=True)
    await until(lambda: sum(isinstance(e, cs.ConstraintRejected) for e in governed.events) == len(bad))
    assert governed.in_force() == set()
    assert await asyncio.wait_for(governed.engine.run(cp_late(3)), 15) == 3
    # a new listener (an engine starting now) rejects the same retained junk, and starts serving too
    fresh = Governed(governed.url)
    await fresh.start()
    try:
        assert fresh.listener.rejected == len({topic for topic, _ in bad}) == 4  # one retained per topic
        assert await asyncio.wait_for(fresh.engine.run(cp_late(4)), 15) == 4
    finally:
        await fresh.stop()


alpha_done: list[int] = []


@cs.task
async def cp_alpha(i: int) -> int:
    alpha_done.append(i)
    return i


@cs.task
async def cp_beta(i: int) -> int:
    await asyncio.sleep(0.01)
    return -i


@pytest.mark.asyncio
async def test_two_runs_waiting_on_different_constraints_both_get_their_wake_ups(governed):
    alpha_done.clear()
    await governed.cli("pause", "task:cp_alpha")
    await governed.cli("pause", "task:cp_beta")
    await governed.cli("limit", "task:cp_beta", "--concurrency", "1")
    await until(lambda: len(governed.in_force()) == 3)
    a = asyncio.ensure_future(governed.engine.run(cp_gather(*[cp_alpha(i) for i in range(3)])))
    b = asyncio.ensure_future(governed.engine.run(cp_gather(*[cp_beta(i) for i in range(4)])))
    await until(lambda: governed.engine.constraints.waiting == 7)
    await governed.cli("resume", "task:cp_beta")  # beta's four go, one at a time; alpha stays held
    assert await asyncio.wait_for(b, 15) == [0, -1, -2, -3]
    assert not a.done() and alpha_done == []
    await governed.cli("resume", "task:cp_alpha")
    assert await asyncio.wait_for(a, 15) == [0, 1, 2]
    assert governed.engine.constraints.waiting == 0


@pytest.mark.asyncio
async def test_the_engine_reconnects_after_a_broker_restart_mid_run(mosquitto, governed):
    progress.clear()
    await governed.cli("pause", "task:cp_step")
    await until(lambda: ("task:cp_step", "pause") in governed.in_force())
    run = asyncio.ensure_future(governed.engine.run(cp_loop(50)))
    await until(lambda: governed.engine.constraints.waiting == 1)
    await asyncio.to_thread(mosquitto.restart)  # the retained pause survives (persistence)
    await until(lambda: governed.connector.connections == 2)
    assert ("task:cp_step", "pause") in governed.in_force() and not run.done()
    await governed.cli("resume", "task:cp_step")  # through the restarted broker
    assert await asyncio.wait_for(run, 30) == "done"
    assert len(progress) == 50


@pytest.mark.asyncio
async def test_watch_prints_live_telemetry(governed):
    TelemetryPublisher(governed.engine.bus, governed.connector).start()
    watcher = asyncio.ensure_future(asyncio.to_thread(
        CliRunner().invoke, app, ["watch", "--count", "3", "--timeout", "30", "--broker", governed.url]))
    while not watcher.done():  # runs until the watcher has subscribed and seen 3 events
        await governed.engine.run(cp_late(1))
        await asyncio.sleep(0.05)
    result = await watcher
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert all(" run-" in line for line in lines)
    assert {line.split()[2] for line in lines} <= {"RunStarted", "TaskExecutionStarted", "TaskExecutionFinished",
                                                    "RunFinished"}


@pytest.mark.asyncio
async def test_the_cli_in_a_real_subprocess_pauses_an_engine(governed):
    proc = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "cascade.cli", "limit", "task:cp_*",
                                                    "--rate", "600/m", "--burst", "3", "--broker", governed.url],
                                   capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "limited task:cp_*: 10 starts/s (burst 3)\n"
    await until(lambda: ("task:cp_*", "rate") in governed.in_force())
    [c] = governed.engine.constraints.active()
    assert (c.rate, c.burst, c.source) == (10.0, 3, "cascade/constraints/task:cp_*/rate")
    status = await asyncio.to_thread(CliRunner().invoke, app, ["status", "--broker", governed.url])
    assert status.stdout.count("10/s, burst 3") == 1


@pytest.mark.asyncio
async def test_an_unreachable_broker_is_one_line_from_the_cli(mosquitto):
    url = mosquitto.url
    mosquitto.stop()
    result = await asyncio.to_thread(CliRunner().invoke, app, ["pause", "global", "--broker", url])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"cascade pause: cannot connect to the MQTT broker at {url}")
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.asyncio
async def test_cascade_run_with_a_broker_obeys_retained_constraints_and_publishes_telemetry(mosquitto, mqtt, tmp_path):
    flow = tmp_path / "flow.py"
    flow.write_text("import cascade as cs\n\n@cs.task\nasync def fetch(n):\n    return n * 2\n\n"
                    "@cs.task\ndef total(xs):\n    return sum(xs)\n\nmain = total(fetch.map(n=[1, 2, 3]))\n")
    events: list[dict[str, Any]] = []
    await mqtt.subscribe("cascade/telemetry/+/events", lambda m: events.append(json.loads(m.payload)))
    runner = CliRunner()
    paused = await asyncio.to_thread(runner.invoke, app, ["pause", "task:fetch", "--ttl", "3s",
                                                          "--broker", mosquitto.url])
    assert paused.exit_code == 0
    result = await asyncio.to_thread(runner.invoke, app, ["run", f"{flow}:main", "--broker", mosquitto.url])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "12\n"
    assert result.stderr.startswith("cascade run: run-") and f"on {mosquitto.url}" in result.stderr
    await until(lambda: any(e["type"] == "RunFinished" for e in events))
    blocked = [e["data"] for e in events if e["type"] == "TaskBlocked"]
    assert [(b["task_name"], b["reason"]) for b in blocked] == [("fetch", "paused")] * 3
    assert events[-1]["data"] == {"status": "Succeeded", "error": None}
