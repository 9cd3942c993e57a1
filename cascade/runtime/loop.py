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

Plan order is the order in which the scheduler starts steps that complete inline (lowest ready
position first), so both walkers run the same calls in the same order and emit the same events.

Fairness: a loop whose steps never suspend would starve every other run on the event loop, so every
64 iterations the loop checks the clock and yields once a millisecond of work has passed.
"""

from __future__ import annotations

import asyncio
from time import perf_counter
from typing import TYPE_CHECKING, Any

from ..errors import DependencyMissingError
from ..spec.lazy import ARGS, KWARGS, SHAPE, LazyResult, MappedLazyResult
from .binding import bind
from .events import TaskExecutionFinished, TaskExecutionStarted
from .executor import Scheduler, resolve_args
from .program import A_ALL, A_LIT, A_LIT_KW, A_ONE, A_SUBS, MAP

if TYPE_CHECKING:
    from .context import RunContext
    from .engine import Engine

__all__ = ["drive"]

FAIRNESS_SLICE = 0.001  # seconds of uninterrupted work before the loop yields
_FAIRNESS_MASK = 63  # check the clock every 64 iterations


async def drive(engine: Engine, target: Any, ctx: RunContext) -> Any:
    """Evaluate ``target`` to a final value, following tail calls (see the module docstring)."""
    stats = engine.stats
    hot = engine.hot_plans
    plans = engine._plans
    cm = ctx.constraints
    event_bus = ctx.bus
    current = target
    tick = 0
    last_yield = perf_counter()
    watch = engine._shape_watch()
    while True:
        ctx.iteration += 1
        iteration = ctx.iteration
        shape = current[SHAPE] if type(current) is LazyResult else current._shape
        prog = plans.get(shape) if hot else None
        if prog is not None:
            plans.move_to_end(shape)
            objs = bind(prog, current) if not prog.bind_by_graph else engine._bind_by_graph(prog, current)
            if objs is None:
                prog = None
        if prog is not None:
            stats.hot_plan_hits += 1
            full = False
            watch.hit()
        else:
            if hot:
                stats.hot_plan_misses += 1
            prog, objs = engine._compile(current)
            full = True
            watch.miss(current, ctx)
        if prog.checks_inputs:
            for marker in prog.params:
                marker.resolve(ctx.params)  # raises ParamError before any task of it runs
            for env in prog.envs:
                env.resolve()
        if ctx.state is not None and iteration > 1:
            ctx.state.clear(ctx.run_id)  # a finished iteration's state is not needed again

        if prog.simple and not full and ctx.state is None:
            # -- the sequential walker -----------------------------------------------------------
            fast = prog.fast
            n = len(fast)
            last = n - 1
            values: list[Any] = [None] * n
            bus = event_bus if event_bus.active else None
            handover = None
            for k in range(n):
                if cm.gating:
                    handover = Scheduler(prog, objs, ctx, False, iteration, values, k)
                    break
                kind, fn, is_async, am, spec, name, tail = fast[k]
                if kind == MAP:
                    values[k] = [values[d] for d in spec]
                    continue
                o = objs[k]
                kwargs = None
                if am == A_ONE:
                    args = (values[spec],)
                elif am == A_LIT:
                    args = o[ARGS]
                elif am == A_ALL:
                    args = [values[d] for d in spec]
                elif am == A_LIT_KW:
                    args, kwargs = o[ARGS], o[KWARGS]
                elif am == A_SUBS:
                    args = list(o[ARGS])
                    for i, d in spec:
                        args[i] = values[d]
                    kwargs = o[KWARGS]
                else:
                    args, kwargs = resolve_args(prog.steps[k], o, values, ctx, None)
                if bus is not None:
                    bus.publish(TaskExecutionStarted(ctx.run_id, name, k, iteration))
                try:
                    if is_async:
                        coro = fn(*args, **kwargs) if kwargs else fn(*args)
                        if tail:
                            v = await coro
                        else:
                            try:
                                pending = coro.send(None)
                            except StopIteration as stop:
                                v = stop.value
                            else:
                                handover = Scheduler(prog, objs, ctx, False, iteration, values, k,
                                                     (coro, pending))
                                break
                    else:
                        v = fn(*args, **kwargs) if kwargs else fn(*args)
                    t = type(v)
                    if (t is LazyResult or t is MappedLazyResult) and k != last:
                        coro = ctx.evaluate(v)  # a non-target call returned a lazy result
                        if tail:
                            v = await coro
                        else:
                            try:
                                pending = coro.send(None)
                            except StopIteration as stop:
                                v = stop.value
                            else:
                                handover = Scheduler(prog, objs, ctx, False, iteration, values, k,
                                                     (coro, pending))
                                break
                except BaseException as exc:
                    if bus is not None:
                        bus.publish(TaskExecutionFinished(ctx.run_id, name, k, iteration, "Failed", repr(exc)))
                    raise
                if bus is not None:
                    bus.publish(TaskExecutionFinished(ctx.run_id, name, k, iteration))
                values[k] = v
            if handover is None:
                value, reason = values[last], None
            else:
                value, reason = await handover.run()
            del values
        else:
            value, reason = await Scheduler(prog, objs, ctx, full, iteration).run()

        if reason is not None:
            if reason == "UpstreamSkipped_Sequence":
                return None
            name = getattr(getattr(current, "task", None), "name", "target")
            raise DependencyMissingError(
                f"the target {name!r} produced no value: it was skipped ({reason})", reason
            )
        t = type(value)
        if t is LazyResult or t is MappedLazyResult:
            stats.tail_calls += 1
            current = value
            del value, objs
            tick += 1
            if not tick & _FAIRNESS_MASK:
                now = perf_counter()
                if now - last_yield > FAIRNESS_SLICE:
                    await asyncio.sleep(0)  # let other runs progress (the loop may never suspend)
                    last_yield = perf_counter()
            continue
        return value
