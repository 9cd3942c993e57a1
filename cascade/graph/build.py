"""Build the graph of one iteration from its target lazy result.

The walk is iterative (an explicit stack), so a 10,000-node chain never touches the recursion
limit. Canonical order is the post-order of a depth-first walk from the target that visits each
node's dependencies in ``_deps`` order: it depends only on the described computation, not on the
order in which the lazy results were created, and every node comes after its inputs.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ..spec.lazy import ARGS, DEPS, KWARGS, POLICY, TASK, LazyResult, MappedLazyResult, Router, _At, deps_of
from .identity import _PLAIN, digest, encode_args, encode_literal, plain_call_texts
from .model import Graph, Node, node_edges

__all__ = ["build_graph", "build_run_graph"]


def build_graph(target: Any) -> Graph:
    """Build the :class:`Graph` whose last node is ``target``.

    Raises ``TypeError`` when ``target`` is not a lazy result.
    """
    if not isinstance(target, (LazyResult, MappedLazyResult)):
        raise TypeError(f"cannot build a graph from {type(target).__name__} {target!r}: expected a lazy result")
    index_of: dict[int, int] = {}  # id(obj) -> node index; every object is alive through target
    pure_index: dict[str, int] = {}
    nodes: list[Node] = []
    sids: list[str] = []  # structural and template id of each node, by index
    tids: list[str] = []
    s_parts: list[str] = []  # each node's id with its in-edges: the texts of the graph's ids
    t_parts: list[str] = []
    leaf_tids: dict[str, str] = {}  # template text -> id for calls without inputs (they repeat)
    stack: list[Any] = [target]
    opened: set[int] = set()  # ids of objects whose dependencies are on the stack above them
    merges = 0
    sha1 = hashlib.sha1
    while stack:
        obj = stack[-1]
        oid = id(obj)
        if oid in index_of:
            stack.pop()
            continue
        lazy = type(obj) is LazyResult
        obj_deps = obj[DEPS] if lazy else obj._deps
        if obj_deps is None or type(obj_deps) is _At:  # positional arguments (spec.lazy)
            obj_deps = deps_of(obj)
        if obj_deps and oid not in opened:
            opened.add(oid)
            for dep in reversed(obj_deps):
                if id(dep) not in index_of:
                    stack.append(dep)
            if stack[-1] is not obj:
                continue
        stack.pop()
        index = len(nodes)
        if lazy and obj[POLICY] is None:  # a plain call: its ids straight from its arguments
            if obj_deps:
                deps = [index_of[id(d)] for d in obj_deps]
                texts = plain_call_texts(obj, [sids[d] for d in deps], [tids[d] for d in deps])
            else:
                deps = []
                texts = plain_call_texts(obj, [], [])
            if texts is None:
                node = _make_node(index, obj, deps, nodes)
            else:
                task = obj[TASK]
                head = f"call:{task.fingerprint}:"
                s_text = f"{head}{texts[0]}{_PLAIN_TAIL}"
                t_text = f"{head}{texts[1]}{_PLAIN_TAIL}"
                sid = sha1(s_text.encode("utf-8", "surrogatepass")).hexdigest()
                if deps:
                    tid = sha1(t_text.encode("utf-8", "surrogatepass")).hexdigest()
                else:
                    tid = leaf_tids.get(t_text)  # type: ignore[assignment]
                    if tid is None:
                        tid = leaf_tids[t_text] = sha1(t_text.encode("utf-8", "surrogatepass")).hexdigest()
                dt = tuple(deps)
                node = Node(index, "call", obj, task.name, dt, dt, None, (), (), sid, tid)
        else:
            deps = [index_of[id(d)] for d in obj_deps]
            node = _make_node(index, obj, deps, nodes)
        if lazy and obj[TASK].pure:
            existing = pure_index.get(node.structural_id)
            if existing is not None:
                index_of[oid] = existing
                merges += 1
                continue
            pure_index[node.structural_id] = index
        index_of[oid] = index
        nodes.append(node)
        sid, tid = node.structural_id, node.template_id
        sids.append(sid)
        tids.append(tid)
        # Graph ids name inputs by canonical index, so sharing (one node used twice) is part of them.
        if not deps:
            s_parts.append(f"{sid}[]")
            t_parts.append(f"{tid}[]")
            continue
        if node.kind == "call" and len(node.data) == len(deps):  # data inputs only
            refs = ",".join([f"data:{d}" for d in deps])
        else:
            refs = ",".join([f"{kind}:{src}" for src, kind in node_edges(node)])
        s_parts.append(f"{sid}[{refs}]")
        t_parts.append(f"{tid}[{refs}]")
    return Graph(tuple(nodes), None, None, digest(";".join(s_parts)), digest(";".join(t_parts)), merges)


def build_run_graph(target: Any) -> Graph:
    """The graph the engine runs: :func:`build_graph`'s nodes, edges and order, errors included,
    without the ids when nothing reads them.

    The engine reads ids only to merge pure calls (and to bind templates that have them), so for a
    graph without a ``pure`` task the per-node digests are left out (``""``): a plain call whose
    arguments are plain literals and lazy results gets no text at all (encoding them cannot fail),
    any other node is made as :func:`build_graph` makes it, so an argument that cannot be encoded
    raises the same error at the same node. Meeting a pure call, it builds the full graph instead.
    """
    if not isinstance(target, (LazyResult, MappedLazyResult)):
        raise TypeError(f"cannot build a graph from {type(target).__name__} {target!r}: expected a lazy result")
    index_of: dict[int, int] = {}  # id -> node index; -1 while the node's inputs are on the stack
    nodes: list[Node] = []
    stack: list[Any] = [target]
    get = index_of.get
    while stack:
        obj = stack[-1]
        oid = id(obj)
        seen = get(oid)
        if seen is not None and seen >= 0:
            stack.pop()
            continue
        lazy = type(obj) is LazyResult
        obj_deps = obj[DEPS] if lazy else obj._deps
        if obj_deps is None or type(obj_deps) is _At:  # positional arguments (spec.lazy)
            obj_deps = deps_of(obj)
        if obj_deps and seen is None:
            index_of[oid] = -1
            for dep in reversed(obj_deps):
                d = get(id(dep))
                if d is None or d < 0:
                    stack.append(dep)
            if stack[-1] is not obj:
                continue
        stack.pop()
        index = len(nodes)
        if not obj_deps:
            deps: tuple[int, ...] = ()
        elif len(obj_deps) == 1:
            deps = (index_of[id(obj_deps[0])],)
        else:
            deps = tuple([index_of[id(d)] for d in obj_deps])
        if lazy:
            task = obj[TASK]
            if task.pure:
                return build_graph(target)
            if obj[POLICY] is None and _plain_arguments(obj):
                node = Node(index, "call", obj, task.name, deps, deps, None, (), (), "", "")
            else:
                node = _make_node(index, obj, list(deps), nodes)
        else:
            node = _make_node(index, obj, list(deps), nodes)
        index_of[oid] = index
        nodes.append(node)
    return Graph(tuple(nodes), None, None, "", "", 0)


def _plain_arguments(obj: LazyResult) -> bool:
    """Whether every argument is a plain literal or a lazy result (nothing to encode can fail)."""
    if obj[DEPS] is None and not obj[KWARGS]:  # its arguments are lazy results: a chain's call
        return True
    args = obj[ARGS]
    for value in args:
        t = type(value)
        if t not in _PLAIN and t is not LazyResult:
            return False
    kwargs = obj[KWARGS]
    if kwargs:
        for value in kwargs.values():
            t = type(value)
            if t not in _PLAIN and t is not LazyResult:
                return False
    return True


# What follows the arguments in a plain call's identity text: no other inputs, the plain policy.
_PLAIN_TAIL = "::c0a0s0|r-|k-|"


def _make_node(index: int, obj: Any, deps: list[int], nodes: list[Node]) -> Node:
    sids = [nodes[d].structural_id for d in deps]
    tids = [nodes[d].template_id for d in deps]
    if type(obj) is MappedLazyResult:
        kind, name = "map", obj.task.name
        s_text = t_text = f"map:{obj.task.fingerprint}"
        return Node(index, kind, obj, name, tuple(deps), tuple(deps), None, (), (),
                    digest(s_text + ",".join(sids)), digest(t_text + ",".join(tids)))
    if type(obj) is Router:
        try:
            keys = ",".join(encode_literal(k) for k in obj.keys)
        except Exception as exc:
            raise TypeError(
                f"a Router route key cannot be encoded for the graph's identity: {type(exc).__name__}: {exc}"
            ) from exc
        s_text = t_text = f"router:{keys}"
        return Node(index, "router", obj, "Router", tuple(deps), tuple(deps), None, (), (),
                    digest(s_text + ",".join(sids)), digest(t_text + ",".join(tids)))
    nd = obj._ndata
    data = tuple(deps[:nd])
    cond = None
    after: tuple[int, ...] = ()
    seq: tuple[int, ...] = ()
    pol = obj[POLICY]
    if pol is None:  # a plain call: no condition, ordering or policy
        policy = _PLAIN_POLICY
    else:
        rest = deps[nd:]
        if pol.cond is not None:
            cond, rest = rest[0], rest[1:]
        na = len(pol.after_deps)
        after, seq = tuple(rest[:na]), tuple(rest[na:])
        policy = _policy_text(pol)

    def ident(ids: list[str], literals: bool) -> str:
        args = encode_args(obj, ids[:nd], literals)
        refs = ",".join(ids[nd:])
        return digest(f"call:{obj.task.fingerprint}:{args}:{refs}:{policy}")

    return Node(index, "call", obj, obj.task.name, tuple(deps), data, cond, after, seq,
                ident(sids, True), ident(tids, False))


def _policy_text(pol: Any) -> str:
    retry = pol.retry
    return "|".join([
        f"c{int(pol.cond is not None)}a{len(pol.after_deps)}s{len(pol.seq_deps)}",
        f"r{retry.max_attempts},{retry.delay!r},{retry.backoff!r}" if retry else "r-",
        f"k{type(pol.cache).__qualname__}" if pol.cache is not None else "k-",
        ",".join(f"{n}={a!r}" for n, a in pol.constraints),
    ])


_PLAIN_POLICY = "c0a0s0|r-|k-|"
