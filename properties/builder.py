"""Turning a :class:`~properties.model.Workflow` description into real tasks and lazy results.

Tasks record every call they make (``call_key(name, args, kwargs)``) into the :class:`Recorder` of the
run they belong to, found through a context variable that each run sets in its own asyncio task
(the engine's child tasks inherit it). Flaky counters and resource set-up counts live in the
recorder too, so nothing is shared between runs.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import random
from collections import Counter
from typing import Any

import cascade as cs

from .model import (
    RUN_RESOURCE,
    TASK_RESOURCE,
    Node,
    Workflow,
    body_for,
    cache_tag,
    cached_at,
    call_key,
    combine,
    deps_of,
    key_offset,
    kw_name,
    literal,
    map_elements,
    resource_value,
    task_key,
    task_name,
    typed_literal,
)

CURRENT: contextvars.ContextVar[Recorder] = contextvars.ContextVar("cascade_properties_recorder")
_prefixes = itertools.count(1)


def fresh_prefix(tag: str = "w") -> str:
    """A task-name prefix never used before in this process."""
    return f"{tag}{next(_prefixes)}_"


class Recorder:
    """What one run did: its calls, flaky attempt counters, resource set-ups and teardowns."""

    def __init__(self, keep_calls: bool = True) -> None:
        self.keep_calls = keep_calls
        self.probe: Any = None  # called with n by every loop root (flat-memory property)
        self.calls: Counter[str] = Counter()
        self.flaky: Counter[str] = Counter()
        self.setups: Counter[str] = Counter()
        self.teardowns: Counter[str] = Counter()
        self.cache: dict[Any, Any] = {}
        self.hang: asyncio.Event | None = None

    def record(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any] | None = None,
               instant: bool = True) -> str:
        """Count a call; ``instant``: its body finishes without suspending (see :class:`Gauge`)."""
        key = call_key(name, args, kwargs or {})
        if self.keep_calls:
            self.calls[key] += 1
        if instant:
            gauge = GAUGE.get()
            if gauge is not None:
                gauge.leave(name, counted=gauge.enter(name))
        return key


def _rec() -> Recorder:
    return CURRENT.get()


class Gauge:
    """Which task bodies are running right now, across every run of one engine, checked against the
    governance a property set (pauses, concurrency limits, capacities) at the moment each body starts.

    Bodies call :meth:`enter` when they start and :meth:`leave` when they end; suspending bodies hold
    for ``ticks`` event-loop cycles in between, so calls that may overlap really do. Violations are
    collected (raising inside a task would change what the engine does) and asserted by the property.
    ``exempt`` names are not checked for pauses and limits: calls admitted before a change and still
    waiting for capacity may legitimately start after it.
    """

    def __init__(self, capacity: dict[str, float] | None = None,
                 amounts: dict[str, tuple[str, float]] | None = None, ticks: int = 1) -> None:
        self.capacity = dict(capacity or {})
        self.amounts = dict(amounts or {})  # task name -> (capacity name, amount)
        self.ticks = ticks
        self.paused: set[str | None] = set()  # None: everything
        self.limits: dict[str, int] = {}
        self.exempt: set[str] = set()
        self.running: Counter[str] = Counter()
        self.counted: Counter[str] = Counter()
        self.held: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()  # per task name and per capacity name
        self.starts: Counter[str] = Counter()
        self.trace: list[tuple[str, str]] = []
        self.violations: list[str] = []

    def governing(self) -> bool:
        return bool(self.paused or self.limits)

    def enter(self, name: str, amount: float | None = None) -> bool:
        """A body of ``name`` starts (holding ``amount`` of its capacity, if given, else its own).

        Returns whether it counts toward limits: only calls started while some pause or limit was
        in force do (a call the hot path started ungoverned finishes uncounted, as documented)."""
        if name not in self.exempt:
            if None in self.paused or name in self.paused:
                self.violations.append(f"{name} started while paused")
            limit = self.limits.get(name)
            if limit is not None and self.counted[name] >= limit:
                self.violations.append(f"{name} started with {self.counted[name]} running, limit {limit}")
        need = self.amounts.get(name)
        if need is not None:
            cname, amount = need[0], need[1] if amount is None else amount
            if cname in self.capacity and self.held[cname] + amount > self.capacity[cname]:
                self.violations.append(
                    f"{name} started holding {cname}={amount} while {self.held[cname]} of "
                    f"{self.capacity[cname]} were held")
            self.held[cname] += amount
            self.peak[cname] = max(self.peak[cname], self.held[cname])
        counted = self.governing()
        if counted:
            self.counted[name] += 1
        self.running[name] += 1
        self.starts[name] += 1
        self.peak[name] = max(self.peak[name], self.running[name])
        self.trace.append(("enter", name))
        return counted

    def leave(self, name: str, amount: float | None = None, counted: bool = True) -> None:
        self.running[name] -= 1
        if counted:
            self.counted[name] -= 1
        need = self.amounts.get(name)
        if need is not None:
            self.held[need[0]] -= need[1] if amount is None else amount
        self.trace.append(("leave", name))


GAUGE: contextvars.ContextVar[Gauge | None] = contextvars.ContextVar("cascade_properties_gauge", default=None)


async def hold(name: str, cycles: int = 1) -> None:
    """A suspending body's wait: ``cycles`` loop cycles (different calls suspend for different
    lengths, so concurrent runs drift apart and interleave), plus the gauge's ``ticks - 1``."""
    gauge = GAUGE.get()
    if gauge is None:
        for _ in range(cycles):
            await asyncio.sleep(0)
        return
    counted = gauge.enter(name)
    try:
        for _ in range(cycles + gauge.ticks - 1):
            await asyncio.sleep(0)
    finally:
        gauge.leave(name, counted=counted)


