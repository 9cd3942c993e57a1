"""Dynamic map: ``task.map(x=lazy)`` in tail-call loops equals a plain-Python reference, hot = slow.

A generated :class:`Spec` is a loop of ``iters`` iterations; iteration ``i`` maps an element task over
``source(i, size)`` (a list of ``size`` ints known only at run time; sizes include 0), optionally
with a concrete ``k`` column, over a map of a map, with suspending elements, and with elements that
fail their first attempt under ``with_retry(max_attempts=2)``; a ``fold`` consumes each map. The
reference (:func:`model`) computes the value and the multiset of element calls in plain Python.
Hot and slow engines must both give the reference's value and calls, and the same event stream.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

import cascade as cs

from .model import DMAP_KINDS, Body, Loop, Node, Workflow
from .profiles import ci_settings
from .strategies import workflows
from .test_equivalence import check_hot_slow_model

EXAMPLES = 60


@dataclass(frozen=True)
class Spec:
    iters: int
    sizes: tuple[int, ...]
    suspend: bool
    k_column: bool
    nested: bool
    flaky: bool


specs = st.builds(
    Spec,
    iters=st.integers(0, 5),
    sizes=st.lists(st.integers(0, 4), min_size=1, max_size=3).map(tuple),
    suspend=st.booleans(),
    k_column=st.booleans(),
    nested=st.booleans(),
    flaky=st.booleans(),
)

CALLS: Counter[tuple[Any, ...]] = Counter()
FAILED: set[tuple[Any, ...]] = set()


@cs.task
def source(i: int, size: int) -> list[int]:
    return list(range(10 * i, 10 * i + size))


def _element(kind: str, x: int, k: int, flaky: bool) -> int:
    CALLS[(kind, x, k)] += 1
    if flaky and (kind, x, k) not in FAILED:
        FAILED.add((kind, x, k))
        raise ConnectionError(f"{kind}({x}, {k}) first attempt")
    return 2 * x + k


@cs.task
def elem(x: int, k: int = 0, flaky: bool = False) -> int:
    return _element("elem", x, k, flaky)


@cs.task
async def aelem(x: int, k: int = 0, flaky: bool = False) -> int:
    await asyncio.sleep(0)  # really suspends
    return _element("aelem", x, k, flaky)


@cs.task
def fold(acc: tuple[Any, ...], values: list[int]) -> tuple[Any, ...]:
    return acc + (tuple(values),)


@cs.task
def step(spec: Spec, i: int, acc: tuple[Any, ...]) -> Any:
    if i == spec.iters:
        return acc
    size = spec.sizes[i % len(spec.sizes)]
    t = aelem if spec.suspend else elem
    col: Any = source(i, size)
    if spec.nested:
        col = t.map(x=col, flaky=[spec.flaky] * size)  # a dynamic map feeding a dynamic map
        if spec.flaky:
            col = col.with_retry(max_attempts=2)
    # k = i + 100: the outer calls' keys never equal the inner ones' (k = 0), so each fails once
    mapped = t.map(x=col, k=[i + 100] * size, flaky=[spec.flaky] * size) if spec.k_column else t.map(x=col)
    if spec.flaky and spec.k_column:
        mapped = mapped.with_retry(max_attempts=2)
    return step(spec, i + 1, fold(acc, mapped))


def model(spec: Spec) -> tuple[tuple[Any, ...], Counter[tuple[Any, ...]]]:
    kind = "aelem" if spec.suspend else "elem"
    calls: Counter[tuple[Any, ...]] = Counter()
    acc: tuple[Any, ...] = ()
    for i in range(spec.iters):
        size = spec.sizes[i % len(spec.sizes)]
        xs = list(range(10 * i, 10 * i + size))
        if spec.nested:
            for x in xs:
                calls[(kind, x, 0)] += 2 if spec.flaky else 1
            xs = [2 * x for x in xs]
        k = i + 100 if spec.k_column else 0
        for x in xs:
            calls[(kind, x, k)] += 2 if spec.flaky and spec.k_column else 1
        acc += (tuple(2 * x + k for x in xs),)
    return acc, calls


def _event_key(e: Any) -> tuple[Any, ...]:
    return (type(e).__name__, *[getattr(e, f) for f in e.__dataclass_fields__ if f != "run_id"])


async def _run(spec: Spec, hot: bool) -> tuple[Any, Counter[tuple[Any, ...]], list[Any]]:
    CALLS.clear()
    FAILED.clear()
    engine = cs.Engine(hot_plans=hot)
    events: list[Any] = []
    engine.bus.subscribe(cs.Event, lambda e: events.append(_event_key(e)))
    try:
        value: Any = await engine.run(step(spec, 0, ()))
    except Exception as exc:  # noqa: BLE001 - the outcome is what is compared
        value = ("error", type(exc).__name__, str(exc))
    return value, Counter(CALLS), events


def check_dynamic_map(spec: Spec) -> None:
    expected, calls = model(spec)
    hot = asyncio.run(_run(spec, True))
    slow = asyncio.run(_run(spec, False))
    for name, (value, got_calls, _) in (("hot", hot), ("slow", slow)):
        assert value == expected, f"{name}: value {value!r}, the reference gives {expected!r}"
        assert got_calls == calls, f"{name}: element calls {dict(got_calls)}, the reference {dict(calls)}"
    assert hot[2] == slow[2], "hot and slow engines published different event streams"


@ci_settings(EXAMPLES)
@given(specs)
def test_dynamic_map_loops_match_the_reference_hot_and_slow(spec: Spec) -> None:
    check_dynamic_map(spec)


# -- dynamic maps inside the generated workflows of the reference model (properties/model.py) ----

MODEL_EXAMPLES = 80


def _has_dmap(wf: Workflow) -> bool:
    return any(nd.kind == "dmap" for lp in wf.loops + wf.subs for b in lp.bodies for nd in b.nodes)


dmap_workflows = workflows(kinds=DMAP_KINDS).filter(_has_dmap)


# Found by the nightly profile: a dynamic map and a sub-loop call in one iteration, the map one level
# nearer its inputs. The engine starts them (and numbers their nested iterations) in plan order,
# level by level; the model went by body position and numbered the sub-loop first.
NESTED_ITERATIONS_IN_PLAN_ORDER = Workflow(
    loops=(Loop(bodies=(Body(nodes=(Node(kind="map", map_lits=(0,)), Node(kind="sync", inputs=(0,)),
                                    Node(kind="sub", inputs=(1,), sub=1), Node(kind="dmap", inputs=(0,)),
                                    Node(kind="root", after=(2, 3)))),), raise_at=None),),
    subs=(Loop(bodies=(Body(nodes=(Node(kind="root"),)),), raise_at=None),
          Loop(bodies=(Body(nodes=(Node(kind="sync"), Node(kind="sync"), Node(kind="sync"),
                                   Node(kind="sync", cond=0), Node(kind="root", after=(0, 1, 2, 3)))),),
               raise_at=None)),
    start=0)

# Found by the nightly profile: a sub-loop waits on a suspending constrained call while a map and its
# dynamic map run, so the dynamic map's nested iteration takes the number plan order gives the
# sub-loop's. Concurrent nested evaluations share their numbers as a span (model.py, ``Outcome.spans``).
NESTED_ITERATIONS_RACE = Workflow(
    loops=(Loop(bodies=(Body(nodes=(Node(kind="root"),)),), raise_at=None),
           Loop(bodies=(Body(nodes=(Node(kind="root"),)),), raise_at=None),
           Loop(bodies=(Body(nodes=(Node(kind="select"), Node(kind="constrained"),
                                    Node(kind="sub", after=(0, 1)), Node(kind="map", map_lits=(0,)),
                                    Node(kind="dmap", inputs=(3,)), Node(kind="root", after=(2, 4)))),
                        Body(nodes=(Node(kind="root"),)), Body(nodes=(Node(kind="root"),))), raise_at=None)),
    subs=(Loop(bodies=(Body(nodes=(Node(kind="sync"), Node(kind="sync", cond=0),
                                   Node(kind="root", after=(0, 1)))), Body(nodes=(Node(kind="root"),))),
               raise_at=None),),
    start=2)


@ci_settings(MODEL_EXAMPLES)
@example(NESTED_ITERATIONS_IN_PLAN_ORDER)
@example(NESTED_ITERATIONS_RACE)
@given(dmap_workflows)
def test_dynamic_maps_in_generated_workflows_equal_the_model_hot_and_slow(wf: Workflow) -> None:
    # flow, skips (of the "<task>.map" node too), nested iterations, calls and events: hot = slow = model
    check_hot_slow_model(wf)
