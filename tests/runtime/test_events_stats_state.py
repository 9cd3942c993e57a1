"""Events (run_id, order), engine.stats counters, the state backend protocol."""

from __future__ import annotations

import asyncio

import pytest

import cascade as cs


@cs.task(name="countdown")
def countdown(n):
    return countdown(n - 1) if n > 0 else "done"


@cs.task(name="value")
def value(x):
    return x


@cs.task(name="add")
async def add(x, y):
    await asyncio.sleep(0)
    return x + y


@pytest.mark.asyncio
async def test_every_event_carries_the_run_id(engine, recorder):
    assert await engine.run(add(value(1), value(2)).run_if(value(True))) == 3
    events = recorder.events
    assert isinstance(events[0], cs.RunStarted)
    assert events[0].target == "add"
    assert isinstance(events[-1], cs.RunFinished)
    assert events[-1].status == "Succeeded" and events[-1].error is None
    run_ids = recorder.run_ids()
    assert len(run_ids) == 1
    assert all(isinstance(e, cs.Event) for e in events)
    assert recorder.started() == ["value", "value", "value", "add"]


@pytest.mark.asyncio
async def test_two_runs_have_distinct_run_ids(engine, recorder):
    await engine.run(value(1))
    await engine.run(value(2))
    starts = recorder.of(cs.RunStarted)
    assert len(starts) == 2 and starts[0].run_id != starts[1].run_id
    finished = recorder.of(cs.TaskExecutionFinished)
    assert [e.run_id for e in finished] == [starts[0].run_id, starts[1].run_id]


@pytest.mark.asyncio
async def test_node_events_carry_node_and_iteration(engine, recorder):
    assert await engine.run(countdown(2)) == "done"
    started = recorder.of(cs.TaskExecutionStarted)
    assert [(e.task_name, e.node, e.iteration, e.attempt) for e in started] == [
        ("countdown", 0, 1, 1), ("countdown", 0, 2, 1), ("countdown", 0, 3, 1),
    ]


@pytest.mark.asyncio
async def test_event_order_for_one_call(engine, recorder):
    assert await engine.run(add(1, 2)) == 3
    assert [type(e).__name__ for e in recorder.events] == [
        "RunStarted", "TaskExecutionStarted", "TaskExecutionFinished", "RunFinished",
    ]


@pytest.mark.asyncio
async def test_failed_run_finishes_with_failed_status(engine, recorder):
    @cs.task(name="bad")
    def bad():
        raise KeyError("nope")

    with pytest.raises(KeyError):
        await engine.run(bad())
    finished = recorder.of(cs.TaskExecutionFinished)
    assert [(e.task_name, e.status) for e in finished] == [("bad", "Failed")]
    run_finished = recorder.of(cs.RunFinished)[0]
    assert run_finished.status == "Failed"
    assert "nope" in run_finished.error


@pytest.mark.asyncio
async def test_cancelled_run_finishes_with_cancelled_status(engine, recorder):
    @cs.task(name="forever")
    async def forever():
        await asyncio.Event().wait()

    task = asyncio.create_task(engine.run(forever()))
    for _ in range(5):
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert recorder.of(cs.RunFinished)[0].status == "Cancelled"
    assert len(recorder.run_ids()) == 1


@pytest.mark.asyncio
async def test_unsubscribe_and_failing_handler(engine, caplog):
    seen = []

    def broken(event):
        raise RuntimeError("handler bug")

    engine.bus.subscribe(cs.TaskExecutionFinished, broken)
    unsubscribe = engine.bus.subscribe(cs.TaskExecutionFinished, seen.append)
    assert await engine.run(value(5)) == 5  # a raising handler does not disturb the run
    assert len(seen) == 1
    unsubscribe()
    assert await engine.run(value(6)) == 6
    assert len(seen) == 1


def test_subscribe_validation():
    bus = cs.MessageBus()
    with pytest.raises(TypeError):
        bus.subscribe(int, print)
    with pytest.raises(TypeError):
        bus.subscribe(cs.Event, 5)

    async def handler(event):
        pass

    with pytest.raises(TypeError):
        bus.subscribe(cs.Event, handler)


