"""DaskExecutor against real LocalClusters (tests/adapters/conftest.py): one whose worker runs in
this process, one with 2 worker processes. Tasks are module-level so worker processes import them."""

from __future__ import annotations

import asyncio
import contextvars
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import cascade as cs

from ..conftest import Recorder

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("cascade_test_var", default="unset")


class Boom(Exception):
    pass


@cs.task
def inc(x: int) -> int:
    return x + 1


@cs.task
async def ainc(x: int) -> int:
    await asyncio.sleep(0)
    return x + 1


@cs.task
def pid() -> int:
    return os.getpid()


@cs.task
def slow_pid(i: int) -> int:
    import time

    time.sleep(0.05)
    return os.getpid()


@cs.task
async def seen_var() -> str:
    return VAR.get()


@cs.task
def boom(x: int) -> int:
    raise Boom(f"bad {x}")


@cs.task
async def aboom(x: int) -> int:
    raise KeyError(f"async bad {x}")


@cs.task
def countdown(n: int, acc: int = 0) -> Any:
    if n == 0:
        return acc
    return countdown(n - 1, acc + n)


@cs.task
def total(values: list[int]) -> int:
    return sum(values)


@cs.task
def flaky(path: str, fails: int) -> int:
    """Fails ``fails`` times (counted in a file, so worker processes share the count)."""
    p = Path(path)
    n = int(p.read_text()) if p.exists() else 0
    p.write_text(str(n + 1))
    if n < fails:
        raise Boom(f"flaky failure {n + 1}")
    return n + 1


@cs.task
def exclusive(path: str, i: int, hold: float = 0.05) -> int:
    """Fails if another call holds ``path`` at the same time (a lock file made with O_EXCL)."""
    import time

    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    try:
        time.sleep(hold)
    finally:
        os.close(fd)
        os.unlink(path)
    return i


STARTED: list[str] = []
FINISHED: list[str] = []
RELEASE = threading.Event()


@cs.task
async def hang(tag: str) -> str:
    """Runs on the in-process worker until the test sets RELEASE."""
    STARTED.append(tag)
    while not RELEASE.is_set():
        await asyncio.sleep(0.005)
    FINISHED.append(tag)
    return tag


@cs.task
def die_once(path: str) -> int:
    """Kills its worker process the first time (a marker file says it happened), then succeeds."""
    p = Path(path)
    if not p.exists():
        p.write_text("died")
        os._exit(1)
    return os.getpid()


@cs.task
def always_die() -> None:
    os._exit(1)


@cs.task
def use_conn(x: int, conn: Any = cs.inject("conn")) -> Any:
    return (x, conn)


@cs.task(executor="dask")
def remote_where() -> int:
    return threading.get_ident()


@cs.task
def local_where() -> int:
    return threading.get_ident()


@cs.task(executor="local")
def pinned_local() -> int:
    return threading.get_ident()


# -- bodies, values, exceptions --------------------------------------------------------------------

@pytest.mark.asyncio
async def test_sync_and_async_bodies_run_on_the_in_process_worker(inproc_client: Any) -> None:
    ex = cs.DaskExecutor(inproc_client)
    engine = cs.Engine(remote=ex)
    assert await engine.run(inc(ainc(inc(1)))) == 4
    assert ex.submitted == 3  # every call went to Dask
    VAR.set("caller")
    assert await engine.run(seen_var()) == "caller"  # same process: a copy of the caller's context


@pytest.mark.asyncio
async def test_bodies_run_in_two_worker_processes(procs_client: Any) -> None:
    ex = cs.DaskExecutor(procs_client)
    engine = cs.Engine(remote=ex)
    pids = await engine.run(slow_pid.map(i=list(range(8))))
    assert len(pids) == 8
    assert os.getpid() not in pids
    assert len(set(pids)) == 2, pids  # both workers took calls
    VAR.set("caller")
    assert await engine.run(seen_var()) == "unset"  # another process: an empty context


async def _check_exceptions(client: Any) -> None:
    engine = cs.Engine(remote=cs.DaskExecutor(client))
    with pytest.raises(Boom) as info:
        await engine.run(inc(boom(3)))
    assert str(info.value) == "bad 3"
    with pytest.raises(KeyError, match="async bad 4"):
        await engine.run(aboom(4))


