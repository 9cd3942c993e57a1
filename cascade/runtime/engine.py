"""The engine: wires the solver, plan cache, executors, constraints, resources and bus together.

It runs tail-call loops: a run evaluates its target iteration by iteration; a target whose value is
another lazy result makes that the next iteration's target (no Python stack grows, and nothing of a
finished iteration is kept). Each iteration takes one of two paths:

- slow: build the graph, solve it, compile a :class:`Program` and execute it (every call with full
  governance on an ``Engine(hot_plans=False)``; a hot engine runs what it just compiled as it runs a
  hit, so a one-shot graph costs its build and one walk);
- hot: the target's template was compiled before (the plan cache, keyed on the target's ``_shape``
  and shared by every run of this engine), so the program is reused and only the new iteration's
  lazy objects are bound to it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import weakref
from collections import OrderedDict
from concurrent.futures import Executor
from typing import Any, Coroutine, Mapping

from ..adapters.connector import Connector, InMemoryConnector
from ..graph.build import build_graph, build_run_graph
from ..graph.gcpause import collector_paused
from ..graph.plan import NativeSolver, Solver
from ..spec.lazy import SHAPE, TASK, LazyResult, MappedLazyResult
from ..spec.messaging import CONNECTOR_RESOURCE, connector_resource
from ..spec.resource import Resource
from .binding import bind
from .constraints import ConstraintManager
from .context import RunContext
from .events import MessageBus, RunFinished, RunStarted, StaticAnalysisWarning
from .loop import drive
from .program import Program, compile_program
from .remote import remote_resolver
from .state import StateBackend
from .stats import EngineStats
from .straight import straight_run

__all__ = ["Engine", "run"]

_log = logging.getLogger("cascade.engine")

# A recursion whose template was new this many iterations in a row never reaches a hot plan.
_CHANGING_STREAK = 3
# Programs kept per shape hash (templates that differ only in sharing or pure merging).
_BUCKET = 4


class Engine:
    """Runs workflows; one engine serves many concurrent runs.

    Options: ``state_backend`` (mirror node results into a :class:`StateBackend`), ``executor`` (a
    ``concurrent.futures.Executor`` for tasks declared ``offload=True``; default the loop's),
    ``bus`` (a :class:`MessageBus`), ``connector`` (a :class:`~cascade.adapters.connector.Connector`
    that ``cs.publish``/``cs.recv`` use; default an :class:`InMemoryConnector` made on first use,
    so an engine that never messages pays nothing), ``system_resources`` (capacities for
    ``with_constraints``), ``hot_plans`` (reuse compiled plans of repeating templates), ``plan_cache_size`` (how many programs to keep, LRU),
    ``solver`` (a :class:`~cascade.graph.plan.Solver`), ``resources`` (resources to register),
    ``remote`` (a :class:`~cascade.runtime.remote.RemoteExecutor` such as ``cs.DaskExecutor`` that
    runs every task body unless the task says ``executor="local"``, or a mapping name -> executor
    for tasks declared ``@cs.task(executor=name)``; see docs/dask.md).
    """

    def __init__(self, *, state_backend: StateBackend | None = None, executor: Executor | None = None,
                 bus: MessageBus | None = None, connector: Any = None,
                 system_resources: Mapping[str, float] | None = None, hot_plans: bool = True,
                 plan_cache_size: int = 256, solver: Solver | None = None,
                 resources: tuple[Resource, ...] | list[Resource] = (), remote: Any = None) -> None:
        if not isinstance(plan_cache_size, int) or plan_cache_size < 1:
            raise ValueError(f"plan_cache_size must be an int >= 1, got {plan_cache_size!r}")
        self.bus = bus if bus is not None else MessageBus()
        self.state_backend = state_backend
        self.executor = executor
        self.remote = remote
        self._remote_for = remote_resolver(remote)[1]  # used when compiling only: hot paths pay nothing
        if connector is not None and not all(
            callable(getattr(connector, m, None)) for m in ("publish", "subscribe")
        ):
            raise TypeError(
                f"Engine(connector=...) needs a Connector (async publish/subscribe), got {connector!r}"
            )
        self._connector: Connector | None = connector
        self.constraints = ConstraintManager(dict(system_resources or {}), bus=self.bus)
        self.hot_plans = bool(hot_plans)
        self.plan_cache_size = plan_cache_size
        self.solver: Solver = solver if solver is not None else NativeSolver()
        self.stats = EngineStats()
        # shape -> the programs compiled for it (several templates can share a shape hash when they
        # differ only in sharing or in pure merging; binding tells them apart). LRU over shapes.
        self._plans: OrderedDict[int, tuple[Program, ...]] = OrderedDict()
        self._resources: dict[str, Resource] = {}
        self._warned: weakref.WeakSet[Any] = weakref.WeakSet()
        self._warned_capacity: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()
        self._resources[CONNECTOR_RESOURCE] = connector_resource(self)
        for res in resources:
            self.register(res)

    @property
    def connector(self) -> Connector:
        """The connector messaging tasks use (an :class:`InMemoryConnector` made on first use)."""
        if self._connector is None:
            self._connector = InMemoryConnector()
        return self._connector

    # -- configuration ----------------------------------------------------------------------------
    def register(self, resource: Resource) -> Resource:
        """Make ``resource`` injectable by name in this engine's runs (a later one replaces it)."""
        if not isinstance(resource, Resource):
            raise TypeError(f"register() needs a @cs.resource, got {resource!r}")
        self._resources[resource.name] = resource
        self._plans.clear()  # compiled programs know each resource's scope: compile again
        return resource

    def pause(self, task: Any = None) -> None:
        """Hold calls of ``task`` (a task, a name or glob, a scope such as ``"task:fetch*"``;
        ``None``: every task) until :meth:`resume`. See ``engine.constraints`` for limits and TTLs."""
        self.constraints.pause(task)

    def resume(self, task: Any = None) -> None:
        """Let calls of ``task`` (``None``: the global pause) start again."""
        self.constraints.resume(task)

    def set_concurrency_limit(self, task: Any, limit: int | None) -> None:
        """Run at most ``limit`` calls of ``task`` at once across all runs (``None`` removes it)."""
        self.constraints.set_limit(task, limit)

    def clear_plans(self) -> None:
        """Forget every compiled program."""
        self._plans.clear()

    @property
    def plan_cache_len(self) -> int:
        """How many compiled programs the plan cache holds now."""
        return len(self._plans)

    # -- running ----------------------------------------------------------------------------------
    def run(self, target: Any, params: Mapping[str, Any] | None = None) -> Coroutine[Any, Any, Any]:
        """The run of ``target``: ``await engine.run(target, params)`` gives its final value,
        following tail calls (what it raises: :func:`cascade.runtime.loop.drive`).

        The coroutine is the tail-call loop itself (``drive``) or, for a template this engine ran
        before and walks straight through, that run written out (``Program.entry``,
        runtime/straight.py): the same steps, checks and events, one coroutine per run and no
        more. Nothing runs until it is awaited.
        """
        if params is None and type(target) is LazyResult and (entry := self._entry_for(target)):
            return entry(self, target)
        return drive(self, target, params)

    def _entry_for(self, target: LazyResult) -> Any:
        """The written-out run (``Program.entry``) of the cached program ``target``'s template has,
        or ``None``. It is written the first time a run starts with a template whose walk was
        written out (a template that is only ever a loop's later iteration never gets one)."""
        shape = target[SHAPE]
        bucket = self._plans.get(shape)
        if bucket is None:
            return None
        prog = bucket[0]
        entry = prog.entry
        if entry is None and prog.straight:
            objs = prog.binder(target, None) if prog.binder else None
            if objs is not None:  # (else not now: this target does not bind)
                entry = prog.entry = straight_run(prog, objs) or False
            elif not prog.binder:
                entry = prog.entry = False
        if not entry:
            return None
        self._plans.move_to_end(shape)
        return entry

    if hasattr(inspect, "markcoroutinefunction"):  # Python 3.12+: introspection sees what it gives
        run = inspect.markcoroutinefunction(run)
    else:  # Python 3.11: asyncio.iscoroutinefunction reads this marker (inspect's reads code flags only)
        run._is_coroutine = asyncio.coroutines._is_coroutine  # type: ignore[attr-defined]

    def _first_context(self) -> RunContext:
        """The context of a run given no params, in its first iteration (``Program.entry``'s)."""
        ctx = RunContext(self, _NO_PARAMS)
        ctx.iteration = 1
        return ctx

    def _start_run(self, target: Any, params: Mapping[str, Any] | None) -> RunContext:
        """A new run's context, after checking ``run``'s arguments; publishes ``RunStarted``."""
        if type(target) is not LazyResult and not isinstance(target, (LazyResult, MappedLazyResult)):
            raise TypeError(
                f"run() needs a lazy result (call a task to get one), got {type(target).__name__} {target!r}"
            )
        if params is not None and not isinstance(params, Mapping):
            raise TypeError(f"run(params=...) must be a mapping, got {type(params).__name__}")
        ctx = RunContext(self, _ReadParams(params) if params else _NO_PARAMS)
        if self.bus.active:
            self.bus.publish(RunStarted(ctx.run_id, getattr(target, "task").name))
        return ctx

    def _check_params_read(self, ctx: RunContext, task: Any) -> None:
        """CS-W003 when the run of ``task`` succeeded without reading some of its params."""
        given = ctx.params
        if given.unread:  # type: ignore[attr-defined]
            self._warn_unread_params(given, ctx, task.name)

    async def _close_run(self, ctx: RunContext, failure: BaseException | None) -> None:
        """The end of a run that opened run-scope resources: tear them down (teardown errors are
        attached to the run's own exception ``failure``, raised only if there is none), then
        :meth:`_end_run`."""
        status, error = _outcome(failure)
        try:
            await ctx.close(failure)
        except asyncio.CancelledError:
            status, error = "Cancelled", None
            raise
        except BaseException as exc:
            status, error = "Failed", repr(exc)
            raise
        finally:
            self._end_run(ctx, failure, status, error)

    def _end_run(self, ctx: RunContext, failure: BaseException | None, status: str | None = None,
                 error: str | None = None) -> None:
        """Drop the run's state and publish ``RunFinished`` (``failure``: the run's own exception,
        which keeps precedence over a state backend's; ``status``/``error`` default to its outcome)."""
        try:
            if self.state_backend is not None:
                self._clear_state(ctx.run_id, failure)
        finally:
            if self.bus.active:
                if status is None:
                    status, error = _outcome(failure)
                self.bus.publish(RunFinished(ctx.run_id, status, error))

    def _clear_state(self, run_id: str, failure: BaseException | None) -> None:
        """Drop the run's state. A backend that cannot fails a run that succeeded; after a failed
        run the run's own exception stays the one raised, with this one as a note (a store's TTL
        collects what is left, docs/stores.md)."""
        assert self.state_backend is not None
        try:
            self.state_backend.clear(run_id)
        except Exception as exc:
            if failure is None:
                raise
            failure.add_note(f"the state backend could not clear run {run_id}: {exc!r}")

    def _shape_watch(self) -> _ShapeWatch:
        return _ShapeWatch(self)

    def _lookup(self, shape: int, target: Any) -> tuple[Program | None, list[Any] | None]:
        """A cached program that ``target``'s iteration binds to, with its objects."""
        bucket = self._plans.get(shape)
        if bucket is None:
            return None, None
        self._plans.move_to_end(shape)
        for prog in bucket:
            if prog.single:
                if type(target) is LazyResult and target.task is prog.steps[0].task:
                    return prog, None
                continue
            binder = prog.binder
            objs = (binder(target, None) if binder else bind(prog, target) if not prog.bind_by_graph
                    else self._bind_by_graph(prog, target))
            if objs is not None:
                return prog, objs
        return None, None

    def _bind_by_graph(self, prog: Program, target: Any) -> list[Any] | None:
        # Pure nodes may merge differently from one iteration to the next: only a graph build can
        # tell, so such templates bind through one (still no solving or compiling).
        graph = build_graph(target)
        self.stats.graph_builds += 1
        if graph.template_id != prog.template_id:
            return None
        objs = [graph.nodes[c].obj for c in prog.order]
        for o, task in zip(objs, prog.tasks):
            if type(o) is LazyResult and o[TASK] is not task:
                return None  # another task with the same fingerprint
        return objs

    def _compile(self, target: Any, ctx: RunContext | None = None) -> tuple[Program, list[Any]]:
        # Build, solve and compile allocate objects per node that live as long as the build: the
        # collector would rescan them over and over in a big graph (see graph/gcpause.py).
        with collector_paused():
            graph = build_run_graph(target)
            self.stats.graph_builds += 1
            plan = self.solver.solve(graph)
            self.stats.plan_solves += 1
            prog = compile_program(graph, plan, self._resources, self.constraints.capacity, self._remote_for,
                                   scheduled=not self.hot_plans)
            nodes = graph.nodes
            objs = [nodes[c].obj for c in prog.order]
        if prog.no_capacity:
            # Every program is compiled here before any path runs it (hot plans reuse what this
            # engine compiled), so warning here is the same on hot and slow engines.
            self._warn_no_capacity(prog, ctx)
        if self.hot_plans:
            shape = target._shape
            bucket = self._plans.get(shape, ())
            self._plans[shape] = (prog,) + bucket[: _BUCKET - 1]
            self._plans.move_to_end(shape)
            while len(self._plans) > self.plan_cache_size:
                self._plans.popitem(last=False)
        return prog, objs

    def _warn_no_capacity(self, prog: Program, ctx: RunContext | None) -> None:
        """CS-W002, once per engine, task and capacity name: a constraint on a capacity this
        engine does not have is not governed."""
        for task, names in prog.no_capacity:
            seen = self._warned_capacity.setdefault(task, set())
            new = [c for c in names if c not in seen]
            if not new:
                continue
            seen.update(new)
            have = ", ".join(sorted(self.constraints.capacity)) or "none"
            message = (
                f"task {task.name!r} asks for {', '.join(map(repr, new))} in with_constraints(), "
                f"which this engine has no capacity for (system_resources: {have}), so it is not "
                "limited. Pass Engine(system_resources={...}) with that name, or drop the constraint."
            )
            _log.warning(message)
            if ctx is not None and self.bus.active:
                self.bus.publish(StaticAnalysisWarning(ctx.run_id, "CS-W002", task.name, message))

    def _warn_unread_params(self, given: Any, ctx: RunContext, task: str) -> None:
        """CS-W003: a run that succeeded without any task reading some of its params."""
        names = sorted(map(str, given.unread))
        message = (
            f"run(params=...) got {', '.join(map(repr, names))}, which no task of this run read "
            f"(a typo, or a cs.Param only on a branch that did not run); the params read were: "
            f"{', '.join(repr(n) for n in given if n not in given.unread) or 'none'}"
        )
        _log.warning(message)
        if self.bus.active:
            self.bus.publish(StaticAnalysisWarning(ctx.run_id, "CS-W003", task, message))

    def _warn_changing(self, task: Any, ctx: RunContext) -> None:
        self._warned.add(task)
        message = (
            f"task {task.name!r} recurses with a graph whose shape changes on every iteration "
            f"({_CHANGING_STREAK + 1} new templates in a row), so it can never use a hot plan. "
            "Keep each iteration's graph the same shape (pass what changes as literal arguments "
            "rather than building a different number of calls), or use Engine(hot_plans=False)."
        )
        _log.warning(message)
        if self.bus.active:
            self.bus.publish(StaticAnalysisWarning(ctx.run_id, "CS-W001", task.name, message))


def _outcome(failure: BaseException | None) -> tuple[str, str | None]:
    """``RunFinished``'s status and error for a run that ended with ``failure`` (``None``: none)."""
    if failure is None:
        return "Succeeded", None
    if isinstance(failure, asyncio.CancelledError):
        return "Cancelled", None
    return "Failed", repr(failure)


_NO_PARAMS: dict[str, Any] = {}  # the params of every run given none (nothing writes to a run's params)


class _ReadParams(dict[str, Any]):
    """``run(params=...)`` as the run sees it: it notes which names a ``cs.Param`` looked up
    (``Param.resolve`` asks ``name in params`` first), so that unread ones can be reported (CS-W003).
    Only a run given params pays for it: one Python call per param lookup."""

    __slots__ = ("unread",)

    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(params)
        self.unread = set(self)

    def __contains__(self, name: object) -> bool:
        if self.unread:
            self.unread.discard(name)
        return dict.__contains__(self, name)


class _ShapeWatch:
    """Per-loop detector of recursions whose template changes on every iteration (CS-W001)."""

    __slots__ = ("engine", "prev_task", "streak")

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.prev_task: Any = None
        self.streak = 0

    def miss(self, target: Any, ctx: RunContext) -> None:
        engine = self.engine
        task = getattr(target, "task", None)
        if not engine.hot_plans or task is None:
            return
        self.streak = self.streak + 1 if task is self.prev_task else 0
        self.prev_task = task
        if self.streak >= _CHANGING_STREAK and task not in engine._warned:
            engine._warn_changing(task, ctx)


def run(target: Any, params: Mapping[str, Any] | None = None, **engine_options: Any) -> Any:
    """Run ``target`` synchronously on a new :class:`Engine` (``engine_options`` are its keywords).

    Raises ``RuntimeError`` when called from a running event loop: use ``await engine.run()`` there.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError("cs.run() cannot be called from a running event loop; use await Engine().run(...)")
    engine = Engine(**engine_options)
    return asyncio.run(engine.run(target, params))
