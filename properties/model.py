"""Plain-data workflow descriptions and a reference interpreter that evaluates them without Cascade.

A :class:`Workflow` is a ring of mutually recursive loops (``loops``; loop ``k`` at counter ``n > 0``
tail-calls loop ``(k + 1) % len(loops)`` at ``n - 1``) plus sub-loops (``subs``) that body nodes of
kind ``sub`` evaluate as nested tail-call loops. Iteration ``n`` of a loop uses the body
``bodies[n % len(bodies)]``: one body is a loop of stable shape, several bodies change shape between
iterations. Every node's literal is ``lit + step * n``, so literals change every iteration.

Node ``i`` of a body depends only on nodes with lower indices; the last node is the loop's root (its
task receives ``(n, literal, *inputs)`` and returns the next iteration's lazy result while ``n > 0``).

The interpreter (:func:`run_model`) follows ``docs/semantics.md``: skip reasons and their precedence,
Routers with dormant branches, retries, pure-node merging, nested evaluation, tail calls. It yields
the value or the exception (type and message), the multiset of executed calls ``call_key(...)`` and
the multiset of skips keyed ``(iteration, task name, reason)``; where two nested evaluations of one
iteration run concurrently, their iteration numbers form a span that skips are compared over
(``Outcome.spans``, :func:`spanned`), since the model has no clock to order them. Identity helpers
(:func:`canonical_form`) give a canonical encoding of an iteration's graph (literals included, or
left out for the template) that is equal exactly when two graphs describe the same computation.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import MISSING as MISSING_FIELD
from dataclasses import dataclass, field
from typing import Any

# -- descriptions ---------------------------------------------------------------------------------

KINDS = (
    "sync", "async", "suspend", "pure", "pred", "select", "raise", "flaky", "router", "map",
    "resource", "constrained", "sub", "spred", "cached", "kw",
)
# Not in KINDS (so the default workflows, and the examples every derandomized property draws, stay
# as they were): ``dmap``, a dynamic map ``task.map(x=<the map node inputs[0]>)`` over a map node's
# value; properties/test_dynamic_map.py asks for it.
DMAP_KINDS = KINDS + ("dmap",)
RUN_RESOURCE, TASK_RESOURCE = "rrun", "rtask"
CAPACITY = {"slots": 2}

# Literals that look alike but are different values (or equal values of different types): a pure or
# cached call receives one of them, chosen per iteration, so merging and cache keys must tell them
# apart by type and value. The NaN is one shared object (as a user's constant would be).
NAN = float("nan")
TYPED: tuple[Any, ...] = (1, True, 1.0, "1", b"1", 0, False, 0.0, -0.0, "", b"", (1,), [1], (), [],
                          None, {"a": 1}, {"a": True}, NAN, 10**30, float(10**30))
CACHE_TYPED: tuple[Any, ...] = tuple(v for v in TYPED if v is not NAN)  # NaN never equals itself


def canon(value: Any) -> Any:
    """Type-exact canonical form of a literal: equal exactly when two literals are the same value of
    the same type (``1``, ``True`` and ``1.0`` differ; ``0.0`` and ``-0.0`` differ; NaN equals NaN)."""
    t = type(value)
    if t is float:
        return ("float", value.hex())
    if t in (list, tuple):
        return (t.__name__, tuple(canon(v) for v in value))
    if t is dict:
        return ("dict", tuple(sorted((canon(k), canon(v)) for k, v in value.items())))
    return (t.__name__, value)


def _compact_repr(self: Any) -> str:
    """Only the fields that differ from their defaults (evaluable, and short in failure reports)."""
    parts = []
    for name, f in self.__dataclass_fields__.items():
        value = getattr(self, name)
        if f.default is not MISSING_FIELD and value == f.default and name != "kind":
            continue
        parts.append(f"{name}={value!r}")
    return f"{type(self).__name__}({', '.join(parts)})"


@dataclass(frozen=True, repr=False)
class Node:
    kind: str
    inputs: tuple[int, ...] = ()  # data inputs (map: element references)
    lit: int = 0
    step: int = 1  # literal = lit + step * n
    cond: int | None = None  # run_if
    after: tuple[int, ...] = ()
    seq: int | None = None  # cs.sequence([nodes[seq], this])
    trigger: int | None = None  # raise: raises when its literal equals trigger
    fails: int = 0  # flaky: fails this many times per (run, call args) ...
    attempts: int = 1  # ... with with_retry(max_attempts=attempts)
    modulus: int = 1  # select: value % modulus
    selector: int = 0  # router
    routes: tuple[int, ...] = ()  # router: route i has key i (+ the selector's key offset)
    map_lits: tuple[int, ...] = ()  # map: literal elements (each + step * n)
    map_extra: int = 0  # map: n % map_extra extra literal elements (shape changes with n)
    pure_task: int = 0  # pure: which shared pure task
    res: str = RUN_RESOURCE  # resource
    via_arg: bool = False  # resource: cs.inject as an argument instead of a parameter default
    cname: str = "slots"  # constrained
    amount: int = 1
    sub: int = 0  # sub: which sub-loop; it starts at literal % 3
    mode: str = "sync"  # root only: sync, async or suspend
    tsel: int = -1  # pure, cached: >= 0 adds a typed literal argument (see ``typed_literal``)
    koff: bool = False  # select: its values, and the keys of Routers using it, shift by n % 2
    cache_mod: int = 1  # cached: with_cache(...) only when n % cache_mod == 0 (policy varies by iteration)

    __repr__ = _compact_repr

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:  # Hypothesis' falsifying-example printer
        p.text(repr(self))


@dataclass(frozen=True)
class Body:
    nodes: tuple[Node, ...]  # the last one is the root (kind "root")


@dataclass(frozen=True)
class Loop:
    bodies: tuple[Body, ...]
    raise_at: int | None = None  # the root raises RuntimeError when n == raise_at


@dataclass(frozen=True)
class Workflow:
    loops: tuple[Loop, ...]
    subs: tuple[Loop, ...] = ()
    start: int = 0


# -- names shared by the model and the builder ------------------------------------------------------

def task_name(prefix: str, scope: str, loop: int, body: int, idx: int, node: Node) -> str:
    if node.kind == "root":
        return f"{prefix}{scope}{loop}root"
    if node.kind == "pure":  # shared by every pure node of the same signature (typed literal or not)
        return f"{prefix}P{node.pure_task}{'t' if node.tsel >= 0 else ''}"
    return f"{prefix}{scope}{loop}b{body}n{idx}{node.kind}"


def task_key(prefix: str, scope: str, loop: int, body: int, idx: int, node: Node) -> tuple[Any, ...]:
    """What makes a task distinct in the builder's registry (the task's identity in the model)."""
    name = task_name(prefix, scope, loop, body, idx, node)
    if node.kind == "resource":
        return (name, node.kind, node.res, node.via_arg)
    return (name, node.kind)


def call_key(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    return repr((name, tuple(args), tuple(sorted(kwargs.items()))))


def num(v: Any) -> int:
    if v is None or isinstance(v, str):
        return 0
    if isinstance(v, (list, tuple)):
        return sum(num(x) for x in v)
    return int(v)


def combine(lit: int, inputs: Any) -> int:
    return (lit * 7 + sum((i + 3) * num(v) for i, v in enumerate(inputs))) % 101


def literal(node: Node, n: int) -> int:
    return node.lit + node.step * n


def typed_literal(node: Node, n: int, pool: tuple[Any, ...] = TYPED) -> Any:
    return pool[(node.lit + node.step * n + node.tsel) % len(pool)]


def cache_tag(node: Node, n: int) -> Any:
    """The cached call's keyword argument: a nested literal that changes with the iteration even
    when the positional literal does not (``step == 0``), through look-alikes (1, True, 1.0 ...)."""
    return ("v", (CACHE_TYPED[(node.tsel + n) % len(CACHE_TYPED)],))


def cached_at(node: Node, n: int) -> bool:
    return n % node.cache_mod == 0


def kw_name(n: int) -> str:
    """The keyword a ``kw`` node passes its first input (or literal) under, alternating by iteration."""
    return "a" if n % 2 == 0 else "b"


def key_offset(sel: Node, n: int) -> int:
    return n % 2 if sel.kind == "select" and sel.koff else 0


def map_elements(node: Node, n: int) -> list[Any]:
    """The map's elements: ``("ref", j)`` for node references, ints for literals."""
    elems: list[Any] = [("ref", j) for j in node.inputs]
    elems += [v + node.step * n for v in node.map_lits]
    if node.map_extra:
        elems += [100 + k for k in range(n % node.map_extra)]
    return elems