@pytest.mark.asyncio
async def test_exceptions_keep_their_type_and_message_in_process(inproc_client: Any) -> None:
    await _check_exceptions(inproc_client)


@pytest.mark.asyncio
async def test_exceptions_keep_their_type_and_message_from_worker_processes(procs_client: Any) -> None:
    await _check_exceptions(procs_client)


@pytest.mark.asyncio
async def test_an_argument_that_cannot_be_pickled_is_a_clear_error(inproc_client: Any) -> None:
    ex = cs.DaskExecutor(inproc_client)
    with pytest.raises(TypeError, match=r"task 'inc' cannot be sent to a Dask worker: argument 'x' \(a lock\)"):
        await cs.Engine(remote=ex).run(inc(threading.Lock()))
    assert ex.submitted == 0


# -- hot plans, walkers ----------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_a_remote_loop_is_still_a_hot_plan_and_never_bypasses_the_executor(procs_client: Any) -> None:
    ex = cs.DaskExecutor(procs_client)
    engine = cs.Engine(remote=ex)
    # countdown(30) returns countdown(29, 30) from the worker: a lazy result rebuilt here, bound to
    # this process's task, so iterations 3.. reuse the program compiled for iteration 2.
    assert await engine.run(countdown(30)) == 465
    assert ex.submitted == 31  # a single-step loop the local engine would run on its fast path
    assert engine.stats.hot_plan_hits == 29
    assert engine.stats.plan_solves == 2
    # A plain chain (the sequential walker's case locally) goes remote step by step as well.
    assert await engine.run(inc(inc(inc(0)))) == 3
    assert await engine.run(inc(inc(inc(10)))) == 13
    assert ex.submitted == 37
    assert engine.stats.hot_plan_hits == 30


@pytest.mark.asyncio
async def test_remote_and_local_engines_emit_the_same_events(inproc_client: Any) -> None:
    def target() -> Any:
        return total([inc(1), ainc(2), countdown(3)])

    streams = []
    for remote in (None, cs.DaskExecutor(inproc_client)):
        for hot in (True, False):
            engine = cs.Engine(remote=remote, hot_plans=hot)
            rec = Recorder(engine.bus)
            assert await engine.run(target()) == 11
            assert await engine.run(target()) == 11
            streams.append([e for e in rec.comparable() if e[0] not in ("RunStarted", "RunFinished")])
    # Remote completions arrive in the cluster's order; per call the order is the local one.
    assert sorted(streams[0]) == sorted(streams[1]) == sorted(streams[2]) == sorted(streams[3])
    assert len(streams[0]) == 2 * 2 * 7  # 7 calls per run (countdown(3) is 4), each Started + Finished


# -- policies --------------------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_retries_are_the_engines_and_each_attempt_goes_remote(procs_client: Any, tmp_path: Path) -> None:
    ex = cs.DaskExecutor(procs_client)
    engine = cs.Engine(remote=ex)
    rec = Recorder(engine.bus)
    value = await engine.run(flaky(str(tmp_path / "count"), 2).with_retry(max_attempts=3))
    assert value == 3
    assert ex.submitted == 3
    assert [e.attempt for e in rec.of(cs.TaskExecutionStarted)] == [1, 2, 3]
    assert [e.error for e in rec.of(cs.TaskRetrying)] == ["Boom('flaky failure 1')", "Boom('flaky failure 2')"]


@pytest.mark.asyncio
async def test_constraint_slots_serialise_remote_calls(inproc_client: Any, tmp_path: Path) -> None:
    # The worker has 2 threads: without the slot both calls would hold the lock file at once.
    engine = cs.Engine(remote=cs.DaskExecutor(inproc_client), system_resources={"gpu": 1})
    lock = str(tmp_path / "lock")
    calls = [exclusive(lock, i).with_constraints(gpu=1) for i in range(4)]
    assert await engine.run(total(calls)) == 6
    assert engine.constraints.available == {"gpu": 1}


@pytest.mark.asyncio
async def test_the_same_calls_overlap_on_the_worker_without_a_slot(inproc_client: Any, tmp_path: Path) -> None:
    # The control for the test above: its lock file does catch two calls running at once (held
    # long enough that the worker's second thread starts the other call meanwhile).
    engine = cs.Engine(remote=cs.DaskExecutor(inproc_client))
    with pytest.raises(FileExistsError):
        await engine.run(total([exclusive(str(tmp_path / "lock"), i, 0.5) for i in range(2)]))


