"""The graph of one iteration: nodes in canonical order, with in-edges indexed per node."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["EDGE_KINDS", "Edge", "Graph", "Node", "node_edges"]

# data: the consumer uses the value; condition: run_if; after: ordering only; sequence: ordering
# whose skip propagates; selector/route: the two sides of a Router pseudo-node.
EDGE_KINDS = ("data", "condition", "after", "sequence", "selector", "route")


@dataclass(frozen=True, slots=True)
class Edge:
    """``source`` feeds ``target`` (indices into ``Graph.nodes``) as an edge of ``kind``."""

    source: int
    target: int
    kind: str


# Not ``frozen``: a frozen dataclass sets every field through ``object.__setattr__`` (~2 us per node
# at 11 fields, most of a big graph's build); nodes are still never changed once built.
@dataclass(slots=True, unsafe_hash=True)
class Node:
    """One node: a task call (``kind="call"``), a map gather (``"map"``) or a Router (``"router"``).

    ``obj`` is the lazy object the node was built from (for pure nodes, the first one met).
    ``structural_id`` covers the task, every literal and the ids of the inputs; ``template_id`` is the
    same with literal values left out.
    """

    index: int
    kind: str
    obj: Any = field(repr=False)
    name: str
    deps: tuple[int, ...]  # the node behind each slot of ``obj._deps``
    data: tuple[int, ...]
    cond: int | None
    after: tuple[int, ...]
    seq: tuple[int, ...]
    structural_id: str
    template_id: str

    @property
    def inputs(self) -> tuple[int, ...]:
        """Every node this one waits for, data first."""
        return self.data + ((self.cond,) if self.cond is not None else ()) + self.after + self.seq


class Graph:
    """Nodes in canonical order (every node after its inputs); ``target`` is the last node.

    ``in_edges``/``out_edges`` index the edges per node. A graph made by ``build_graph`` derives
    them from its nodes on first use (one :class:`Edge` object per edge is memory a run never
    needs); a graph made by hand may give them, and then they are what the solver reads.
    """

    __slots__ = ("nodes", "_in_edges", "_out_edges", "structural_id", "template_id", "pure_merges")

    def __init__(self, nodes: tuple[Node, ...], in_edges: tuple[tuple[Edge, ...], ...] | None = None,
                 out_edges: tuple[tuple[Edge, ...], ...] | None = None, structural_id: str = "",
                 template_id: str = "", pure_merges: int = 0) -> None:
        self.nodes = nodes
        self._in_edges = in_edges
        self._out_edges = out_edges
        self.structural_id = structural_id
        self.template_id = template_id
        self.pure_merges = pure_merges  # lazy objects folded into an equal pure node

    @property
    def derived_edges(self) -> bool:
        """Whether the edges follow from the nodes (``build_graph``): nodes are then in
        topological order and each node's ``deps`` are its in-edges' sources."""
        return self._in_edges is None

    @property
    def in_edges(self) -> tuple[tuple[Edge, ...], ...]:
        """The edges into each node, in the order of the node's inputs (see :func:`node_edges`)."""
        if self._in_edges is None:
            self._in_edges = tuple(tuple(Edge(src, node.index, kind) for src, kind in node_edges(node))
                                   for node in self.nodes)
        return self._in_edges

    @property
    def out_edges(self) -> tuple[tuple[Edge, ...], ...]:
        """The edges out of each node, grouped by target in node order."""
        if self._out_edges is None:
            out: list[list[Edge]] = [[] for _ in self.nodes]
            for edges in self.in_edges:
                for e in edges:
                    out[e.source].append(e)
            self._out_edges = tuple(map(tuple, out))
        return self._out_edges

    @property
    def target(self) -> int:
        """Index of the target node (always the last one)."""
        return len(self.nodes) - 1

    @property
    def edges(self) -> tuple[Edge, ...]:
        """Every edge of the graph, grouped by target node in node order."""
        return tuple(e for edges in self.in_edges for e in edges)

    def __len__(self) -> int:
        return len(self.nodes)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Graph):
            return NotImplemented
        return (self.nodes, self.in_edges, self.out_edges, self.structural_id, self.template_id,
                self.pure_merges) == (other.nodes, other.in_edges, other.out_edges, other.structural_id,
                                      other.template_id, other.pure_merges)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Graph {len(self.nodes)} nodes {self.template_id[:12]}>"


def node_edges(node: Node) -> list[tuple[int, str]]:
    """``(source, kind)`` of every edge into ``node``: a Router's selector then its routes; a map's
    elements; a call's data inputs, condition, ``after`` and ``sequence`` predecessors."""
    if node.kind == "router":
        return [(node.data[0], "selector")] + [(d, "route") for d in node.data[1:]]
    pairs = [(d, "data") for d in node.data]
    if node.kind == "call":
        if node.cond is not None:
            pairs.append((node.cond, "condition"))
        pairs += [(d, "after") for d in node.after] + [(d, "sequence") for d in node.seq]
    return pairs
