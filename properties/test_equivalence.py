"""Invariant 1: the hot path, the slow path and the reference model agree.

For a generated workflow, ``Engine(hot_plans=True)``, ``Engine(hot_plans=False)`` and
:func:`properties.model.run_model` agree on the value or the exception (type and message), the
multiset of executed calls and the multiset of skips ``(iteration, task, reason)``; the hot and slow
engines emit the same events; run-scope and task-scope resources are set up as often as the model
says and always torn down; a second run on the warm hot engine (every template cached, no
subscriber) gives the same again; and the hot path really ran whenever a template repeated.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import cascade as cs
from hypothesis import example, given

from .builder import Built, Recorder, event_key, make_engine, run_recorded
from .model import Outcome, Workflow, run_model, templates_repeat
from .profiles import ci_settings
from .strategies import workflows


def _skips(events: list[Any]) -> Counter[tuple[int, str, str]]:
    return Counter((e.iteration, e.task_name, e.reason) for e in events if isinstance(e, cs.TaskSkipped))


def _norm(events: list[Any]) -> list[tuple[Any, ...]]:
    return [event_key(e) for e in events if not isinstance(e, cs.StaticAnalysisWarning)]


def _counter_le(a: Counter[Any], b: Counter[Any]) -> bool:
    return all(b[k] >= v for k, v in a.items())


def assert_matches_model(m: Outcome, out: tuple[Any, ...], calls: Counter[str],
                         skips: Counter[Any] | None, what: str) -> None:
    if m.ok:
        assert out == ("ok", m.value), f"{what}: {out} != model value {m.value!r}"
        assert calls == m.calls, f"{what}: calls differ from the model:\n  engine-only {calls - m.calls}\n  model-only {m.calls - calls}"
        if skips is not None:
            assert skips == m.skips, f"{what}: skips differ from the model:\n  engine-only {skips - m.skips}\n  model-only {m.skips - skips}"
    else:
        assert out[0] == "err", f"{what}: returned {out} but the model fails with one of {sorted(m.excs)}"
        assert (out[1], out[2]) in m.excs, f"{what}: raised {out[1:]} but the model fails with one of {sorted(m.excs)}"
        assert _counter_le(m.sure_calls, calls), f"{what}: calls of completed iterations missing: {m.sure_calls - calls}"
        assert _counter_le(calls, m.calls), f"{what}: calls the model never makes: {calls - m.calls}"
        if skips is not None:
            assert _counter_le(m.sure_skips, skips), f"{what}: skips missing: {m.sure_skips - skips}"
            assert _counter_le(skips, m.skips), f"{what}: skips the model never makes: {skips - m.skips}"


async def _three_runs(wf: Workflow, built: Built) -> dict[str, Any]:
    res: dict[str, Any] = {}
    for label, hot in (("hot", True), ("slow", False)):
        engine = make_engine(hot)
        events: list[Any] = []
        unsubscribe = engine.bus.subscribe(cs.Event, events.append)
        rec = Recorder()
        out = await run_recorded(engine, built.target(), rec)
        res[label] = (out, rec, events, engine.stats.as_dict())
        if hot:  # the same workflow again on the warm engine, nobody listening
            unsubscribe()
            rec2 = Recorder()
            out2 = await run_recorded(engine, built.target(), rec2)
            res["warm"] = (out2, rec2, None, engine.stats.as_dict())
    return res


def check_hot_slow_model(wf: Workflow) -> None:
    built = Built(wf)
    m = run_model(wf, built.prefix)
    res = asyncio.run(_three_runs(wf, built))
    hot_out, hot_rec, hot_events, hot_stats = res["hot"]
    slow_out, slow_rec, slow_events, _ = res["slow"]
    warm_out, warm_rec, _, _ = res["warm"]
    # hot == slow, exactly (both are deterministic)
    assert hot_out == slow_out, f"hot {hot_out} != slow {slow_out}"
    assert hot_rec.calls == slow_rec.calls, f"calls: hot-only {hot_rec.calls - slow_rec.calls}, slow-only {slow_rec.calls - hot_rec.calls}"
    assert _skips(hot_events) == _skips(slow_events), "skips differ between hot and slow"
    assert _norm(hot_events) == _norm(slow_events), "events differ between hot and slow"
    assert hot_rec.setups == slow_rec.setups, "resource set-ups differ between hot and slow"
    assert warm_out == hot_out, f"warm engine {warm_out} != first run {hot_out}"
    assert warm_rec.calls == hot_rec.calls, "the warm engine made other calls"
    # == model
    for label, (out, rec, events, _) in res.items():
        assert_matches_model(m, out, rec.calls, _skips(events) if events is not None else None, label)
        assert rec.setups == rec.teardowns, f"{label}: set-ups {dict(rec.setups)} != teardowns {dict(rec.teardowns)}"
        if m.ok:
            assert rec.setups == m.setups, f"{label}: resource set-ups {dict(rec.setups)} != model {dict(m.setups)}"
    # the hot path was really taken
    if templates_repeat(m.templates):
        assert hot_stats["hot_plan_hits"] > 0, f"a template repeated but the hot path never ran: {hot_stats}"


@ci_settings(150)
@given(workflows())
def test_hot_plan_equals_slow_path_equals_model(wf: Workflow) -> None:
    check_hot_slow_model(wf)