def resource_value(name: str) -> str:
    return f"{name}-value"


def deps_of(node: Node) -> list[int]:
    """Every body index ``node`` refers to."""
    out = list(node.inputs) + list(node.after)
    if node.cond is not None:
        out.append(node.cond)
    if node.seq is not None:
        out.append(node.seq)
    if node.kind == "router":
        out += [node.selector, *node.routes]
    return out


def body_for(wf: Workflow, scope: str, loop: int, n: int) -> tuple[int, Body]:
    lp = (wf.loops if scope == "L" else wf.subs)[loop]
    b = n % len(lp.bodies)
    return b, lp.bodies[b]


# -- the graph of one iteration ------------------------------------------------------------------
# Graph node ids: ("n", i) a call, ("r", i) the Router inside call i, ("m", i) the map of node i,
# ("e", i, j) element j of that map.


@dataclass
class GNode:
    gid: tuple[Any, ...]
    kind: str  # call, router, map, elem
    name: str
    desc: int
    data: list[tuple[Any, ...]] = field(default_factory=list)
    cond: tuple[Any, ...] | None = None
    after: list[tuple[Any, ...]] = field(default_factory=list)
    seq: list[tuple[Any, ...]] = field(default_factory=list)
    selector: tuple[Any, ...] | None = None
    routes: list[tuple[Any, ...]] = field(default_factory=list)
    label: tuple[Any, ...] = ()  # structure for identity, literals included
    tlabel: tuple[Any, ...] = ()  # the same with literals left out
    extra: dict[str, Any] = field(default_factory=dict)

    def slots(self) -> list[tuple[Any, ...]]:
        """Dependencies in canonical order (data, condition, after, sequence; router: selector, routes)."""
        if self.kind == "router":
            return [self.selector, *self.routes]  # type: ignore[list-item]
        return self.data + ([self.cond] if self.cond is not None else []) + self.after + self.seq

    def inputs(self) -> list[tuple[Any, ...]]:
        if self.kind == "router":
            return [self.selector]  # type: ignore[list-item]
        return self.slots()


