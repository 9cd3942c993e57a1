"""Large and odd literals: huge ints, self-containing containers, deep nesting, broken dunders.

Each either works (on the slow path, a hot engine's first run and a compiled hot plan: the
``runner`` fixture) or fails with an error naming the task and the argument.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

import cascade as cs
from cascade.graph.build import build_graph
from cascade.graph.identity import encode_literal

DEEP = 10_000


@cs.task
def ident(x):
    return x


@cs.task(pure=True)
def pure_ident(x):
    return x


@cs.task
def spread(*xs):
    return xs


@cs.task
def inc(x):
    return x + 1


def nest(value, depth):
    for _ in range(depth):
        value = [value]
    return value


def unnest(value, depth):
    for _ in range(depth):
        assert type(value) is list and len(value) == 1
        value = value[0]
    return value


# -- ints beyond the int-to-string limit -----------------------------------------------------------

@pytest.mark.asyncio
async def test_an_int_of_5000_digits_is_a_literal_like_any_other(runner):
    big = 10**5000 + 7
    assert await runner.run(inc(ident(big))) == big + 1
    assert await runner.run(ident([big, {"k": -big}])) == [big, {"k": -big}]


def test_huge_ints_get_distinct_structural_ids_and_one_template():
    a, b = build_graph(ident(10**5000)), build_graph(ident(10**5000 + 1))
    assert a.structural_id != b.structural_id
    assert a.template_id == b.template_id
    assert encode_literal(10**5000) == f"int:{10**5000:#x}"
    assert encode_literal(-(10**5000)) == f"int:{-(10**5000):#x}"
    assert encode_literal(12345) == "int:12345"


def test_pure_calls_with_equal_huge_ints_merge_and_different_ones_do_not():
    graph = build_graph(inc(ident([pure_ident(10**5000), pure_ident(10**5000), pure_ident(10**5000 + 1)])))
    assert graph.pure_merges == 1


def test_huge_int_router_key():
    big = 10**5000
    router = cs.Router(ident(big), routes={big: ident("big"), 0: ident("zero")})
    assert cs.run(ident(router)) == "big"


def test_ids_do_not_depend_on_the_interpreters_int_to_string_limit():
    code = (
        "import sys; sys.set_int_max_str_digits({limit})\n"
        "import cascade as cs\nfrom cascade.graph.build import build_graph\n"
        "@cs.task\ndef ident(x):\n    return x\n"
        "print(build_graph(ident([10**700, 2**3000, -5])).structural_id)\n"
    )
    ids = {
        subprocess.run([sys.executable, "-c", code.format(limit=limit)], capture_output=True, text=True,
                       check=True).stdout
        for limit in (640, 0)  # the lowest limit allowed, and no limit at all
    }
    assert len(ids) == 1 and len(next(iter(ids)).strip()) == 40


# -- self-containing containers ------------------------------------------------------------------

def _cyclic_list():
    loop: list = [1]
    loop.append(loop)
    return loop


def _cyclic_dict():
    d: dict = {"a": 1}
    d["self"] = [d]
    return d


@pytest.mark.parametrize(
    ("make", "where"),
    [
        (lambda: ident(_cyclic_list()), "argument 'x'"),  # named by its parameter, like a keyword
        (lambda: ident(x=_cyclic_list()), "argument 'x'"),
        (lambda: ident([1, (2, _cyclic_list())]), "argument 'x'"),
        (lambda: ident(_cyclic_dict()), "argument 'x'"),
        (lambda: ident([inc(1), _cyclic_list()]), "argument 'x'"),  # structure and a cycle
        (lambda: ident.map(x=[1, _cyclic_list()]), "argument 'x'"),
        (lambda: spread(1, _cyclic_list()), "argument 1"),  # no parameter of its own: its position
    ],
    ids=["list", "keyword", "nested", "dict", "with-lazy", "map-element", "var-positional"],
)
def test_a_self_containing_argument_is_refused_when_the_call_is_made(make, where):
    with pytest.raises(ValueError, match=f"task '(ident|spread)' {where}: .*contains itself"):
        make()


def test_shared_but_acyclic_containers_are_fine():
    shared = [1, 2]
    assert cs.run(ident([shared, shared, (shared,)])) == [[1, 2], [1, 2], ([1, 2],)]


# -- deep nesting ---------------------------------------------------------------------------------

async def run_twice(engine, make):
    """Run ``make()`` twice (a hot engine takes its compiled plan the second time); the values.

    Deep values cannot be compared with ``==`` (that recurses), so the caller inspects both."""
    first = await engine.run(make())
    hits = engine.stats.hot_plan_hits
    second = await engine.run(make())
    assert engine.stats.hot_plan_hits == hits + (1 if engine.hot_plans else 0)
    return first, second


@pytest.mark.asyncio
async def test_a_lazy_result_nested_10000_lists_deep(any_engine):
    for value in await run_twice(any_engine, lambda: ident(nest(inc(1), DEEP))):
        assert unnest(value, DEEP) == 2


@pytest.mark.asyncio
async def test_a_literal_nested_10000_lists_deep(any_engine):
    for value in await run_twice(any_engine, lambda: ident(nest("leaf", DEEP))):
        assert unnest(value, DEEP) == "leaf"


def _deep_mixed():
    arg: object = inc(0)
    for i in range(DEEP // 2):
        arg = {"z": arg, "a": i} if i % 2 else (i, arg)
    return ident(arg)


@pytest.mark.parametrize("which", [0, 1], ids=["first-run", "second-run"])
@pytest.mark.asyncio
async def test_deep_dicts_and_tuples_with_lazies_at_several_depths(any_engine, which):
    value = (await run_twice(any_engine, _deep_mixed))[which]
    for i in reversed(range(DEEP // 2)):
        if i % 2:
            assert list(value) == ["z", "a"] and value["a"] == i  # the caller's key order is kept
            value = value["z"]
        else:
            assert value[0] == i
            value = value[1]
    assert value == 1


def test_deep_templates_are_equal_and_structures_differ():
    a, b = build_graph(ident(nest(inc(1), DEEP))), build_graph(ident(nest(inc(2), DEEP)))
    assert a.template_id == b.template_id
    assert a.structural_id != b.structural_id
    assert build_graph(ident(nest(inc(1), DEEP - 1))).template_id != a.template_id


# -- broken dunders -------------------------------------------------------------------------------

class BadRepr:
    def __repr__(self):
        raise RuntimeError("no repr for you")


class BadEq:
    def __eq__(self, other):
        raise RuntimeError("no eq")

    __hash__ = object.__hash__

    def __repr__(self):
        return "BadEq()"


class BadOrder:
    """Unorderable and unrepresentable: a dict key of this type cannot be put in canonical order."""

    def __lt__(self, other):
        raise TypeError("no order")

    def __repr__(self):
        raise RuntimeError("no repr")


@pytest.mark.asyncio
async def test_a_literal_whose_repr_raises_fails_naming_task_and_argument(any_engine):
    with pytest.raises(TypeError, match="task 'ident' argument 'x': .*RuntimeError: no repr for you") as info:
        await any_engine.run(ident(x=BadRepr()))
    assert isinstance(info.value.__cause__, RuntimeError)
    with pytest.raises(TypeError, match="task 'inc' argument 'x': "):
        await any_engine.run(ident(inc([1, BadRepr()])))


def test_a_dict_key_that_cannot_be_ordered_fails_when_the_call_is_made():
    with pytest.raises(TypeError, match="task 'ident' argument 'x' cannot be described: RuntimeError: no repr"):
        ident({BadOrder(): 1, BadOrder(): 2})


@pytest.mark.asyncio
async def test_a_literal_whose_eq_raises_is_never_compared(runner):
    obj = BadEq()
    assert await runner.run(ident([pure_ident(obj), pure_ident(obj)])) == [obj, obj]


def test_a_router_key_whose_repr_raises_fails_with_a_clear_error():
    class Key:
        def __hash__(self):
            return 1

        def __repr__(self):
            raise RuntimeError("no repr")

    router = cs.Router(ident(1), routes={Key(): ident("a")})
    with pytest.raises(TypeError, match="Router route key cannot be encoded.*RuntimeError: no repr"):
        build_graph(ident(router))
