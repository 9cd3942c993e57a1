"""A hot loop that never suspends must still let other runs on the loop progress."""

import asyncio

import pytest

import cascade as cs
from cascade.runtime import loop as loop_module


@cs.task
def spin(n):
    """A sync tail-call loop: nothing in it ever suspends."""
    if n == 0:
        return "spun"
    return spin(n - 1)


@pytest.mark.asyncio
async def test_a_loop_that_never_suspends_yields_to_other_runs():
    engine = cs.Engine()
    ticks = []

    async def ticker():
        while True:
            ticks.append(engine.stats.tail_calls)
            await asyncio.sleep(0)

    other = asyncio.ensure_future(ticker())
    await asyncio.sleep(0)
    try:
        assert await engine.run(spin(200_000)) == "spun"
    finally:
        other.cancel()
    # The ticker ran while the loop was mid-way: it saw tail-call counts strictly between the
    # start and the end of the loop.
    assert any(0 < t < 200_000 for t in ticks), ticks[:5]


@pytest.mark.asyncio
async def test_without_the_fairness_slice_nothing_else_runs(monkeypatch):
    """The counter-test: with the slice made infinite the same loop starves the ticker, so the
    test above really measures the engine's yielding, not some incidental suspension."""
    monkeypatch.setattr(loop_module, "FAIRNESS_SLICE", float("inf"))
    engine = cs.Engine()
    ticks = []

    async def ticker():
        while True:
            ticks.append(engine.stats.tail_calls)
            await asyncio.sleep(0)

    other = asyncio.ensure_future(ticker())
    await asyncio.sleep(0)
    try:
        assert await engine.run(spin(50_000)) == "spun"
    finally:
        other.cancel()
    assert not any(0 < t < 50_000 for t in ticks)