@pytest.mark.asyncio
async def test_engine_connector_defaults_to_its_own_in_memory_connector():
    first, second = cs.Engine(), cs.Engine()
    assert first._connector is None  # made on first use only
    assert isinstance(first.connector, cs.InMemoryConnector)
    assert first.connector is first.connector and first.connector is not second.connector
    given = cs.InMemoryConnector()
    assert cs.Engine(connector=given).connector is given
    with pytest.raises(TypeError, match="connector"):
        cs.Engine(connector=object())


@pytest.mark.asyncio
async def test_stats_for_a_hot_tail_call_loop(engine):
    assert await engine.run(countdown(5)) == "done"  # 6 iterations, 5 tail calls
    assert engine.stats.as_dict() == {
        "graph_builds": 1, "plan_solves": 1, "hot_plan_hits": 5, "hot_plan_misses": 1, "tail_calls": 5,
    }
    assert await engine.run(countdown(3)) == "done"  # the plan is already compiled
    assert engine.stats.hot_plan_hits == 9
    assert engine.stats.hot_plan_misses == 1
    assert engine.stats.graph_builds == 1
    assert engine.stats.tail_calls == 8
    assert engine.plan_cache_len == 1
    engine.clear_plans()
    assert engine.plan_cache_len == 0


@pytest.mark.asyncio
async def test_stats_with_hot_plans_off():
    engine = cs.Engine(hot_plans=False)
    assert await engine.run(countdown(5)) == "done"
    assert engine.stats.as_dict() == {
        "graph_builds": 6, "plan_solves": 6, "hot_plan_hits": 0, "hot_plan_misses": 0, "tail_calls": 5,
    }
    assert isinstance(engine.stats, cs.EngineStats)


@pytest.mark.asyncio
async def test_plan_cache_size_evicts_least_recently_used():
    engine = cs.Engine(plan_cache_size=1)
    await engine.run(value(1))
    await engine.run(add(1, 2))
    await engine.run(value(3))
    assert engine.stats.hot_plan_misses == 3
    assert engine.stats.hot_plan_hits == 0
    await engine.run(value(4))
    assert engine.stats.hot_plan_hits == 1
    with pytest.raises(ValueError):
        cs.Engine(plan_cache_size=0)


def test_in_memory_state_backend_protocol():
    backend = cs.InMemoryStateBackend()
    assert isinstance(backend, cs.StateBackend)
    backend.put_result("r1", "k", 10)
    backend.put_skip("r1", "s", "ConditionFalse")
    backend.put_result("r2", "k", 20)
    assert backend.get_result("r1", "k") == 10
    assert backend.get_result("r2", "k") == 20
    assert backend.get_skip("r1", "s") == "ConditionFalse"
    assert backend.get_skip("r1", "k") is None
    assert backend.get_skip("nope", "k") is None
    with pytest.raises(KeyError):
        backend.get_result("r1", "missing")
    assert len(backend) == 3
    backend.clear("r1")
    with pytest.raises(KeyError):
        backend.get_result("r1", "k")
    assert backend.get_skip("r1", "s") is None
    assert backend.get_result("r2", "k") == 20
    assert len(backend) == 1


class RecordingBackend(cs.InMemoryStateBackend):
    def __init__(self):
        super().__init__()
        self.results = []
        self.skips = []
        self.cleared = []

    def put_result(self, run_id, key, value):
        self.results.append((run_id, value))
        super().put_result(run_id, key, value)

    def put_skip(self, run_id, key, reason):
        self.skips.append((run_id, reason))
        super().put_skip(run_id, key, reason)

    def clear(self, run_id):
        self.cleared.append(run_id)
        super().clear(run_id)


@pytest.mark.parametrize("hot", [True, False], ids=["hot", "slow"])
@pytest.mark.asyncio
async def test_engine_mirrors_results_and_skips_into_the_state_backend(hot, make_recorder):
    backend = RecordingBackend()
    engine = cs.Engine(state_backend=backend, hot_plans=hot)
    rec = make_recorder(engine.bus, cs.RunStarted)
    target = add(value(1), value(2))
    assert await engine.run(target) == 3
    assert await engine.run(target) == 3
    run_ids = [e.run_id for e in rec.events]
    for run_id in run_ids:
        assert sorted(v for r, v in backend.results if r == run_id) == [1, 2, 3]
        assert run_id in backend.cleared
    assert len(backend) == 0  # cleared when each run ended

    with pytest.raises(cs.DependencyMissingError):
        await engine.run(value(1).run_if(value(False)))
    assert [reason for _, reason in backend.skips] == ["ConditionFalse"]
    assert len(backend) == 0
