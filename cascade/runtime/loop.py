"""The tail-call loop of one run, with the sequential walker fused into it.

Per iteration: find the program (hot: the plan cache plus :func:`~cascade.runtime.binding.bind`;
slow: build, solve, compile), then execute it. A *simple* program on the hot path (no flow, no
governed step, see ``Program.simple``) is walked right here, in plan order, without creating any
object per iteration beyond the values list: this is where the hot path's speed comes from, so the
walker lives inside the loop instead of behind one more coroutine. Everything else goes to the
:class:`~cascade.runtime.executor.Scheduler`, and so does a simple iteration from the moment it
cannot stay sequential:

- a step every later step depends on (``tail_dependent``) is awaited with a plain ``await``: when it
  completes without suspending that costs what a hand-written ``await`` costs, and when it suspends
  nothing else of the iteration could have run meanwhile;
- any other async step is stepped once with ``send(None)``; if it suspends, the scheduler takes the
  rest of the iteration over, that coroutine included, so independent waiting steps overlap;
- a pause or concurrency limit on the engine (``ConstraintManager.gating``, read before every step:
  a task body may set one) hands the iteration over before the next step starts.

From a program's first hit on, its walk is also written out as Python (runtime/straight.py) and
run instead of the walker above when no one listens to events and its run-scope resources are set
up: the same steps, checks and handovers, without interpreting the program's entries. A loop that
repeats its template (or alternates between two) then takes the *lane*: the next iteration is
bound to the previous program and its written-out walk runs at once, skipping the choice of
program, path and resources, which cannot change for it (the lane is only set for a program with no
inputs to check, no state backend and its resources set up; events are checked every time).

A template walked straight through before also gets its whole run written out (``Program.entry``,
``straight_run``): ``engine.run`` returns that coroutine instead of this one for a new run of it
(no params), and it hands back here what it does not finish itself (a target that does not bind,
a subscriber or state backend at its start, a tail call); a run whose coroutine was made before the
entry existed moves to the entry when it starts.

Plan order is the order in which the scheduler starts steps that complete inline (lowest ready
position first), so both walkers run the same calls in the same order and emit the same events.

Fairness: a loop whose steps never suspend would starve every other run on the event loop, so every
64 iterations the loop checks the clock and yields once a millisecond of work has passed.
"""

from __future__ import annotations

import asyncio
from time import perf_counter
from typing import TYPE_CHECKING, Any, Mapping, cast

from ..errors import DependencyMissingError
from ..spec.lazy import ARGS, KWARGS, SHAPE, TASK, LazyResult, MappedLazyResult
from .binding import bind
from .events import TaskExecutionFinished, TaskExecutionStarted
from .executor import (
    NOT_AWAITABLE,
    Scheduler,
    advance,
    awaited,
    cancel_pending,
    missing_run_resources,
    note_failure,
    resolve_args,
    resolve_compiled,
    returned_awaitable,
    setup_cannot_suspend,
)
from .program import (
    A_ALL,
    A_KW1,
    A_LIT,
    A_LIT_INJ,
    A_LIT_KW,
    A_ONE,
    A_RESOLVE,
    A_SEQ1,
    A_SUBS,
    OP_AWAIT_KW1,
    OP_AWAIT_LIST1,
    OP_AWAIT_ONE,
    OP_AWAIT_SEQ1,
    OP_MAP,
    Program,
)
from .straight import straight_bind, straight_walk

if TYPE_CHECKING:
    from .context import RunContext
    from .engine import Engine

__all__ = ["BY_DRIVE", "drive", "skipped_target"]

_LAZY_TYPES = frozenset({LazyResult, MappedLazyResult})
_RUN: Any = object()  # drive's ``params`` once it runs as a run of its own (not a nested evaluation)
# ``params`` of a run given none that the template's written-out run (``Program.entry``) handed back
BY_DRIVE: Mapping[str, Any] = {}
FAIRNESS_SLICE = 0.001  # seconds of uninterrupted work before the loop yields
_FAIRNESS_MASK = 63  # check the clock every 64 iterations


