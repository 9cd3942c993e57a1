"""Invariant 4: plans. ``cs.NativeSolver().solve(graph)`` orders every node of the graph exactly once,
every edge goes from an earlier stage to a later one, and the graph holds exactly the nodes the model
expects (reachable calls, Routers, maps and their elements, pure calls merged)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

import cascade as cs

from .builder import Built
from .model import IterGraph, Workflow
from .profiles import ci_settings
from .strategies import workflows


@ci_settings(300)
@given(workflows(), st.none() | st.integers(0, 2**32 - 1), st.data())
def test_plan_is_a_topological_order_with_each_node_once(wf: Workflow, seed: Any, data: st.DataObject) -> None:
    n = data.draw(st.integers(0, max(wf.start, 0)), label="iteration counter")
    built = Built(wf)
    graph = cs.build_graph(built.iteration("L", 0, n, seed))
    plan = cs.NativeSolver().solve(graph)
    order = plan.order
    assert sorted(order) == list(range(len(graph.nodes))), f"plan {order} is not a permutation of the nodes"
    stage_of = {node: s for s, stage in enumerate(plan.stages) for node in stage}
    assert all(plan.stages), "empty stage"
    for edge in graph.edges:
        assert stage_of[edge.source] < stage_of[edge.target], f"edge {edge} does not go forward in the plan"
        assert edge.source < edge.target, f"canonical order puts {edge.target} before its input {edge.source}"
    for s, stage in enumerate(plan.stages):  # each stage is as early as its inputs allow
        for node in stage:
            srcs = [stage_of[e.source] for e in graph.in_edges[node]]
            assert s == (max(srcs) + 1 if srcs else 0), f"node {node} could start in an earlier stage"
    model = IterGraph(wf, built.prefix, "L", 0, n)
    assert len(graph.nodes) == len(model.gnodes), f"graph has {len(graph.nodes)} nodes, model {len(model.gnodes)}"
    assert graph.target == len(graph.nodes) - 1
