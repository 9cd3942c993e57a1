"""Properties written for the mutants that survived ``nox -s mutation`` (see docs/mutation.md).

Each property is named for its invariant and uses only the public API, so it does not depend on the
reference model: a small fan of branches (each a chain of sync, async or suspending steps that
return a value, return a lazy result to evaluate, or raise) whose expected value is plain arithmetic.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

import cascade as cs

from .profiles import ci_settings

# A step: (how it runs, what it returns). "tail" returns a lazy result the engine must evaluate.
# "suspend" yields None to the loop (asyncio.sleep(0)); "future" waits for a real Future, resolved one
# loop cycle later, so a step resumed with the wrong awaitable is seen.
KINDS = ("sync", "async", "suspend", "future")
RESULTS = ("value", "tail", "raise")


@cs.task(name="gap_helper")
def _helper(v: int, i: int) -> int:
    return v + i


def _outcome(v: int, i: int, result: str) -> Any:
    if result == "raise":
        raise ValueError(f"boom{i}")
    if result == "tail":
        return _helper(v, i)
    return v + i


@cs.task(name="gap_sync")
def _sync_step(v: int, i: int, result: str) -> Any:
    return _outcome(v, i, result)


@cs.task(name="gap_async")
async def _async_step(v: int, i: int, result: str) -> Any:
    return _outcome(v, i, result)


@cs.task(name="gap_suspend")
async def _suspend_step(v: int, i: int, result: str) -> Any:
    await asyncio.sleep(0)
    return _outcome(v, i, result)


@cs.task(name="gap_future")
async def _future_step(v: int, i: int, result: str) -> Any:
    fut = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(fut.set_result, i)
    return _outcome(v, await fut, result)


_STEP = {"sync": _sync_step, "async": _async_step, "suspend": _suspend_step, "future": _future_step}

steps = st.tuples(st.sampled_from(KINDS), st.sampled_from(RESULTS))
fans = st.lists(st.lists(steps, min_size=1, max_size=3).map(tuple), min_size=1, max_size=3).map(tuple)


def _branches(fan: tuple[tuple[tuple[str, str], ...], ...], final: bool) -> list[Any]:
    """The fan's branches; a "raise" step raises only in the final iteration (so on the hot path
    when the loop repeats) and adds its number like a "value" step before."""
    branches, i = [], 0
    for chain in fan:
        value: Any = 0
        for kind, result in chain:
            i += 1
            value = _STEP[kind](value, i, result if final or result != "raise" else "value")
        branches.append(value)
    return branches


@cs.task(name="gap_again")
def _again(n: int, acc: int, fan: Any, *parts: int) -> Any:
    """One iteration of a tail-call loop: the same fan again ``n`` more times (a hot plan from the
    second iteration on), then the sum of every iteration's branch values."""
    acc += sum(parts)
    if n == 0:
        return acc
    return _again(n - 1, acc, fan, *_branches(fan, n == 1))


def _build(fan: Any, loops: int) -> tuple[Any, int | None]:
    """The target and its expected value (None when some step raises)."""
    count = sum(len(chain) for chain in fan)
    if any(result == "raise" for chain in fan for _, result in chain):
        expected = None
    else:
        expected = (loops + 1) * count * (count + 1) // 2  # each step i adds i, every iteration
    return _again(loops, 0, fan, *_branches(fan, loops == 0)), expected


async def _run(engine: cs.Engine, target: Any) -> tuple[tuple[Any, ...], list[Any]]:
    events: list[Any] = []
    engine.bus.subscribe(cs.Event, events.append)
    try:
        out: tuple[Any, ...] = ("ok", await engine.run(target))
    except Exception as exc:
        out = ("err", repr(exc))
    return out, events


@ci_settings(200)
@given(fans, st.integers(0, 3), st.booleans())
def test_every_started_step_finishes_once_with_its_own_outcome(fan: Any, loops: int, hot: bool) -> None:
    """With a subscriber, every TaskExecutionStarted of a step is matched by exactly one
    TaskExecutionFinished of the same node whose status and error are that step's outcome
    (Succeeded, or Failed with the step's own exception or a cancellation), and the run's value is
    the arithmetic the steps describe, also when a suspended step returns a lazy result, on the hot
    and the slow path (the same fan repeated by a tail-call loop, so hot plans run)."""
    target, expected = _build(fan, loops)
    out, events = asyncio.run(_run(cs.Engine(hot_plans=hot), target))
    if expected is None:
        assert out[0] == "err" and "boom" in out[1], f"a step raised but the run gave {out}"
    else:
        assert out == ("ok", expected), f"run gave {out}, the steps add up to {expected}"
    started = Counter((e.task_name, e.node, e.iteration) for e in events if isinstance(e, cs.TaskExecutionStarted))
    finished = [e for e in events if isinstance(e, cs.TaskExecutionFinished)]
    ended = Counter((e.task_name, e.node, e.iteration) for e in finished)
    assert ended == started, f"finished events do not pair with started ones: started {started}, finished {ended}"
    for e in finished:
        if e.status == "Succeeded":
            assert e.error is None, f"{e} succeeded with an error"
        else:
            assert e.status == "Failed", f"{e}: status must be Succeeded or Failed"
            assert e.error is not None and ("boom" in e.error or "CancelledError" in e.error), e
            assert expected is None, f"{e} failed in a run where no step raises"
