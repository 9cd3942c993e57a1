"""A cancellation stays a cancellation, and cancelling some runs changes nothing for the others.

Several generated workflows run concurrently on one Engine (runs of one workflow share its tasks,
so they share hot plans and compete for the engine's capacity); any subset of them is cancelled, each
after its own number of event-loop cycles (from 0, before the run started, to well into its loops).
Then:

- every run that was still running when cancelled raises ``CancelledError`` (a run whose solo
  outcome is a failure may raise that failure instead, when the failure and the cancellation meet
  in one loop cycle: the failure came first, as ``asyncio.TaskGroup`` decides) and publishes
  ``RunFinished(status="Cancelled")`` when it does;
- every other run gives exactly what it gives alone on a fresh Engine (value or exception, calls);
- every constraint slot is free again and nobody is left queued for one;
- every resource any run set up was torn down.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from dataclasses import dataclass
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

import cascade as cs

from .builder import Built, Recorder, make_engine, run_recorded
from .model import Workflow
from .profiles import ci_settings
from .strategies import workflows

# Suspending and constrained calls, so that runs wait for slots and overlap for many cycles.
KINDS = ("constrained",) * 4 + ("suspend",) * 3 + ("sync", "map", "resource", "async", "pred")
STATS: Counter[str] = Counter()  # what the generated fleets exercised (for tuning the strategy)


@dataclass(frozen=True)
class CancelPlan:
    hot: bool
    workflows: tuple[Workflow, ...]
    runs: tuple[tuple[int, int], ...]  # (workflow index, start counter)
    cancel_at: tuple[tuple[str, int] | None, ...]  # per run: (trigger, n) or never; see cancel_plans


@st.composite
def cancel_plans(draw: Any) -> CancelPlan:
    wf = workflows(kinds=KINDS, max_subs=0, max_loops=2, max_bodies=2, max_start=4)
    wfs = tuple(draw(st.lists(wf, min_size=1, max_size=2)))
    runs = tuple(draw(st.lists(st.tuples(st.integers(0, len(wfs) - 1), st.integers(0, 4)), min_size=3, max_size=8)))
    # after n loop cycles (mostly early: most runs finish within a few dozen), or synchronously
    # inside the engine's n-th event, its n-th TaskExecutionFinished, or the n-th of a constrained
    # call: between a call finishing and its slot being released
    cycles = st.tuples(st.just("cycle"), st.integers(1, 12) | st.integers(0, 40))
    events = st.tuples(st.just("event"), st.integers(1, 60))
    finishing = st.tuples(st.just("finished"), st.integers(1, 30))  # a call of any run finished
    releasing = st.tuples(st.just("release"), st.integers(1, 4))  # a constrained call finished
    when = st.none() | cycles | events | finishing | releasing
    cancel_at = tuple(draw(st.lists(when, min_size=len(runs), max_size=len(runs))))
    return CancelPlan(draw(st.booleans()), wfs, runs, cancel_at)


def check_cancellation(plan: CancelPlan) -> None:
    builts = [Built(wf) for wf in plan.workflows]
    targets = [(builts[w], dataclasses.replace(plan.workflows[w], start=start)) for w, start in plan.runs]

    async def solo(built: Built, start: int) -> tuple[Any, Recorder]:
        rec = Recorder()
        return await run_recorded(make_engine(plan.hot), built.iteration("L", 0, start), rec), rec

    async def shared() -> tuple[list[Any], list[Recorder], cs.Engine, list[bool], list[Any], dict[str, int],
                                list[int]]:
        engine = make_engine(plan.hot)
        events: list[Any] = []
        recs = [Recorder() for _ in targets]
        tasks: list[asyncio.Future[Any]] = []
        requested = [False] * len(targets)
        run_of: dict[str, int] = {}
        finishes = [0, 0]  # calls finished, constrained calls finished
        when = [0] * len(targets)  # events published when a run was cancelled (huge: from its own step)

        def cancel(mode: str, n: int) -> None:
            for r, at in enumerate(plan.cancel_at):
                if at == (mode, n) and not tasks[r].done():
                    # from inside the run's own step, the cancellation lands at its next await
                    own = asyncio.current_task() is tasks[r]
                    requested[r] = tasks[r].cancel()
                    when[r] = len(events) if not own else 1 << 30

        def on_event(e: Any) -> None:
            events.append(e)
            if isinstance(e, cs.RunStarted):  # published in the run's own Task, in its first step
                run_of[e.run_id] = tasks.index(asyncio.current_task())  # type: ignore[arg-type]
            cancel("event", len(events))
            if isinstance(e, cs.TaskExecutionFinished):
                finishes[0] += 1
                cancel("finished", finishes[0])
                if "constrained" in e.task_name:  # its slot is released right after this event
                    finishes[1] += 1
                    cancel("release", finishes[1])

        engine.bus.subscribe(cs.Event, on_event)
        tasks += [asyncio.ensure_future(run_recorded(engine, built.iteration("L", 0, wf.start), rec))
                  for (built, wf), rec in zip(targets, recs)]
        last = max((at[1] for at in plan.cancel_at if at is not None and at[0] == "cycle"), default=-1)
        for cycle in range(last + 1):
            cancel("cycle", cycle)
            await asyncio.sleep(0)
        outs = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=60)
        return list(outs), recs, engine, requested, events, run_of, when

    async def main() -> Any:
        solos = [await solo(built, wf.start) for built, wf in targets]
        return solos, await shared()

    solos, (outs, recs, engine, requested, events, run_of, when) = asyncio.run(main())
    # A run cancelled before its first step never starts: no RunStarted, no RunFinished. Every
    # started run finishes exactly once.
    finished = Counter(e.run_id for e in events if isinstance(e, cs.RunFinished))
    assert finished == Counter(list(run_of)), f"RunFinished per started run: {dict(finished)}"
    status: list[str | None] = [None] * len(outs)
    for k, e in enumerate(events, 1):
        if isinstance(e, cs.RunFinished):
            r = run_of[e.run_id]
            # cancelled after its RunFinished, or from inside its own step (it may finish without
            # awaiting again): the engine may have finished the run, and asyncio still cancels the
            # Task when its coroutine returns
            status[r] = "done before the cancellation" if requested[r] and when[r] >= k else e.status
    for r in range(len(outs)):
        assert status[r] is not None or requested[r], f"run {r} was never cancelled but did not start"
    for r, (out, rec, (solo_out, solo_rec)) in enumerate(zip(outs, recs, solos)):
        assert rec.setups == rec.teardowns, f"run {r}: set-ups {dict(rec.setups)} != teardowns {dict(rec.teardowns)}"
        if requested[r]:
            STATS["cancelled mid-run" if rec.calls else "cancelled"] += 1
            if isinstance(out, asyncio.CancelledError):
                assert status[r] in (None, "Cancelled", "done before the cancellation"), (
                    f"run {r} raised CancelledError but finished {status[r]!r}"
                )
                continue
            assert not isinstance(out, BaseException), f"run {r} was cancelled and raised {out!r}"
            # the only other outcome allowed: its own failure, met in the cycle of the cancellation
            assert solo_out[0] == "err" and out == solo_out, (
                f"run {r} was cancelled but gave {out!r} (alone: {solo_out!r})"
            )
            continue
        STATS["failed" if isinstance(out, tuple) and out[0] == "err" else "kept"] += 1
        assert not isinstance(out, BaseException), f"run {r} (not cancelled) raised {out!r}"
        assert out == solo_out, f"run {r}: shared engine gave {out}, alone {solo_out}"
        assert rec.calls == solo_rec.calls, (
            f"run {r}: calls differ from the solo run: {rec.calls - solo_rec.calls} / {solo_rec.calls - rec.calls}"
        )
    cm = engine.constraints
    assert cm.available == cm.capacity, f"constraint slots not released: {cm.available} of {cm.capacity}"
    everything = dict(cm.capacity)
    assert cm.try_acquire(everything), "a waiter is still queued for a constraint slot"
    cm.release(everything)


EXAMPLES = 100


@ci_settings(EXAMPLES)
@given(cancel_plans())
def test_cancelling_any_runs_leaves_others_unchanged_and_frees_every_slot(plan: CancelPlan) -> None:
    check_cancellation(plan)


__all__ = ["CancelPlan", "cancel_plans", "check_cancellation"]
