"""Isolation at scale: thousands of messaging agent loops on one Engine each do what they do alone.

Every agent is a tail-call loop: ``cs.recv`` its n-th input, fold it into its state, ``cs.publish``
the state, repeat. Inputs are recorded, not timed: agent ``i``'s n-th message goes to its own topic
``a/i/in/n`` as a *retained* message, so whether it is published before the agent listens (the
retained message is delivered on subscribe) or while it listens (live delivery), the agent gets
exactly that message. Hypothesis draws the inputs and the global publication order, interleaved in
drawn batches with the agents' progress on the shared engine; no wall clock is involved.

The trace of an agent is its run's result (its states in order) and what it published on
``a/i/out``. On one shared Engine (one connector, one plan cache, thousands of concurrent runs) each
agent's trace must equal its trace alone: a fresh Engine with only its own inputs.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import cascade as cs

from .profiles import budget

EXAMPLES = 4
AGENTS = 2_000
CANCEL_AGENTS = 200
MODULUS = 1_000_003


@cs.task
def agent(i: int, n: int, k: int, trace: tuple[int, ...]) -> Any:
    """Agent ``i`` before its ``n``-th of ``k`` inputs."""
    if n == k:
        return trace
    return absorb(i, n, k, trace, cs.recv(f"a/{i}/in/{n}"))


@cs.task
def absorb(i: int, n: int, k: int, trace: tuple[int, ...], message: Any) -> Any:
    state = ((trace[-1] if trace else i) * 31 + message.payload) % MODULUS
    told = cs.publish(f"a/{i}/out", state)
    return agent(i, n + 1, k, trace + (state,)).after(told)


@st.composite
def fleets(draw: Any, agents: int = AGENTS) -> dict[str, Any]:
    """Inputs per agent (a few drawn patterns, salted per agent) and a publication schedule."""
    patterns = draw(st.lists(st.lists(st.integers(-1_000, 1_000), min_size=1, max_size=3),
                             min_size=1, max_size=6))
    inputs = [[v + i for v in patterns[i % len(patterns)]] for i in range(agents)]
    seed = draw(st.integers(0, 2**32 - 1))
    batch = draw(st.sampled_from([1, 13, 500, 10**6]))
    return {"inputs": inputs, "seed": seed, "batch": batch}


@st.composite
def fleets_with_cancellations(draw: Any) -> dict[str, Any]:
    """A smaller fleet, and agents cancelled each after its own number of publication batches
    (0: before any input was published; most are then waiting in ``cs.recv``)."""
    fleet = draw(fleets(CANCEL_AGENTS))
    fleet["batch"] = draw(st.sampled_from([1, 7, 40]))
    cancel = draw(st.dictionaries(st.integers(0, CANCEL_AGENTS - 1), st.integers(0, 12), min_size=1,
                                  max_size=CANCEL_AGENTS // 2))
    return {**fleet, "cancel": cancel}


def _messages(inputs: list[list[int]], seed: int) -> list[tuple[str, int]]:
    """Every (topic, payload) in a global order drawn by ``seed`` (each agent's own order kept
    would not matter: every input has its own topic)."""
    out = [(f"a/{i}/in/{n}", v) for i, values in enumerate(inputs) for n, v in enumerate(values)]
    random.Random(seed).shuffle(out)
    return out


async def _run_fleet(engine: cs.Engine, agents: list[int], inputs: list[list[int]],
                     order: list[tuple[str, int]], batch: int, cancel: dict[int, int] | None = None,
                     ) -> tuple[dict[int, Any], dict[str, list[int]]]:
    """Run the agents, publish their inputs in ``order`` ``batch`` by ``batch``; ``cancel``: agent ->
    after how many batches its run is cancelled (its result is then what it returned before, or
    the ``CancelledError``)."""
    outs: dict[str, list[int]] = {}
    await engine.connector.subscribe("a/+/out", lambda m: outs.setdefault(m.topic, []).append(m.payload))
    runs = {i: asyncio.ensure_future(engine.run(agent(i, 0, len(inputs[i]), ()))) for i in agents}
    cancel = {i: n for i, n in (cancel or {}).items() if i in runs}
    cancelled: dict[int, asyncio.Future[Any]] = {}
    for k, start in enumerate(range(0, max(len(order), 1), batch)):
        for i, n in cancel.items():
            if n == k:
                runs[i].cancel()
                cancelled[i] = runs.pop(i)
        for topic, payload in order[start:start + batch]:
            await engine.connector.publish(topic, payload, retain=True)
        await asyncio.sleep(0)  # let agents progress between batches
    for i in cancel:  # cancelled after the last batch: while they finish their last inputs
        if i in runs:
            runs[i].cancel()
            cancelled[i] = runs.pop(i)
    # Nothing here waits on a clock: with every input published, each loop cycle must finish an
    # agent step until all are done. Cycles without progress mean an agent waits for an input it
    # will never get (a message delivered elsewhere or lost).
    idle = 0
    while idle < 50 and not all(r.done() for r in runs.values()):
        before = sum(map(len, outs.values()))
        await asyncio.sleep(0)
        idle = idle + 1 if sum(map(len, outs.values())) == before else 0
    stuck = [i for i, r in runs.items() if not r.done()]
    for r in runs.values():
        r.cancel()
    assert not stuck, f"agents {stuck[:10]} wait for inputs that were published but never delivered"
    results = dict(zip(runs, await asyncio.gather(*runs.values())))
    ends = await asyncio.gather(*cancelled.values(), return_exceptions=True)
    results.update(zip(cancelled, ends))
    return results, outs


async def _alone(inputs: list[list[int]], order: list[tuple[str, int]]) -> list[tuple[Any, list[int]]]:
    """Each agent's result and publications on a fresh Engine with only its own inputs (engines
    run side by side: they share nothing, so this is each agent alone)."""
    async def one(i: int) -> tuple[Any, list[int]]:
        mine = [(t, v) for t, v in order if t.startswith(f"a/{i}/in/")]
        results, outs = await _run_fleet(cs.Engine(), [i], inputs, mine, 10**6)
        return results[i], outs.get(f"a/{i}/out", [])
    return list(await asyncio.gather(*(one(i) for i in range(len(inputs)))))


def check_agents_isolated(fleet: dict[str, Any]) -> None:
    inputs: list[list[int]] = fleet["inputs"]
    order = _messages(inputs, fleet["seed"])

    async def shared() -> tuple[dict[int, Any], dict[str, list[int]], cs.Engine]:
        engine = cs.Engine()
        results, outs = await _run_fleet(engine, list(range(len(inputs))), inputs, order, fleet["batch"])
        return results, outs, engine

    results, outs, engine = asyncio.run(shared())
    expected = asyncio.run(_alone(inputs, order))
    for i, (want_result, want_outs) in enumerate(expected):
        assert results[i] == want_result, (i, results[i], want_result)
        assert outs.get(f"a/{i}/out", []) == want_outs, (i, outs.get(f"a/{i}/out"), want_outs)
        assert len(want_result) == len(inputs[i])
    assert engine.connector.subscription_count == 1  # only the trace collector: every recv unsubscribed
    if any(len(v) >= 2 for v in inputs):
        assert engine.stats.hot_plan_hits > 0


@settings(max_examples=budget(EXAMPLES))
@given(fleets())
def test_thousands_of_agents_on_one_engine_each_do_what_they_do_alone(fleet: dict[str, Any]) -> None:
    check_agents_isolated(fleet)


def check_cancelled_agents_leave(fleet: dict[str, Any]) -> None:
    inputs: list[list[int]] = fleet["inputs"]
    order = _messages(inputs, fleet["seed"])
    cancel: dict[int, int] = fleet["cancel"]

    async def shared() -> tuple[dict[int, Any], dict[str, list[int]], int]:
        engine = cs.Engine()
        results, outs = await _run_fleet(engine, list(range(len(inputs))), inputs, order, fleet["batch"], cancel)
        return results, outs, engine.connector.subscription_count

    results, outs, subscriptions = asyncio.run(shared())
    expected = asyncio.run(_alone(inputs, order))
    stopped = 0
    for i, (want_result, want_outs) in enumerate(expected):
        got, told = results[i], outs.get(f"a/{i}/out", [])
        if i in cancel and isinstance(got, asyncio.CancelledError):
            stopped += 1
            assert told == want_outs[:len(told)], (i, told, want_outs)  # what it did before, nothing else
            continue
        assert got == want_result, (i, got, want_result)
        assert told == want_outs, (i, told, want_outs)
    # every listener left: on its message, or when its run was cancelled while it listened
    assert subscriptions == 1, f"{subscriptions - 1} cs.recv listeners left behind ({stopped} runs cancelled)"


@settings(max_examples=budget(EXAMPLES))
@given(fleets_with_cancellations())
def test_cancelled_agents_leave_their_topics_and_the_others_do_what_they_do_alone(fleet: dict[str, Any]) -> None:
    check_cancelled_agents_leave(fleet)
