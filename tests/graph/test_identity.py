"""Structural ids (literals included) and template ids (literals left out)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import cascade as cs


@cs.task
def countdown(n):
    return n


@cs.task
def inc(x):
    return x + 1


@cs.task
def combine(a, b=None):
    return (a, b)


@cs.task
def spread(*args, **kwargs):
    return (args, kwargs)


@cs.task(pure=True)
def pure_inc(x):
    return x + 1


def ids(target):
    g = cs.build_graph(target)
    return g.structural_id, g.template_id


def test_countdown_5_and_4_share_template_not_structure():
    s5, t5 = ids(countdown(5))
    s4, t4 = ids(countdown(4))
    assert t5 == t4
    assert s5 != s4
    g5, g4 = cs.build_graph(countdown(5)), cs.build_graph(countdown(4))
    assert g5.nodes[0].template_id == g4.nodes[0].template_id
    assert g5.nodes[0].structural_id != g4.nodes[0].structural_id


def test_equal_calls_have_equal_ids():
    assert ids(combine(inc(1), b=inc(2))) == ids(combine(inc(1), b=inc(2)))


def _make_task():
    @cs.task(name="same")
    def body(x):
        return x

    return body


def test_two_tasks_with_the_same_name_have_different_ids():
    first, second = _make_task(), _make_task()
    assert first.name == second.name == "same"
    s1, t1 = ids(first(1))
    s2, t2 = ids(second(1))
    assert s1 != s2
    assert t1 != t2


def test_two_tasks_with_the_same_name_and_different_bodies_differ():
    @cs.task(name="dup")
    def a(x):
        return x

    @cs.task(name="dup")
    def b(x):
        return -x

    assert ids(a(1))[1] != ids(b(1))[1]


def test_dict_insertion_order_does_not_change_ids():
    assert ids(combine({"a": 1, "b": 2})) == ids(combine({"b": 2, "a": 1}))
    lazy_first = combine({"x": inc(1), "y": countdown(2)})
    lazy_second = combine({"y": countdown(2), "x": inc(1)})
    assert ids(lazy_first) == ids(lazy_second)


def test_keyword_order_does_not_change_ids():
    assert ids(combine(a=inc(1), b=2)) == ids(combine(b=2, a=inc(1)))


def test_different_dict_values_change_structure_only():
    s1, t1 = ids(combine({"a": 1}))
    s2, t2 = ids(combine({"a": 2}))
    assert t1 == t2 and s1 != s2


def test_literal_container_length_is_not_template_but_lazy_container_is():
    s1, t1 = ids(combine([1, 2]))
    s2, t2 = ids(combine([1, 2, 3]))
    assert t1 == t2 and s1 != s2
    _, t3 = ids(combine([inc(1), inc(2)]))
    _, t4 = ids(combine([inc(1), inc(2), inc(3)]))
    assert t3 != t4


def test_literal_type_is_part_of_structure():
    assert ids(countdown(1))[0] != ids(countdown(1.0))[0]
    assert ids(countdown(1))[0] != ids(countdown("1"))[0]


def test_sharing_is_part_of_both_ids():
    x = inc(1)
    shared = combine(x, x)
    separate = combine(inc(1), inc(1))
    assert ids(shared)[0] != ids(separate)[0]
    assert ids(shared)[1] != ids(separate)[1]


def test_pure_merge_gives_same_ids_as_explicit_sharing():
    x = pure_inc(1)
    assert ids(combine(pure_inc(1), pure_inc(1))) == ids(combine(x, x))


def test_template_parts_params_routes_maps_policies():
    assert ids(countdown(cs.Param("a")))[1] != ids(countdown(cs.Param("b")))[1]
    assert ids(countdown(cs.Param("a")))[1] != ids(countdown(cs.Param("a", default=1)))[1]
    assert ids(inc.map(x=[1, 2]))[1] == ids(inc.map(x=[5, 6]))[1]
    assert ids(inc.map(x=[1, 2]))[1] != ids(inc.map(x=[1, 2, 3]))[1]
    r1 = combine(cs.Router(countdown(1), {"a": inc(1), "b": inc(2)}))
    r2 = combine(cs.Router(countdown(1), {"a": inc(1), "c": inc(2)}))
    assert ids(r1)[1] != ids(r2)[1]
    assert ids(inc(1).with_retry(2))[1] != ids(inc(1).with_retry(3))[1]
    assert ids(inc(1).with_constraints(cpu=1))[1] != ids(inc(1).with_constraints(cpu=2))[1]
    assert ids(inc(1).with_retry(2))[1] == ids(inc(7).with_retry(2))[1]


def test_ids_are_deterministic_across_processes(tmp_path):
    script = tmp_path / "ids_script.py"
    script.write_text(textwrap.dedent(
        """
        import cascade as cs

        @cs.task
        def inc(x):
            return x + 1

        @cs.task
        def combine(a, b):
            return (a, b)

        g = cs.build_graph(combine({"k": inc(1), "j": "text"}, b=frozenset({"a", "b", "c"})))
        print(g.structural_id, g.template_id)
        """
    ))
    outputs = set()
    for seed in ("1", "2"):
        proc = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, check=True,
            env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"},
        )
        outputs.add(proc.stdout.strip())
    assert len(outputs) == 1
    structural, template = outputs.pop().split()
    assert len(structural) == 40 and len(template) == 40


def test_ids_do_not_depend_on_construction_order():
    first_x = inc(1)
    first_y = countdown(2)
    a = combine(first_x, first_y)
    second_y = countdown(2)
    second_x = inc(1)
    b = combine(second_x, second_y)
    assert ids(a) == ids(b)
    assert [n.structural_id for n in cs.build_graph(a).nodes] == [
        n.structural_id for n in cs.build_graph(b).nodes
    ]


def test_equal_ids_exactly_when_computations_are_equal():
    assert ids(combine(inc(1), inc(2))) != ids(combine(inc(2), inc(1)))  # argument order matters
    # ``b`` binds as the second positional argument either way: one computation, one identity
    assert ids(combine(inc(1), b=inc(2))) == ids(combine(inc(1), inc(2)))
    # where a keyword is not a positional parameter, it is not a positional argument
    assert ids(spread(inc(1), b=inc(2))) != ids(spread(inc(1), inc(2)))
    assert ids(inc(1).run_if(countdown(True))) != ids(inc(1))
    assert ids(inc(1).after(countdown(1))) != ids(inc(1).run_if(countdown(1)))
