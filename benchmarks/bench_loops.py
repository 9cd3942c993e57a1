"""pytest-benchmark suite: the ``cascade bench`` workloads, one benchmark per workload and mode.

Not part of the test run (file names do not match ``test_*.py``); run with ``nox -s pybench`` or
``python -m pytest benchmarks -o python_files=bench_*.py -o python_functions=bench_* --benchmark-only``. Compare saved runs with
``--benchmark-autosave`` / ``--benchmark-compare``.
"""

from __future__ import annotations

import asyncio

import pytest

import cascade as cs
from cascade.bench import WORKLOADS

QUICK = [w for w in WORKLOADS if w.in_quick]


@pytest.fixture(scope="module")
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.mark.parametrize("mode", ["hot", "slow", "baseline"])
@pytest.mark.parametrize("workload", QUICK, ids=[w.key for w in QUICK])
def bench_workload(benchmark, loop, workload, mode):
    n = workload.iterations(quick=True, slow=(mode == "slow"))
    benchmark.extra_info["iterations"] = n * workload.agents
    if mode == "baseline":
        def once():
            return loop.run_until_complete(workload.baseline(n))
    else:
        engine = cs.Engine(hot_plans=(mode == "hot"))

        def once():
            return loop.run_until_complete(workload.cascade(engine, n))
    done = benchmark.pedantic(once, rounds=5, warmup_rounds=1)
    assert done == n * workload.agents