async def drive(engine: Engine, target: Any, params: Mapping[str, Any] | None = None,
                ctx: RunContext | None = None) -> Any:
    """Run ``target`` to its final value (following tail calls) and return it.

    This is :meth:`cascade.Engine.run` (``engine.run(target, params)``): the run's coroutine is
    the tail-call loop itself, so a run costs one coroutine frame. With ``ctx`` it evaluates a lazy
    result returned by a non-target call of that run instead (no run of its own).

    Raises the task's own exception when a task fails (after its retries),
    :class:`cascade.DependencyMissingError` when the target was skipped, ``TypeError`` when
    ``target`` is not a lazy result, :class:`cascade.ParamError` for a missing param,
    :class:`cascade.ResourceError` for a resource that is unknown, in a cycle or injected
    across scopes. A failing resource teardown never replaces the run's own exception (it is
    attached to it: ``__notes__`` and ``cascade_teardown_errors``); it is raised only when
    nothing else failed.
    """
    if ctx is None:
        # written out since this coroutine was made (runs started together, before the first hit of
        # their template): the entry is cheaper than what follows, even from here
        if params is None and type(target) is LazyResult and (entry := engine._entry_for(target)):
            return await entry(engine, target)
        ctx = engine._start_run(target, params)  # checks the arguments; RunStarted
        params = _RUN  # this coroutine is a run of its own (its end is handled below)
    # CS-W003 names the target's task; the first iteration's objects are freed once the loop moves on
    root = target.task if params is _RUN and ctx.params else None
    current = target
    del target
    stats = engine.stats
    hot = engine.hot_plans
    cm = ctx.constraints
    event_bus = ctx.bus
    state = ctx.state
    tick = 0
    last_yield = perf_counter()
    watch: Any = None  # the CS-W001 detector, made on the first miss
    ready: tuple[str, ...] = ()  # run-scope resources known to be set up (they stay until the run ends)
    failure: BaseException | None = None  # what ended the run (for its teardowns and RunFinished)
    # A loop repeating its template (or alternating between two, as an agent that listens, then
    # flashes) reuses the program of the previous or the one before without a cache lookup:
    # programs are immutable and ``bind`` still verifies the new iteration node by node.
    prev_shape: int | None = None
    prev_prog: Program | None = None
    alt_shape: int | None = None
    alt_prog: Program | None = None
    coro: Any  # the call being awaited (a coroutine, or the awaitable a sync task returned)
    # The walker's list of a finished iteration, bound into again by the next one of its length:
    # a loop allocates no list per iteration, and none that the collector sees new every time.
    spare: list[Any] | None = None
    # The written-out walk of the previous iteration's program when nothing else of this run could
    # change how the next iteration of that program runs (see below): a loop repeating its template
    # then goes from binding straight to the walk.
    lane: Any = None
    alt_lane: Any = None  # alt_prog's
    walk_fn: Any
    try:
        while True:
            ctx.iteration += 1
            iteration = ctx.iteration
            shape = current[SHAPE] if type(current) is LazyResult else current._shape
            objs: list[Any] | None = None
            walk_fn = None
            if shape == prev_shape:
                if lane is not None and not event_bus.active:
                    objs = prev_prog.binder(current, spare)  # type: ignore[union-attr]
                    if objs is not None:
                        walk_fn = lane
            elif shape == alt_shape and alt_lane is not None and not event_bus.active:
                objs = alt_prog.binder(current, spare)  # type: ignore[union-attr]
                if objs is not None:  # the two programs trade places, as below
                    prev_shape, alt_shape, prev_prog, alt_prog = alt_shape, prev_shape, alt_prog, prev_prog
                    lane, alt_lane = alt_lane, lane
                    walk_fn = lane
            if walk_fn is not None:
                prog = prev_prog
                stats.hot_plan_hits += 1
                if watch is not None:
                    watch.streak = 0
            if walk_fn is None:  # not the lane: choose the program and how to run it
                prog = None
                if hot:
                    if shape == prev_shape:
                        prog = prev_prog
                    elif shape == alt_shape:
                        prog = alt_prog
                    if prog is not None:
                        if prog.single:
                            if type(current) is not LazyResult or current[TASK] is not prog.steps[0].task:
                                prog = None  # a shape-hash collision
                        else:
                            binder = prog.binder
                            objs = (binder(current, spare) if binder
                                    else bind(prog, current, spare) if not prog.bind_by_graph
                                    else engine._bind_by_graph(prog, current))
                            if objs is None:
                                prog = None
                    if prog is None:
                        prog, objs = engine._lookup(shape, current)
                if prog is not None:
                    stats.hot_plan_hits += 1
                    full = False
                    if watch is not None:
                        watch.streak = 0
                    if prog.straight is None:  # its first hit: it runs again, so write it out
                        prog.straight = objs is not None and straight_walk(prog, objs) or False
                        prog.binder = straight_bind(prog) or False
                else:
                    if hot:
                        stats.hot_plan_misses += 1
                    prog, objs = engine._compile(current, ctx)
                    # Only the slow engine runs every call with full governance; a hot engine runs a
                    # program it just compiled as it will run it on every later hit (the two are equal:
                    # the property suite compares hot and slow engines event by event).
                    full = not hot
                    if watch is None:
                        watch = engine._shape_watch()
                    watch.miss(current, ctx)
                if hot:
                    if shape != prev_shape:
                        alt_shape, alt_prog, alt_lane = prev_shape, prev_prog, lane
                    prev_shape, prev_prog = shape, prog
                if prog.checks_inputs:
                    _check_inputs(prog, ctx)  # raises ParamError before any task of it runs
                if state is not None and iteration > 1:
                    state.clear(ctx.run_id)  # a finished iteration's state is not needed again

                # The first iteration of a run that injects run-scope resources sets them up: in place in
                # the walker when that cannot suspend (right before the step, as the governed path does).
                run_res = prog.run_resources
                setup = False
                if run_res and run_res != ready:
                    setup = missing_run_resources(ctx, run_res)
                    if not setup:
                        ready = run_res
                if hot:
                    # the lane for the next iteration of this program (prev_prog now): it skips what is
                    # above and the choice below, so only when none of it can matter (a program run with
                    # full governance, a single call or inputs to check, a state backend, resources to set
                    # up) and the walk is written out; events are checked on each use
                    lane = (prog.straight if prog.binder and prog.simple and not prog.checks_inputs
                            and state is None and not setup else None)
                if (not prog.simple or full or state is not None or (prog.single and (cm.gating or setup))
                        or (setup and not setup_cannot_suspend(ctx, run_res))):
                    value, reason = await Scheduler(prog, objs or [current], ctx, full, iteration).run()
                elif prog.single:
                    # -- one step, no inputs: the iteration is one call ----------------------------------
                    _, fn, is_async, am, _, name, _ = prog.fast[0]
                    if am == A_LIT:
                        args, kwargs = current[ARGS], None
                    elif am == A_LIT_KW:
                        args, kwargs = current[ARGS], current[KWARGS]
                    else:
                        args, kwargs = resolve_args(prog.steps[0], current, [], ctx, None)
                    bus = event_bus if event_bus.active else None
                    if bus is not None:
                        bus.publish(TaskExecutionStarted(ctx.run_id, name, 0, iteration))
                    try:
                        if is_async:
                            value = await (fn(*args, **kwargs) if kwargs else fn(*args))
                        else:
                            value = fn(*args, **kwargs) if kwargs else fn(*args)
                            if returned_awaitable(value):
                                value = await awaited(value)
                    except BaseException as exc:
                        note_failure(exc, prog.steps, 0)
                        if bus is not None:
                            _failed(bus, ctx.run_id, name, 0, iteration, exc)
                        raise
                    if bus is not None:
                        bus.publish(TaskExecutionFinished(ctx.run_id, name, 0, iteration))
                    reason = None
                elif prog.straight and not setup and not event_bus.active:
                    walk_fn = prog.straight  # run below
                else:
                    # -- the sequential walker -----------------------------------------------------------
                    assert objs is not None
                    walk = prog.walk
                    n = len(walk)
                    # Step k's value goes where its lazy object was: each step reads its own object
                    # before its value is stored, and reads only values of steps before it (as does a
                    # scheduler taking over), so one list serves both and an iteration allocates none.
                    values: list[Any] = objs
                    bus = event_bus if event_bus.active else None
                    handover = None
                    for k in range(n):
                        if cm.gating:
                            handover = Scheduler(prog, objs, ctx, False, iteration, values, k)
                            break
                        if setup:
                            needs = prog.steps[k].run_resources
                            if needs and missing_run_resources(ctx, needs):
                                if ctx.busy():  # another call of this run is setting some up
                                    await ctx.ensure(needs)
                                else:
                                    ctx.ensure_now(needs)  # sync generators and constants: in place
                        op, fn, spec, name, notlast = walk[k]
                        if op == OP_MAP:
                            values[k] = list(map(values.__getitem__, spec))
                            continue
                        if bus is not None:
                            bus.publish(TaskExecutionStarted(ctx.run_id, name, k, iteration))
                        try:
                            if op == OP_AWAIT_ONE:  # a chain's step: every later step depends on it
                                v = await fn(values[spec])
                            elif op == OP_AWAIT_LIST1:
                                v = await fn([values[spec]])
                            elif op == OP_AWAIT_KW1:
                                v = await fn(**{spec[0]: values[spec[1]]})
                            elif op == OP_AWAIT_SEQ1:
                                v = await fn((tuple if spec[0] else list)(map(values.__getitem__, spec[1])))
                            else:
                                _, _, is_async, am, aspec, _, tail = spec
                                o = objs[k]
                                kwargs = None
                                if am == A_ONE:
                                    args = (values[aspec],)
                                elif am == A_LIT:
                                    args = o[ARGS]
                                elif am == A_LIT_INJ:
                                    # literal arguments and run-scope resources (set up above): what
                                    # resolve_args gives, without its general walk
                                    args, kwargs = o[ARGS], dict(o[KWARGS])
                                    for i, d in aspec:  # (parameter, resource name)
                                        kwargs[i] = ctx.values[d]
                                elif am == A_ALL:
                                    args = list(map(values.__getitem__, aspec))
                                elif am == A_LIT_KW:
                                    args, kwargs = o[ARGS], o[KWARGS]
                                elif am == A_SUBS:
                                    args = list(o[ARGS])
                                    for i, d in aspec:
                                        args[i] = values[d]
                                    kwargs = o[KWARGS]
                                elif am == A_KW1:
                                    args, kwargs = (), {aspec[0]: values[aspec[1]]}
                                elif am == A_SEQ1:
                                    args = ((tuple if aspec[0] else list)(map(values.__getitem__, aspec[1])),)
                                elif am == A_RESOLVE and (args := resolve_compiled(aspec, o, values)) is not None:
                                    args, kwargs = args
                                else:
                                    args, kwargs = resolve_args(prog.steps[k], o, values, ctx, None)
                                if not is_async:
                                    v = fn(*args, **kwargs) if kwargs else fn(*args)
                                    # a sync task that returned an awaitable: driven like an async step
                                    if type(v) in NOT_AWAITABLE or not returned_awaitable(v):
                                        coro = None
                                    elif tail:  # awaited here, as awaited(v) would: one coroutine less
                                        args = kwargs = None
                                        coro = v
                                        try:
                                            v = await coro
                                        except BaseException:
                                            cancel_pending(coro)  # what awaited(v) does
                                            raise
                                        coro = None
                                    else:
                                        coro = awaited(v)
                                else:
                                    coro = fn(*args, **kwargs) if kwargs else fn(*args)
                                if coro is None:
                                    pass
                                elif tail:
                                    args = kwargs = None  # not kept alive while the call waits
                                    v = await coro
                                else:
                                    suspended, v = advance(coro)
                                    if suspended:
                                        handover = _take_over(prog, objs, ctx, iteration, values, k, coro, v)
                                        break
                            if notlast and type(v) in _LAZY_TYPES:
                                coro = ctx.evaluate(v)  # a non-target call returned a lazy result
                                if prog.steps[k].tail_dependent:
                                    v = await coro
                                else:
                                    suspended, v = advance(coro)
                                    if suspended:
                                        handover = _take_over(prog, objs, ctx, iteration, values, k, coro, v)
                                        break
                        except BaseException as exc:
                            note_failure(exc, prog.steps, k)
                            if bus is not None:
                                _failed(bus, ctx.run_id, name, k, iteration, exc)
                            raise
                        if bus is not None:
                            bus.publish(TaskExecutionFinished(ctx.run_id, name, k, iteration))
                        values[k] = v
                    # the last step's locals would keep this iteration's calls alive while later
                    # iterations run another path (a written-out walk)
                    o = v = args = kwargs = None
                    if handover is None:
                        value, reason = values[n - 1], None
                        spare = values  # no one else holds it now
                    else:
                        value, reason = await handover.run()
                    del values
            if walk_fn is not None:
                # -- the program's own walk, written out (see straight.py) ---------------------------
                if type(walk_fn) is tuple:  # plain functions: a step's wait happens here
                    value, k, coro = walk_fn[0](objs, ctx, cm, iteration)
                else:
                    value, k, coro = await walk_fn(objs, ctx, cm, iteration)
                while k >= 0:  # step k waits for ``coro``: here, so the walk keeps no frame
                    try:
                        v = await coro
                    except BaseException as exc:
                        cancel_pending(coro)  # a sync task's future (a no-op for a coroutine)
                        note_failure(exc, cast(Program, prog).steps, k)
                        raise
                    value, k, coro = walk_fn[1][k](objs, ctx, cm, iteration, v)
                if k == -1:
                    reason = None
                    spare = objs  # no one else holds it now
                else:
                    value, reason = await coro.run()  # handed over to the scheduler
                coro = v = None

            if reason is not None:
                skipped_target(getattr(getattr(current, "task", None), "name", "target"), reason)
                value = None  # a sequence's skip: the run's value is None
                break
            if type(value) in _LAZY_TYPES:
                stats.tail_calls += 1
                current = value
                del value, objs
                tick += 1
                if not tick & _FAIRNESS_MASK:
                    if perf_counter() - last_yield > FAIRNESS_SLICE:
                        await asyncio.sleep(0)  # let other runs progress (the loop may never suspend)
                        last_yield = perf_counter()
                continue
            break
        if root is not None:
            engine._check_params_read(ctx, root)  # CS-W003
        return value
    except BaseException as exc:
        failure = exc
        raise
    finally:
        if params is _RUN:
            if ctx._gens or ctx.values and event_bus.active:  # ctx.must_close(), inline
                await engine._close_run(ctx, failure)  # teardowns, then as below
            elif engine.state_backend is not None or event_bus.active:
                engine._end_run(ctx, failure)  # state cleared, RunFinished


