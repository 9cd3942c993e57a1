"""build_graph: canonical order, in-edges per node, pure merging, deep chains."""

from __future__ import annotations

import sys

import cascade as cs
from cascade.graph.model import Edge


@cs.task(name="one")
def one():
    return 1


@cs.task(name="two")
def two():
    return 2


@cs.task(name="add")
def add(x, y):
    return x + y


@cs.task(name="inc")
def inc(x):
    return x + 1


@cs.task(name="flag")
def flag():
    return True


pure_calls: list[int] = []


@cs.task(name="square", pure=True)
def square(x):
    pure_calls.append(x)
    return x * x


def test_canonical_order_is_post_order_and_target_last():
    graph = cs.build_graph(add(one(), two()))
    assert [n.name for n in graph.nodes] == ["one", "two", "add"]
    assert graph.target == 2
    assert len(graph) == 3
    assert graph.nodes[2].data == (0, 1)


def test_build_graph_rejects_non_lazy():
    try:
        cs.build_graph(42)
    except TypeError as exc:
        assert "int" in str(exc)
    else:
        raise AssertionError("build_graph(42) did not raise TypeError")


def test_in_edges_are_indexed_per_node():
    graph = cs.build_graph(add(one(), two()))
    assert graph.in_edges[0] == ()
    assert graph.in_edges[1] == ()
    assert graph.in_edges[2] == (Edge(0, 2, "data"), Edge(1, 2, "data"))
    assert graph.out_edges[0] == (Edge(0, 2, "data"),)
    assert set(graph.edges) == {Edge(0, 2, "data"), Edge(1, 2, "data")}


def test_edge_kinds_for_condition_after_and_sequence():
    a = one()
    b = two()
    cond = flag()
    # deps of the target, canonical: data (a), condition (cond), after (b)
    target = inc(a).run_if(cond).after(b)
    graph = cs.build_graph(target)
    assert [n.name for n in graph.nodes] == ["one", "flag", "two", "inc"]
    assert graph.in_edges[3] == (Edge(0, 3, "data"), Edge(1, 3, "condition"), Edge(2, 3, "after"))

    seq = cs.sequence([one(), two()])
    graph = cs.build_graph(seq)
    assert [n.name for n in graph.nodes] == ["one", "two"]
    assert graph.in_edges[1] == (Edge(0, 1, "sequence"),)


def test_router_and_map_nodes():
    router = cs.Router(flag(), {True: one(), False: two()})
    graph = cs.build_graph(inc(router))
    # Router deps: selector, then routes by sorted key (False < True).
    assert [(n.kind, n.name) for n in graph.nodes] == [
        ("call", "flag"), ("call", "two"), ("call", "one"), ("router", "Router"), ("call", "inc"),
    ]
    assert graph.in_edges[3] == (Edge(0, 3, "selector"), Edge(1, 3, "route"), Edge(2, 3, "route"))

    graph = cs.build_graph(inc.map(x=[1, 2]))
    assert [n.kind for n in graph.nodes] == ["call", "call", "map"]
    assert graph.in_edges[2] == (Edge(0, 2, "data"), Edge(1, 2, "data"))


def test_shared_input_is_one_node():
    x = one()
    graph = cs.build_graph(add(x, x))
    assert len(graph) == 2
    assert graph.in_edges[1] == (Edge(0, 1, "data"), Edge(0, 1, "data"))


def test_pure_equal_calls_merge_into_one_node():
    graph = cs.build_graph(add(square(3), square(3)))
    assert [n.name for n in graph.nodes] == ["square", "add"]
    assert graph.pure_merges == 1
    assert graph.in_edges[1] == (Edge(0, 1, "data"), Edge(0, 1, "data"))


def test_pure_different_calls_do_not_merge():
    graph = cs.build_graph(add(square(3), square(4)))
    assert len(graph) == 3
    assert graph.pure_merges == 0


def test_impure_equal_calls_do_not_merge():
    graph = cs.build_graph(add(inc(3), inc(3)))
    assert len(graph) == 3
    assert graph.pure_merges == 0


def test_pure_merge_runs_the_call_once():
    pure_calls.clear()
    assert cs.run(add(square(3), square(3))) == 18
    assert pure_calls == [3]


def test_ten_thousand_node_chain_under_default_recursion_limit():
    limit = sys.getrecursionlimit()
    assert limit <= 10_000  # the default (1000) or close: a recursive walk would overflow
    x = inc(0)
    for _ in range(9_999):
        x = inc(x)
    graph = cs.build_graph(x)
    assert len(graph) == 10_000
    assert graph.nodes[0].data == ()
    assert all(graph.nodes[i].data == (i - 1,) for i in range(1, 10_000))
    plan = cs.NativeSolver().solve(graph)
    assert len(plan.stages) == 10_000
    assert plan.order == tuple(range(10_000))
    assert sys.getrecursionlimit() == limit
