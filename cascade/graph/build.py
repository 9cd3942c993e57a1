"""Build the graph of one iteration from its target lazy result.

The walk is iterative (an explicit stack), so a 10,000-node chain never touches the recursion
limit. Canonical order is the post-order of a depth-first walk from the target that visits each
node's dependencies in ``_deps`` order: it depends only on the described computation, not on the
order in which the lazy results were created, and every node comes after its inputs.
"""

from __future__ import annotations

from typing import Any

from ..spec.lazy import POLICY, LazyResult, MappedLazyResult, Router
from .identity import digest, encode_args, encode_literal
from .model import Edge, Graph, Node

__all__ = ["build_graph"]


def build_graph(target: Any) -> Graph:
    """Build the :class:`Graph` whose last node is ``target``.

    Raises ``TypeError`` when ``target`` is not a lazy result.
    """
    if not isinstance(target, (LazyResult, MappedLazyResult)):
        raise TypeError(f"cannot build a graph from {type(target).__name__} {target!r}: expected a lazy result")
    index_of: dict[int, int] = {}  # id(obj) -> node index; objects are alive for the whole walk
    pure_index: dict[str, int] = {}
    nodes: list[Node] = []
    keep: list[Any] = []  # keeps every visited object alive so ids stay unique during the walk
    stack: list[tuple[Any, bool]] = [(target, False)]
    merges = 0
    while stack:
        obj, expanded = stack.pop()
        oid = id(obj)
        if not expanded:
            if oid in index_of:
                continue
            stack.append((obj, True))
            for dep in reversed(obj._deps):
                if id(dep) not in index_of:
                    stack.append((dep, False))
            continue
        if oid in index_of:
            continue
        keep.append(obj)
        deps = [index_of[id(d)] for d in obj._deps]
        node = _make_node(len(nodes), obj, deps, nodes)
        if type(obj) is LazyResult and obj.task.pure:
            existing = pure_index.get(node.structural_id)
            if existing is not None:
                index_of[oid] = existing
                merges += 1
                continue
            pure_index[node.structural_id] = node.index
        index_of[oid] = node.index
        nodes.append(node)
    return _finish_graph(nodes, merges)


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


def _finish_graph(nodes: list[Node], merges: int) -> Graph:
    n = len(nodes)
    in_edges: list[list[Edge]] = [[] for _ in range(n)]
    out_edges: list[list[Edge]] = [[] for _ in range(n)]
    for node in nodes:
        if node.kind == "router":
            kinds = ["selector"] + ["route"] * (len(node.data) - 1)
            pairs = list(zip(node.data, kinds))
        elif node.kind == "map":
            pairs = [(d, "data") for d in node.data]
        else:
            pairs = [(d, "data") for d in node.data]
            if node.cond is not None:
                pairs.append((node.cond, "condition"))
            pairs += [(d, "after") for d in node.after] + [(d, "sequence") for d in node.seq]
        for src, kind in pairs:
            edge = Edge(src, node.index, kind)
            in_edges[node.index].append(edge)
            out_edges[src].append(edge)
    # Graph ids name inputs by canonical index, so sharing (one node used twice) is part of them.
    s_parts, t_parts = [], []
    for node in nodes:
        refs = ",".join(f"{e.kind}:{e.source}" for e in in_edges[node.index])
        s_parts.append(f"{node.structural_id}[{refs}]")
        t_parts.append(f"{node.template_id}[{refs}]")
    return Graph(
        tuple(nodes),
        tuple(tuple(e) for e in in_edges),
        tuple(tuple(e) for e in out_edges),
        digest(";".join(s_parts)),
        digest(";".join(t_parts)),
        merges,
    )
