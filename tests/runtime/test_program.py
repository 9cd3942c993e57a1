"""Compile-time decisions of cascade.runtime.program: constraints on capacities the engine lacks (CS-W002)."""

from __future__ import annotations

import logging

import pytest

import cascade as cs


@cs.task
def work(x):
    return x * 2


@cs.task
def other(x):
    return x + 1


@cs.task
def countdown(n):
    if n == 0:
        return "done"
    return countdown(n - 1).with_constraints(cpu=1)


def warnings_of(events):
    return [(e.code, e.task_name) for e in events if isinstance(e, cs.StaticAnalysisWarning)]


@pytest.mark.asyncio
async def test_constraint_on_a_missing_capacity_warns_once_per_engine_and_task(any_engine, caplog):
    seen = []
    any_engine.bus.subscribe(cs.StaticAnalysisWarning, seen.append)
    with caplog.at_level(logging.WARNING, logger="cascade.engine"):
        assert await any_engine.run(work(1).with_constraints(cpu=1)) == 2
        assert await any_engine.run(work(2).with_constraints(cpu=1)) == 4
    assert warnings_of(seen) == [("CS-W002", "work")]
    [event] = seen
    assert "'cpu'" in event.message and "system_resources" in event.message
    assert [r.getMessage() for r in caplog.records if r.name == "cascade.engine"] == [event.message]


@pytest.mark.asyncio
async def test_missing_capacity_warning_is_the_same_on_hot_and_slow_tail_call_loops():
    streams = []
    for hot in (True, False):
        engine = cs.Engine(hot_plans=hot)
        events = []
        engine.bus.subscribe(cs.Event, events.append)
        assert await engine.run(countdown(5).with_constraints(cpu=1)) == "done"
        assert await engine.run(countdown(3).with_constraints(cpu=1)) == "done"
        assert warnings_of(events) == [("CS-W002", "countdown")]
        streams.append([(type(e).__name__, getattr(e, "task_name", None)) for e in events])
        if hot:
            assert engine.stats.hot_plan_hits > 0  # the later iterations did take the hot path
    assert streams[0] == streams[1]


@pytest.mark.asyncio
@pytest.mark.parametrize("hot", [True, False], ids=["hot", "slow"])
async def test_missing_capacity_warning_names_only_the_missing_capacity_per_task(hot):
    engine = cs.Engine(hot_plans=hot, system_resources={"cpu": 2})
    seen = []
    engine.bus.subscribe(cs.StaticAnalysisWarning, seen.append)

    @cs.task
    def pair(a, b):
        return (a, b)

    target = pair(work(1).with_constraints(cpu=1, gpu=1), other(1).with_constraints(gpu=2))
    assert await engine.run(target) == (2, 2)
    assert warnings_of(seen) == [("CS-W002", "work"), ("CS-W002", "other")]
    assert all("'gpu'" in e.message and "'cpu'" not in e.message.split("system_resources")[0] for e in seen)
    # a new capacity name for an already-warned task warns again, for that name only
    assert await engine.run(work(3).with_constraints(tpu=1)) == 6
    assert warnings_of(seen)[2:] == [("CS-W002", "work")]
    assert "'tpu'" in seen[2].message and "'gpu'" not in seen[2].message


@pytest.mark.asyncio
@pytest.mark.parametrize("hot", [True, False], ids=["hot", "slow"])
async def test_known_capacities_do_not_warn(hot):
    engine = cs.Engine(hot_plans=hot, system_resources={"cpu": 1})
    seen = []
    engine.bus.subscribe(cs.StaticAnalysisWarning, seen.append)
    assert await engine.run(work(1).with_constraints(cpu=1)) == 2
    assert seen == []


@cs.task(name="orphan_two")
def _orphan_two() -> int:
    _ORPHAN_CALLS.append("two")
    return 2


@cs.task(name="orphan_square", pure=True)
def _orphan_square(x: int) -> int:
    return x * x


@cs.task(name="orphan_add")
def _orphan_add(a: int, b: int) -> int:
    return a + b


@cs.task(name="orphan_loop")
def _orphan_loop(n: int, acc: int) -> object:
    if n == 0:
        return acc
    return _orphan_loop(n - 1, _orphan_add(acc, _orphan_add(_orphan_square(_orphan_two()), _orphan_square(_orphan_two()))))


_ORPHAN_CALLS: list[str] = []


@pytest.mark.parametrize("hot", [True, False])
@pytest.mark.asyncio
async def test_a_call_whose_consumer_merged_into_an_equal_pure_call_still_runs(hot: bool) -> None:
    # square(two()) twice: the two pure calls are one node, so the second two() feeds nothing; it is
    # not pure, so it is not merged away either: it runs (this used to crash compiling the plan)
    _ORPHAN_CALLS.clear()
    engine = cs.Engine(hot_plans=hot)
    assert await engine.run(_orphan_add(_orphan_square(_orphan_two()), _orphan_square(_orphan_two()))) == 8
    assert _ORPHAN_CALLS == ["two", "two"]
    _ORPHAN_CALLS.clear()
    assert await engine.run(_orphan_loop(3, 0)) == 24  # the same shape three times: the hot plan again
    assert _ORPHAN_CALLS == ["two"] * 6


def _twin_tasks(pure: bool) -> tuple[cs.Task, cs.Task]:
    """Two tasks with one fingerprint (so their calls have equal shapes) but different functions."""

    def double(x: int) -> int:
        return x * 2

    def negate(x: int) -> int:
        return -x

    d = cs.Task(double, name="prog_twin_double", pure=pure)
    return d, cs.Task(negate, name="prog_twin_negate", pure=pure, fingerprint=d.fingerprint)


