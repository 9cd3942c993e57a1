"""The firefly example: grid, order parameter, and a short real run on one Engine."""

from __future__ import annotations

import asyncio
import math

import pytest

import cascade as cs
from examples import fireflies


def test_moore_neighbours_on_a_torus():
    # 4 x 3 torus, cell 0 at (0, 0): neighbours wrap around both edges
    assert sorted(fireflies.moore_neighbours(0, 4, 3)) == [1, 3, 4, 5, 7, 8, 9, 11]
    assert all(len(fireflies.moore_neighbours(i, 50, 50)) == 8 for i in range(2500))
    # a 1 x 3 ring: only two distinct neighbours, itself excluded
    assert sorted(fireflies.moore_neighbours(1, 3, 1)) == [0, 2]
    assert fireflies.grid_shape(2500) == (50, 50)
    assert fireflies.grid_shape(12) == (4, 3)


def test_order_parameter():
    sim = fireflies.Sim(4, 1.0, 0.0)
    sim.origins[:] = [0.0, 0.0, 0.0, 0.0]
    assert sim.order_parameter(0.3) == pytest.approx(1.0)
    sim.origins[:] = [0.0, 0.5, 0.0, 0.5]  # two groups half a period apart cancel out
    assert sim.order_parameter(0.3) == pytest.approx(0.0, abs=1e-12)
    sim.origins[:] = [0.0, 0.25, 0.5, 0.75]
    assert sim.order_parameter(0.1) == pytest.approx(0.0, abs=1e-12)
    sim.origins[:] = [0.0, 0.0, 0.25, 0.25]  # two pairs a quarter apart: |1 + i| / 2
    assert sim.order_parameter(0.0) == pytest.approx(math.sqrt(2) / 2)


def test_a_short_run_on_one_engine_runs_hot_and_cleans_up():
    engine = cs.Engine()

    async def go():
        return await fireflies.simulate(agents=36, period=0.05, nudge=0.2, duration=0.6, seed=3,
                                        engine=engine)

    summary = asyncio.run(go())
    assert summary.agents == 36 and summary.impl == "cascade"
    assert summary.flashes >= 36  # every agent's first flash comes within one period
    assert summary.iterations > summary.flashes  # neighbours' flashes were received too
    assert engine.stats.hot_plan_hits > summary.iterations - 10  # a handful of templates compile
    assert engine.connector.subscription_count == 0  # cancelled agents unsubscribed
    assert summary.timeline and all(0.0 <= r <= 1.0 + 1e-9 for _, r, _ in summary.timeline)


def test_the_command_line_prints_a_summary_and_saves_a_plot(tmp_path, capsys):
    png = tmp_path / "fireflies.png"
    summary = fireflies.main(["--agents", "25", "--period", "0.05", "--duration", "0.6", "--seed", "1",
                              "--plot", str(png)])
    out = capsys.readouterr().out
    assert "25 agents" in out and "R final" in out and "flashes/s" in out and "lag p50" in out
    assert f"R final {summary.r_final:.3f}" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match="agents"):
        asyncio.run(fireflies.simulate(agents=0))
    with pytest.raises(ValueError, match="impl"):
        asyncio.run(fireflies.simulate(agents=4, duration=0.1, impl="threads"))
