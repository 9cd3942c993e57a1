"""NativeSolver: stages are a topological order with every node once; CycleError on cycles."""

from __future__ import annotations

import pytest

import cascade as cs
from cascade.graph.model import Edge, Graph, Node


@cs.task(name="a")
def a():
    return 1


@cs.task(name="b")
def b(x):
    return x


@cs.task(name="c")
def c(x):
    return x


@cs.task(name="d")
def d(x, y):
    return x + y


@cs.task(name="flag")
def flag():
    return True


def assert_valid_plan(graph: cs.Graph, plan: cs.ExecutionPlan) -> None:
    order = plan.order
    assert sorted(order) == list(range(len(graph)))  # every node exactly once
    stage_of = {n: i for i, stage in enumerate(plan.stages) for n in stage}
    for edge in graph.edges:
        assert stage_of[edge.source] < stage_of[edge.target], edge


def test_diamond_stages():
    root = a()
    graph = cs.build_graph(d(b(root), c(root)))
    plan = cs.NativeSolver().solve(graph)
    assert plan.stages == ((0,), (1, 2), (3,))
    assert plan.order == (0, 1, 2, 3)
    assert_valid_plan(graph, plan)


def test_mixed_graph_is_valid_topological_order():
    root = a()
    mapped = b.map(x=[1, 2, 3])
    router = cs.Router(flag(), {True: c(root), False: b(2)})
    seq = cs.sequence([b(1), c(2), d(root, mapped).run_if(flag()).after(a())])
    target = d(router, seq)
    graph = cs.build_graph(target)
    plan = cs.NativeSolver().solve(graph)
    assert_valid_plan(graph, plan)
    assert plan.stages[-1] == (graph.target,)
    assert len(plan.order) == len(graph) == 15


def test_independent_nodes_share_the_first_stage():
    graph = cs.build_graph(d(a(), b(1)))
    plan = cs.NativeSolver().solve(graph)
    assert plan.stages == ((0, 1), (2,))


def _node(index: int, name: str, inputs: tuple[int, ...]) -> Node:
    return Node(index, "call", None, name, inputs, inputs, None, (), (), f"s{index}", f"t{index}")


def test_cycle_error_on_hand_made_cyclic_graph():
    # x -> y -> z -> y: z and y wait on each other; x is fine.
    e_xy, e_zy, e_yz = Edge(0, 1, "data"), Edge(2, 1, "data"), Edge(1, 2, "data")
    nodes = (_node(0, "x", ()), _node(1, "y", (0, 2)), _node(2, "z", (1,)))
    graph = Graph(
        nodes=nodes,
        in_edges=((), (e_xy, e_zy), (e_yz,)),
        out_edges=((e_xy,), (e_yz,), (e_zy,)),
        structural_id="s",
        template_id="t",
    )
    with pytest.raises(cs.CycleError) as info:
        cs.NativeSolver().solve(graph)
    message = str(info.value)
    assert "y" in message and "z" in message
    assert "x" not in message.split(":", 1)[1]
    assert isinstance(info.value, cs.CascadeError)


def test_self_loop_is_a_cycle():
    e = Edge(0, 0, "data")
    graph = Graph((_node(0, "solo", (0,)),), ((e,),), ((e,),), "s", "t")
    with pytest.raises(cs.CycleError, match="solo"):
        cs.NativeSolver().solve(graph)
