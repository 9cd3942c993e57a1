"""Invariant 2: runs sharing one Engine are isolated.

Several generated workflows (each with its own task names) run concurrently on one Engine, some of
them several times with different start counters (same templates: shared hot plans) and different
start offsets, so that runs of one template interleave at their suspension points (suspending
conditions, suspending roots, suspending calls); one run is made to fail and one is cancelled
mid-run. Every other run gives exactly what it gives alone on a
fresh Engine (value or exception, calls, events), every event carries its own run's ``run_id`` and
names only its own workflow's tasks, and once everything settled every resource was torn down and
every constraint slot is free again.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import gc
from collections import Counter
from dataclasses import dataclass
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

import cascade as cs

from .builder import Built, Recorder, event_key, make_engine, run_recorded
from .model import Loop, Workflow, run_model
from .profiles import TOLERATE, ci_settings
from .strategies import chance, interleaving_workflows, workflows
from .test_equivalence import assert_matches_model

_RUN: contextvars.ContextVar[int] = contextvars.ContextVar("cascade_properties_run", default=-1)

# kinds that suspend mid-iteration, so that runs sharing templates really interleave
CONCURRENT_KINDS = ("suspend", "sync", "suspend", "constrained", "map", "pred", "resource", "flaky", "spred",
                    "select", "router", "cached", "kw")
# kinds whose per-run bookkeeping (skips, route choices, values) outlives a suspension
INTERLEAVING_KINDS = ("spred", "suspend", "sync", "select", "router", "suspend", "pred", "map", "router", "suspend")
STATS: Counter[str] = Counter()  # what the generated fleets exercised (for tuning the strategy)


@dataclass(frozen=True)
class Fleet:
    workflows: tuple[Workflow, ...]
    runs: tuple[tuple[int, int], ...]  # (workflow index, start counter)
    offsets: tuple[int, ...]  # loop cycles each run waits before it starts
    failing: int | None  # index into runs of the run made to fail (its loop 0 root raises at once)
    cancelled: int | None  # index into runs of the run cancelled ...
    cancel_after: int  # ... at its cancel_after-th TaskExecutionStarted


@st.composite
def fleets(draw: Any, with_failure: bool = True, with_cancel: bool = True) -> Fleet:
    wf = workflows(max_start=4) | workflows(kinds=CONCURRENT_KINDS, max_start=4, max_subs=0)
    if chance(draw, 2):  # copies of one flow-heavy loop: one template, several runs in flight on its plan
        wfs = (draw(interleaving_workflows(INTERLEAVING_KINDS)),)
        runs = tuple((0, draw(st.integers(3, 8))) for _ in range(draw(st.integers(3, 6))))
    else:
        wfs = tuple(draw(st.lists(wf, min_size=1, max_size=3)))
        runs = tuple(draw(st.lists(st.tuples(st.integers(0, len(wfs) - 1), st.integers(0, 4)), min_size=2, max_size=5)))
    offsets = tuple(draw(st.lists(st.integers(0, 3), min_size=len(runs), max_size=len(runs))))
    idx = st.integers(0, len(runs) - 1)
    failing = draw(idx) if with_failure else None
    cancelled = draw(idx.filter(lambda i: i != failing)) if with_cancel else None
    return Fleet(wfs, runs, offsets, failing, cancelled, draw(st.integers(1, 6)))


def _fail_now(wf: Workflow, start: int) -> Workflow:
    """The same workflow whose loop-0 root raises in the first iteration (if it runs at all)."""
    loops = (dataclasses.replace(wf.loops[0], raise_at=start),) + wf.loops[1:]
    return dataclasses.replace(wf, loops=loops, start=start)


def _events_of(events: list[Any]) -> Counter[Any]:
    # TaskBlocked depends on what other runs hold; warnings are once per engine and task
    return Counter(event_key(e) for e in events
                   if not isinstance(e, (cs.TaskBlocked, cs.StaticAnalysisWarning)))


def check_isolation(fleet: Fleet) -> None:
    # every run: its own (workflow, built) pair; runs of one workflow share tasks (and hot plans)
    builts = [Built(wf) for wf in fleet.workflows]
    plan: list[tuple[Built, Workflow, Any]] = []
    for r, (w, start) in enumerate(fleet.runs):
        wf = dataclasses.replace(fleet.workflows[w], start=start)
        built = builts[w]
        if r == fleet.failing:
            wf = _fail_now(wf, start)
            built = Built(wf)  # its own tasks: the raising root is a different task
        elif r == fleet.cancelled:
            built = Built(wf)  # its own names, so its events are easy to tell apart
        plan.append((built, wf, built.iteration("L", 0, start)))

    async def solo(built: Built, target: Any) -> tuple[Any, Recorder, list[Any]]:
        engine = make_engine(True)
        events: list[Any] = []
        engine.bus.subscribe(cs.Event, events.append)
        rec = Recorder()
        out = await run_recorded(engine, target, rec)
        return out, rec, events

    async def shared() -> tuple[list[Any], list[Recorder], list[Any], cs.Engine, set[str]]:
        engine = make_engine(True)
        events: list[Any] = []
        engine.bus.subscribe(cs.Event, events.append)
        recs = [Recorder() for _ in plan]
        tasks: list[asyncio.Task[Any]] = []
        victim_id: list[str] = []
        started = [0]
        cancel_requested: set[str] = set()

        def watch(e: Any) -> None:
            if isinstance(e, cs.RunStarted):
                run_of[e.run_id] = _RUN.get()  # published in the run's own task
                if run_of[e.run_id] == fleet.cancelled:
                    victim_id.append(e.run_id)
            elif isinstance(e, cs.TaskExecutionStarted) and victim_id and e.run_id == victim_id[0]:
                started[0] += 1
                if started[0] == fleet.cancel_after:
                    cancel_requested.add(e.run_id)
                    tasks[fleet.cancelled].cancel()  # type: ignore[index]

        engine.bus.subscribe(cs.Event, watch)

        async def delayed(k: int, target: Any, rec: Recorder) -> Any:
            _RUN.set(k)
            for _ in range(fleet.offsets[k]):
                await asyncio.sleep(0)
            return await run_recorded(engine, target, rec)

        for k, ((_built, _wf, target), rec) in enumerate(zip(plan, recs)):
            tasks.append(asyncio.ensure_future(delayed(k, target, rec)))
        try:
            done = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=20)
        except TimeoutError:
            raise AssertionError("runs on the shared engine did not finish within 20 s (alone they do at once): "
                                 "a run waits for something another run consumed") from None
        return list(done), recs, events, engine, cancel_requested

    async def main() -> Any:
        solos = [await solo(built, target) for built, wf, target in plan]
        return solos, await shared()

    run_of: dict[str, int] = {}
    solos, (outs, recs, events, engine, cancel_requested) = asyncio.run(main())
    gc.collect()
    # which run is which: each run's RunStarted is published in its own task, which knows its index
    assert sorted(run_of.values()) == list(range(len(plan))), f"RunStarted of runs {sorted(run_of.values())}"
    by_id = run_of
    run_ids = [rid for rid, _ in sorted(run_of.items(), key=lambda kv: kv[1])]
    per_run: list[list[Any]] = [[] for _ in plan]
    for e in events:
        assert e.run_id in by_id, f"event of an unknown run: {e}"
        r = by_id[e.run_id]
        per_run[r].append(e)
        name = getattr(e, "task_name", None) or getattr(e, "target", None)
        if name is not None and name != "Router":
            assert name.startswith(plan[r][0].prefix), f"run {r} ({e.run_id}) names a task of another workflow: {e}"
    for r, ((built, wf, _), out, rec, (solo_out, solo_rec, solo_events)) in enumerate(zip(plan, outs, recs, solos)):
        assert rec.setups == rec.teardowns, f"run {r}: set-ups {dict(rec.setups)} != teardowns {dict(rec.teardowns)}"
        finished = [e for e in per_run[r] if isinstance(e, cs.RunFinished)]
        assert len(finished) == 1, f"run {r}: {len(finished)} RunFinished events"
        late = per_run[r][per_run[r].index(finished[0]) + 1:]
        assert "cancel-before-start" in TOLERATE or not late, f"run {r}: events after RunFinished: {late}"
        if run_ids[r] in cancel_requested:
            STATS["cancelled"] += 1
            assert isinstance(out, asyncio.CancelledError), f"run {r} was cancelled but gave {out!r}"
            assert finished[0].status in ("Cancelled", "Succeeded", "Failed")
            continue
        assert not isinstance(out, BaseException), f"run {r} raised {out!r}"
        STATS["failed" if out[0] == "err" else "succeeded"] += 1
        assert out == solo_out, f"run {r}: shared engine gave {out}, alone {solo_out}"
        assert rec.calls == solo_rec.calls, f"run {r}: calls differ from the solo run: {rec.calls - solo_rec.calls} / {solo_rec.calls - rec.calls}"
        mine, alone = _events_of(per_run[r][: per_run[r].index(finished[0]) + 1]), _events_of(solo_events)
        assert mine == alone, f"run {r}: events differ from the solo run: {mine - alone} / {alone - mine}"
        m = run_model(wf, built.prefix)
        assert_matches_model(m, out, rec.calls, None, f"run {r}")
    assert "cancel-before-start" in TOLERATE or engine.constraints.available == engine.constraints.capacity, (
        f"constraint slots not released: {engine.constraints.available}"
    )


EXAMPLES = 150


@ci_settings(EXAMPLES)
@given(fleets())
def test_shared_engine_runs_are_isolated(fleet: Fleet) -> None:
    check_isolation(fleet)


__all__ = ["Fleet", "Loop", "check_isolation", "fleets"]