class IterGraph:
    """The reachable graph of one iteration, pure nodes merged."""

    def __init__(self, wf: Workflow, prefix: str, scope: str, loop: int, n: int) -> None:
        self.scope, self.loop, self.n = scope, loop, n
        self.b, body = body_for(wf, scope, loop, n)
        self.body = body
        nodes = body.nodes
        self.names = [task_name(prefix, scope, loop, self.b, i, nd) for i, nd in enumerate(nodes)]
        self.keys = [task_key(prefix, scope, loop, self.b, i, nd) for i, nd in enumerate(nodes)]
        # structural ids in the model: merge pure nodes with equal ones
        sids: list[Any] = []
        rep: list[int] = []
        first: dict[Any, int] = {}
        for i, nd in enumerate(nodes):
            sid = self._sid(i, nd, sids)
            sids.append(sid)
            if nd.kind == "pure":
                rep.append(first.setdefault(sid, i))
            else:
                rep.append(i)
        self.rep = rep
        self.gnodes: dict[tuple[Any, ...], GNode] = {}
        root = len(nodes) - 1
        self.root = ("n", root)
        stack = [root]
        seen: set[int] = set()
        while stack:
            i = stack.pop()
            if i in seen:
                continue
            seen.add(i)
            self._add(i)
            stack.extend(rep[j] for j in deps_of(nodes[i]))
        self._prune()

    def _prune(self) -> None:
        """Keep only what the target reaches through real dependencies: a policy of an empty map
        (``run_if``, ``after``) applies to no element call, so its node is not in the graph."""
        reached: set[tuple[Any, ...]] = set()
        stack = [self.root]
        while stack:
            gid = stack.pop()
            if gid not in reached:
                reached.add(gid)
                stack.extend(self.gnodes[gid].slots())
        self.gnodes = {gid: g for gid, g in self.gnodes.items() if gid in reached}

    def ref(self, j: int) -> tuple[Any, ...]:
        j = self.rep[j]
        return ("m", j) if self.body.nodes[j].kind == "map" else ("n", j)

    def _sid(self, i: int, nd: Node, sids: list[Any]) -> Any:
        n = self.n
        if nd.kind == "map":
            elems = tuple(("ref", sids[e[1]]) if isinstance(e, tuple) else e for e in map_elements(nd, n))
            core: Any = ("map", self.keys[i], literal(nd, n), elems)
        elif nd.kind == "dmap":
            core = ("dmap", self.keys[i], tuple(sids[j] for j in nd.inputs))
        else:
            core = (self.keys[i], literal(nd, n), tuple(sids[j] for j in nd.inputs))
            if nd.kind == "router":
                off = key_offset(self.body.nodes[nd.selector], n)
                core += (("router", sids[nd.selector], tuple((k + off, sids[r]) for k, r in enumerate(nd.routes))),)
            if nd.kind == "root":
                core += (n,)
            core += self._extra_args(nd, template=False)
        pol = (
            sids[nd.cond] if nd.cond is not None else None,
            tuple(sids[j] for j in nd.after),
            sids[nd.seq] if nd.seq is not None else None,
            nd.attempts if nd.kind == "flaky" else None,
            (nd.cname, nd.amount) if nd.kind == "constrained" else None,
            nd.kind == "cached" and cached_at(nd, n),
        )
        return (core, pol)

    def _extra_args(self, nd: Node, template: bool) -> tuple[Any, ...]:
        """Label parts of the literal arguments beyond ``lit``: typed literals, cache tags, keywords."""
        n = self.n
        out: tuple[Any, ...] = ()
        if nd.kind == "pure" and nd.tsel >= 0:
            out += ("L" if template else canon(typed_literal(nd, n)),)
        if nd.kind == "cached":
            out += (("tag", "L" if template else canon(cache_tag(nd, n))),)
        if nd.kind == "kw":
            out += (("kw", kw_name(n)),)
        if nd.kind == "select" and nd.koff:
            out += (("off", "L" if template else n % 2),)
        return out

    def _policies(self, g: GNode, nd: Node) -> None:
        if nd.cond is not None:
            g.cond = self.ref(nd.cond)
        g.after = [self.ref(j) for j in nd.after]
        if nd.seq is not None:
            g.seq = [self.ref(nd.seq)]

    def _add(self, i: int) -> None:
        nd = self.body.nodes[i]
        n = self.n
        name = self.names[i]
        key = self.keys[i]
        lit = literal(nd, n)
        pol = (nd.cond is not None, len(nd.after), nd.seq is not None,
               nd.attempts if nd.kind == "flaky" else None,
               (nd.cname, nd.amount) if nd.kind == "constrained" else None,
               nd.kind == "cached" and cached_at(nd, n))
        if nd.kind == "map":
            m = GNode(("m", i), "map", name, i, label=("map", key), tlabel=("map", key))
            for j, e in enumerate(map_elements(nd, n)):
                el = GNode(("e", i, j), "elem", name, i)
                if isinstance(e, tuple):
                    el.data = [self.ref(e[1])]
                    x, tx = "dep", "dep"
                else:
                    x, tx = e, "L"
                el.extra = {"x": e, "k": lit}
                self._policies(el, nd)
                el.label = ("elem", key, x, lit, pol)
                el.tlabel = ("elem", key, tx, "L", pol)
                self.gnodes[el.gid] = el
                m.data.append(el.gid)
            self.gnodes[m.gid] = m
            return
        if nd.kind == "dmap":  # one call of the internal fan-out task "<name>.map"
            g = GNode(("n", i), "call", f"{name}.map", i, data=[self.ref(j) for j in nd.inputs])
            self._policies(g, nd)
            g.label = g.tlabel = ("dmap", key, pol)
            self.gnodes[g.gid] = g
            return
        g = GNode(("n", i), "call", name, i)
        args: list[Any] = [n, lit] if nd.kind == "root" else [lit]
        targs: list[Any] = ["L", "L"] if nd.kind == "root" else ["L"]
        if nd.kind == "router":
            off = key_offset(self.body.nodes[nd.selector], n)
            r = GNode(("r", i), "router", "Router", i, selector=self.ref(nd.selector),
                      routes=[self.ref(j) for j in nd.routes])
            r.extra = {"keys": tuple(k + off for k in range(len(nd.routes)))}
            r.label = r.tlabel = ("router", r.extra["keys"])
            self.gnodes[r.gid] = r
            g.data.append(r.gid)
            args.append("dep")
            targs.append("dep")
        if nd.kind == "resource" and nd.via_arg:
            args.append(("inject", nd.res))
            targs.append(("inject", nd.res))
        if nd.kind == "kw" and nd.inputs:  # positional inputs first, then the keyword one
            g.data += [self.ref(j) for j in nd.inputs[1:]] + [self.ref(nd.inputs[0])]
        else:
            g.data += [self.ref(j) for j in nd.inputs]
        args += ["dep"] * len(nd.inputs)
        targs += ["dep"] * len(nd.inputs)
        args += list(self._extra_args(nd, template=False))
        targs += list(self._extra_args(nd, template=True))
        self._policies(g, nd)
        g.label = ("call", key, tuple(args), pol)
        g.tlabel = ("call", key, tuple(targs), pol)
        self.gnodes[g.gid] = g

    def order(self) -> list[tuple[Any, ...]]:
        """The engine's plan order: nodes numbered as its graph build numbers them (depth first from
        the target, dependencies in slot order, each after its dependencies), then staged by level
        (one more than the latest dependency's), in that numbering within a level. Nested
        evaluations (sub-loops, dynamic maps) take their iteration numbers in this order."""
        index: dict[tuple[Any, ...], int] = {}
        stack: list[tuple[tuple[Any, ...], int]] = [(self.root, 0)]
        while stack:
            gid, k = stack.pop()
            if gid in index:
                continue
            slots = self.gnodes[gid].slots()
            while k < len(slots) and slots[k] in index:
                k += 1
            if k < len(slots):
                stack.append((gid, k + 1))
                stack.append((slots[k], 0))
            else:
                index[gid] = len(index)
        level: dict[tuple[Any, ...], int] = {}
        for gid in index:  # inserted in numbering order: each after its dependencies
            slots = self.gnodes[gid].slots()
            level[gid] = 1 + max(level[s] for s in slots) if slots else 0
        return sorted(index, key=lambda g: (level[g], index[g]))


