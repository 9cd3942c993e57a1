"""The speed workloads of ``cascade bench`` that the loops here do not cover: one-shot graphs (a
100,000-node ``.map`` and chain, and their 1,000-node sizes for the growth), 1,000 concurrent
5-node runs on one engine, and the 11-node loop with keyword or nested inputs.

They run the definitions of :mod:`cascade.bench.workloads` (the same code ``cascade bench`` times),
so the dashboard and the command agree; a commit without that module or workload is skipped.
Each timed call uses a fresh engine, as ``cascade bench`` does: a one-shot graph is built, planned
and run once, and the concurrent runs include their template's first compile.
"""

import time

from . import _common as c

WORKLOADS = ["runs1k", "map1k", "map100k", "chain1k", "chain100k", "chain11kw", "chain11nest"]
MODES = ["hot", "slow", "baseline"]


def _workload(key):
    try:
        from cascade.bench.workloads import WORKLOADS as ALL
    except ImportError as exc:  # an older commit
        raise NotImplementedError(f"cascade.bench.workloads: {exc}") from None
    for w in ALL:
        if w.key == key:
            return w
    raise NotImplementedError(f"no workload {key!r} in cascade.bench at this commit")


def _run(aloop, w, mode, n):
    if mode == "baseline":
        return aloop.run_until_complete(w.baseline(n))
    return aloop.run_until_complete(w.cascade(c.make_engine(mode), n))


class Workloads:
    """Seconds for one run of each workload as `cascade bench` times it (what the gate compares)."""

    params = (WORKLOADS, MODES)
    param_names = ["workload", "mode"]
    timeout = 300

    def setup(self, workload, mode):
        self.w = _workload(workload)
        self.loop = c.new_loop()
        self.n = self.w.iterations(quick=False, slow=(mode == "slow"))
        _run(self.loop, self.w, mode, max(1, self.n // 10))  # warm-up: code paths, allocator pools

    def teardown(self, workload, mode):
        c.close_loop(getattr(self, "loop", None))

    def time_workload(self, workload, mode):
        _run(self.loop, self.w, mode, self.n)


class WorkloadRatioToBaseline:
    """Dashboard: Cascade's rate over the hand-written baseline's, best of 3 interleaved runs each
    (the issue-14 targets: runs1k >= 0.6; keyword and nested loops within 10% of ``chain11``)."""

    params = (WORKLOADS, ["hot", "slow"])
    param_names = ["workload", "mode"]
    timeout = 600

    def setup(self, workload, mode):
        Workloads.setup(self, workload, mode)
        self.base_n = self.w.iterations(quick=False, slow=False)

    def teardown(self, workload, mode):
        c.close_loop(getattr(self, "loop", None))

    def track_ratio_to_baseline(self, workload, mode):
        rate = base = 0.0
        for _ in range(3):
            t0 = time.perf_counter()
            done = _run(self.loop, self.w, mode, self.n)
            rate = max(rate, done / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            done = _run(self.loop, self.w, "baseline", self.base_n)
            base = max(base, done / (time.perf_counter() - t0))
        return rate / base

    track_ratio_to_baseline.unit = "x baseline"
