"""Invariant 5, stateful: a RuleBasedStateMachine starts, steps, cancels and awaits runs on one
Engine (on an event loop the machine owns), and pauses, resumes and re-limits tasks (or everything)
while those loops run hot. After every step it checks every finished run against the model, and a
:class:`~properties.builder.Gauge` checks that no body of a paused task started and no limit was
exceeded; awaiting a run first lifts every pause and limit, and the run must then finish (no wake-up
lost when governance changes). A cancelled run tears everything down, and with no run in flight
every constraint slot is free."""

from __future__ import annotations

import asyncio
import contextvars
from dataclasses import dataclass, replace
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from .builder import GAUGE, Built, Gauge, Recorder, make_engine, run_recorded
from .model import Outcome, Workflow, run_model
from .profiles import TOLERATE, budget, ci_settings
from .strategies import workflows
from .test_equivalence import assert_matches_model
from .test_governance import all_task_names


@dataclass
class Run:
    wf: Workflow
    model: Outcome
    rec: Recorder
    task: asyncio.Task[Any]
    cancelled: bool = False
    checked: bool = False


class SharedEngineMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.engine = make_engine(True)
        self.runs: list[Run] = []
        self.gauge = Gauge(ticks=2)
        self.names: list[str] = []
        self.builts: list[Built] = []
        self.holding: list[str] = []
        # Hypothesis may run each step in a context of its own: the runs get a context that has it
        self.context = contextvars.copy_context()
        self.context.run(GAUGE.set, self.gauge)

    def _pending(self) -> list[Run]:
        return [r for r in self.runs if not r.task.done()]

    @rule(wf=workflows(max_start=4, max_loops=2))
    def start_run(self, wf: Workflow) -> None:
        built = Built(wf)
        for name, nd in all_task_names(wf, built.prefix).items():
            self.names.append(name)
            if nd.kind in ("suspend", "spred") or (nd.kind == "root" and nd.mode == "suspend"):
                self.holding.append(name)  # bodies that stay running: where limits bind
            if nd.kind == "constrained":  # admitted before a change, it may start after it
                self.gauge.exempt.add(name)
        self.builts.append(built)
        self._start(built, wf)

    def _start(self, built: Built, wf: Workflow) -> None:
        rec = Recorder()
        task = self.loop.create_task(run_recorded(self.engine, built.iteration("L", 0, wf.start), rec),
                                     context=self.context.copy())
        self.runs.append(Run(wf, run_model(wf, built.prefix), rec, task))

    @precondition(lambda self: bool(self.builts))
    @rule(data=st.data(), start=st.integers(3, 8))
    def start_copy(self, data: st.DataObject, start: int) -> None:
        """Another run of a workflow already running: the same tasks (so limits bind across runs)
        and the same templates, with another start counter."""
        built = data.draw(st.sampled_from(self.builts))
        self._start(built, replace(built.wf, start=start))

    @rule(ticks=st.integers(1, 8))
    def step_loop(self, ticks: int) -> None:
        for _ in range(ticks):
            self.loop.run_until_complete(asyncio.sleep(0))

    @precondition(lambda self: bool(self._pending()))
    @rule(data=st.data())
    def cancel_run(self, data: st.DataObject) -> None:
        run = data.draw(st.sampled_from(self._pending()))
        run.cancelled = True
        run.task.cancel()

    @precondition(lambda self: bool(self.names))
    @rule(data=st.data(), everything=st.booleans())
    def pause(self, data: st.DataObject, everything: bool) -> None:
        name = None if everything and not data.draw(st.booleans()) else data.draw(st.sampled_from(self.names))
        self.engine.pause(name)
        self.gauge.paused.add(name)

    @precondition(lambda self: bool(self.gauge.paused))
    @rule(data=st.data())
    def resume(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.gauge.paused, key=str)))
        self.gauge.paused.discard(name)
        self.engine.resume(name)

    @precondition(lambda self: bool(self.names))
    @rule(data=st.data(), limit=st.none() | st.integers(1, 2))
    def limit(self, data: st.DataObject, limit: int | None) -> None:
        name = data.draw(st.sampled_from(self.holding or self.names))
        self.engine.set_concurrency_limit(name, limit)
        if limit is None:
            self.gauge.limits.pop(name, None)
        else:
            self.gauge.limits[name] = limit

    def _lift_all(self) -> None:
        for name in list(self.gauge.paused):
            self.gauge.paused.discard(name)
            self.engine.resume(name)
        for name in list(self.gauge.limits):
            del self.gauge.limits[name]
            self.engine.set_concurrency_limit(name, None)

    @precondition(lambda self: bool(self._pending()))
    @rule(data=st.data())
    def await_run(self, data: st.DataObject) -> None:
        run = data.draw(st.sampled_from(self._pending()))
        self._lift_all()  # every run may finish now: none may stay asleep
        self.loop.run_until_complete(asyncio.wait([run.task], timeout=30))
        assert run.task.done(), "a run did not finish within 30 s of lifting every pause and limit (lost wake-up?)"

    @invariant()
    def governance_holds(self) -> None:
        assert not self.gauge.violations, f"governance broken: {self.gauge.violations[:3]}"

    @invariant()
    def finished_runs_match_the_model(self) -> None:
        for run in self.runs:
            if run.checked or not run.task.done():
                continue
            run.checked = True
            if run.task.cancelled():
                assert run.cancelled, "a run was cancelled that nobody cancelled"
            else:
                assert_matches_model(run.model, run.task.result(), run.rec.calls, None, "machine run")
            assert run.rec.setups == run.rec.teardowns, f"set-ups {dict(run.rec.setups)} != teardowns {dict(run.rec.teardowns)}"

    @invariant()
    def idle_engine_holds_no_slot(self) -> None:
        if not self._pending() and "cancel-before-start" not in TOLERATE:
            assert self.engine.constraints.available == self.engine.constraints.capacity, (
                f"no run in flight, but slots are held: {self.engine.constraints.available}"
            )

    def teardown(self) -> None:
        try:
            self._lift_all()
            for run in self._pending():
                run.task.cancel()
                run.cancelled = True
            if self.runs:
                self.loop.run_until_complete(asyncio.wait([r.task for r in self.runs], timeout=30))
            self.finished_runs_match_the_model()
            self.idle_engine_holds_no_slot()
            self.governance_holds()
        finally:
            self.loop.close()


MACHINE_EXAMPLES = 100
SharedEngineMachine.TestCase.settings = ci_settings(MACHINE_EXAMPLES, stateful_step_count=15)
test_shared_engine_state_machine = SharedEngineMachine.TestCase

__all__ = ["budget"]