def make_resources() -> list[cs.Resource]:
    @cs.resource(name=RUN_RESOURCE, scope="run")
    def rrun() -> Any:
        rec = _rec()
        rec.setups[RUN_RESOURCE] += 1
        yield resource_value(RUN_RESOURCE)
        rec.teardowns[RUN_RESOURCE] += 1

    @cs.resource(name=TASK_RESOURCE, scope="task")
    def rtask() -> Any:
        rec = _rec()
        rec.setups[TASK_RESOURCE] += 1
        yield resource_value(TASK_RESOURCE)
        rec.teardowns[TASK_RESOURCE] += 1

    return [rrun, rtask]


class _RunCache:
    """A cache policy whose entries belong to the run using it (the run's :class:`Recorder`), so
    hot, slow and warm runs of one description each start with an empty cache, as the model does.
    One object for every description: its identity is part of templates."""

    def get(self, key: Any) -> tuple[bool, Any]:
        cache = _rec().cache
        if key in cache:
            return True, cache[key]
        return False, None

    def set(self, key: Any, value: Any) -> None:
        _rec().cache[key] = value


RUN_CACHE = _RunCache()


def make_engine(hot: bool, **options: Any) -> cs.Engine:
    return cs.Engine(hot_plans=hot, system_resources=dict(CAPACITY_FOR_ENGINE), resources=make_resources(),
                     **options)


CAPACITY_FOR_ENGINE = {"slots": 2}


# -- task factories (one code object per kind, so fingerprints are deterministic across processes) --

def _plain(name: str, kind: str, node: Node) -> Any:
    if kind == "async":
        async def fn(lit: int, *inputs: Any) -> Any:
            _rec().record(name, (lit, *inputs))
            return combine(lit, inputs)
    elif kind in ("suspend", "constrained"):
        async def fn(lit: int, *inputs: Any) -> Any:  # type: ignore[misc]
            _rec().record(name, (lit, *inputs), instant=False)
            await hold(name, 1 + lit % 3)
            return combine(lit, inputs)
    elif kind == "pred":
        def fn(lit: int, *inputs: Any) -> Any:  # type: ignore[misc]
            _rec().record(name, (lit, *inputs))
            return combine(lit, inputs) % 3 == 0
    elif kind == "spred":  # a condition that suspends: runs interleave while it is decided
        async def fn(lit: int, *inputs: Any) -> Any:  # type: ignore[misc]
            _rec().record(name, (lit, *inputs), instant=False)
            await hold(name, 1 + lit % 3)
            return combine(lit, inputs) % 3 == 0
    elif kind == "select":
        modulus = node.modulus

        def fn(lit: int, *inputs: Any, **off: int) -> Any:  # type: ignore[misc]
            _rec().record(name, (lit, *inputs), off)
            return combine(lit, inputs) % modulus + off.get("off", 0)
    elif kind == "kw":
        def fn(lit: int, *rest: Any, a: Any = _UNSET, b: Any = _UNSET) -> Any:  # type: ignore[misc]
            kw = {"a": a} if b is _UNSET else {"b": b}
            _rec().record(name, (lit, *rest), kw)
            return combine(lit, [*kw.values(), *rest])
    elif kind == "cached":
        def fn(lit: int, *inputs: Any, tag: Any) -> Any:  # type: ignore[misc]
            _rec().record(name, (lit, *inputs), {"tag": tag})
            return combine(lit, inputs)
    elif kind == "pure" and node.tsel >= 0:
        def fn(lit: int, typed: Any, *inputs: Any) -> Any:  # type: ignore[misc]
            _rec().record(name, (lit, typed, *inputs))
            return combine(lit, inputs)
    elif kind == "raise":
        trigger = node.trigger

        def fn(lit: int, *inputs: Any) -> Any:  # type: ignore[misc]
            _rec().record(name, (lit, *inputs))
            if lit == trigger:
                raise ValueError(f"{name} raised at {lit}")
            return combine(lit, inputs)
    elif kind == "flaky":
        fails = node.fails

        def fn(lit: int, *inputs: Any) -> Any:  # type: ignore[misc]
            rec = _rec()
            key = rec.record(name, (lit, *inputs))
            rec.flaky[key] += 1
            if rec.flaky[key] <= fails:
                raise ValueError(f"{name} flaky failure {rec.flaky[key]}")
            return combine(lit, inputs)
    elif kind == "router":
        def fn(lit: int, *inputs: Any) -> Any:  # type: ignore[misc]
            _rec().record(name, (lit, *inputs))
            return combine(lit, inputs)
    else:  # sync, pure
        def fn(lit: int, *inputs: Any) -> Any:  # type: ignore[misc]
            _rec().record(name, (lit, *inputs))
            return combine(lit, inputs)
    return fn


