"""The scheduler that executes one iteration's :class:`~cascade.runtime.program.Program`.

Two walkers share one contract, and the property suite proves them equal:

the sequential walker (in :mod:`cascade.runtime.loop`, fused into the tail-call loop)
    The hot path for *simple* programs (no conditions, sequences, Routers, retries, caches,
    constraints, resources; see ``Program.simple``). It runs steps in plan order inline, the way a
    hand-written ``await`` loop would: a sync step is called, an async step's coroutine is stepped
    with ``send(None)`` and, when it finishes without suspending, never costs a Task. Plan order is
    exactly the order in which the scheduler below would start steps that complete inline, so the
    two agree on results and on the event sequence. A step that really suspends is awaited inline
    when every later step depends on it (nothing could overlap with it anyway); otherwise, and as
    soon as a pause or concurrency limit is set on the engine, the iteration is handed to the
    scheduler mid-way, which then owns the suspended coroutine.

``Scheduler``
    Everything else, and the slow path always. State per step: ``PENDING`` (waiting for inputs or
    not yet needed), ``RUNNING`` (started and not finished), ``ROUTING`` (a Router waiting for its
    chosen route), ``DONE`` or ``SKIPPED``. Transitions: a step whose last input settles and that is
    *needed* enters the ready heap; the lowest position starts first (deterministic); a started step
    is driven inline until it finishes or suspends. A suspended step that every pending step depends
    on is awaited in place (``_may_inline``); any other becomes a Task. Finished Tasks are collected
    as soon as the scheduler looks (a lone Task is awaited directly), their done-callbacks only
    covering the case of several in flight. *Needed* is reference counting for Routers: route
    branches are dormant until a Router picks them, and dormant steps left at the end are skipped
    with ``UpstreamSkipped_Route`` without running. A failure cancels every in-flight step (and
    interrupts one awaited in place), waits for them to unwind (teardowns run) and re-raises; so does
    cancellation of the run.

Both paths make the same choices (inline, in place, Task) for the same program, governed calls
included, so they take the same event-loop cycles: concurrent calls interleave alike and events come
in the same order.
"""

from __future__ import annotations

import asyncio
import inspect
import types
from functools import partial
from heapq import heapify, heappop, heappush
from typing import TYPE_CHECKING, Any

from ..errors import RouteError
from ..spec.lazy import ARGS, KWARGS, LazyResult, MappedLazyResult, Router
from ..spec.markers import Env, Inject, Param
from .caching import cache_get, cache_set, step_cache_key
from .events import (
    CacheBypassed,
    ResourceAcquired,
    TaskBlocked,
    TaskExecutionFinished,
    TaskExecutionStarted,
    TaskRetrying,
    TaskSkipped,
)
from .program import A_ALL, A_KW1, A_LIT, A_LIT_KW, A_ONE, A_RESOLVE, A_SEQ1, MAP, ROUTER, Program, Step
from .remote import check_resources
from .resources import setup_resource, teardown_all

if TYPE_CHECKING:
    from .context import RunContext

__all__ = ["Scheduler", "is_lazy", "missing_run_resources", "note_failure", "resolve_args", "resolve_compiled", "resume",
           "setup_cannot_suspend"]

PENDING, RUNNING, ROUTING, DONE, SKIPPED = range(5)
_ATOMIC = frozenset({int, float, str, bool, type(None), bytes, complex})


# Result types that are never awaitable: a sync call's value of one of these skips the check below.
NOT_AWAITABLE = _ATOMIC | {list, tuple, dict, set, frozenset, LazyResult, MappedLazyResult}


def returned_awaitable(value: Any) -> bool:
    """Whether a sync task's return value is a coroutine or other awaitable (it is then awaited).

    ``inspect.isawaitable``'s answer; a type with an ``__await__`` (a coroutine, a future) is
    known at once, without its ABC check (a Python-level ``__instancecheck__`` per call)."""
    t = type(value)
    if t in NOT_AWAITABLE:
        return False
    if getattr(t, "__await__", None) is not None:
        if len(AWAITABLE_TYPES) < _AWAITABLE_TYPES_MAX:
            AWAITABLE_TYPES.add(t)
        return True
    return inspect.isawaitable(value)


# Types found to have an ``__await__`` (coroutines, futures, a connector's listening future), so
# that a generated walk knows them with one set lookup; bounded, as classes can be made at will.
AWAITABLE_TYPES: set[type] = set()
_AWAITABLE_TYPES_MAX = 256


async def awaited(aw: Any) -> Any:
    """A coroutine for the awaitable a sync task returned, driven like an async task's coroutine."""
    try:
        return await aw
    except BaseException:
        cancel_pending(aw)
        raise