def canonical_form(g: IterGraph, template: bool) -> tuple[Any, ...]:
    """Labels and dependency slots numbered by a depth-first walk from the target: equal exactly
    when the two graphs are isomorphic as rooted DAGs with ordered, labelled dependencies."""
    number: dict[tuple[Any, ...], int] = {}
    out: list[Any] = []

    def visit(gid: tuple[Any, ...]) -> int:
        # iterative would be nicer; graphs are small
        if gid in number:
            return number[gid]
        node = g.gnodes[gid]
        number[gid] = len(number)
        slot = len(out)
        out.append(None)
        kids = tuple(visit(s) for s in node.slots())
        out[slot] = (node.tlabel if template else node.label, kids)
        return number[gid]

    visit(g.root)
    return tuple(out)


# -- the reference interpreter --------------------------------------------------------------------

class ModelFailure(Exception):
    """The run fails with one of ``excs`` ((type name, message) pairs)."""

    def __init__(self, excs: set[tuple[str, str]]) -> None:
        super().__init__(excs)
        self.excs = excs


@dataclass(frozen=True)
class TailCall:
    scope: str
    loop: int
    n: int


@dataclass
class Outcome:
    ok: bool
    value: Any = None
    excs: frozenset[tuple[str, str]] = frozenset()
    calls: Counter[str] = field(default_factory=Counter)  # exact when ok, else possible calls
    sure_calls: Counter[str] = field(default_factory=Counter)
    skips: Counter[tuple[int, str, str]] = field(default_factory=Counter)
    sure_skips: Counter[tuple[int, str, str]] = field(default_factory=Counter)
    templates: list[Any] = field(default_factory=list)  # template forms of iterations surely started
    setups: Counter[str] = field(default_factory=Counter)
    iterations: int = 0
    # Iteration numbers [first, last] shared by two or more nested evaluations of one iteration:
    # those run concurrently, so which takes which numbers depends on how long their calls wait
    # (a clock the model has not); skips in them are compared by task and reason (``spanned``).
    spans: tuple[tuple[int, int], ...] = ()