_UNSET = object()


def _resource_fn(name: str, res: str, via_arg: bool) -> Any:
    if via_arg:
        def fn(lit: int, value: Any, *inputs: Any) -> Any:
            _rec().record(name, (lit, value, *inputs))
            return combine(lit, inputs)
        return fn
    marker = cs.inject(res)

    def fn2(lit: int, *inputs: Any, res: Any = marker) -> Any:
        _rec().record(name, (lit, *inputs), {"res": res})
        return combine(lit, inputs)
    return fn2


def _map_fn(name: str) -> Any:
    def fn(x: Any, k: int) -> Any:
        _rec().record(name, (), {"x": x, "k": k})
        return combine(k, [x])
    return fn


def _dmap_fn(name: str) -> Any:
    def fn(x: Any) -> Any:
        _rec().record(name, (), {"x": x})
        return combine(0, [x])
    return fn


def _sub_fn(name: str, built: Built, sub: int) -> Any:
    def fn(lit: int, *inputs: Any) -> Any:
        _rec().record(name, (lit, *inputs))
        return built.iteration("S", sub, lit % 3)
    return fn


def _root_fn(name: str, built: Built, scope: str, loop: int, mode: str) -> Any:
    wf = built.wf
    lp = (wf.loops if scope == "L" else wf.subs)[loop]
    raise_at = lp.raise_at
    nxt = (loop + 1) % len(wf.loops) if scope == "L" else loop

    def body(n: int, lit: int, inputs: Any, instant: bool = True) -> Any:
        rec = _rec()
        rec.record(name, (n, lit, *inputs), instant=instant)
        if rec.probe is not None:
            rec.probe(n)
        if raise_at == n:
            raise RuntimeError(f"{name} raised at n={n}")
        if n <= 0:
            return combine(lit, inputs)
        return built.iteration(scope, nxt, n - 1)

    if mode == "sync":
        def fn(n: int, lit: int, *inputs: Any) -> Any:
            return body(n, lit, inputs)
    elif mode == "async":
        async def fn(n: int, lit: int, *inputs: Any) -> Any:  # type: ignore[misc]
            return body(n, lit, inputs)
    else:
        async def fn(n: int, lit: int, *inputs: Any) -> Any:  # type: ignore[misc]
            await hold(name)
            return body(n, lit, inputs, instant=False)
    return fn


class Registry:
    """Tasks by ``task_key``: one registry may serve several descriptions (identity tests)."""

    def __init__(self) -> None:
        self.tasks: dict[Any, cs.Task] = {}