def cancel_pending(aw: Any) -> None:
    """Cancel ``aw`` when it is a future still pending. An exception thrown into the coroutine that
    awaits it (a cancellation that reaches the call before its Task's first step, a close) would
    otherwise leave the future waiting, as a Task's own cancellation never does (``cs.recv``'s
    future leaves its topic when cancelled)."""
    if asyncio.isfuture(aw) and not aw.done():
        aw.cancel()


def is_lazy(value: Any) -> bool:
    t = type(value)
    return t is LazyResult or t is MappedLazyResult


_PRIMED = object()  # what a primed wrapper yields while it waits for its Task's first step


@types.coroutine
def resume(coro: Any, pending: Any, fresh: bool = True, primed: bool = False) -> Any:
    """Continue a coroutine that was stepped once by hand and yielded ``pending``.

    Re-yields what the coroutine yields to the Task awaiting this and forwards what the Task sends
    or throws (a wake-up or a cancellation), exactly as ``await coro`` would have done.

    ``primed``: first yield ``_PRIMED``, so that the wrapper awaiting this can be started by hand
    before its Task exists (:func:`start_task`). A Task cancelled before its first step then throws
    the cancellation in here, and it reaches the call, whose ``finally`` blocks (constraint slots,
    resource teardowns) run at once instead of at garbage collection.

    ``fresh`` (in a Task): a bare yield (``None``, what ``asyncio.sleep(0)`` does) asks for one loop
    cycle; the Task's first step already runs a cycle after the hand step, so the coroutine is
    resumed at once. ``fresh=False`` (awaited inline, in the same cycle) yields it as it is.
    """
    if primed:
        out = _PRIMED
    elif pending is None and fresh:
        suspended, out = advance(coro)
        if not suspended:
            return out
    else:
        out = pending
    while True:
        try:
            sent = yield out
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:
            primed = False
            suspended, out = advance(coro, exc)
        else:
            if primed:  # the Task's first step: continue as an unprimed resume would
                primed = False
                if not (pending is None and fresh):
                    out = pending
                    continue
            suspended, out = advance(coro, None, sent)
        if not suspended:
            return out


def advance(coro: Any, exc: BaseException | None = None, value: Any = None) -> tuple[bool, Any]:
    """Send ``value`` (or throw ``exc``) into ``coro``: ``(True, yielded)`` while it runs on,
    ``(False, result)`` once it returned."""
    try:
        return True, (coro.send(value) if exc is None else coro.throw(exc))
    except StopIteration as stop:
        return False, stop.value


async def _await_resumed(coro: Any, pending: Any) -> Any:
    return await resume(coro, pending, primed=True)


def start_task(loop: asyncio.AbstractEventLoop, wrapper: Any) -> asyncio.Task[Any]:
    """A Task for ``wrapper``, whose first await is ``resume(..., primed=True)``: the wrapper is
    stepped to that point first, so a cancellation before the Task's first step still reaches the
    call it carries."""
    first = wrapper.send(None)
    assert first is _PRIMED, first
    return loop.create_task(wrapper)


