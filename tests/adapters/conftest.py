"""Fixtures for the store adapters: a real redis-server per test module, a flushed db per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio

from .redis_server import RedisServer


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    """A redis-server on a free loopback port, stopped after the module."""
    server = RedisServer()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """The server's URL, its database flushed before the test."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    yield redis_server.url


# -- Dask: LocalClusters started and closed by the tests (the `dask` extra) -----------------------
# Module-scoped: a cluster is closed when the module that uses it ends, so that no Dask thread runs
# during later tests (its allocations would move the collector's counts or traced memory that
# tests of the collector pause and of flat memory read; CI once failed on that).

def _local_cluster(**options: object) -> object:
    try:
        from distributed import LocalCluster
    except ImportError as exc:  # a missing extra fails loudly, never skips
        raise RuntimeError("the Dask tests need the dask extra: pip install -e '.[dask]'") from exc
    if options.get("processes"):
        options["host"] = "127.0.0.1"  # loopback, free ports; in-process clusters talk inproc://
    # The scheduler serves HTTP even without a dashboard (8787 by default): a free loopback port.
    return LocalCluster(dashboard_address="127.0.0.1:0", **options)


@pytest.fixture(scope="module")
def dask_inprocess() -> Iterator[str]:
    """Scheduler address of a LocalCluster whose worker (2 threads) runs in this process."""
    cluster = _local_cluster(processes=False, n_workers=1, threads_per_worker=2)
    yield cluster.scheduler_address  # type: ignore[attr-defined]
    cluster.close()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def dask_processes() -> Iterator[str]:
    """Scheduler address of a LocalCluster with 2 worker processes of 1 thread each; the scheduler
    reruns a task whose worker died once (allowed-failures=1), then raises KilledWorker."""
    cluster = _local_cluster(processes=True, n_workers=2, threads_per_worker=1,
                             scheduler_kwargs={"allowed_failures": 1})
    yield cluster.scheduler_address  # type: ignore[attr-defined]
    cluster.close()  # type: ignore[attr-defined]


@pytest_asyncio.fixture
async def inproc_client(dask_inprocess: str) -> AsyncIterator[Any]:
    """An asynchronous Client of the in-process cluster, in the test's event loop."""
    from distributed import Client

    async with Client(dask_inprocess, asynchronous=True) as client:
        yield client


@pytest_asyncio.fixture
async def procs_client(dask_processes: str) -> AsyncIterator[Any]:
    """An asynchronous Client of the 2-process cluster, in the test's event loop."""
    from distributed import Client

    async with Client(dask_processes, asynchronous=True) as client:
        yield client


# -- MQTT: a real mosquitto per test (the `mqtt` extra) --------------------------------------------

@pytest.fixture
def mosquitto() -> Iterator[Any]:
    """A mosquitto broker of this test's own on a free loopback port (retained state starts empty),
    stopped and removed after; a missing mosquitto fails with how to install it."""
    from .mosquitto_server import MosquittoServer

    server = MosquittoServer()
    yield server
    server.close()


@pytest_asyncio.fixture
async def mqtt(mosquitto: Any) -> AsyncIterator[Any]:
    """A connected MQTTConnector to the test's broker, disconnected after."""
    from cascade.adapters.mqtt import MQTTConnector

    connector = MQTTConnector(mosquitto.url, connect_timeout=5.0)
    await connector.connect()
    yield connector
    await connector.disconnect()