class Built:
    """The tasks of one workflow description and a way to build any iteration's lazy result."""

    def __init__(self, wf: Workflow, prefix: str | None = None, registry: Registry | None = None) -> None:
        self.wf = wf
        self.prefix = prefix if prefix is not None else fresh_prefix()
        self.registry = registry if registry is not None else Registry()

    def task(self, scope: str, loop: int, b: int, i: int, node: Node) -> cs.Task:
        key = task_key(self.prefix, scope, loop, b, i, node)
        t = self.registry.tasks.get(key)
        if t is not None:
            return t
        name = task_name(self.prefix, scope, loop, b, i, node)
        kind = node.kind
        if kind == "root":
            lp = (self.wf.loops if scope == "L" else self.wf.subs)[loop]
            mode = lp.bodies[0].nodes[-1].mode
            t = cs.task(_root_fn(name, self, scope, loop, mode), name=name)
        elif kind == "pure":
            t = cs.task(_plain(name, "pure", node), name=name, pure=True)
        elif kind == "map":
            t = cs.task(_map_fn(name), name=name)
        elif kind == "dmap":
            t = cs.task(_dmap_fn(name), name=name)
        elif kind == "resource":
            t = cs.task(_resource_fn(name, node.res, node.via_arg), name=name)
        elif kind == "sub":
            t = cs.task(_sub_fn(name, self, node.sub), name=name)
        else:
            t = cs.task(_plain(name, kind, node), name=name)
        self.registry.tasks[key] = t
        return t

    def wf_body(self, scope: str, loop: int, n: int) -> Any:
        return body_for(self.wf, scope, loop, n)[1]

    def target(self) -> Any:
        return self.iteration("L", 0, self.wf.start)

    def iteration(self, scope: str, loop: int, n: int, seed: int | None = None) -> Any:
        """The lazy result of iteration ``n`` of a loop; ``seed`` shuffles the construction order
        (any order that creates inputs first; also dict insertion orders)."""
        b, body = body_for(self.wf, scope, loop, n)
        nodes = body.nodes
        order: list[int]
        rnd = random.Random(seed) if seed is not None else None
        if rnd is None:
            order = list(range(len(nodes)))
        else:
            order = []
            done: set[int] = set()
            while len(order) < len(nodes):
                ready = [i for i in range(len(nodes)) if i not in done and all(d in done for d in deps_of(nodes[i]))]
                i = rnd.choice(ready)
                order.append(i)
                done.add(i)
        objs: dict[int, Any] = {}
        for i in order:
            objs[i] = self._make(scope, loop, b, i, nodes[i], n, objs, rnd)
        return objs[len(nodes) - 1]

    def _make(self, scope: str, loop: int, b: int, i: int, nd: Node, n: int, objs: dict[int, Any],
              rnd: random.Random | None) -> Any:
        t = self.task(scope, loop, b, i, nd)
        lit = literal(nd, n)
        ins = [objs[j] for j in nd.inputs]
        kind = nd.kind
        if kind == "map":
            elems = [objs[e[1]] if isinstance(e, tuple) else e for e in map_elements(nd, n)]
            if rnd is not None and rnd.random() < 0.5:
                lr: Any = t.map(k=[lit] * len(elems), x=elems)
            else:
                lr = t.map(x=elems, k=[lit] * len(elems))
        elif kind == "dmap":
            lr = t.map(x=ins[0])  # a dynamic map over the map node's value
        elif kind == "root":
            lr = t(n, lit, *ins)
        elif kind == "router":
            off = key_offset(self.wf_body(scope, loop, n).nodes[nd.selector], n)
            keys = list(range(len(nd.routes)))
            if rnd is not None:
                rnd.shuffle(keys)
            router = cs.Router(objs[nd.selector], {k + off: objs[nd.routes[k]] for k in keys})
            lr = t(lit, router, *ins)
        elif kind == "resource" and nd.via_arg:
            lr = t(lit, cs.inject(nd.res), *ins)
        elif kind == "select" and nd.koff:
            lr = t(lit, *ins, off=n % 2)
        elif kind == "pure" and nd.tsel >= 0:
            lr = t(lit, typed_literal(nd, n), *ins)
        elif kind == "kw":
            x, rest = (ins[0], ins[1:]) if ins else (lit, [])
            lr = t(lit, *rest, **{kw_name(n): x})
        elif kind == "cached":
            lr = t(lit, *ins, tag=cache_tag(nd, n))
            if cached_at(nd, n):
                lr = lr.with_cache(RUN_CACHE)
        else:
            lr = t(lit, *ins)
        if kind == "flaky":
            lr = lr.with_retry(max_attempts=nd.attempts)
        if kind == "constrained":
            lr = lr.with_constraints(**{nd.cname: nd.amount})
        if nd.cond is not None:
            lr = lr.run_if(objs[nd.cond])
        if nd.after:
            lr = lr.after(*[objs[j] for j in nd.after])
        if nd.seq is not None:
            lr = cs.sequence([objs[nd.seq], lr])
        return lr


async def run_recorded(engine: cs.Engine, target: Any, rec: Recorder) -> tuple[Any, ...]:
    """Run ``target`` with ``rec`` as the run's recorder: ``("ok", value)`` or ``("err", type, message)``."""
    CURRENT.set(rec)
    try:
        value = await engine.run(target)
    except Exception as exc:  # noqa: BLE001 - the outcome is what we compare
        return ("err", type(exc).__name__, str(exc))
    return ("ok", value)


def event_key(e: Any) -> tuple[Any, ...]:
    """An event without its run id (and without the warning text)."""
    fields = [f for f in e.__dataclass_fields__ if f != "run_id"]
    return (type(e).__name__, *[getattr(e, f) for f in fields])
