"""The fast identity texts of a plain call (``plain_call_texts``) are exactly ``encode_args``'s.

``build_graph`` takes the fast path for a call whose arguments are plain literals or lazy results
at top level and the general path otherwise; both must give one text, or a workflow's ids would
depend on which path built it.
"""

from __future__ import annotations

from typing import Any

import pytest

import cascade as cs
from cascade.graph.identity import encode_args, encode_literal, plain_call_texts


@cs.task
def leaf() -> int:
    """A call without inputs."""
    return 1


@cs.task
def anything(*args: Any, **kwargs: Any) -> Any:
    """Takes whatever it is given."""
    return args, kwargs


def _calls() -> list[Any]:
    a, b, c, d = leaf(), leaf(), leaf(), leaf()
    return [
        anything(),
        anything(1),
        anything(1, "x", 2.5, None, True, b"z", 1j),
        anything(a),
        anything(a, b),
        anything(a, 1, b, c),
        anything(x=1),
        anything(y="b", x=2),
        anything(x=a),
        anything(x=a, y=b, z=c),
        anything(a, b, x=c, y=d),
        anything(1, a, w=2, x=b, y=3, z=c),
    ]


def test_plain_call_texts_equal_the_general_encoding() -> None:
    for call in _calls():
        n = len(call._deps)
        sids = [f"s{i}" for i in range(n)]
        tids = [f"t{i}" for i in range(n)]
        texts = plain_call_texts(call, sids, tids)
        assert texts == (encode_args(call, sids, True), encode_args(call, tids, False))


def test_plain_call_texts_name_dependencies_in_dependency_order() -> None:
    a, b, c = leaf(), leaf(), leaf()
    assert plain_call_texts(anything(a, 1, b), ["A", "B"], ["a", "b"]) == (
        "(<A>,int:1,<B>;)", "(<a>,L,<b>;)")
    assert plain_call_texts(anything(a, y=b, x=c), ["A", "C", "B"], ["a", "c", "b"]) == (
        "(<A>;x=<C>,y=<B>)", "(<a>;x=<c>,y=<b>)")
    assert plain_call_texts(anything(x=1, y=a), ["A"], ["a"]) == ("(;x=int:1,y=<A>)", "(;x=L,y=<a>)")


def test_a_call_with_a_nested_argument_is_left_to_the_general_encoding() -> None:
    assert plain_call_texts(anything([1]), [], []) is None
    assert plain_call_texts(anything(x=(leaf(),)), ["A"], ["a"]) is None


def test_argument_order_and_names_are_part_of_a_graphs_identity() -> None:
    a, b = leaf(), anything(leaf())
    first = cs.build_graph(anything(a, b))
    second = cs.build_graph(anything(b, a))
    assert first.structural_id != second.structural_id
    assert first.template_id != second.template_id
    assert cs.build_graph(anything(x=a, y=b)).structural_id != cs.build_graph(anything(x=b, y=a)).structural_id


def test_literal_text_of_containers_ignores_dict_order_and_rejects_cycles() -> None:
    assert encode_literal({"b": 1, "a": [2, (3,)]}) == encode_literal({"a": [2, (3,)], "b": 1})
    assert encode_literal([1, 2]) != encode_literal((1, 2))
    loop: list[Any] = [1]
    loop.append(loop)
    with pytest.raises(ValueError):
        encode_literal(loop)


def test_ints_beyond_2000_bits_are_written_in_hex() -> None:
    at_limit, above = 2**1999, 2**2000  # 2000 and 2001 bits
    assert encode_literal(at_limit) == f"int:{at_limit!r}"
    assert encode_literal(above) == f"int:{above:#x}"
    assert encode_literal(-above) == f"int:{-above:#x}"
