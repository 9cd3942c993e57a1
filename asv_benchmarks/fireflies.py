"""Firefly agents (cs.recv with a timeout, cs.publish to 8 neighbours) on one Engine, 2,500 and
10,000 of them, against the same agents hand-written in asyncio in the same process.

Ratios, not times: what matters is how close Cascade stays to the hand-written agents under the
same load. ``idle``: a 1 s period (both keep up when Cascade is cheap enough); ``saturated``: a
0.1 s period (the CPU is the limit for both). The simulation is ``examples/fireflies.py`` (run by
``examples/agents_bench.py``, which prints the same figures); every case runs once, in
``setup_cache``, and the ``track_`` methods read its figures.
"""

import pathlib
import sys

from . import _common as c

AGENTS = [2_500, 10_000]
LOADS = {"idle": 1.0, "saturated": 0.1}
DURATION = 3.0  # seconds per simulation: a warm-up period plus steady state


def _examples():
    root = str(pathlib.Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)
    from examples import agents_bench

    return agents_bench


class Fireflies:
    """Cascade / hand-written ratios for firefly agents on one Engine."""

    params = (AGENTS, list(LOADS))
    param_names = ["agents", "load"]
    timeout = 600
    number = 1
    repeat = 1
    processes = 1

    def setup_cache(self):
        c.require("recv", "publish", "TIMED_OUT")
        bench = _examples()
        return {
            (agents, load): bench.run_case(agents, period, DURATION, ("asyncio", "cascade"))
            for agents in AGENTS for load, period in LOADS.items()
        }

    def setup(self, cases, agents, load):
        c.require("recv", "publish", "TIMED_OUT")
        self.case = cases[(agents, load)]

    def track_rate_fraction(self, cases, agents, load):
        """Cascade's flashes/s as a fraction of the theoretical agents/period."""
        return self.case["cascade"]["rate_fraction"]

    track_rate_fraction.unit = "fraction"

    def track_rate_vs_hand_written(self, cases, agents, load):
        """Cascade's flash rate / the hand-written agents' rate."""
        return self.case["ratios"]["rate"]

    track_rate_vs_hand_written.unit = "ratio"

    def track_lag_p99_vs_hand_written(self, cases, agents, load):
        """Event-loop lag p99, Cascade / hand-written."""
        return self.case["ratios"]["lag_p99"]

    track_lag_p99_vs_hand_written.unit = "ratio"

    def track_cpu_per_iteration_vs_hand_written(self, cases, agents, load):
        """CPU per agent iteration, Cascade / hand-written."""
        return self.case["ratios"]["cpu_per_iteration"]

    track_cpu_per_iteration_vs_hand_written.unit = "ratio"

    def track_memory_per_agent_vs_hand_written(self, cases, agents, load):
        """tracemalloc bytes per idle agent, Cascade / hand-written."""
        return self.case["ratios"]["memory_per_agent"]

    track_memory_per_agent_vs_hand_written.unit = "ratio"

