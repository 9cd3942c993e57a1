"""Run task bodies on a Dask distributed cluster while Cascade stays the orchestrator.

:class:`DaskExecutor` is a :class:`~cascade.runtime.remote.RemoteExecutor`: the engine hands it one
attempt of one call, ``fn(*args, **kwargs)`` with arguments and resources already resolved, and
it submits that to Dask through the asynchronous ``distributed.Client`` (``pure=False``: every
call is its own Dask task, as every Cascade call is its own node). Graph building, tail calls, hot
plans, retries, constraints, resources and events stay in the engine. See docs/dask.md.

What travels, and how (only when a remote executor is configured; ``import cascade`` never imports
Dask or cloudpickle, both are imported on first use):

- The call is pickled here with cloudpickle into one ``bytes`` payload; the value comes back
  pickled the same way on the worker. A module-level :class:`~cascade.Task` (and its function)
  travels by reference, as Dask sends functions: the receiving process imports the module and uses
  its own task. Any other task (a closure, ``__main__``) travels as its fingerprint plus its
  function: a process that already knows that fingerprint (this one, or a worker that received it
  before) uses its own task object. Either way a lazy result a body returns (a tail call) comes
  back bound to the very tasks the engine knows, and its loop still reaches hot plans. Lazy
  results, maps and Routers are rebuilt on arrival (their shape hashes are per process).
- Context variables: a worker in this process (``LocalCluster(processes=False)``) runs the body
  in a copy of the caller's context, as ``asyncio.to_thread`` does; a worker process starts from
  an empty context.
- An exception raised by the body comes back through Dask as the same type with the same message.
- Cancelling the awaiting run cancels the Dask future and waits until the scheduler has taken the
  cancellation, so constraint slots are held until Dask reports the future finished or cancelled.
  A sync body already running in a worker thread cannot be interrupted (Dask's limitation); its
  result is discarded.
- A worker dying mid-task is Dask's business: the scheduler reruns the task elsewhere, up to
  ``distributed.scheduler.allowed-failures`` times, then the future raises ``KilledWorker``, which
  the engine treats as the task's exception (so ``with_retry`` applies on top).
"""

from __future__ import annotations

import asyncio
import contextvars
import importlib
import io
import itertools
import pickle
import sys
import threading
import types
import uuid
import weakref
from typing import Any, Callable, Mapping

from ..errors import ResourceError
from ..spec.lazy import (
    POLICY,
    LazyResult,
    MappedLazyResult,
    Router,
    _finish,
    _Policies,
    _tuple_new,
    argument_label,
)
from ..spec.task import Task, positional_names

__all__ = ["DaskExecutor", "dumps", "loads"]

# -- the wire format ------------------------------------------------------------------------------

# Tasks by fingerprint in this process: every task pickled here, every task rebuilt here.
_TASKS: weakref.WeakValueDictionary[str, Task] = weakref.WeakValueDictionary()
_local = threading.local()  # ``fresh``: tasks rebuilt by the ``loads`` running in this thread
_pickler_cls: Any = None


def _pickler() -> Any:
    global _pickler_cls
    if _pickler_cls is None:
        import cloudpickle

        class WirePickler(cloudpickle.Pickler):
            def reducer_override(self, obj: Any) -> Any:
                t = type(obj)
                if isinstance(obj, Task):
                    where = _module_task(obj.fn)
                    return (_task_by_name, where) if where is not None else _reduce_task(obj)
                if t is LazyResult:
                    return _lazy_from_wire, (obj.task, obj.args, dict(obj.kwargs), tuple.__getitem__(obj, POLICY))
                if t is MappedLazyResult:
                    return MappedLazyResult, (obj.task, obj.elements)
                if t is Router:
                    return Router, (obj.selector, obj.routes)
                if t is types.FunctionType:
                    where = _module_task(obj)
                    if where is not None:
                        return _task_function, where
                return super().reducer_override(obj)

        _pickler_cls = WirePickler
    return _pickler_cls