def resolve_args(st: Step, obj: LazyResult, values: list[Any], ctx: RunContext,
                 task_res: dict[str, Any] | None) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Arguments of a call with lazy inputs replaced by their values and markers resolved.

    Walks the arguments in the order ``_scan`` found dependencies, so the i-th lazy met is
    ``st.deps[i]``.
    """
    mode = st.mode
    if mode == 0:
        args, kwargs = obj[ARGS], obj[KWARGS]
    elif mode == 1:
        if st.subs:
            a = list(obj[ARGS])
            for i, d in st.subs:
                a[i] = values[d]
        else:  # every positional argument is an input
            a = [values[d] for d in st.deps[: st.ndata]]
        args, kwargs = tuple(a), obj[KWARGS]
    else:
        it = iter(st.deps[: st.ndata])

        def leaf(v: Any) -> Any:
            t = type(v)
            if t is LazyResult or t is MappedLazyResult or t is Router:
                return values[next(it)]
            if t is Param:
                return v.resolve(ctx.params)
            if t is Env:
                return v.resolve()
            if t is Inject:
                return _resource_value(v.name, ctx, task_res)
            return v

        def r(v: Any) -> Any:
            t = type(v)
            if t in _ATOMIC:
                return v
            if t is list or t is tuple or t is dict:
                return _resolve_container(v, leaf)
            return leaf(v)

        args = tuple(r(a) for a in obj[ARGS])
        given = obj[KWARGS]
        tmp_kw = {k: r(given[k]) for k in sorted(given)}
        kwargs = {k: tmp_kw[k] for k in given}
    if st.injected:
        kwargs = dict(kwargs)
        for param, res in st.injected:
            kwargs[param] = _resource_value(res, ctx, task_res)
    return args, kwargs


_CONTAINERS = (list, tuple, dict)


def resolve_compiled(spec: Any, obj: LazyResult, values: list[Any]) -> Any:
    """:func:`resolve_args` for a call whose lazy inputs sit at top level or in flat lists, tuples
    and dicts, with the substitutions compiled once per template (``program._resolution``), or
    ``None`` when this iteration's literals hold a container the compiled form does not copy (the
    caller then uses :func:`resolve_args`). Same result: every list, tuple and dict argument is a
    copy, with lazy results replaced by their values.

    ``spec``: ``(positional ops, keyword ops, other positions, other keywords)``; an op is
    ``(argument, kind, substitutions)``: kind 0 a lazy result (substitution: its input position),
    1/2/3 a list/tuple/dict whose items ``(slot, position)`` are lazy results. The other arguments
    are neither lazy nor containers in the template; a literal's type is not part of the template,
    so that is checked here again.
    """
    pos_ops, kw_ops, other_pos, other_kw = spec
    args: Any = obj[ARGS]
    for i in other_pos:
        if type(args[i]) in _CONTAINERS:
            return None
    kwargs: Any = obj[KWARGS]
    for k in other_kw:
        if type(kwargs[k]) in _CONTAINERS:
            return None
    if pos_ops:
        args = list(args)
        for i, kind, sub in pos_ops:
            if kind == 0:
                args[i] = values[sub]
                continue
            v = _copy_flat(args[i], kind, sub, values)
            if v is None:
                return None
            args[i] = v
    if kw_ops:
        kwargs = dict(kwargs)
        for k, kind, sub in kw_ops:
            if kind == 0:
                kwargs[k] = values[sub]
                continue
            v = _copy_flat(kwargs[k], kind, sub, values)
            if v is None:
                return None
            kwargs[k] = v
    return args, kwargs


def _copy_flat(c: Any, kind: int, sub: Any, values: list[Any]) -> Any:
    """A copy of the flat container ``c`` with the lazy results at ``sub``'s slots replaced; ``None``
    if another item is a container (it would have to be copied too: the general path does that)."""
    for item in (c.values() if kind == 3 else c):
        if type(item) in _CONTAINERS:
            return None
    if kind == 3:
        out: Any = dict(c)
        for key, d in sub:
            out[key] = values[d]
        return out
    out = list(c)
    for j, d in sub:
        out[j] = values[d]
    return tuple(out) if kind == 2 else out


def _resolve_container(root: Any, leaf: Any) -> Any:
    """A copy of a list/tuple/dict argument with ``leaf`` applied to every non-container value, in
    ``_scan``'s order (depth first, dict keys sorted; dicts keep their own order). Iterative, so a
    lazy result nested 10,000 lists deep resolves like a shallow one (``_scan`` refused cycles)."""
    # frame: [container, dict keys sorted or None, next index, resolved items, slot in parent]
    stack: list[list[Any]] = [[root, _sorted(root) if type(root) is dict else None, 0, [], None]]
    while True:
        frame = stack[-1]
        c, keys, i, out, _ = frame
        if i < (len(c) if keys is None else len(keys)):
            frame[2] = i + 1
            v = c[i] if keys is None else c[keys[i]]
            t = type(v)
            if t is list or t is tuple or t is dict:
                stack.append([v, _sorted(v) if t is dict else None, 0, [], i])
            else:
                out.append(v if t in _ATOMIC else leaf(v))
            continue
        stack.pop()
        if keys is not None:
            by_key = dict(zip(keys, out))
            value: Any = {k: by_key[k] for k in c}
        else:
            value = out if type(c) is list else tuple(out)
        if not stack:
            return value
        stack[-1][3].append(value)


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception as exc:  # an error message must not fail on the value it reports
        return f"<{type(value).__qualname__} whose repr raised {type(exc).__name__}>"


def note_failure(exc: BaseException, steps: Any, p: int) -> None:
    """Name the failed call in ``exc``'s notes: its task and, for a ``map`` element, its index.

    Type and message stay as raised. Only ``Exception``s get a note (never a cancellation), and
    only once: the innermost call (a task inside a nested evaluation) names itself first and the
    calls that re-raise it on the way out add nothing. Both walkers call this at the same point as
    they publish the call's failed ``TaskExecutionFinished``.
    """
    if not isinstance(exc, Exception):
        return
    notes = getattr(exc, "__notes__", None)
    if notes and any(isinstance(n, str) and n.startswith("cascade: task ") for n in notes):
        return
    where = ""
    for st in steps:  # the failure path only: find the map this call is an element of
        if st.kind == MAP and p in st.deps:
            where = f" (element {st.deps.index(p)} of {st.name}.map)"
            break
    exc.add_note(f"cascade: task {steps[p].name!r} failed{where}")


def _sorted(d: dict[Any, Any]) -> list[Any]:
    from ..spec.lazy import _sorted_keys

    return _sorted_keys(d)


def missing_run_resources(ctx: RunContext, names: tuple[str, ...]) -> bool:
    """Whether some run-scope resource in ``names`` is not set up yet in ``ctx``'s run.

    A call that injects only run-scope resources takes the plain path once they are set up; the
    first such call of a run takes the governed path, which sets them up (and publishes
    ``ResourceAcquired``) exactly where the slow path does.
    """
    values = ctx.resources.values
    for name in names:
        if name not in values:
            return True
    return False


def setup_cannot_suspend(ctx: RunContext, names: tuple[str, ...]) -> bool:
    """Whether setting up the run-scope resources ``names`` completes without suspending: all are
    sync generators and no other step of the run holds the setup lock. The sequential walker then
    sets them up in place, right before the step that needs them, as the governed path would."""
    lock = ctx.resources._lock
    if lock is not None and lock.locked():
        return False
    registry = ctx.resources_registry
    return not any(registry[name].is_async for name in names if name not in ctx.resources.values)


def _resource_value(name: str, ctx: RunContext, task_res: dict[str, Any] | None) -> Any:
    if task_res is not None and name in task_res:
        return task_res[name]
    return ctx.resources.values[name]


class Scheduler:
    """The general walker (see the module docstring for its states and transitions)."""

    __slots__ = (
        "prog", "steps", "objs", "ctx", "full", "flow", "iteration", "bus", "values", "skipped",
        "last", "needed", "chosen", "inflight", "failure", "waker", "inline", "inline_task",
        "interrupted", "state", "waiting", "heap", "loop", "routers", "consumers", "fast",
    )

    def __init__(self, prog: Program, objs: list[Any], ctx: RunContext, full: bool, iteration: int,
                 values: list[Any] | None = None, start: int = 0,
                 suspended: tuple[Any, Any] | None = None) -> None:
        n = prog.size
        steps = prog.steps
        self.prog = prog
        self.steps = steps
        self.objs = objs
        self.ctx = ctx
        self.full = full
        self.flow = full or not prog.simple
        self.iteration = iteration
        self.bus = ctx.bus if ctx.bus.active else None
        self.values = values if values is not None else [None] * n
        self.skipped: list[str | None] = [None] * n
        self.last = n - 1
        self.routers = prog.has_routers
        self.consumers = prog.consumers or prog.consumer_positions()
        self.fast = prog.fast or prog.fast_entries()
        # Router bookkeeping exists only where a Router does (every step is needed otherwise).
        self.needed = list(prog.needed) if self.routers else prog.needed
        self.chosen = [-1] * n if self.routers else []
        self.loop = asyncio.get_running_loop()
        self.inflight: dict[asyncio.Task[Any], Any] = {}  # task -> its done-callback
        self.failure: BaseException | None = None
        self.waker: asyncio.Future[None] | None = None
        self.inline: tuple[int, Step, Any, Any, bool] | None = None  # (p, step, coro, yielded, plain)
        self.inline_task: asyncio.Task[Any] | None = None
        self.interrupted = False
        if start == 0:
            self.state = [PENDING] * n
            self.waiting = list(prog.waiting0)
            heap = list(prog.ready0)
        else:  # taking over from the sequential walker: steps before ``start`` are done
            self.state = [DONE] * start + [PENDING] * (n - start)
            self.waiting = [sum(1 for d in st.inputs if d >= start) for st in steps]
            heap = [p for p in range(start, n) if self.waiting[p] == 0 and self.needed[p]]
        if suspended is not None:  # the sequential walker's suspended call: finish it like ours
            heap.remove(start)
            self.state[start] = RUNNING
            self._spawn_plain(start, self.steps[start], *suspended)
        heapify(heap)
        self.heap = heap

    # -- the loop -----------------------------------------------------------------------------------
    async def run(self) -> tuple[Any, str | None]:
        try:
            heap = self.heap
            while True:
                # A call asking to be awaited inline may come from _start or from a done-callback
                # (a finished call whose value is a lazy result to evaluate): check before all else.
                while self.failure is None:
                    if self.inline is not None:
                        await self._await_inline()
                    elif heap:
                        self._start(heappop(heap))
                    else:
                        break
                if self.failure is not None:
                    raise self.failure
                if not self.inflight and self.inline is None:
                    break
                if self.inline is None:
                    await self._wait_inflight()
        except BaseException:
            await self._cancel_inflight()
            raise
        if self.prog.has_routers:
            for p in range(len(self.steps)):
                if self.state[p] == PENDING:  # dormant: no Router picked it
                    self._skip(p, "UpstreamSkipped_Route")
        last = len(self.steps) - 1
        return self.values[last], self.skipped[last]

    async def _await_inline(self) -> None:
        """Await a suspended call right here instead of in a Task of its own.

        Only a call that every step still pending depends on gets here (``_may_inline``): nothing
        could start before it finishes, so no overlap is lost and a Task is saved. If another
        in-flight step fails meanwhile, :meth:`_fail` cancels this await so the failure propagates
        at once, as it would have with a Task.
        """
        assert self.inline is not None
        p, st, coro, pending, plain = self.inline
        self.inline = None
        me = asyncio.current_task()
        self.inline_task = me
        try:
            v = await resume(coro, pending, fresh=False)
        except GeneratorExit:
            raise
        except BaseException as exc:
            self.inline_task = None
            if plain:  # a governed call (``_call``) publishes its own events
                self._emit_finished(p, st, "Failed", exc)
            if self.interrupted and me is not None:
                self.interrupted = False
                me.uncancel()  # our own cancellation, sent by _fail: not the caller's
                return  # run() raises self.failure
            self._fail(exc)
            return
        self.inline_task = None
        if plain:
            self._plain_result(p, st, v)
        else:
            self._settle(p, v)

    def _may_inline(self, p: int, st: Step) -> bool:
        if not st.tail_dependent or self.inline_task is not None:
            return False
        return PENDING not in self.state[:p]

    async def _wait_inflight(self) -> None:
        """Wait until an in-flight step finishes, without the hops a done-callback costs.

        A finished Task's done-callbacks run one loop cycle after it finishes, and a waker future
        set there wakes this coroutine one cycle later still. So: Tasks already finished are
        collected at once (their queued callback then finds nothing to do); a single Task in
        flight is awaited directly; only several at once go through the waker.
        """
        finished = [t for t in self.inflight if t.done()]
        if finished:
            for task in finished:
                done = self.inflight.get(task)
                if done is not None:
                    done(task)
            return
        if len(self.inflight) == 1:
            task = next(iter(self.inflight))
            try:
                await task
            except GeneratorExit:  # this coroutine is being closed (its loop is gone): let it
                raise
            except BaseException:
                me = asyncio.current_task()
                if me is not None and me.cancelling():
                    raise  # the run itself is being cancelled (the step was cancelled with it)
            done = self.inflight.get(task)
            if done is not None:
                done(task)
            return
        self.waker = self.loop.create_future()
        await self.waker

    async def _cancel_inflight(self) -> None:
        if self.inline is not None:  # a call waiting to be awaited inline: cancel it like the rest
            _, _, coro, pending, _ = self.inline
            self.inline = None
            self.inflight[start_task(self.loop, _await_resumed(coro, pending))] = None
        if not self.inflight:
            return
        tasks = list(self.inflight)
        for t in tasks:
            if not t.cancelling():  # once: _fail may have cancelled it (a second would cut its cleanup)
                t.cancel()
        # Wait until every step has unwound (its finally blocks, its teardowns), even when the
        # run is cancelled again meanwhile: ``asyncio.wait`` does not pass that cancellation on
        # (``gather`` would cancel the steps a second time, cutting their cleanups short, and
        # return while they still run). As ``asyncio.TaskGroup`` does, the later cancellation is
        # raised once every step is done.
        again: asyncio.CancelledError | None = None
        while True:
            pending = [t for t in tasks if not t.done()]
            if not pending:
                break
            try:
                await asyncio.wait(pending)
            except asyncio.CancelledError as exc:
                again = exc
        for t in tasks:
            if not t.cancelled():
                t.exception()  # retrieved: the run reports its own failure
        if again is not None:
            raise again

    def _wake(self) -> None:
        w = self.waker
        if w is not None and not w.done():
            w.set_result(None)

    # -- starting, driving, settling ---------------------------------------------------------------
    def _start(self, p: int) -> None:
        st = self.steps[p]
        if self.flow:
            reason = self._decide(st)
            if reason is not None:
                self._skip(p, reason)
                return
        if st.kind == MAP:
            self._settle(p, [self.values[d] for d in st.deps])
        elif st.kind == ROUTER:
            self._route(p, st)
        else:
            self.state[p] = RUNNING
            if (self.full or st.governed or self.ctx.constraints.gating
                    or (st.run_resources and missing_run_resources(self.ctx, st.run_resources))):
                self._drive(p, self._call(p, st))
            else:
                self._call_plain(p, st)

    def _call_plain(self, p: int, st: Step) -> None:
        """A call with no policy to apply (the hot path's common case): no coroutine of ours
        around it, and when it suspends its Task's done-callback finishes it (:meth:`_plain_done`);
        same events and failure handling as :meth:`_call`."""
        _, _, _, am, spec, _, _ = self.fast[p]
        if am == A_LIT or am == A_LIT_KW:
            obj = self.objs[p]
            args, kwargs = obj[ARGS], obj[KWARGS]
        elif am == A_ONE:
            args, kwargs = (self.values[spec],), {}
        elif am == A_ALL:
            values = self.values
            args, kwargs = [values[d] for d in spec], {}
        elif am == A_KW1:
            args, kwargs = (), {spec[0]: self.values[spec[1]]}
        elif am == A_SEQ1:
            values = self.values
            seq = [values[d] for d in spec[1]]
            args, kwargs = (tuple(seq) if spec[0] else seq,), {}
        elif am == A_RESOLVE and (r := resolve_compiled(spec, self.objs[p], self.values)) is not None:
            args, kwargs = r
        else:
            args, kwargs = resolve_args(st, self.objs[p], self.values, self.ctx, None)
        bus = self.bus
        if bus is not None:
            bus.publish(TaskExecutionStarted(self.ctx.run_id, st.name, p, self.iteration))
        try:
            if st.is_async:
                coro = st.fn(*args, **kwargs)
            else:
                v = st.fn(*args, **kwargs)
                coro = awaited(v) if returned_awaitable(v) else None
            if coro is not None:  # an async call, or a sync call that returned an awaitable
                try:
                    pending = coro.send(None)
                except StopIteration as stop:
                    v = stop.value
                else:
                    if self._may_inline(p, st):
                        self.inline = (p, st, coro, pending, True)
                        return
                    self._spawn_plain(p, st, coro, pending)
                    return
        except BaseException as exc:
            self._emit_finished(p, st, "Failed", exc)
            self._fail(exc)
            return
        self._plain_result(p, st, v)

    def _plain_result(self, p: int, st: Step, v: Any) -> None:
        if p != self.last and is_lazy(v):
            self._drive(p, self._nested(p, st, v))
            return
        self._emit_finished(p, st, "Succeeded", None)
        self._settle(p, v)

    def _spawn_plain(self, p: int, st: Step, coro: Any, pending: Any) -> None:
        """Finish a suspended plain call in a Task. With subscribers, the Task itself publishes
        ``TaskExecutionFinished`` the moment the call completes, exactly when the governed path
        (:meth:`_call`) would; without any, its done-callback settles it, one coroutine cheaper."""
        if self.bus is not None:
            self._spawn(p, self._continue(p, st, coro, pending))
        else:
            self._track(start_task(self.loop, _await_resumed(coro, pending)), partial(self._plain_done, p))

    async def _continue(self, p: int, st: Step, coro: Any, pending: Any) -> Any:
        try:
            v = await resume(coro, pending, primed=True)
            if p != self.last and is_lazy(v):
                v = await self.ctx.evaluate(v)
        except BaseException as exc:
            self._emit_finished(p, st, "Failed", exc)
            raise
        self._emit_finished(p, st, "Succeeded", None)
        return v

    def _plain_done(self, p: int, task: asyncio.Task[Any]) -> None:
        if self.inflight.pop(task, None) is None:
            return  # already collected by run()
        st = self.steps[p]
        if task.cancelled():
            self._emit_finished(p, st, "Failed", asyncio.CancelledError())
            if self.failure is None:
                self._fail(asyncio.CancelledError())
        else:
            exc = task.exception()
            if exc is not None:
                self._emit_finished(p, st, "Failed", exc)
                self._fail(exc)
            else:
                self._plain_result(p, st, task.result())
        self._wake()

    async def _nested(self, p: int, st: Step, target: Any) -> Any:
        try:
            v = await self.ctx.evaluate(target)
        except BaseException as exc:
            self._emit_finished(p, st, "Failed", exc)
            raise
        self._emit_finished(p, st, "Succeeded", None)
        return v

    def _decide(self, st: Step) -> str | None:
        skipped = self.skipped
        for d in st.deps[: st.ndata]:
            if skipped[d] is not None:
                return "UpstreamSkipped_Data"
        if st.cond >= 0:
            if skipped[st.cond] is not None:
                return "UpstreamSkipped_Condition"
            if not self.values[st.cond]:
                return "ConditionFalse"
        for d in st.seq:
            if skipped[d] is not None:
                return "UpstreamSkipped_Sequence"
        return None

    def _drive(self, p: int, coro: Any) -> None:
        try:
            pending = coro.send(None)
        except StopIteration as stop:
            self._settle(p, stop.value)
            return
        except BaseException as exc:
            self._fail(exc)
            return
        # The same choice as for plain calls, so that the slow path (every call governed) and the
        # hot path take the same number of event-loop cycles and interleave alike.
        st = self.steps[p]
        if self._may_inline(p, st):
            self.inline = (p, st, coro, pending, False)
            return
        self._spawn(p, _await_resumed(coro, pending))

    def _spawn(self, p: int, coro: Any) -> None:
        self._track(start_task(self.loop, coro), partial(self._task_done, p))

    def _track(self, task: asyncio.Task[Any], done: Any) -> None:
        self.inflight[task] = done
        task.add_done_callback(done)

    def _task_done(self, p: int, task: asyncio.Task[Any]) -> None:
        if self.inflight.pop(task, None) is None:
            return  # already collected by run()
        if task.cancelled():
            if self.failure is None:
                self._fail(asyncio.CancelledError())
        else:
            exc = task.exception()
            if exc is not None:
                self._fail(exc)
            else:
                self._settle(p, task.result())
        self._wake()

    def _fail(self, exc: BaseException) -> None:
        if self.failure is None:
            self.failure = exc
            if self.inline_task is not None and not self.interrupted:
                self.interrupted = True
                self.inline_task.cancel()
            # Fail fast, now: a sibling granted capacity in this same loop cycle (the failed call's
            # release) must not start its body before run() wakes up to cancel it a cycle later.
            for task in self.inflight:
                task.cancel()
        self._wake()

    def _settle(self, p: int, value: Any) -> None:
        self.values[p] = value
        self.state[p] = DONE
        if self.ctx.state is not None:
            # A state backend that fails fails the run (docs/stores.md): nothing downstream starts.
            try:
                self.ctx.state.put_result(self.ctx.run_id, (self.iteration, p), value)
            except Exception as exc:
                self._fail(exc)
                return
        self._release(p)

    def _skip(self, p: int, reason: str) -> None:
        self.skipped[p] = reason
        self.state[p] = SKIPPED
        if self.bus is not None:
            self.bus.publish(TaskSkipped(self.ctx.run_id, self.steps[p].name, p, self.iteration, reason))
        if self.ctx.state is not None:
            try:
                self.ctx.state.put_skip(self.ctx.run_id, (self.iteration, p), reason)
            except Exception as exc:
                self._fail(exc)
                return
        self._release(p)

    def _release(self, p: int) -> None:
        steps, waiting, state = self.steps, self.waiting, self.state
        if not self.routers:
            for c in self.consumers[p]:
                waiting[c] -= 1
                if waiting[c] == 0 and state[c] == PENDING:
                    heappush(self.heap, c)
            return
        for c in self.consumers[p]:
            cs = steps[c]
            if cs.kind == ROUTER and p != cs.deps[0]:
                if self.chosen[c] == p and state[c] == ROUTING:
                    self._resolve_route(c, p)
                continue
            waiting[c] -= 1
            if waiting[c] == 0 and self.needed[c] and state[c] == PENDING:
                heappush(self.heap, c)

    # -- routers -----------------------------------------------------------------------------------
    def _route(self, p: int, st: Step) -> None:
        key = self.values[st.deps[0]]
        assert st.routes is not None
        why = ""
        try:
            r = st.routes.get(key, -1)
        except TypeError:  # unhashable selector value
            r = -1
        except Exception as exc:  # its __hash__ or __eq__ raised: no route can be told apart
            r, why = -1, f" (looking it up raised {type(exc).__name__}: {exc})"
        if r < 0:
            consumers = ", ".join(sorted({self.steps[c].name for c in self.consumers[p]})) or "the target"
            self._fail(RouteError(
                f"Router selector returned {_safe_repr(key)}, which has no route{why} "
                f"(routes: {', '.join(_safe_repr(k) for k in st.routes)}; used by {consumers})"
            ))
            return
        self.chosen[p] = r
        self.state[p] = ROUTING
        if self.state[r] in (DONE, SKIPPED):
            self._resolve_route(p, r)
        else:
            self._activate(r)

    def _resolve_route(self, p: int, r: int) -> None:
        if self.skipped[r] is not None:
            self._skip(p, "UpstreamSkipped_Data")
        else:
            self._settle(p, self.values[r])

    def _activate(self, r: int) -> None:
        """Mark ``r`` and its dormant inputs needed; start those whose inputs have settled."""
        stack = [r]
        needed, state, waiting = self.needed, self.state, self.waiting
        assert isinstance(needed, list)  # only programs with Routers activate
        while stack:
            q = stack.pop()
            if needed[q]:
                continue
            needed[q] = True
            if state[q] == PENDING and waiting[q] == 0:
                heappush(self.heap, q)
            stack.extend(self.steps[q].inputs)

    # -- one call, with every policy it uses ------------------------------------------------------
    def _bypassed(self, p: int, st: Step, reason: str, why: str) -> None:
        if self.bus is not None:
            self.bus.publish(CacheBypassed(self.ctx.run_id, st.name, p, self.iteration, reason, why))

    def _emit_finished(self, p: int, st: Step, status: str, exc: BaseException | None) -> None:
        if exc is not None:
            note_failure(exc, self.steps, p)
        if self.bus is not None:
            self.bus.publish(TaskExecutionFinished(
                self.ctx.run_id, st.name, p, self.iteration, status, None if exc is None else repr(exc)
            ))

    async def _call(self, p: int, st: Step) -> Any:
        ctx, bus, run_id, it = self.ctx, self.bus, self.ctx.run_id, self.iteration
        cm = ctx.constraints
        obj = self.objs[p]
        ex = st.extras  # retry, cache, constraints, resources, remote: read once
        entered = False
        amounts = None  # set only once they are held, so ``finally`` releases exactly what it took
        try:
            # Only while a pause or limit is in force, on both paths alike: a call started with
            # none in force is not counted by a limit set later, hot or slow.
            if cm.gating:
                reason = cm.block_reason(st.name)
                if reason is not None and bus is not None:
                    bus.publish(TaskBlocked(run_id, st.name, p, it, reason))
                await cm.enter(st.name)
                entered = True
            # compile_program kept only amounts of this engine's capacities, each within capacity
            wanted = dict(ex.constraints) if ex.constraints else None
            if wanted:
                if not cm.try_acquire(wanted):
                    if bus is not None:
                        bus.publish(TaskBlocked(run_id, st.name, p, it, "constraints"))
                    await cm.acquire(wanted)
                amounts = wanted
            if st.run_resources:
                await ctx.resources.ensure(st.run_resources)
            opened: list[tuple[Any, Any]] = []
            task_res: dict[str, Any] | None = None
            failure: BaseException | None = None
            try:
                if ex.task_resources:
                    task_res = {}
                    for name in ex.task_resources:  # dependency order (compile_program)
                        res = ctx.resources_registry[name]
                        deps = {**ctx.resources.values, **task_res} if res.injected else None
                        gen, task_res[name] = await setup_resource(res, deps)
                        opened.append((res, gen))
                        if bus is not None:
                            bus.publish(ResourceAcquired(run_id, name, "task"))
                args, kwargs = resolve_args(st, obj, self.values, ctx, task_res)
                if ex.remote is not None and (st.run_resources or ex.task_resources):
                    check_resources(st, ctx.resources.values, task_res)  # before any attempt: not retried
                key = None
                if ex.cached:  # a cache never fails the run: see runtime/caching.py
                    key, why = step_cache_key(st, args, kwargs)
                    if key is None:
                        self._bypassed(p, st, "unkeyable", why)
                    else:
                        hit, value, reason, why = await cache_get(obj.cache, key, st.name)
                        if hit:
                            if bus is not None:
                                bus.publish(TaskExecutionFinished(run_id, st.name, p, it, "Cached"))
                            return value
                        if reason:
                            self._bypassed(p, st, reason, why)
                value = await self._attempts(p, st, args, kwargs)
                if key is not None:
                    why = await cache_set(obj.cache, key, value, st.name)
                    if why:
                        self._bypassed(p, st, "set-failed", why)
                return value
            except BaseException as exc:
                failure = exc
                raise
            finally:
                if opened:  # every one, whatever fails; the call's own error keeps precedence
                    await teardown_all(opened, "task", failure, run_id, bus)
        finally:
            if amounts:
                cm.release(amounts)
            if entered:
                cm.leave(st.name)

    async def _attempts(self, p: int, st: Step, args: Any, kwargs: dict[str, Any]) -> Any:
        bus, run_id, it = self.bus, self.ctx.run_id, self.iteration
        attempt = 1
        while True:
            if bus is not None:
                bus.publish(TaskExecutionStarted(run_id, st.name, p, it, attempt))
            try:
                if st.remote is not None:  # the body runs elsewhere; the policies around it stay here
                    v = await st.remote.call(st.fn, args, kwargs, task_name=st.name, is_async=st.is_async)
                elif st.is_async:
                    v = await st.fn(*args, **kwargs)
                elif st.offload:
                    v = await asyncio.get_running_loop().run_in_executor(
                        self.ctx.thread_executor, partial(st.fn, *args, **kwargs)
                    )
                else:
                    v = st.fn(*args, **kwargs)
                if not st.is_async and returned_awaitable(v):
                    v = await awaited(v)
                if p != len(self.steps) - 1 and is_lazy(v):
                    v = await self.ctx.evaluate(v)
            except Exception as exc:
                retry = st.retry
                if retry is None or attempt >= retry.max_attempts:
                    self._emit_finished(p, st, "Failed", exc)
                    raise
                attempt += 1
                delay = retry.delay_before(attempt)
                if bus is not None:
                    bus.publish(TaskRetrying(run_id, st.name, p, it, attempt, delay, repr(exc)))
                if delay > 0:
                    await asyncio.sleep(delay)
                continue
            except BaseException as exc:
                self._emit_finished(p, st, "Failed", exc)
                raise
            self._emit_finished(p, st, "Succeeded", None)
            return v
