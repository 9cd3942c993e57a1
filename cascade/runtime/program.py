"""Compiling a solved graph into a :class:`Program`: the plan the executors walk.

A program is immutable and holds nothing of a run, so one program serves every run and every
iteration whose target has the same template: that is the *hot plan*. Compilation decides, once per
template, which machinery the template uses at all (flow checks, routers, retries, caches,
constraints, resources) so the hot executor can leave out what is unused; the slow path runs the
same program with every check switched on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Callable, Sequence

from ..errors import ResourceError
from ..graph.model import Graph
from ..graph.plan import ExecutionPlan
from ..spec.lazy import (
    _ATOMIC,
    _NO_POLICIES,
    A0,
    ARGS,
    DEPS,
    KWARGS,
    MODE,
    NDATA,
    POLICY,
    TASK,
    LazyResult,
    MappedLazyResult,
    Router,
    _At,
    _sorted_keys,
    argument_label,
    nargs_of,
)
from ..spec.markers import Env, Inject, Marker, Param
from ..spec.resource import Resource
from .resources import dependency_order

__all__ = ["CALL", "MAP", "ROUTER", "Program", "Step", "compile_program"]

CALL, MAP, ROUTER = 0, 1, 2

# How the sequential walker builds a call's arguments (chosen once per template):
A_LIT, A_LIT_KW, A_ONE, A_ALL, A_SUBS, A_GENERAL, A_MAP, A_RESOLVE, A_KW1, A_SEQ1, A_LIT_INJ = range(11)
# What the sequential walker does per step: the chain step ``await fn(previous)`` (or its keyword
# and list forms, ``await fn(x=previous)``, ``await fn([previous])``, ``await fn([a, b])``), a map
# gather, or the general case (whose spec is the step's ``fast`` entry).
OP_AWAIT_ONE, OP_MAP, OP_GENERAL, OP_AWAIT_KW1, OP_AWAIT_SEQ1, OP_AWAIT_LIST1 = range(6)
# Programs of this many steps or more (one-shot graphs) make their fast entries and consumers on
# first use: the walker runs them without either, and each is a tuple per step kept alive.
LAZY_FROM = 1_000


@dataclass(frozen=True, slots=True)
class StepExtras:
    """The parts of a step that a plain call (no policy, resource, router or remote executor) does
    not have: one shared ``PLAIN`` serves all of those, so a big graph keeps 56 bytes less per step."""

    routes: dict[Any, int] | None = None  # router: route key -> position
    retry: Any = None
    cached: bool = False
    constraints: tuple[tuple[str, float], ...] = ()
    offload: bool = False
    task_resources: tuple[str, ...] = ()  # in dependency order
    injected: tuple[tuple[str, str], ...] = ()  # (parameter, resource) from ``cs.inject`` defaults
    remote: Any = None  # the RemoteExecutor that runs this call's body; None: in this process


PLAIN = StepExtras()


# Not ``frozen``: a frozen dataclass sets its fields through ``object.__setattr__`` (~5 us per
# step, the largest part of compiling a big graph); steps are still never changed once compiled.
@dataclass(slots=True, unsafe_hash=True)
class Step:
    """One compiled node. Positions (``deps``, ``cond`` ...) index the program's steps (never
    changed once compiled: one program serves every run)."""

    pos: int
    kind: int
    name: str
    task: Any
    fn: Any
    is_async: bool
    mode: int  # argument resolution: 0 literal, 1 top-level lazies (see ``subs``), 2 general
    # mode 1: (argument index, input position); () when the inputs are all the positional arguments,
    # in order (a chain's step: one tuple fewer per step of a big graph)
    subs: tuple[tuple[int, int], ...]
    deps: tuple[int, ...]  # positions of ``obj._deps`` in order
    ndata: int
    cond: int  # -1 when there is no condition
    after: tuple[int, ...]
    seq: tuple[int, ...]
    inputs: tuple[int, ...]  # unique positions this step waits for (router: the selector only)
    governed: bool  # needs the governed path even on the hot path
    run_resources: tuple[str, ...]  # in dependency order, those task resources inject included
    extras: StepExtras  # what most steps have none of (``PLAIN``), shared by them
    tail_dependent: bool  # every later step depends on this one: awaiting it inline loses no overlap

    # read through to ``extras`` (C-level getters, no Python frame per read)
    routes = property(attrgetter("extras.routes"))
    retry = property(attrgetter("extras.retry"))
    cached = property(attrgetter("extras.cached"))
    constraints = property(attrgetter("extras.constraints"))
    offload = property(attrgetter("extras.offload"))
    task_resources = property(attrgetter("extras.task_resources"))
    injected = property(attrgetter("extras.injected"))
    remote = property(attrgetter("extras.remote"))


# Not ``frozen`` (25 fields through ``object.__setattr__`` cost ~5 us, a fifth of a slow-path
# iteration); a program is still never changed once compiled.
@dataclass(slots=True, unsafe_hash=True)
class Program:
    """A compiled iteration plan, shared by every run of one engine (never mutated)."""

    steps: tuple[Step, ...]
    walk: tuple[tuple[Any, ...], ...]  # per step (op, fn, spec, name, not the last step)
    order: tuple[int, ...]  # canonical graph index of each step
    template_id: str
    shape: int
    simple: bool  # no flow, no routers, no governed step: the sequential fast path applies
    single: bool  # exactly one step, a call (so it has no inputs)
    calls_only: bool  # every step is a call (binding needs no type checks)
    has_routers: bool
    needed: tuple[bool, ...]  # reachable from the target without crossing a route edge
    waiting0: tuple[int, ...]  # inputs each step waits for, at the start of an iteration
    ready0: tuple[int, ...]  # steps ready at the start (sorted: a valid heap)
    # per position, where binding reads a call's inputs: False through its DEPS; for a call whose
    # dependencies are its positional arguments, from the call at those argument positions (None:
    # all of them). ``extract`` and ``shared`` are made from it on the first binding (below).
    at_of: tuple[Any, ...]
    shapes: tuple[int, ...]
    bind_by_graph: bool  # pure nodes could merge differently: bind through a graph build
    checks_inputs: bool  # has params or envs to check before the iteration runs
    params: tuple[Param, ...]
    envs: tuple[Env, ...]
    run_resources: tuple[str, ...]
    # (task, capacity names) for constraints naming a capacity the engine does not have: compiled
    # away, and reported by the engine once per task and name (CS-W002).
    no_capacity: tuple[tuple[Any, tuple[str, ...]], ...] = ()
    # Each step's task (None for maps and routers): binding checks that every object of a new
    # iteration calls the task its step was compiled for, so tasks whose shapes collide (a shared
    # fingerprint) never run each other's functions.
    tasks: tuple[Any, ...] = ()
    # The walk written out (runtime/straight.py: a coroutine function, or for a program of sync
    # tasks a (start, finish) pair of plain functions), made on the program's first hit: None until
    # then, False when the program has a step only the walker runs.
    straight: Any = field(default=None, compare=False, hash=False)
    # ``bind`` for this program written out (runtime/straight.py), made at the same time; False: none.
    binder: Any = field(default=None, compare=False, hash=False)
    # A whole run of this template from ``engine.run`` on, written out (``straight_run``), made when
    # a run first starts with this template after its walk was written out; False: runs of it go
    # through ``drive``.
    entry: Any = field(default=None, compare=False, hash=False)
    # (extract, shared, twins), made on the first binding: a program compiled for a one-shot graph
    # never binds another iteration, so it never pays for them (time, and memory per node of a big
    # graph)
    _bindings: Any = field(default=None, compare=False, hash=False)
    # Per position, the positions waiting for it, ascending and unique (a Router's route edges
    # included). Only a scheduler reads them: made at compile for a program of fewer than
    # ``LAZY_FROM`` steps; for a bigger one ``None`` until ``consumer_positions()`` makes it, so a
    # big graph the walker runs (a one-shot chain or map) never pays for them.
    consumers: Any = field(default=None, compare=False, hash=False)
    # Per step ``(kind, fn, is_async, arg mode, arg spec, name, tail_dependent)``: the walker's view
    # of each step. Made at compile for a program of fewer than ``LAZY_FROM`` steps; for a bigger
    # one (a one-shot graph) ``None`` until ``fast_entries()`` makes it.
    fast: Any = field(default=None, compare=False, hash=False)

    @property
    def size(self) -> int:
        return len(self.steps)

    @property
    def extract(self) -> tuple[tuple[int, int, int], ...]:
        """(position, parent position, where in the parent) for every node but the target:
        ``parent[i]`` for ``i > 0`` (an argument of a call whose dependencies are its positional
        arguments, see spec.lazy), else ``parent._deps[~i]``."""
        return (self._bindings or self._make_bindings())[0]

    @property
    def shared(self) -> tuple[tuple[int, int, int], ...]:
        """Further (consumer, slot, position) edges binding verifies by identity."""
        return (self._bindings or self._make_bindings())[1]

    @property
    def twins(self) -> tuple[tuple[int, ...], ...]:
        """Groups of positions sharing a shape: binding checks that they stay distinct objects."""
        return (self._bindings or self._make_bindings())[2]

    def fast_entries(self) -> tuple[tuple[Any, ...], ...]:
        """``fast``, made on first use for a big program: a walk entry of a general step holds its
        tuple; the others (a chain's awaited steps, maps) say all of it, so a one-shot chain keeps
        one tuple per step, not two."""
        fast = self.fast
        if fast is None:
            fast = self.fast = tuple(_fast_of(entry, st) for entry, st in zip(self.walk, self.steps))
        return fast

    def consumer_positions(self) -> tuple[tuple[int, ...], ...]:
        """``consumers``, made on first use for a big program."""
        consumers = self.consumers
        if consumers is None:
            consumers = self.consumers = _consumers_of(self.steps)
        return consumers

    def _make_bindings(self) -> tuple[Any, Any, Any]:
        bindings = self._bindings = (*_extraction(self.steps, len(self.steps), self.at_of), _twins(self.shapes))
        return bindings


def _markers(obj: LazyResult) -> list[tuple[str, Marker]]:
    """Every marker in a call's arguments, with the argument it sits in."""
    out: list[tuple[str, Marker]] = []
    names = obj.task.positional
    stack: list[tuple[str, Any]] = [(argument_label(names, i), a) for i, a in enumerate(obj[ARGS])]
    stack += [(argument_label(names, k), v) for k, v in obj[KWARGS].items()]
    while stack:
        where, value = stack.pop()
        if isinstance(value, Marker):
            out.append((where, value))
        elif type(value) in (list, tuple):
            stack.extend((where, v) for v in value)
        elif type(value) is dict:
            stack.extend((where, v) for v in value.values())
    return out


def _consumers_of(steps: tuple[Step, ...]) -> tuple[tuple[int, ...], ...]:
    """``Program.consumers``: each step is added to the list of each of its inputs (a Router to
    its routes' too), in position order."""
    consumers: list[list[int] | None] = [None] * len(steps)
    for p, st in enumerate(steps):
        ins = (*st.inputs, *st.deps[1:]) if st.kind == ROUTER else st.inputs
        for d in ins:
            lst = consumers[d]
            if lst is None:
                consumers[d] = [p]
            elif lst[-1] != p:
                lst.append(p)
    return tuple(() if c is None else tuple(c) for c in consumers)


def compile_program(graph: Graph, plan: ExecutionPlan, resources: dict[str, Resource],
                    capacities: dict[str, float] | None = None,
                    remote: Callable[[Any], Any] | None = None, scheduled: bool = False) -> Program:
    """Compile ``graph`` in ``plan`` order for an engine with ``resources`` and ``capacities``.

    ``remote(task)`` names the remote executor of each call (``None``: local); a remote call is
    governed, so neither the sequential walker nor the plain path ever runs it in this process.
    ``scheduled``: every iteration runs on the scheduler (``Engine(hot_plans=False)``), so a big
    program makes its fast entries and consumers now rather than on first use.

    Raises :class:`cascade.ResourceError` on an unknown resource, resources injecting each other
    in a cycle, a run-scope resource injecting a task-scope one, or a constraint amount larger
    than the engine's capacity (it could never run). Amounts of capacities the engine does not
    have are compiled away and listed in ``Program.no_capacity`` (the engine warns, CS-W002).
    """
    capacities = capacities or {}
    order = plan.order
    n = len(order)
    gnodes = graph.nodes
    pos_of = [0] * len(gnodes)  # canonical index -> plan position
    for p, canon in enumerate(order):
        # ints above 256 are objects: where the position is the graph's index (a chain, a map),
        # the graph's int serves, and every use below reads it from here (28 bytes per node less)
        pos_of[canon] = canon if canon == p else p
    nodes = [gnodes[c] for c in order]
    params: dict[str, Param] = {}
    envs: dict[str, Env] = {}
    run_res: dict[str, None] = {}
    no_capacity: list[tuple[Any, tuple[str, ...]]] = []
    # One step per node; ``tail_dependent`` is set once every step is known.
    steps: list[Step] = []
    has_routers = False
    pure_tasks: list[Any] = []
    # per position, where the hot binder reads a call's inputs (``Program.extract``): False through
    # its DEPS; for a call whose dependencies are positional arguments, from the call itself at
    # those argument positions (None: all of them)
    at_of: list[Any] = [False] * n
    position = pos_of.__getitem__
    for canon, node in zip(order, nodes):
        p = pos_of[canon]
        obj = node.obj
        cdeps = node.deps
        deps: tuple[int, ...]
        inputs: tuple[int, ...]
        if len(cdeps) == 1:
            d = pos_of[cdeps[0]]
            # in a chain, plan positions are the graph's indices: its tuple serves (one fewer per step)
            deps = inputs = cdeps if d == cdeps[0] else (d,)
        else:
            deps = tuple(map(position, cdeps))
            inputs = deps if len(deps) < 2 else tuple(dict.fromkeys(deps))
        kind = node.kind
        if kind == "map":
            step = Step(p, MAP, node.name, None, None, False, 0, (), deps, len(deps), -1, (), (), inputs,
                        False, (), PLAIN, False)
        elif kind == "router":
            has_routers = True
            routes = {key: deps[1 + i] for i, key in enumerate(obj.keys)}
            inputs = (deps[0],)
            step = Step(p, ROUTER, node.name, None, None, False, 0, (), deps, 1, -1, (), (), inputs,
                        False, (), StepExtras(routes=routes), False)
        else:
            task = obj[TASK]
            pol = obj[POLICY]
            mode = obj[MODE]
            nd = obj[NDATA]
            rem = remote(task) if remote is not None else None
            subs: tuple[tuple[int, int], ...] = ()
            if task.pure:
                pure_tasks.append(task)
            if mode == 1:
                at = obj[DEPS]
                if at is None:  # every positional argument is a lazy result, and only they
                    at_of[p] = None  # subs: () (see Step.subs)
                elif type(at) is _At:  # these positional arguments are
                    at_of[p] = at
                    subs = tuple(zip(at, deps))
                else:  # with a policy: the dependencies are listed, the policy's after them
                    lazy_positions = [i for i, a in enumerate(obj[ARGS]) if type(a) is LazyResult]
                    subs = tuple(zip(lazy_positions, deps[:nd]))
            if pol is None and mode != 2 and not task.injected and not task.offload and rem is None:
                # the common call: no policy, marker or resource; nothing to check
                step = Step(p, CALL, node.name, task, task.fn, task.is_async, mode, subs, deps, nd, -1, (), (),
                            inputs, False, (), PLAIN, False)
            else:
                step = _general_call(p, node, obj, task, pol or _NO_POLICIES, mode, nd, subs, deps, inputs,
                                    rem, pos_of, resources, capacities, params, envs, run_res, no_capacity)
        steps.append(step)

    if (n == 1 and steps[0].kind == CALL and not steps[0].governed and steps[0].cond < 0 and not params and not envs
            and not run_res and not no_capacity):
        return _single_plain(steps[0], nodes[0], graph.template_id)

    # Which steps are needed before any Router decides: walk back from the target without crossing
    # route edges. The others wait until a Router picks them (reference counting by need). Without
    # Routers every node is an input of the target, directly or not.
    if has_routers:
        needed = [False] * n
        stack = [n - 1]
        while stack:
            p = stack.pop()
            if needed[p]:
                continue
            needed[p] = True
            stack.extend(steps[p].inputs)
    else:
        needed = [True] * n

    # tail_dependent: every later step is a descendant of this one (computed back to front).
    # A route edge is not a dependency (a Router waits only for the route it picks), so it does not
    # count here: awaiting a call inline must never hold back a Router's consumers.
    desc_count = _descendant_counts(steps, n)
    # what a scheduler reads (fast entries, consumers) is made now unless the program is big and
    # the sequential walker may run it (``scheduled``: an engine that runs every call governed)
    has_flow = has_routers or any(st.cond >= 0 or st.seq for st in steps)
    governed = any(st.governed for st in steps)
    keep_fast = n < LAZY_FROM or scheduled or has_flow or governed
    fast_entries: list[tuple[Any, ...]] = []
    walk = []
    waiting0 = []
    ready0 = []
    calls_only = True
    last = n - 1
    for p, st in enumerate(steps):
        st.tail_dependent = desc_count[p] == last - p
        if st.kind != CALL:
            calls_only = False
        fast = _fast_entry(st, nodes[p].obj)
        if keep_fast:
            fast_entries.append(fast)
        walk.append(_walk_entry(fast, p == last))
        waiting0.append(len(st.inputs))
        if not st.inputs and needed[p]:
            ready0.append(p)
    bind_by_graph = len(pure_tasks) != len(set(map(id, pure_tasks))) or graph.pure_merges > 0
    shapes = tuple([nd.obj._shape for nd in nodes])
    return Program(
        steps=tuple(steps), walk=tuple(walk),
        order=order, template_id=graph.template_id, shape=shapes[-1], simple=not has_flow and not governed,
        single=n == 1 and steps[0].kind == CALL,
        calls_only=calls_only,
        has_routers=has_routers, needed=tuple(needed),
        waiting0=tuple(waiting0),
        ready0=tuple(ready0), at_of=tuple(at_of),
        shapes=shapes, bind_by_graph=bind_by_graph,
        checks_inputs=bool(params or envs), params=tuple(params.values()), envs=tuple(envs.values()), run_resources=tuple(run_res),
        no_capacity=tuple(no_capacity), tasks=tuple(st.task for st in steps),
        fast=tuple(fast_entries) if keep_fast else None,
        consumers=_consumers_of(tuple(steps)) if keep_fast else None,
    )


def _single_plain(step: Step, node: Any, template_id: str) -> Program:
    """The program of a one-node graph whose call is not governed (the slow path of a one-call
    loop compiles one per iteration): what the general code computes, without its bookkeeping."""
    step.tail_dependent = True
    obj = node.obj
    fast = _fast_entry(step, obj)
    shape = obj._shape
    return Program(
        (step,), (_walk_entry(fast, True),), (0,), template_id, shape, True, True, True,
        False, (True,), (0,), (0,), (False,), (shape,), False, False, (), (), (), (), fast=(fast,), consumers=((),),
    )


def _general_call(p: int, node: Any, obj: Any, task: Any, pol: Any, mode: int, nd: int,
                  subs: tuple[tuple[int, int], ...], deps: tuple[int, ...], inputs: tuple[int, ...], rem: Any,
                  pos_of: list[int], resources: dict[str, Resource], capacities: dict[str, float],
                  params: dict[str, Param], envs: dict[str, Env], run_res: dict[str, None],
                  no_capacity: list[tuple[Any, tuple[str, ...]]]) -> Step:
    """The step of a call with a policy, markers, injected resources, offloading or a remote body."""
    cond = pos_of[node.cond] if node.cond is not None else -1
    inj_args = []
    for where, marker in _markers(obj) if mode == 2 else ():  # markers force mode 2
        if isinstance(marker, Param):
            params.setdefault(marker.name, marker)
        elif isinstance(marker, Env):
            envs.setdefault(marker.name, marker)
        elif isinstance(marker, Inject):
            inj_args.append((where, marker.name))
    injected = tuple((param, res) for param, res in task.injected if param not in obj[KWARGS])
    res_names = [(f"parameter {param!r}", res) for param, res in injected] + inj_args
    for where, res in res_names:
        if res not in resources:
            known = ", ".join(sorted(resources)) or "none registered"
            raise ResourceError(
                f"task {task.name!r} {where} injects unknown resource {res!r} ({known})"
            )
    # Every resource the call needs, the ones they inject included, each after what it
    # injects: setup in this order, teardown in reverse.
    try:
        needs = dependency_order(dict.fromkeys(r for _, r in res_names), resources)
    except ResourceError as exc:
        raise ResourceError(f"task {task.name!r}: {exc}") from None
    runs = tuple(r for r in needs if resources[r].scope == "run")
    tasks = tuple(r for r in needs if resources[r].scope == "task")
    run_res.update(dict.fromkeys(runs))
    unknown = tuple(dict.fromkeys(c for c, _ in pol.constraints if c not in capacities))
    if unknown:
        no_capacity.append((task, unknown))
    constraints = tuple((c, amt) for c, amt in pol.constraints if c in capacities and amt > 0)
    for c, amt in constraints:
        if amt > capacities[c]:
            raise ResourceError(
                f"task {task.name!r} asks for {c}={amt}, more than the engine's "
                f"system_resources[{c!r}]={capacities[c]}"
            )
    # Run-scope resources alone do not govern a call: once its run has set them up, the
    # plain paths inject them as they are (until then the executors take the governed path,
    # which sets them up: see ``missing_run_resources``). Task scope opens one per call.
    governed = bool(pol.retry or pol.cache is not None or constraints or task.offload
                    or tasks or rem is not None)
    return Step(p, CALL, node.name, task, task.fn, task.is_async, mode, subs, deps, nd, cond,
                tuple(pos_of[c] for c in node.after), tuple(pos_of[c] for c in node.seq), inputs,
                governed, runs, StepExtras(None, pol.retry, pol.cache is not None, constraints, task.offload,
                                           tasks, injected, rem), False)


def _fast_of(entry: tuple[Any, ...], st: Step) -> tuple[Any, ...]:
    """The fast entry that ``_walk_entry`` made ``entry`` from (see ``Program.fast``)."""
    op, fn, spec, name, _ = entry
    if op == OP_GENERAL:
        return spec
    if op == OP_MAP:
        return (MAP, None, False, A_MAP, spec, name, st.tail_dependent)
    if op == OP_AWAIT_ONE:
        return (CALL, fn, True, A_ONE, spec, name, True)
    if op == OP_AWAIT_KW1:
        return (CALL, fn, True, A_KW1, spec, name, True)
    if op == OP_AWAIT_LIST1:
        return (CALL, fn, True, A_SEQ1, (False, (spec,)), name, True)
    return (CALL, fn, True, A_SEQ1, spec, name, True)  # OP_AWAIT_SEQ1


def _walk_entry(fast: tuple[Any, ...], is_last: bool) -> tuple[Any, ...]:
    kind, fn, is_async, am, spec, name, tail = fast
    if am == A_MAP:
        return (OP_MAP, None, spec, name, not is_last)
    if am == A_ONE and is_async and tail:
        return (OP_AWAIT_ONE, fn, spec, name, not is_last)
    if am == A_KW1 and is_async and tail:
        return (OP_AWAIT_KW1, fn, spec, name, not is_last)
    if am == A_SEQ1 and is_async and tail:
        if not spec[0] and len(spec[1]) == 1:  # ``fn([previous])``: a list display, no map
            return (OP_AWAIT_LIST1, fn, spec[1][0], name, not is_last)
        return (OP_AWAIT_SEQ1, fn, spec, name, not is_last)
    return (OP_GENERAL, fn, fast, name, not is_last)


def _fast_entry(st: Step, obj: Any) -> tuple[Any, ...]:
    """The sequential walker's view of a step: one tuple unpack instead of many attribute reads."""
    if st.kind == MAP:
        return (MAP, None, False, A_MAP, st.deps, st.name, st.tail_dependent)
    if st.kind != CALL:
        return (st.kind, None, False, A_GENERAL, st.deps, st.name, st.tail_dependent)
    nd = st.ndata
    spec: Any
    if st.mode == 0 and not st.injected:
        mode, spec = (A_LIT_KW if obj[KWARGS] else A_LIT), None
    elif st.mode == 0:  # literal arguments and injected run-scope resources (``cs.recv``'s connector)
        mode, spec = A_LIT_INJ, st.injected
    elif st.mode == 1 and not obj[KWARGS] and not st.injected and nargs_of(obj) == nd:
        mode, spec = (A_ONE, st.deps[0]) if nd == 1 else (A_ALL, st.deps[:nd])
    elif st.mode == 1 and not st.injected:
        mode, spec = A_SUBS, st.subs or tuple(zip(range(nd), st.deps[:nd]))
    elif st.mode == 2 and not st.injected and (spec := _resolution(obj, st.deps[:nd])) is not None:
        mode = A_RESOLVE  # lazy inputs by keyword or in flat containers: substitutions compiled
        pos_ops, kw_ops, other_pos, other_kw = spec
        if not other_pos and not other_kw:  # every argument holds lazy results only
            if not pos_ops and len(kw_ops) == 1 and kw_ops[0][1] == 0:  # ``fn(x=previous)``
                # (a keyword that binds as a positional argument was stored as one: spec.lazy.new_lazy)
                mode, spec = A_KW1, (kw_ops[0][0], kw_ops[0][2])
            elif (not kw_ops and len(pos_ops) == 1 and pos_ops[0][1] in (1, 2)
                  and len(pos_ops[0][2]) == len(obj[A0])):
                # ``fn([a, b])``: one list or tuple, every item lazy (its shape fixes the length and
                # which slots are lazy, so each bound iteration is the same)
                mode, spec = A_SEQ1, (pos_ops[0][1] == 2, tuple(d for _, d in pos_ops[0][2]))
    else:
        mode, spec = A_GENERAL, None
    return (CALL, st.fn, st.is_async, mode, spec, st.name, st.tail_dependent)


_LAZY_TYPES = (LazyResult, MappedLazyResult, Router)
_FLAT_KINDS: dict[type, int] = {list: 1, tuple: 2, dict: 3}


def _resolution(obj: Any, deps: tuple[int, ...]) -> Any:
    """The compiled argument substitutions of a call whose lazy inputs sit at top level (keyword
    arguments included) or one level down in lists, tuples and dicts, for
    :func:`~cascade.runtime.executor.resolve_compiled`; ``None`` (resolved in general) when an
    argument holds a marker or deeper containers. ``deps``: input positions in ``_scan`` order."""
    it = iter(deps)
    pos_ops: list[Any] = []
    other_pos: list[int] = []
    for i, a in enumerate(obj[ARGS]):
        op = _arg_op(a, it)
        if op is False:
            return None
        if op is None:
            other_pos.append(i)
        else:
            pos_ops.append((i, *op))
    kw_ops: list[Any] = []
    other_kw: list[str] = []
    kwargs = obj[KWARGS]
    for k in sorted(kwargs):
        op = _arg_op(kwargs[k], it)
        if op is False:
            return None
        if op is None:
            other_kw.append(k)
        else:
            kw_ops.append((k, *op))
    return tuple(pos_ops), tuple(kw_ops), tuple(other_pos), tuple(other_kw)


def _arg_op(a: Any, it: Any) -> Any:
    """``(kind, substitutions)`` for one argument, ``None`` when it is passed as it is, ``False``
    when only the general resolution handles it (a marker, a container inside a container)."""
    t = type(a)
    if t in _ATOMIC:
        return None
    if t is LazyResult or t is MappedLazyResult or t is Router:
        return 0, next(it)
    kind = _FLAT_KINDS.get(t)
    if kind is None:
        return False if isinstance(a, (Marker, *_LAZY_TYPES)) else None
    subs = []
    for slot in (_sorted_keys(a) if t is dict else range(len(a))):
        v = a[slot]
        tv = type(v)
        if tv in _ATOMIC:
            continue
        if tv is LazyResult or tv is MappedLazyResult or tv is Router:
            subs.append((slot, next(it)))
        elif tv in _FLAT_KINDS or isinstance(v, (Marker, *_LAZY_TYPES)):
            return False
    if not subs:
        # no input in it: a literal, whose type is not part of the template (another iteration may
        # pass None there), so it is checked when it runs, as any other literal is
        return None
    return kind, tuple(subs)


def _twins(shapes: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    if len(set(shapes)) == len(shapes):
        return ()
    by_shape: dict[int, list[int]] = {}
    for p, shape in enumerate(shapes):
        group = by_shape.get(shape)
        if group is None:
            by_shape[shape] = [p]
        else:
            group.append(p)
    if len(by_shape) == len(shapes):
        return ()
    return tuple(tuple(g) for g in by_shape.values() if len(g) > 1)


def _descendant_counts(steps: list[Step], n: int) -> list[int]:
    """How many later steps depend on each step, through their inputs."""
    if n == 1:
        return [0]
    if n > 512:
        # Quadratic sets are not worth it for big graphs. A step whose next step consumes it and is
        # itself tail-dependent has every later step below it (a chain's steps, for instance): that
        # rule finds no step that is not, so it is safe, and it costs one pass.
        counts = [-1] * n
        counts[n - 1] = 0
        for p in range(n - 2, -1, -1):
            if counts[p + 1] >= 0 and p in steps[p + 1].inputs:
                counts[p] = n - 1 - p
        return counts
    waiters: list[set[int]] = [set() for _ in range(n)]
    for p, st in enumerate(steps):
        for d in st.inputs:
            waiters[d].add(p)
    counts = [0] * n
    desc: list[set[int]] = [set() for _ in range(n)]
    for p in range(n - 1, -1, -1):
        for c in waiters[p]:
            desc[p].add(c)
            desc[p] |= desc[c]
        counts[p] = len(desc[p])
    return counts


def _extraction(steps: Sequence[Step], n: int, at_of: Sequence[Any]) -> tuple[Any, Any]:
    """How the hot binder reaches every node's lazy object from the target, and which extra edges
    it must check by identity so that sharing in the new iteration matches the template.

    ``steps``: the steps in plan order (``deps``: the positions of each ``obj._deps``); ``at_of``:
    per position, the argument positions of a call whose dependencies are positional arguments
    (``None``: all), read from the call itself, or False (``Program.extract``)."""
    if n == 1:
        return (), ()
    parent = [-1] * n
    where = [0] * n
    shared: list[tuple[int, int, int]] = []
    for p in range(n - 1, -1, -1):
        at = at_of[p]
        for slot, d in enumerate(steps[p].deps):
            if parent[d] < 0:
                parent[d] = p
                where[d] = ~slot if at is False else A0 + (slot if at is None else at[slot])
            else:
                shared.append((p, slot, d))
    # A node no other node reads (a call whose only consumer merged into an equal pure call) has no
    # path from the target: programs with pure merges bind through a graph build instead.
    extract = tuple([(d, parent[d], where[d]) for d in range(n - 2, -1, -1) if parent[d] >= 0])
    return extract, tuple(shared)
