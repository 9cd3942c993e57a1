"""LazyResult immutability and chaining; Task.map; sequence and pipeline helpers."""

from __future__ import annotations

import pytest

import cascade as cs


@cs.task
def inc(x):
    return x + 1


@cs.task
def add(x, y):
    return x + y


@cs.task
def yes():
    return True


@cs.task
def double(x):
    return 2 * x


def _snapshot(lr: cs.LazyResult) -> tuple:
    return (lr.task, lr.args, dict(lr.kwargs), lr.cond, lr.after_deps, lr.seq_deps, lr.retry,
            lr.cache, lr.constraints)


def test_setattr_raises():
    lr = inc(1)
    with pytest.raises(AttributeError):
        lr.args = (2,)
    with pytest.raises(AttributeError):
        lr.task = add
    with pytest.raises(AttributeError):
        lr.brand_new = 1
    assert lr.args == (1,)


def test_mapped_lazy_result_and_router_are_immutable():
    m = inc.map(x=[1, 2])
    with pytest.raises(AttributeError):
        m.elements = ()
    r = cs.Router(yes(), {True: inc(1)})
    with pytest.raises(AttributeError):
        r.routes = {}


@pytest.mark.parametrize(
    "chain",
    [
        pytest.param(lambda lr: lr.run_if(yes()), id="run_if"),
        pytest.param(lambda lr: lr.after(inc(0)), id="after"),
        pytest.param(lambda lr: lr.with_retry(max_attempts=4, delay=0.0), id="with_retry"),
        pytest.param(lambda lr: lr.with_cache(cs.InMemoryCache()), id="with_cache"),
        pytest.param(lambda lr: lr.with_constraints(cpu=1), id="with_constraints"),
    ],
)
def test_chaining_returns_new_object_and_leaves_receiver_unchanged(chain):
    lr = inc(1)
    before = _snapshot(lr)
    new = chain(lr)
    assert isinstance(new, cs.LazyResult)
    assert new is not lr
    assert _snapshot(lr) == before
    assert _snapshot(new) != before
    assert new.args == (1,) and new.task is inc


def test_chaining_sets_the_policies():
    cache = cs.InMemoryCache()
    cond = yes()
    first = inc(0)
    lr = inc(1).run_if(cond).after(first).with_retry(5, 0.0, 2.0).with_cache(cache).with_constraints(cpu=2)
    assert lr.cond is cond
    assert lr.after_deps == (first,)
    assert lr.retry == cs.RetryPolicy(5, 0.0, 2.0)
    assert lr.cache is cache
    assert lr.constraints == (("cpu", 2),)


def test_with_retry_default_and_validation():
    assert inc(1).with_retry().retry.max_attempts == 3
    with pytest.raises(ValueError):
        inc(1).with_retry(max_attempts=0)


def test_run_if_and_after_need_lazy_results():
    with pytest.raises(TypeError, match="inc"):
        inc(1).run_if(True)
    with pytest.raises(TypeError, match="inc"):
        inc(1).after(3)


def test_map_returns_mapped_lazy_result_of_one_call_per_element():
    m = add.map(x=[1, 2, 3], y=[10, 20, 30])
    assert isinstance(m, cs.MappedLazyResult)
    assert len(m) == 3
    # each element is add(x=..., y=...), stored as add(..., ...): both bind as positional arguments
    assert [(e.args, e.kwargs) for e in m.elements] == [((1, 10), {}), ((2, 20), {}), ((3, 30), {})]
    assert cs.run(m) == [11, 22, 33]


def test_map_unequal_lengths_raise_value_error_naming_the_task():
    with pytest.raises(ValueError) as info:
        add.map(x=[1, 2], y=[1, 2, 3])
    message = str(info.value)
    assert "add" in message
    assert "x=2" in message and "y=3" in message


def test_mapped_chaining_applies_to_every_element_and_returns_new_object():
    m = inc.map(x=[1, 2])
    r = m.with_retry(max_attempts=2)
    assert r is not m
    assert all(e.retry is None for e in m.elements)
    assert all(e.retry.max_attempts == 2 for e in r.elements)


def test_map_result_feeds_a_consumer():
    @cs.task
    def total(xs):
        return sum(xs)

    assert cs.run(total(double.map(x=[1, 2, 3, 4]))) == 20


def test_sequence_orders_steps_and_returns_last_value():
    order: list[str] = []

    @cs.task
    def step(name):
        order.append(name)
        return name

    # Without the sequence, nothing would relate the three calls; c is the target.
    target = cs.sequence([step("a"), step("b"), step("c")])
    assert isinstance(target, cs.LazyResult)
    assert cs.run(target) == "c"
    assert order == ["a", "b", "c"]


def test_sequence_rejects_empty_and_non_lazy():
    with pytest.raises(ValueError):
        cs.sequence([])
    with pytest.raises(TypeError):
        cs.sequence([inc(1), 5])


def test_pipeline_folds_through_the_steps():
    target = cs.pipeline(3, [inc, double, inc])  # inc(double(inc(3))) = 9
    assert isinstance(target, cs.LazyResult)
    assert target.task is inc
    assert cs.run(target) == 9


def test_pipeline_starting_from_a_lazy_result():
    assert cs.run(cs.pipeline(add(1, 2), [double, double])) == 12


class _Plain:
    """An object passed to a task as a literal."""


@pytest.mark.parametrize(
    ("make", "deps"),
    [
        (lambda a, b: add(a, 1), "a"),
        (lambda a, b: add(1, a), "a"),
        (lambda a, b: add(a, b), "ab"),
        (lambda a, b: add(a, a), "aa"),
        (lambda a, b: add(a, _Plain()), "a"),
        (lambda a, b: add(a, [b]), "ab"),
        (lambda a, b: add(1, 2), ""),
    ],
    ids=["lazy-literal", "literal-lazy", "lazy-lazy", "same-lazy-twice", "lazy-object", "lazy-list", "literals"],
)
def test_two_argument_calls_list_their_inputs_and_shape_by_structure(make, deps) -> None:
    # The two-argument call has a fast path of its own; what it records must not depend on it.
    a, b = inc(1), double(2)
    lr = make(a, b)
    assert lr._deps == tuple({"a": a, "b": b}[c] for c in deps)
    assert make(inc(5), double(6))._shape == lr._shape  # literals and the inputs' values left out
    assert add(double(1), 1)._shape != add(inc(1), 1)._shape  # the input's own template counts
    assert add(a, 1)._shape != add(1, a)._shape  # so does its position


def test_two_literal_arguments_share_the_template_of_any_two_literals() -> None:
    # ``cs.recv(topic, timeout)``'s call: two plain literals take a fast path of their own, which
    # must record what the general loop records for literals of other types (a plain object, a
    # literal list): no inputs, literal mode, one template for every literal value and type.
    fast = add("x", 2.5)
    assert fast._deps == () and fast._mode == 0
    assert fast._shape == add(1, 2)._shape == add(1, _Plain())._shape == add([1], None)._shape
    assert fast._shape != add(inc(1), 2)._shape and fast._shape != inc(1)._shape