def over_capacity(g: IterGraph) -> set[tuple[str, str]]:
    """ResourceErrors of constrained calls in the graph asking for more than the capacity."""
    out = set()
    for node in g.gnodes.values():
        nd = g.body.nodes[node.desc]
        if node.kind == "call" and nd.kind == "constrained" and nd.cname in CAPACITY and nd.amount > CAPACITY[nd.cname]:
            out.add(("ResourceError", f"task {node.name!r} asks for {nd.cname}={nd.amount}, more than the "
                                      f"engine's system_resources[{nd.cname!r}]={CAPACITY[nd.cname]}"))
    return out


class _Run:
    def __init__(self, wf: Workflow, prefix: str) -> None:
        self.wf = wf
        self.prefix = prefix
        self.iteration = 0
        self.calls: Counter[str] = Counter()
        self.skips: Counter[tuple[int, str, str]] = Counter()
        self.flaky: Counter[str] = Counter()
        self.cache: dict[Any, Any] = {}  # the run's cache: type-exact key -> value
        self.setups: Counter[str] = Counter()
        self.templates: list[Any] = []
        self.graphs: dict[tuple[str, int, int], IterGraph] = {}
        self.spans: list[tuple[int, int]] = []
        self.nested = 0  # nested evaluations started by the iteration being evaluated

    def graph(self, scope: str, loop: int, n: int) -> IterGraph:
        key = (scope, loop, n)
        g = self.graphs.get(key)
        if g is None:
            g = self.graphs[key] = IterGraph(self.wf, self.prefix, scope, loop, n)
        return g

    # one loop, tail calls included
    def loop(self, scope: str, loop: int, n: int, outer: bool, snap: list[Any] | None) -> Any:
        while True:
            if outer and snap is not None:
                snap[:2] = [self.calls.copy(), self.skips.copy()]
            self.iteration += 1
            g = self.graph(scope, loop, n)
            self.templates.append(canonical_form(g, template=True))
            if outer and snap is not None:
                snap[2:] = [list(self.templates)]
            over = over_capacity(g)
            if over:  # bad input fails the iteration before any of its tasks runs
                raise ModelFailure(over)
            value, reason = self.iterate(g, self.iteration)
            if reason is not None:
                if reason == "UpstreamSkipped_Sequence":
                    return None
                name = g.names[-1]
                raise ModelFailure({("DependencyMissingError",
                                     f"the target {name!r} produced no value: it was skipped ({reason})")})
            if isinstance(value, TailCall):
                scope, loop, n = value.scope, value.loop, value.n
                continue
            return value

    def iterate(self, g: IterGraph, it: int) -> tuple[Any, str | None]:
        outer, self.nested = self.nested, 0
        try:
            return self._iterate(g, it)
        finally:
            if self.nested > 1:
                self.spans.append((it + 1, self.iteration))
            self.nested = outer

    def _iterate(self, g: IterGraph, it: int) -> tuple[Any, str | None]:
        PENDING, ROUTING, DONE, SKIPPED, FAILED, BLOCKED = range(6)
        state = {gid: PENDING for gid in g.gnodes}
        values: dict[Any, Any] = {}
        reasons: dict[Any, str] = {}
        chosen: dict[Any, Any] = {}
        excs: set[tuple[str, str]] = set()
        needed: set[Any] = set()

        def activate(gid: Any) -> None:
            stack = [gid]
            while stack:
                q = stack.pop()
                if q in needed:
                    continue
                needed.add(q)
                stack.extend(g.gnodes[q].inputs())

        activate(g.root)
        order = g.order()

        def skip(gid: Any, reason: str) -> None:
            state[gid] = SKIPPED
            reasons[gid] = reason
            self.skips[(it, g.gnodes[gid].name, reason)] += 1

        def settle(gid: Any, value: Any) -> None:
            state[gid] = DONE
            values[gid] = value

        progress = True
        while progress:
            progress = False
            for gid in order:
                node = g.gnodes[gid]
                st = state[gid]
                if st == ROUTING:
                    c = chosen[gid]
                    if state[c] == DONE:
                        settle(gid, values[c])
                    elif state[c] == SKIPPED:
                        skip(gid, "UpstreamSkipped_Data")
                    elif state[c] in (FAILED, BLOCKED):
                        state[gid] = BLOCKED
                    else:
                        continue
                    progress = True
                    continue
                if st != PENDING or gid not in needed:
                    continue
                ins = node.inputs()
                if any(state[x] in (PENDING, ROUTING) for x in ins):
                    continue
                progress = True
                if any(state[x] in (FAILED, BLOCKED) for x in ins):
                    state[gid] = BLOCKED
                    continue
                reason = self.decide(node, state, values, SKIPPED)
                if reason is not None:
                    skip(gid, reason)
                    continue
                if node.kind == "map":
                    settle(gid, [values[d] for d in node.data])
                elif node.kind == "router":
                    key = values[node.selector]
                    try:
                        r = dict(zip(node.extra["keys"], node.routes)).get(key, None)
                    except TypeError:
                        r = None
                    if r is None:
                        consumer = g.names[node.desc]
                        keys = ", ".join(repr(k) for k in node.extra["keys"])
                        excs.add(("RouteError", f"Router selector returned {key!r}, which has no route "
                                                f"(routes: {keys}; used by {consumer})"))
                        state[gid] = FAILED
                    else:
                        chosen[gid] = r
                        state[gid] = ROUTING
                        activate(r)
                else:
                    try:
                        settle(gid, self.call(g, node, values))
                    except ModelFailure as f:
                        excs |= f.excs
                        state[gid] = FAILED
        if excs:
            raise ModelFailure(excs)
        for gid in order:
            if state[gid] == PENDING:
                skip(gid, "UpstreamSkipped_Route")
        root = g.root
        if state[root] == SKIPPED:
            return None, reasons[root]
        return values[root], None

    @staticmethod
    def decide(node: GNode, state: dict[Any, int], values: dict[Any, Any], SKIPPED: int) -> str | None:
        if node.kind == "router":
            return "UpstreamSkipped_Data" if state[node.selector] == SKIPPED else None
        if any(state[d] == SKIPPED for d in node.data):
            return "UpstreamSkipped_Data"
        if node.cond is not None:
            if state[node.cond] == SKIPPED:
                return "UpstreamSkipped_Condition"
            if not values[node.cond]:
                return "ConditionFalse"
        if any(state[d] == SKIPPED for d in node.seq):
            return "UpstreamSkipped_Sequence"
        return None

    def call(self, g: IterGraph, node: GNode, values: dict[Any, Any]) -> Any:
        nd = g.body.nodes[node.desc]
        name = node.name
        n = g.n
        lit = literal(nd, n)
        if node.kind == "elem":
            x = node.extra["x"]
            xv = values[node.data[0]] if isinstance(x, tuple) else x
            kwargs = {"x": xv, "k": lit}
            self.calls[call_key(name, (), kwargs)] += 1
            return combine(lit, [xv])
        ins = [values[d] for d in node.data]
        kwargs: dict[str, Any] = {}
        if nd.kind == "dmap":
            # the fan-out (not a recorded call) makes one element call per item of the map's value,
            # evaluated as a nested iteration; an empty input gives [] with no iteration
            xs = list(ins[0])
            if not xs:
                return []
            self.nested += 1
            self.iteration += 1
            self.templates.append(("dmap", g.keys[node.desc], len(xs)))
            elem = g.names[node.desc]
            for x in xs:
                self.calls[call_key(elem, (), {"x": x})] += 1
            return [combine(0, [x]) for x in xs]
        if nd.kind == "root":
            args: tuple[Any, ...] = (n, lit, *ins)
        elif nd.kind == "resource":
            self.setups[nd.res] += 1 if nd.res == TASK_RESOURCE or not self.setups[nd.res] else 0
            if nd.via_arg:
                args = (lit, resource_value(nd.res), *ins)
            else:
                args = (lit, *ins)
                kwargs = {"res": resource_value(nd.res)}
        elif nd.kind == "pure" and nd.tsel >= 0:
            args = (lit, typed_literal(nd, n), *ins)
        elif nd.kind == "select" and nd.koff:
            args, kwargs = (lit, *ins), {"off": key_offset(nd, n)}
        elif nd.kind == "kw":
            x, rest = (ins[-1], ins[:-1]) if ins else (lit, [])
            args, kwargs = (lit, *rest), {kw_name(n): x}
            ins = [x, *rest]
        elif nd.kind == "cached":
            args, kwargs = (lit, *ins), {"tag": cache_tag(nd, n)}
            if cached_at(nd, n):
                ckey = (name, canon(list(args)), canon(kwargs))
                if ckey in self.cache:
                    return self.cache[ckey]
                self.calls[call_key(name, args, kwargs)] += 1
                value = self.cache[ckey] = combine(lit, ins)
                return value
        else:
            args = (lit, *ins)
        key = call_key(name, args, kwargs)
        if nd.kind == "flaky":
            for _attempt in range(nd.attempts):
                self.calls[key] += 1
                self.flaky[key] += 1
                count = self.flaky[key]
                if count > nd.fails:
                    return combine(lit, ins)
            raise ModelFailure({("ValueError", f"{name} flaky failure {count}")})
        self.calls[key] += 1
        kind = nd.kind
        if kind == "root":
            lp = (self.wf.loops if g.scope == "L" else self.wf.subs)[g.loop]
            if lp.raise_at == n:
                raise ModelFailure({("RuntimeError", f"{name} raised at n={n}")})
            if n <= 0:
                return combine(lit, ins)
            if g.scope == "L":
                return TailCall("L", (g.loop + 1) % len(self.wf.loops), n - 1)
            return TailCall("S", g.loop, n - 1)
        if kind in ("pred", "spred"):
            return combine(lit, ins) % 3 == 0
        if kind == "select":
            return combine(lit, ins) % nd.modulus + key_offset(nd, n)
        if kind == "raise" and lit == nd.trigger:
            raise ModelFailure({("ValueError", f"{name} raised at {lit}")})
        if kind == "sub":
            self.nested += 1
            return self.loop("S", nd.sub, lit % 3, outer=False, snap=None)
        return combine(lit, ins)


