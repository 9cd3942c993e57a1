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


async def _ticks_during(n: int) -> list[int]:
    """Run ``spin(n)`` while a ticker records the engine's tail-call count at every loop cycle."""
    engine = cs.Engine()
    ticks: list[int] = []

    async def ticker():
        while True:
            ticks.append(engine.stats.tail_calls)
            await asyncio.sleep(0)

    other = asyncio.ensure_future(ticker())
    await asyncio.sleep(0)
    try:
        assert await engine.run(spin(n)) == "spun"
    finally:
        other.cancel()
    return ticks


@pytest.mark.asyncio
async def test_a_loop_that_never_suspends_yields_to_other_runs():
    ticks = await _ticks_during(200_000)
    # The ticker ran while the loop was mid-way: it saw counts strictly between start and end.
    assert any(0 < t < 200_000 for t in ticks), ticks[:5]


@pytest.mark.asyncio
async def test_without_the_fairness_slice_nothing_else_runs(monkeypatch):
    """The counter-test: with the slice made infinite the same loop starves the ticker, so the
    test above really measures the engine's yielding, not some incidental suspension."""
    monkeypatch.setattr(loop_module, "FAIRNESS_SLICE", float("inf"))
    ticks = await _ticks_during(50_000)
    assert not any(0 < t < 50_000 for t in ticks)