@pytest.mark.asyncio
async def test_resources_are_resolved_here_and_shipped(procs_client: Any) -> None:
    log: list[str] = []

    @cs.resource(name="conn", scope="task")
    def conn() -> Any:
        log.append("setup")
        yield {"dsn": "db://x"}
        log.append("teardown")

    ex = cs.DaskExecutor(procs_client)
    engine = cs.Engine(remote=ex, resources=[conn])
    assert await engine.run(use_conn(1)) == (1, {"dsn": "db://x"})
    assert log == ["setup", "teardown"]
    assert ex.submitted == 1


@pytest.mark.parametrize("scope", ["run", "task"])
@pytest.mark.asyncio
async def test_a_resource_that_cannot_be_shipped_names_resource_and_task(inproc_client: Any, scope: str) -> None:
    # A run-scope resource and one set up per call (scope="task") alike: the call fails before its
    # body is submitted, and the resource is still torn down.
    log: list[str] = []

    @cs.resource(name="conn", scope=scope)
    def conn() -> Any:
        log.append("setup")
        yield threading.Lock()
        log.append("teardown")

    ex = cs.DaskExecutor(inproc_client)
    engine = cs.Engine(remote=ex, resources=[conn])
    with pytest.raises(cs.ResourceError, match=r"task 'use_conn' .* resource 'conn' \(a lock\) cannot be sent"):
        await engine.run(use_conn(1).with_retry(max_attempts=3))
    assert ex.submitted == 0  # failed before the first attempt, not retried
    assert log == ["setup", "teardown"]


# -- cancellation, worker death --------------------------------------------------------------------

async def _until(cond: Any, what: str) -> None:
    for _ in range(500):
        if cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def _hang_tasks(client: Any) -> list[str]:
    """The scheduler's tasks of ``hang`` calls (a cancelled future is forgotten at once)."""
    keys = await client.run_on_scheduler(lambda dask_scheduler: [str(k) for k in dask_scheduler.tasks])
    return [k for k in keys if k.startswith("hang-")]


def _reset_hang() -> None:
    STARTED.clear()
    FINISHED.clear()
    RELEASE.clear()


@pytest.mark.asyncio
async def test_cancelling_a_run_cancels_its_remote_futures(inproc_client: Any) -> None:
    _reset_hang()
    ex = cs.DaskExecutor(inproc_client)
    engine = cs.Engine(remote=ex, system_resources={"gpu": 3})
    calls = [hang(tag).with_constraints(gpu=1) for tag in "abc"]
    run = asyncio.ensure_future(engine.run(total(calls)))
    try:
        # The worker has 2 threads: two bodies start, the third waits in Dask's queue.
        await _until(lambda: ex.submitted == 3 and len(STARTED) == 2, "two bodies to start")
        assert engine.constraints.available == {"gpu": 0}
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        # run() returned only once the scheduler had let go of all three; then the slots came back.
        assert await _hang_tasks(inproc_client) == []
        assert engine.constraints.available == {"gpu": 3}
    finally:
        RELEASE.set()
    # Dask interrupts no body that started (they finish, their results are dropped); the
    # cancelled one that had not started never does, although the worker now has room for it.
    await _until(lambda: len(FINISHED) == 2, "the two started bodies to finish")
    assert await engine.run(inc(1)) == 2
    assert sorted(STARTED) == sorted(FINISHED) and len(STARTED) == 2


@pytest.mark.asyncio
async def test_a_failing_call_cancels_the_other_remote_call(inproc_client: Any) -> None:
    _reset_hang()
    engine = cs.Engine(remote=cs.DaskExecutor(inproc_client))
    try:
        with pytest.raises(Boom, match="bad 1"):
            await engine.run(total([hang("c"), boom(1)]))
        assert await _hang_tasks(inproc_client) == []  # the hanging call's future was cancelled
    finally:
        RELEASE.set()
    await _until(lambda: FINISHED == ["c"], "the started body to finish")