def skipped_target(name: str, reason: str) -> None:
    """The end of a run whose target ``name`` was skipped for ``reason``: a ``None`` value when
    the skip is a sequence's (``after`` on a skipped call), else ``DependencyMissingError``."""
    if reason == "UpstreamSkipped_Sequence":
        return None
    raise DependencyMissingError(f"the target {name!r} produced no value: it was skipped ({reason})", reason)


def _check_inputs(prog: Program, ctx: RunContext) -> None:
    """Resolve the program's params and envs: a missing one raises before any task of it runs."""
    for marker in prog.params:
        marker.resolve(ctx.params)
    for env in prog.envs:
        env.resolve()


def _failed(bus: Any, run_id: str, name: str, k: int, iteration: int, exc: BaseException) -> None:
    """Publish the failed ``TaskExecutionFinished`` of step ``k``."""
    bus.publish(TaskExecutionFinished(run_id, name, k, iteration, "Failed", repr(exc)))


def _take_over(prog: Program, objs: list[Any], ctx: RunContext, iteration: int, values: list[Any], k: int,
               coro: Any, pending: Any) -> Scheduler:
    """The scheduler that finishes an iteration from step ``k``, whose call ``coro`` suspended
    (yielding ``pending``)."""
    return Scheduler(prog, objs, ctx, False, iteration, values, k, (coro, pending))
