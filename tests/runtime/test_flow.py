"""Execution flow: overlap of independent async nodes, run_if, skip propagation, Routers."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

import cascade as cs

executed: Counter[str] = Counter()


@pytest.fixture(autouse=True)
def _reset():
    executed.clear()


@pytest.fixture
def runner(runner):
    runner.on_reset(executed.clear)
    return runner


@cs.task(name="const")
def const(v):
    executed["const"] += 1
    return v


@cs.task(name="use")
def use(x):
    executed["use"] += 1
    return ("used", x)


@cs.task(name="consume")
def consume(x):
    executed["consume"] += 1
    return ("consumed", x)


@cs.task(name="branch_a")
def branch_a():
    executed["branch_a"] += 1
    return "A"


@cs.task(name="branch_b")
async def branch_b():
    executed["branch_b"] += 1
    await asyncio.sleep(0)
    return "B"


@cs.task(name="prep_b")
def prep_b():
    executed["prep_b"] += 1
    return "pb"


@cs.task(name="on_b")
def on_b(x):
    executed["on_b"] += 1
    return x + "!"


@cs.task(name="pair")
def pair(x, y):
    executed["pair"] += 1
    return (x, y)


@pytest.mark.asyncio
async def test_independent_async_nodes_overlap(runner):
    first_ready = asyncio.Event()
    second_ready = asyncio.Event()

    @cs.task(name="left")
    async def left():
        first_ready.set()
        await second_ready.wait()  # only the other task can set it: sequential runs deadlock
        return "L"

    @cs.task(name="right")
    async def right():
        second_ready.set()
        await first_ready.wait()
        return "R"

    runner.on_reset(first_ready.clear)
    runner.on_reset(second_ready.clear)
    result = await asyncio.wait_for(runner.run(pair(left(), right())), timeout=10)
    assert result == ("L", "R")


@pytest.mark.asyncio
async def test_run_if_false_skips_with_condition_false(runner):
    rec = runner.recorder(cs.TaskSkipped)
    target = consume(use(1).run_if(const(False)))
    with pytest.raises(cs.DependencyMissingError) as info:
        await runner.run(target)
    assert info.value.reason == "UpstreamSkipped_Data"
    assert rec.skips() == [("use", "ConditionFalse"), ("consume", "UpstreamSkipped_Data")]
    assert executed == Counter({"const": 1})


@pytest.mark.asyncio
async def test_run_if_true_runs(runner):
    rec = runner.recorder(cs.TaskSkipped)
    assert await runner.run(use(1).run_if(const(1))) == ("used", 1)
    assert rec.skips() == []


@pytest.mark.asyncio
async def test_skipped_condition_gives_upstream_skipped_condition(runner):
    rec = runner.recorder(cs.TaskSkipped)
    skipped_cond = const(True).run_if(const(False))
    with pytest.raises(cs.DependencyMissingError) as info:
        await runner.run(use(1).run_if(skipped_cond))
    assert info.value.reason == "UpstreamSkipped_Condition"
    assert rec.skips() == [("const", "ConditionFalse"), ("use", "UpstreamSkipped_Condition")]
    assert executed == Counter({"const": 1})


@pytest.mark.asyncio
async def test_skipped_data_input_beats_skipped_condition(runner):
    rec = runner.recorder(cs.TaskSkipped)
    skipped = use(1).run_if(const(False))
    with pytest.raises(cs.DependencyMissingError) as info:
        await runner.run(consume(skipped).run_if(skipped))
    assert info.value.reason == "UpstreamSkipped_Data"
    assert rec.skips()[-1] == ("consume", "UpstreamSkipped_Data")


@pytest.mark.asyncio
async def test_sequence_skip_propagates_and_run_returns_none(runner):
    rec = runner.recorder(cs.TaskSkipped)
    target = cs.sequence([use(1).run_if(const(False)), consume(2), branch_a()])
    assert await runner.run(target) is None
    assert rec.skips() == [
        ("use", "ConditionFalse"),
        ("consume", "UpstreamSkipped_Sequence"),
        ("branch_a", "UpstreamSkipped_Sequence"),
    ]
    assert executed == Counter({"const": 1})


@pytest.mark.asyncio
async def test_data_consumer_of_sequence_skip_is_data_skip(runner):
    rec = runner.recorder(cs.TaskSkipped)
    seq = cs.sequence([use(1).run_if(const(False)), consume(2)])
    with pytest.raises(cs.DependencyMissingError) as info:
        await runner.run(pair(seq, 3))
    assert info.value.reason == "UpstreamSkipped_Data"
    assert rec.skips()[-1] == ("pair", "UpstreamSkipped_Data")


@pytest.mark.asyncio
async def test_after_is_ordering_only_a_skipped_predecessor_does_not_skip(runner):
    rec = runner.recorder(cs.TaskSkipped)
    order: list[str] = []
    runner.on_reset(order.clear)

    @cs.task(name="first")
    async def first():
        await asyncio.sleep(0)
        order.append("first")

    @cs.task(name="second")
    def second():
        order.append("second")
        return "ok"

    assert await runner.run(second().after(first())) == "ok"
    assert order == ["first", "second"]
    assert await runner.run(second().after(use(1).run_if(const(False)))) == "ok"
    assert rec.skips() == [("use", "ConditionFalse")]


@pytest.mark.asyncio
async def test_map_with_skipped_element_is_data_skipped(runner):
    rec = runner.recorder(cs.TaskSkipped)
    mapped = use.map(x=[1, 2]).run_if(const(False))
    with pytest.raises(cs.DependencyMissingError) as info:
        await runner.run(mapped)
    assert info.value.reason == "UpstreamSkipped_Data"
    reasons = Counter(rec.skips())
    assert reasons[("use", "ConditionFalse")] == 2
    assert len(rec.skips()) == 3  # two elements and the map itself


@pytest.mark.asyncio
async def test_router_picks_branch_and_prunes_the_other(runner):
    rec = runner.recorder(cs.TaskSkipped)
    router = cs.Router(const("a"), {"a": branch_a(), "b": on_b(prep_b())})
    assert await runner.run(consume(router)) == ("consumed", "A")
    assert executed == Counter({"const": 1, "branch_a": 1, "consume": 1})
    assert sorted(rec.skips()) == [("on_b", "UpstreamSkipped_Route"), ("prep_b", "UpstreamSkipped_Route")]


@pytest.mark.asyncio
async def test_router_picks_async_branch(runner):
    rec = runner.recorder(cs.TaskSkipped)
    router = cs.Router(const("b"), {"a": branch_a(), "b": branch_b()})
    assert await runner.run(consume(router)) == ("consumed", "B")
    assert executed["branch_a"] == 0 and executed["branch_b"] == 1
    assert rec.skips() == [("branch_a", "UpstreamSkipped_Route")]


@pytest.mark.asyncio
async def test_pruned_branch_runs_when_another_consumer_needs_it(runner):
    rec = runner.recorder(cs.TaskSkipped)
    b = on_b(prep_b())
    router = cs.Router(const("a"), {"a": branch_a(), "b": b})
    assert await runner.run(pair(consume(router), use(b))) == (("consumed", "A"), ("used", "pb!"))
    assert executed["on_b"] == 1 and executed["prep_b"] == 1 and executed["branch_a"] == 1
    assert rec.skips() == []


@pytest.mark.asyncio
async def test_picked_branch_that_is_skipped_skips_the_router_consumer(runner):
    rec = runner.recorder(cs.TaskSkipped)
    router = cs.Router(const("a"), {"a": branch_a().run_if(const(False)), "b": branch_b()})
    with pytest.raises(cs.DependencyMissingError) as info:
        await runner.run(consume(router))
    assert info.value.reason == "UpstreamSkipped_Data"
    skips = rec.skip_reasons()
    assert skips["branch_a"] == "ConditionFalse"
    assert skips["Router"] == "UpstreamSkipped_Data"
    assert skips["consume"] == "UpstreamSkipped_Data"
    assert skips["branch_b"] == "UpstreamSkipped_Route"


@pytest.mark.asyncio
async def test_router_selector_without_route_raises_route_error(runner):
    router = cs.Router(const("zzz"), {"a": branch_a(), "b": branch_b()})
    with pytest.raises(cs.RouteError) as info:
        await runner.run(consume(router))
    assert "'zzz'" in str(info.value)
    assert executed["branch_a"] == 0 and executed["branch_b"] == 0 and executed["consume"] == 0


@pytest.mark.asyncio
async def test_router_with_int_keys_and_shared_selector(runner):
    sel = const(2)
    router = cs.Router(sel, {1: const("one"), 2: const("two")})
    assert await runner.run(pair(router, sel)) == ("two", 2)


@pytest.mark.asyncio
async def test_router_event_order_dormant_branches_skipped_at_the_end_in_plan_order(any_engine, make_recorder):
    rec = make_recorder(any_engine.bus)
    target = consume(cs.Router(const("a"), {"a": branch_a(), "b": on_b(prep_b())}))
    # plan positions: const 0, branch_a 1, prep_b 2, on_b 3, Router 4, consume 5
    for _ in range(2):  # the second run takes the hot plan on a hot engine
        rec.events.clear()
        assert await any_engine.run(target) == ("consumed", "A")
        seen = [(type(e).__name__, getattr(e, "task_name", None), getattr(e, "node", None)) for e in rec.events]
        assert seen == [
            ("RunStarted", None, None),
            ("TaskExecutionStarted", "const", 0), ("TaskExecutionFinished", "const", 0),
            ("TaskExecutionStarted", "branch_a", 1), ("TaskExecutionFinished", "branch_a", 1),
            ("TaskExecutionStarted", "consume", 5), ("TaskExecutionFinished", "consume", 5),
            ("TaskSkipped", "prep_b", 2), ("TaskSkipped", "on_b", 3),
            ("RunFinished", None, None),
        ]


@pytest.mark.asyncio
async def test_router_ignores_a_skip_of_the_route_it_did_not_pick(runner):
    """Route "b" is needed elsewhere, so it settles (skipped) early; the selector picks "a"."""
    rec = runner.recorder(cs.TaskSkipped)
    b = on_b("x").run_if(const(False))
    router = cs.Router(const("a"), {"a": branch_a(), "b": b})
    target = consume(router).after(use(b))  # after: ordering only, use(b)'s skip does not matter
    assert await runner.run(target) == ("consumed", "A")
    assert executed["branch_a"] == 1
    assert rec.skips() == [("on_b", "ConditionFalse"), ("use", "UpstreamSkipped_Data")]
