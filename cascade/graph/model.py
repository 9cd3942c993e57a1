"""The graph of one iteration: nodes in canonical order, with in-edges indexed per node."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["EDGE_KINDS", "Edge", "Graph", "Node"]

# data: the consumer uses the value; condition: run_if; after: ordering only; sequence: ordering
# whose skip propagates; selector/route: the two sides of a Router pseudo-node.
EDGE_KINDS = ("data", "condition", "after", "sequence", "selector", "route")


@dataclass(frozen=True, slots=True)
class Edge:
    """``source`` feeds ``target`` (indices into ``Graph.nodes``) as an edge of ``kind``."""

    source: int
    target: int
    kind: str


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
class Graph:
    """Nodes in canonical order (every node after its inputs); ``target`` is the last node."""

    nodes: tuple[Node, ...]
    in_edges: tuple[tuple[Edge, ...], ...]
    out_edges: tuple[tuple[Edge, ...], ...]
    structural_id: str
    template_id: str
    pure_merges: int = 0  # lazy objects folded into an equal pure node

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
