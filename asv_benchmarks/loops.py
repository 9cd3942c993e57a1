"""Tail-call loops: 1-node countdown, 11-node chain loop, 3-node loop with two suspending nodes.

``time_*`` is what a regression gate compares (a fixed iteration count per call); ``track_*``
report iterations/s and the ratio to the hand-written asyncio baseline for the dashboard.
"""

import time

from . import _common as c

LOOPS = ["countdown", "chain11", "fork3"]
MODES = ["hot", "slow", "baseline"]

# Iterations per timed call: ~10-50 ms hot on a laptop-class core.
N = {"countdown": 5_000, "chain11": 500, "fork3": 1_000}
# The slow engine re-plans every iteration; fewer iterations keep a call under a second.
N_SLOW = {"countdown": 1_000, "chain11": 100, "fork3": 300}


def _n(loop, mode):
    return N_SLOW[loop] if mode == "slow" else N[loop]


class TailCallLoops:
    """Fixed-length runs of each loop (seconds per run of ``N`` or ``N_SLOW`` iterations)."""

    params = (LOOPS, MODES)
    param_names = ["loop", "mode"]
    timeout = 120

    def setup(self, loop, mode):
        self.loop = c.new_loop()
        self.engine = None if mode == "baseline" else c.make_engine(mode)
        self.n = _n(loop, mode)
        # warm-up (also fills the hot-plan cache, so timed calls measure the steady state)
        result = self.loop.run_until_complete(c.loop_coro(loop, mode, self.engine, 20))
        assert result == c.EXPECTED[loop], result

    def teardown(self, loop, mode):
        c.close_loop(getattr(self, "loop", None))

    def time_loop(self, loop, mode):
        self.loop.run_until_complete(c.loop_coro(loop, mode, self.engine, self.n))


def _rate(aloop, loop, mode, engine, n, runs=5):
    best = 0.0
    for _ in range(runs):
        t0 = time.perf_counter()
        aloop.run_until_complete(c.loop_coro(loop, mode, engine, n))
        best = max(best, n / (time.perf_counter() - t0))
    return best


class LoopThroughput:
    """Dashboard: iterations per second, best of 5 runs."""

    params = (LOOPS, MODES)
    param_names = ["loop", "mode"]
    timeout = 300

    def setup(self, loop, mode):
        TailCallLoops.setup(self, loop, mode)

    def teardown(self, loop, mode):
        c.close_loop(getattr(self, "loop", None))

    def track_iterations_per_second(self, loop, mode):
        return _rate(self.loop, loop, mode, self.engine, self.n)

    track_iterations_per_second.unit = "iterations/s"


class LoopRatioToBaseline:
    """Dashboard: Cascade's iterations/s over the hand-written asyncio baseline's (1.0 = as fast)."""

    params = (LOOPS, ["hot", "slow"])
    param_names = ["loop", "mode"]
    timeout = 300

    def setup(self, loop, mode):
        TailCallLoops.setup(self, loop, mode)
        self.loop.run_until_complete(c.loop_coro(loop, "baseline", None, 20))

    def teardown(self, loop, mode):
        c.close_loop(getattr(self, "loop", None))

    def track_ratio_to_baseline(self, loop, mode):
        rate = base = 0.0
        for _ in range(3):  # interleaved, so drift hits both alike
            rate = max(rate, _rate(self.loop, loop, mode, self.engine, self.n, runs=1))
            base = max(base, _rate(self.loop, loop, "baseline", None, N[loop], runs=1))
        return rate / base

    track_ratio_to_baseline.unit = "x baseline"