def dumps(obj: Any) -> bytes:
    """Pickle ``obj`` for a worker (cloudpickle, with tasks and lazy results in wire form)."""
    buf = io.BytesIO()
    _pickler()(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buf.getvalue()


def loads(data: bytes) -> Any:
    """Unpickle what :func:`dumps` made; tasks resolve to this process's own task objects."""
    outer = getattr(_local, "fresh", None)
    fresh: dict[int, tuple[Task, Any]] = {}
    _local.fresh = fresh
    try:
        obj = pickle.loads(data)
        # A task rebuilt while its function was itself still being unpickled (a recursive task
        # that names itself) saw the function without its defaults: rebuild once all is loaded.
        for t, state in fresh.values():
            _init_task(t, state)
        return obj
    finally:
        _local.fresh = outer


def _module_task(fn: Any) -> tuple[str, str] | None:
    """``(module, name)`` when ``fn`` is the function of a module-level task. Such a task and its
    function travel by reference, as Dask sends plain functions (cloudpickle would not recognise
    the function, whose module attribute is the Task, and would copy it and every global it uses);
    the receiving process imports the module and uses its own task object. ``__main__`` cannot
    be imported by a worker: its tasks travel by value."""
    module = getattr(fn, "__module__", None)
    if not module or module == "__main__" or "<locals>" in getattr(fn, "__qualname__", "<locals>"):
        return None
    owner = getattr(sys.modules.get(module), getattr(fn, "__name__", ""), None)
    if isinstance(owner, Task) and owner.fn is fn:
        return module, fn.__name__
    return None


def _task_by_name(module: str, name: str) -> Task:
    task: Task = getattr(importlib.import_module(module), name)
    return task


def _task_function(module: str, name: str) -> Any:
    return _task_by_name(module, name).fn


def _reduce_task(t: Task) -> Any:
    _TASKS[t.fingerprint] = t
    state = (t.fingerprint, t.fn, t.name, t.pure, t.offload, t.executor, getattr(t, "cache_version", None))
    return _task_from_wire, (t.fingerprint,), state, None, None, _task_fill


def _task_from_wire(fingerprint: str) -> Task:
    t = _TASKS.get(fingerprint)
    if t is not None:
        return t
    t = Task.__new__(Task)
    fresh = getattr(_local, "fresh", None)
    if fresh is not None:
        fresh[id(t)] = (t, None)
    return t


def _task_fill(t: Task, state: tuple[Any, ...]) -> None:
    fresh = getattr(_local, "fresh", None)
    if fresh is None or id(t) not in fresh:
        return  # a task this process already had: keep it as it is
    fresh[id(t)] = (t, state)
    _init_task(t, state)
    _TASKS[state[0]] = t


def _init_task(t: Task, state: tuple[Any, ...] | None) -> None:
    if state is None:
        return
    fingerprint, fn, name, pure, offload, executor, version = state
    Task.__init__(t, fn, name=name, pure=pure, offload=offload, executor=executor, fingerprint=fingerprint,
                  cache_version=version)


def _lazy_from_wire(task: Task, args: tuple[Any, ...], kwargs: dict[str, Any], policies: Any) -> LazyResult:
    lr: LazyResult = task(*args, **kwargs)
    if policies is None:
        return lr
    fields = list(lr[:])
    fields[POLICY] = _tuple_new(_Policies, tuple(policies))
    return _finish(fields)


# -- what runs on the worker ----------------------------------------------------------------------

# Copies of callers' contexts, by token: found only by a worker in this same process.
_CONTEXTS: dict[str, contextvars.Context] = {}
_PROCESS = uuid.uuid4().hex[:12]
_tokens = itertools.count()


def _pack_result(task_name: str, value: Any) -> bytes:
    try:
        return dumps(value)
    except Exception as exc:
        raise TypeError(
            f"task {task_name!r} returned a {type(value).__name__} that cannot be sent back from the "
            f"Dask worker: {exc}"
        ) from exc


def _run_sync(token: str, task_name: str, payload: bytes) -> bytes:
    fn, args, kwargs = loads(payload)
    ctx = _CONTEXTS.pop(token, None)
    value = ctx.run(fn, *args, **kwargs) if ctx is not None else fn(*args, **kwargs)
    return _pack_result(task_name, value)


async def _run_async(token: str, task_name: str, payload: bytes) -> bytes:
    fn, args, kwargs = loads(payload)
    ctx = _CONTEXTS.pop(token, None)
    if ctx is None:
        value = await fn(*args, **kwargs)
    else:
        value = await asyncio.get_running_loop().create_task(fn(*args, **kwargs), context=ctx)
    return _pack_result(task_name, value)


# -- the executor ---------------------------------------------------------------------------------

class DaskExecutor:
    """Run task bodies on a Dask cluster: ``cs.Engine(remote=cs.DaskExecutor(client_or_address))``.

    ``client_or_address``: a ``distributed.Client`` created with ``asynchronous=True`` in the event
    loop the engine runs in, or a scheduler address (``"tcp://host:8786"``), in which case the
    executor opens its own asynchronous client in each event loop that uses it and closes it when
    that loop shuts down (``asyncio.run`` ends) or on :meth:`aclose` / ``async with``.
    ``name`` is what ``@cs.task(executor=name)`` refers to.

    ``submitted`` counts the calls sent to Dask (every attempt of every remote call).
    Raises ``TypeError`` for a synchronous client or something that is neither a client nor a string.
    """

    def __init__(self, client_or_address: Any, *, name: str = "dask") -> None:
        if not isinstance(name, str) or not name or name == "local":
            raise TypeError(f"DaskExecutor(name=...) must be a non-empty string other than 'local', got {name!r}")
        self.name = name
        self.submitted = 0
        self._client: Any = None
        self.address: str | None
        if isinstance(client_or_address, str):
            self.address = client_or_address
        elif hasattr(client_or_address, "submit") and hasattr(client_or_address, "scheduler"):
            if not getattr(client_or_address, "_asynchronous", False):
                raise TypeError(
                    "DaskExecutor needs a distributed.Client(..., asynchronous=True) created in the "
                    "engine's event loop, or a scheduler address; got a synchronous Client"
                )
            self._client = client_or_address
            self.address = getattr(client_or_address.scheduler, "address", None)
        else:
            raise TypeError(
                f"DaskExecutor needs a distributed.Client(asynchronous=True) or a scheduler address, "
                f"got {type(client_or_address).__name__} {client_or_address!r}"
            )
        # Clients this executor opened from ``address``: one per event loop (by id), with the Task
        # that connects it and the Task that closes it when the loop shuts down.
        self._connecting: dict[int, asyncio.Task[Any]] = {}
        self._keepers: dict[int, asyncio.Task[Any]] = {}

    def __repr__(self) -> str:
        return f"<cs.DaskExecutor {self.name!r} {self.address}>"

    # -- clients ----------------------------------------------------------------------------------
    async def client(self) -> Any:
        """The asynchronous ``distributed.Client`` for the running event loop.

        Raises ``RuntimeError`` when a given client belongs to another event loop.
        """
        loop = asyncio.get_running_loop()
        if self._client is not None:
            own = getattr(getattr(self._client, "loop", None), "asyncio_loop", loop)
            if own is not loop:
                raise RuntimeError(
                    "the Client given to DaskExecutor runs on another event loop than this run; create "
                    "it inside the loop that runs the engine, or give DaskExecutor the scheduler address"
                )
            return self._client
        key = id(loop)
        connecting = self._connecting.get(key)
        if connecting is None:
            connecting = self._connecting[key] = loop.create_task(self._connect(key))
        return await asyncio.shield(connecting)

    async def _connect(self, key: int) -> Any:
        from distributed import Client

        try:
            client = await Client(self.address, asynchronous=True)
        except BaseException:
            self._connecting.pop(key, None)
            raise
        self._keepers[key] = asyncio.get_running_loop().create_task(self._keep(key, client))
        return client

    async def _keep(self, key: int, client: Any) -> None:
        """Hold a client this executor opened until its loop shuts down (``asyncio.run`` cancels
        the Tasks left at the end, this one included) or :meth:`aclose`; then close it."""
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            self._connecting.pop(key, None)
            self._keepers.pop(key, None)
            await client.close()

    async def aclose(self) -> None:
        """Close the client this executor opened in the running loop (a given client is left open)."""
        keeper = self._keepers.get(id(asyncio.get_running_loop()))
        if keeper is not None:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)

    async def __aenter__(self) -> DaskExecutor:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    # -- RemoteExecutor ---------------------------------------------------------------------------
    def check_shippable(self, task_name: str, resource: str, value: Any) -> None:
        """Raise :class:`cascade.ResourceError` when ``value`` of ``resource`` cannot be pickled."""
        try:
            dumps(value)
        except Exception as exc:
            raise ResourceError(
                f"task {task_name!r} runs on Dask executor {self.name!r}, but its resource {resource!r} "
                f"(a {type(value).__name__}) cannot be sent to a worker: {exc}. Resources are set up "
                "here and their values pickled with each call: yield something picklable (settings, "
                "not an open connection), or declare the task @cs.task(executor='local')"
            ) from exc

    async def call(self, fn: Callable[..., Any], args: Any, kwargs: Mapping[str, Any], *,
                   task_name: str, is_async: bool) -> Any:
        """Submit one attempt of ``fn(*args, **kwargs)`` to Dask and return its value.

        Raises the body's own exception; ``TypeError`` naming the task and argument when something
        cannot be pickled. Cancellation cancels the Dask future first (see the module docstring).
        """
        client = await self.client()
        payload = _pack_call(task_name, fn, args, kwargs)
        token = f"{_PROCESS}-{next(_tokens)}"
        _CONTEXTS[token] = contextvars.copy_context()
        try:
            future = client.submit(_run_async if is_async else _run_sync, token, task_name, payload,
                                   pure=False, key=f"{task_name}-{uuid.uuid4().hex}")
            self.submitted += 1
            try:
                out = await future
            except asyncio.CancelledError:
                await _cancel(client, future)
                raise
        finally:
            _CONTEXTS.pop(token, None)
        return loads(out)