@pytest.mark.parametrize("pure", [False, True])
@pytest.mark.parametrize("hot", [True, False])
@pytest.mark.asyncio
async def test_tasks_whose_shapes_collide_never_run_each_others_functions(hot: bool, pure: bool) -> None:
    # A cached program binds a new iteration by shapes; a task with the same fingerprint has the
    # same shapes, so binding must also check which task each call is of.
    d, n = _twin_tasks(pure)

    @cs.task(name="prog_twin_inc", pure=pure)
    def inc(x: int) -> int:
        return x + 1

    engine = cs.Engine(hot_plans=hot)
    assert await engine.run(d(inc(5))) == 12
    assert await engine.run(n(inc(5))) == -6  # the program of d(inc(5)) is cached under this shape
    assert await engine.run(inc(d(5))) == 11
    assert await engine.run(inc(n(5))) == -4
    assert await engine.run(d(inc(5))) == 12


@pytest.mark.parametrize("hot", [True, False])
@pytest.mark.asyncio
async def test_merged_pure_calls_of_tasks_whose_shapes_collide_keep_their_functions(hot: bool) -> None:
    # Equal pure calls merge into one node, so these programs bind through a graph build.
    d, n = _twin_tasks(pure=True)

    @cs.task(name="prog_twin_add", pure=True)
    def add(x: int, y: int) -> int:
        return x + y

    engine = cs.Engine(hot_plans=hot)
    assert await engine.run(add(d(5), d(5))) == 20
    assert await engine.run(add(n(5), n(5))) == -10


@cs.task
def inc(x):
    return x + 1


@cs.task
def pair(a, b):
    return a + b


@pytest.mark.asyncio
async def test_binding_paths_are_made_on_the_first_binding_only():
    # A one-shot graph is compiled and run once: its program never binds another iteration, so the
    # extraction paths (per node: a tuple, and memory the run would touch afresh) and the groups of
    # nodes sharing a shape wait for a hit.
    from cascade.runtime.program import _extraction, _twins

    engine = cs.Engine()
    shared = inc(1)

    def graph(k):  # a chain, a call reading one node twice, and a call whose input sits in DEPS
        return pair(inc(inc(k)), pair(shared, shared)).after(inc(k))

    assert await engine.run(graph(0)) == 2 + 4  # inc(inc(0)) + (inc(1) + inc(1))
    (prog,) = [p for bucket in engine._plans.values() for p in bucket]
    assert prog._bindings is None
    assert await engine.run(graph(5)) == 7 + 4  # a hit: bound through the extraction paths
    assert prog._bindings is not None
    assert (prog.extract, prog.shared) == _extraction(prog.steps, prog.size, prog.at_of)
    assert prog.twins == _twins(prog.shapes)
    assert prog.twins, "the two calls inc(k) (in the chain, in after) share a shape: binding checks them apart"
    assert prog.shared, "the call reading one node twice is checked by identity"
    assert len(prog.extract) == prog.size - 1


@cs.task
async def anext_(x):
    return x + 1


@cs.task
async def akw(*, x):
    return x


@cs.task
async def alist(xs):
    return sum(xs)


@cs.task
def pick(x):
    return "a" if x % 2 else "b"


def _awaited_chain(k):
    """Every awaited kind of walk entry: by position, by keyword, a list of one, a tuple."""
    return alist((alist([akw(x=anext_(anext_(k)))]),))


def _flow(k):
    """A map, general calls, a Router with its routes."""
    a = anext_(k)
    m = alist(inc.map(x=[1, 2, 3]))
    r = cs.Router(pick(a), {"a": inc(a), "b": inc(m)})
    return pair(pair(a, m), r)


@pytest.mark.asyncio
@pytest.mark.parametrize("make", [_awaited_chain, _flow])
async def test_fast_entries_and_consumers_made_on_first_use_equal_the_compiled_ones(make):
    # A program keeps the walk entries only; the walker's fast entries and the scheduler's
    # consumers are made from them when first read. They must equal what compile would make.
    from cascade.runtime.program import (
        OP_AWAIT_KW1,
        OP_AWAIT_LIST1,
        OP_AWAIT_ONE,
        OP_AWAIT_SEQ1,
        OP_MAP,
        ROUTER,
        _fast_entry,
    )

    engine = cs.Engine()
    prog, objs = engine._compile(make(1))
    eager = prog.fast, prog.consumers
    assert all(x is not None for x in eager)  # a small program: made at compile
    prog.fast = prog.consumers = None  # as for a program of LAZY_FROM steps or more
    assert prog.fast_entries() == eager[0] == tuple(_fast_entry(st, o) for st, o in zip(prog.steps, objs))
    ops = {entry[0] for entry in prog.walk}
    if make is _awaited_chain:
        assert {OP_AWAIT_ONE, OP_AWAIT_KW1, OP_AWAIT_LIST1, OP_AWAIT_SEQ1} <= ops, ops
    else:
        assert OP_MAP in ops and prog.has_routers
    expected: list[list[int]] = [[] for _ in prog.steps]
    for p, st in enumerate(prog.steps):
        for d in sorted(set(st.inputs) | (set(st.deps[1:]) if st.kind == ROUTER else set())):
            expected[d].append(p)
    assert prog.consumer_positions() == eager[1] == tuple(map(tuple, expected))
    assert await engine.run(make(1)) == await cs.Engine(hot_plans=False).run(make(1))
