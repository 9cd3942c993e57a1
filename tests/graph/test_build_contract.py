"""build_graph's contract in detail: pure merge counts, ids of chained plain calls, keyword names
that are not valid UTF-8, and sharing of a call's condition as part of the graph ids."""

from __future__ import annotations

import pytest

import cascade as cs


@cs.task(name="one")
def one():
    return 1


@cs.task(name="two")
def two():
    return 2


@cs.task(name="flag")
def flag():
    return True


@cs.task(name="add")
def add(x, y):
    return x + y


@cs.task(name="inc")
def inc(x):
    return x + 1


@cs.task(name="square", pure=True)
def square(x):
    return x * x


@cs.task(name="keywords")
def keywords(*args, **kwargs):
    return [*args, *sorted(kwargs)]


def test_pure_merges_counts_every_folded_call():
    graph = cs.build_graph(add(add(square(3), square(3)), square(3)))
    assert [n.name for n in graph.nodes] == ["square", "add", "add"]
    assert graph.pure_merges == 2


def test_pure_calls_on_different_upstream_calls_stay_apart():
    target = add(square(one()), square(two()))
    graph = cs.build_graph(target)
    assert [n.name for n in graph.nodes] == ["one", "square", "two", "square", "add"]
    assert graph.pure_merges == 0
    assert graph.nodes[1].structural_id != graph.nodes[3].structural_id
    assert cs.run(target) == 1 + 4


@pytest.mark.asyncio
async def test_pure_calls_on_different_upstream_calls_give_their_own_results_in_an_engine():
    engine = cs.Engine()
    assert await engine.run(add(square(one()), square(two()))) == 5
    assert await engine.run(add(square(two()), square(one()))) == 5


def test_template_ids_of_chained_calls_name_the_upstream_task():
    g_one, g_two = cs.build_graph(inc(one())), cs.build_graph(inc(two()))
    assert g_one.nodes[1].template_id != g_two.nodes[1].template_id
    assert g_one.template_id != g_two.template_id
    assert cs.build_graph(inc(one())).template_id == g_one.template_id
    # Literals are not part of the template: only the upstream task is.
    assert cs.build_graph(inc(square(1))).template_id == cs.build_graph(inc(square(2))).template_id


@pytest.mark.parametrize("with_input", [False, True], ids=["leaf", "chained"])
def test_keyword_names_that_are_not_valid_utf8_are_part_of_both_ids(with_input):
    def call(name):
        return keywords(one(), **{name: 1}) if with_input else keywords(**{name: 1})

    first, again, other = cs.build_graph(call("\ud800")), cs.build_graph(call("\ud800")), cs.build_graph(call("\udfff"))
    assert (first.structural_id, first.template_id) == (again.structural_id, again.template_id)
    assert first.structural_id != other.structural_id
    assert first.template_id != other.template_id
    assert first.nodes[-1].template_id != other.nodes[-1].template_id
    assert cs.run(call("\ud800")) == ([1, "\ud800"] if with_input else ["\ud800"])


def test_keyword_names_that_are_not_valid_utf8_also_build_through_the_general_encoding():
    plain = cs.build_graph(keywords(**{"\ud800": 1}))
    general = cs.build_graph(keywords(**{"\ud800": [1]}))  # a container: encoded the general way
    assert plain.template_id != general.template_id or plain.structural_id != general.structural_id


def test_graph_ids_tell_which_input_a_condition_shares():
    c1, c2 = flag(), flag()
    on_first = cs.build_graph(add(c1, c2).run_if(c1))
    on_second = cs.build_graph(add(c1, c2).run_if(c2))
    assert [n.structural_id for n in on_first.nodes] == [n.structural_id for n in on_second.nodes]
    assert on_first.structural_id != on_second.structural_id
    assert on_first.template_id != on_second.template_id
