"""Invariant 5, stateful: a RuleBasedStateMachine starts, steps, cancels and awaits runs on one
Engine (on an event loop the machine owns) and, after every step, checks every finished run against
the model; a cancelled run tears everything down, and with no run in flight every constraint slot is
free."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from .builder import Built, Recorder, make_engine, run_recorded
from .model import Outcome, Workflow, run_model
from .profiles import TOLERATE, budget, ci_settings
from .strategies import workflows
from .test_equivalence import assert_matches_model


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

    def _pending(self) -> list[Run]:
        return [r for r in self.runs if not r.task.done()]

    @rule(wf=workflows(max_start=4, max_loops=2))
    def start_run(self, wf: Workflow) -> None:
        built = Built(wf)
        rec = Recorder()
        task = self.loop.create_task(run_recorded(self.engine, built.target(), rec))
        self.runs.append(Run(wf, run_model(wf, built.prefix), rec, task))

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

    @precondition(lambda self: bool(self._pending()))
    @rule(data=st.data())
    def await_run(self, data: st.DataObject) -> None:
        run = data.draw(st.sampled_from(self._pending()))
        self.loop.run_until_complete(asyncio.wait([run.task], timeout=30))
        assert run.task.done(), "a run did not finish within 30 s (leaked constraint slot?)"

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
            for run in self._pending():
                run.task.cancel()
                run.cancelled = True
            if self.runs:
                self.loop.run_until_complete(asyncio.wait([r.task for r in self.runs], timeout=30))
            self.finished_runs_match_the_model()
            self.idle_engine_holds_no_slot()
        finally:
            self.loop.close()


SharedEngineMachine.TestCase.settings = ci_settings(100, stateful_step_count=15)
test_shared_engine_state_machine = SharedEngineMachine.TestCase

__all__ = ["budget"]
