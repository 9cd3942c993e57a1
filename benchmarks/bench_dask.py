"""pytest-benchmark suite for ``cs.DaskExecutor`` (the ``dask`` extra); not part of the test run.

Run: ``python -m pytest benchmarks/bench_dask.py -o python_files=bench_*.py -o python_functions=bench_*
--benchmark-only -p no:cacheprovider`` (or ``nox -s pybench -- -k dask``). Two groups:

- ``dask-overhead``: a tail-call loop of 100 trivial sync calls (``step(n)`` returns ``step(n - 1)``),
  so every round is 100 calls one after another: on the local executor (inline, and
  ``offload=True`` in a thread), on Dask with the worker in this process, on Dask with one worker
  process, and the same loop written by hand in asyncio. Per-call overhead = round time / 100.
- ``dask-fanout``: 64 independent CPU-bound calls of about 50 ms each (a pure-Python loop, its
  length calibrated once per session), gathered by one call: on the local executor, on one Dask
  worker process (1 thread), on two worker processes (1 thread each). The ratios between them show
  what a second core buys (they share the machine with whatever else runs on it).

Clusters are started by module fixtures on loopback ports and closed after.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import cascade as cs

CHAIN = 100
FANOUT = 64
TARGET_SECONDS = 0.05


@cs.task
def step(n: int) -> Any:
    return step(n - 1) if n > 0 else 0


@cs.task(offload=True)
def step_thread(n: int) -> Any:
    return step_thread(n - 1) if n > 0 else 0


def _dec(n: int) -> int:
    return n - 1


def burn(n: int) -> int:
    x = 0
    for k in range(n):
        x += k * k
    return x


@cs.task
def busy(i: int, n: int) -> int:
    return burn(n) & 0xFF


@cs.task
def collect(values: list[int]) -> int:
    return len(values)


@pytest.fixture(scope="session")
def burn_length() -> int:
    """Loop length for about TARGET_SECONDS of CPU in this interpreter."""
    n = 200_000
    start = time.process_time()
    burn(n)
    took = time.process_time() - start
    return max(1, int(n * TARGET_SECONDS / took))


@pytest.fixture(scope="module")
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def _cluster(**options: Any) -> Any:
    from distributed import LocalCluster

    if options.get("processes"):
        options["host"] = "127.0.0.1"
    return LocalCluster(dashboard_address="127.0.0.1:0", threads_per_worker=1, **options)


@pytest.fixture(scope="module")
def clusters():
    made = {
        "inprocess": _cluster(processes=False, n_workers=1),
        "1proc": _cluster(processes=True, n_workers=1),
        "2proc": _cluster(processes=True, n_workers=2),
    }
    yield {k: c.scheduler_address for k, c in made.items()}
    for c in made.values():
        c.close()


@pytest.fixture(scope="module")
def executors(loop, clusters):
    from distributed import Client

    async def connect(address: str) -> Any:
        return await Client(address, asynchronous=True)

    clients = {k: loop.run_until_complete(connect(a)) for k, a in clusters.items()}
    yield {k: cs.DaskExecutor(c) for k, c in clients.items()}
    for c in clients.values():
        loop.run_until_complete(c.close())


@pytest.mark.benchmark(group="dask-overhead")
@pytest.mark.parametrize("where", ["local", "local-thread", "dask-inprocess", "dask-1proc", "asyncio",
                                   "raw-dask-inprocess"])
def bench_per_call_overhead(benchmark, loop, executors, where):
    benchmark.extra_info["calls"] = CHAIN + 1
    if where == "raw-dask-inprocess":  # the same number of sequential submits, without Cascade
        client = executors["inprocess"]._client

        async def submits() -> int:
            n = CHAIN
            while n >= 0:
                n = await client.submit(_dec, n, pure=False)
            return 0

        def once() -> Any:
            return loop.run_until_complete(submits())
    elif where == "asyncio":
        def plain(n: int) -> Any:
            return n - 1 if n > 0 else 0

        async def by_hand() -> int:
            n = CHAIN
            while n > 0:
                n = plain(n)
            return n

        def once() -> Any:
            return loop.run_until_complete(by_hand())
    else:
        remote = executors[where.split("-")[1]] if where.startswith("dask") else None
        engine = cs.Engine(remote=remote)
        task = step_thread if where == "local-thread" else step

        def once() -> Any:
            return loop.run_until_complete(engine.run(task(CHAIN)))
    assert benchmark.pedantic(once, rounds=5, warmup_rounds=1) == 0


@pytest.mark.benchmark(group="dask-fanout")
@pytest.mark.parametrize("where", ["local", "dask-1proc", "dask-2proc"])
def bench_cpu_fanout(benchmark, loop, executors, burn_length, where):
    benchmark.extra_info["tasks"] = FANOUT
    benchmark.extra_info["burn_length"] = burn_length
    engine = cs.Engine(remote=executors[where.split("-")[1]] if where != "local" else None)

    def once() -> Any:
        return loop.run_until_complete(engine.run(collect(busy.map(i=list(range(FANOUT)), n=[burn_length] * FANOUT))))
    assert benchmark.pedantic(once, rounds=3, warmup_rounds=1) == FANOUT