def _pack_call(task_name: str, fn: Any, args: Any, kwargs: Mapping[str, Any]) -> bytes:
    try:
        return dumps((fn, tuple(args), dict(kwargs)))
    except Exception as exc:
        where = "its function (a closure or global it uses)"
        names = positional_names(fn, ())
        for label, value in [*((argument_label(names, i), a) for i, a in enumerate(args)),
                             *((argument_label(names, k), v) for k, v in kwargs.items())]:
            try:
                dumps(value)
            except Exception:
                where = f"{label} (a {type(value).__name__})"
                break
        raise TypeError(f"task {task_name!r} cannot be sent to a Dask worker: {where} cannot be pickled: {exc}") from exc


async def _cancel(client: Any, future: Any) -> None:
    """Cancel ``future`` and wait until the scheduler has let go of it (``client.cancel`` only sends
    a message). A repeated cancellation of the awaiting Task does not cut this short: the slots
    the call holds must outlive the remote task. If the scheduler cannot be reached, there is
    nothing left to wait for."""
    key = future.key

    async def settle() -> None:
        await client.cancel([future])
        while (await client.scheduler.get_task_status(keys=[key])).get(key) not in _SETTLED:
            await asyncio.sleep(0.005)

    waiting = asyncio.ensure_future(settle())
    while not waiting.done():
        try:
            await asyncio.shield(waiting)
        except asyncio.CancelledError:
            continue
        except Exception:  # noqa: BLE001 - the scheduler is gone: nothing is running for us any more
            break
    if waiting.done() and not waiting.cancelled():
        waiting.exception()  # retrieved, so a lost connection is not reported as a stray error


# Scheduler task states in which nothing runs for the key any more (None: forgotten).
_SETTLED = frozenset({None, "memory", "erred", "released", "forgotten"})