def run_model(wf: Workflow, prefix: str) -> Outcome:
    run = _Run(wf, prefix)
    snap: list[Any] = [Counter(), Counter(), []]
    try:
        value = run.loop("L", 0, wf.start, outer=True, snap=snap)
    except ModelFailure as f:
        return Outcome(False, None, frozenset(f.excs), run.calls, snap[0], run.skips, snap[1],
                       snap[2], run.setups, run.iteration, tuple(run.spans))
    return Outcome(True, value, frozenset(), run.calls, run.calls, run.skips, run.skips,
                   run.templates, run.setups, run.iteration, tuple(run.spans))


def spanned(skips: Counter[tuple[int, str, str]], spans: tuple[tuple[int, int], ...]) -> Counter[Any]:
    """``skips`` with the iteration number of each skip inside a span (``Outcome.spans``) replaced
    by the widest span holding it: concurrent nested evaluations may take those numbers in any order."""
    if not spans:
        return skips
    out: Counter[Any] = Counter()
    for (it, name, reason), count in skips.items():
        at: Any = it
        for first, last in spans:
            if first <= it <= last and (type(at) is int or first < at[0] or last > at[1]):
                at = (first, last)
        out[(at, name, reason)] += count
    return out


def templates_repeat(templates: list[Any]) -> bool:
    return len(set(templates)) < len(templates)
