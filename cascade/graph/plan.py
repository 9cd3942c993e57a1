"""Planning: order a graph into stages that respect every edge.

``NativeSolver`` is Kahn's algorithm by levels. A stage holds the nodes whose inputs all sit in
earlier stages; inside a stage nodes are sorted by canonical index, so the plan is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..errors import CycleError
from .model import Graph

__all__ = ["ExecutionPlan", "NativeSolver", "Solver"]


@dataclass(frozen=True, slots=True)
class ExecutionPlan:
    """Stages of node indices; ``order`` is the stages flattened."""

    stages: tuple[tuple[int, ...], ...]

    @property
    def order(self) -> tuple[int, ...]:
        """The node indices of every stage, stage after stage."""
        return tuple(i for stage in self.stages for i in stage)


class Solver(Protocol):
    """Anything that turns a graph into an :class:`ExecutionPlan`."""

    def solve(self, graph: Graph) -> ExecutionPlan:
        """Order ``graph``'s nodes into stages; every node after all of its inputs."""
        ...


class NativeSolver:
    """Level-by-level topological sort; raises :class:`cascade.CycleError` on a cycle."""

    def solve(self, graph: Graph) -> ExecutionPlan:
        """Stages by longest path from the sources (Kahn's algorithm): a node's stage follows its
        latest input's; within a stage nodes are sorted by index (canonical order)."""
        n = len(graph.nodes)
        if graph.derived_edges:
            return _stages_by_level(graph)
        waiting = [len({e.source for e in graph.in_edges[i]}) for i in range(n)]
        stage = sorted(i for i in range(n) if waiting[i] == 0)
        stages: list[tuple[int, ...]] = []
        placed = 0
        while stage:
            stages.append(tuple(stage))
            placed += len(stage)
            nxt: set[int] = set()
            for i in stage:
                for src_done in {e.target for e in graph.out_edges[i]}:
                    waiting[src_done] -= 1
                    if waiting[src_done] == 0:
                        nxt.add(src_done)
            stage = sorted(nxt)
        if placed != n:
            stuck = [graph.nodes[i].name for i in range(n) if waiting[i] > 0]
            raise CycleError(f"the graph has a cycle through: {', '.join(stuck)}")
        return ExecutionPlan(tuple(stages))


def _stages_by_level(graph: Graph) -> ExecutionPlan:
    """The same stages for a graph made by ``build_graph``, in one pass: its nodes come in
    topological order and each node's ``deps`` are its in-edges' sources, so a node's stage is one
    more than its latest input's (0 without inputs), and going through the nodes by index fills each
    stage in index order. No cycle is possible."""
    level: list[int] = []
    stages: list[list[int]] = []
    for node in graph.nodes:
        i = node.index  # the graph's own int (a big graph keeps one per node, not one per pass)
        deps = node.deps
        if not deps:
            k = 0
        elif len(deps) == 1:
            k = level[deps[0]] + 1
        else:
            k = max([level[d] for d in deps]) + 1
        level.append(k)
        if k == len(stages):
            stages.append([i])
        else:
            stages[k].append(i)
    return ExecutionPlan(tuple(map(tuple, stages)))