@pytest.mark.asyncio
async def test_a_worker_dying_mid_task_is_rerun_by_dask(procs_client: Any, tmp_path: Path) -> None:
    ex = cs.DaskExecutor(procs_client)
    engine = cs.Engine(remote=ex)
    rec = Recorder(engine.bus)
    survivor = await engine.run(die_once(str(tmp_path / "died")))
    assert (tmp_path / "died").read_text() == "died"  # the first worker really died
    assert survivor != os.getpid()
    # Dask reran it elsewhere; for Cascade that was one attempt of one call.
    assert ex.submitted == 1
    assert len(rec.of(cs.TaskExecutionStarted)) == 1


@pytest.mark.asyncio
async def test_a_task_that_kills_every_worker_raises_killed_worker(procs_client: Any) -> None:
    from distributed.scheduler import KilledWorker

    with pytest.raises(KilledWorker):
        await cs.Engine(remote=cs.DaskExecutor(procs_client)).run(always_die())


# -- choosing where a task runs --------------------------------------------------------------------

@pytest.mark.asyncio
async def test_per_task_executor_names(inproc_client: Any) -> None:
    ex = cs.DaskExecutor(inproc_client)
    here = threading.get_ident()
    named = cs.Engine(remote={"dask": ex})
    assert await named.run(local_where()) == here  # no executor named: runs here
    assert await named.run(remote_where()) != here
    assert ex.submitted == 1
    whole = cs.Engine(remote=ex)
    assert await whole.run(local_where()) != here  # the engine's default: remote
    assert await whole.run(pinned_local()) == here  # executor="local" stays here
    assert ex.submitted == 2
    with pytest.raises(ValueError, match="task 'remote_where' asks for executor 'dask', which this engine does not have"):
        await cs.Engine().run(remote_where())


def test_cs_run_with_a_scheduler_address_opens_and_closes_a_client_per_loop(dask_inprocess: str) -> None:
    ex = cs.DaskExecutor(dask_inprocess)
    assert cs.run(countdown(5), remote=ex) == 15
    assert cs.run(inc(ainc(1)), remote=ex) == 3  # a second event loop, a second client
    assert ex.submitted == 8
    assert ex._keepers == {} and ex._connecting == {}  # both closed when their loop shut down


@pytest.mark.asyncio
async def test_async_with_closes_the_client_it_opened(dask_inprocess: str) -> None:
    async with cs.DaskExecutor(dask_inprocess) as ex:
        client = await ex.client()
        assert await cs.Engine(remote=ex).run(inc(1)) == 2
    assert client.status == "closed"


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="DaskExecutor needs a distributed.Client"):
        cs.DaskExecutor(42)
    with pytest.raises(TypeError, match="RemoteExecutor"):
        cs.Engine(remote=object())
    with pytest.raises(TypeError, match="executor name 'local'"):
        cs.Engine(remote={"local": cs.DaskExecutor("tcp://127.0.0.1:1")})
    with pytest.raises(TypeError, match="executor=...\\) of 'f' must be a non-empty string"):
        cs.task(name="f", executor="")(lambda: None)


def test_importing_cascade_imports_no_dask() -> None:
    code = ("import sys, cascade; bad = [m for m in ('dask', 'distributed', 'cloudpickle') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_lazy_results_travel_bound_to_the_receivers_own_tasks() -> None:
    from cascade.adapters.dask_executor import dumps

    # In a fresh process (as on a worker process): a module-level task arrives as that process's
    # own task object, a closure task as a copy with the same identity.
    def local_task() -> Any:
        @cs.task
        def scaled(x: int, *, k: int = 2) -> int:
            return x * k
        return scaled

    scaled = local_task()
    # ``acc=1`` binds as the second positional argument, so it is stored as one; ``k`` is
    # keyword-only and travels as a keyword argument.
    data = dumps([countdown(3, acc=1).with_retry(max_attempts=2), scaled(countdown(2), k=3)])
    code = (
        "import sys; from cascade.adapters.dask_executor import loads\n"
        "from tests.adapters import test_dask_executor as m\n"
        "a, b = loads(sys.stdin.buffer.read())\n"
        "assert a.task is m.countdown and a.args == (3, 1) and a.kwargs == {}, a\n"
        "assert a.retry.max_attempts == 2\n"
        f"assert b.task.fingerprint == {scaled.fingerprint!r} and b.task.fn(4) == 8\n"
        "assert b.args[0].task is m.countdown and b.kwargs == {'k': 3}\n"
    )
    subprocess.run([sys.executable, "-c", code], input=data, check=True, cwd=Path(__file__).parents[2])
