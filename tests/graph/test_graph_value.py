"""A Graph is a value: two builds of one target are equal, and a graph is shown by size and template."""

from __future__ import annotations

import cascade as cs
from cascade.graph.build import build_graph


@cs.task(name="gv_inc")
def inc(x: int) -> int:
    return x + 1


def test_two_builds_of_one_target_are_equal_and_other_graphs_are_not() -> None:
    target = inc(inc(1))
    a, b, c = build_graph(target), build_graph(target), build_graph(inc(inc(2)))
    assert a == b
    assert a != c  # another literal: another structural id
    assert a != "not a graph" and not (a == 3)  # another type compares unequal, it does not raise


def test_a_graph_shows_its_node_count_and_template_id() -> None:
    g = build_graph(inc(inc(inc(1))))
    assert repr(g) == f"<Graph 3 nodes {g.template_id[:12]}>"
    assert len(g.template_id) > 12
