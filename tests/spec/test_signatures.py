"""Calls are checked against the task's signature when the lazy result is made, before anything runs."""

from __future__ import annotations

import functools

import pytest

import cascade as cs


@cs.task
def add(x, y=0):
    return x + y


@cs.task
def only_kw(*, k):
    return k


@cs.task
def pos_only(a, /, b):
    return a + b


@cs.task
def anything(*args, **kwargs):
    return (args, kwargs)


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda: add(1, z=2), "'z'"),
        (lambda: add(y=2), "'x'"),
        (lambda: add(1, 2, 3), "too many positional arguments"),
        (lambda: add(), "'x'"),
        (lambda: only_kw(1), "too many positional arguments"),
        (lambda: only_kw(), "'k'"),
        (lambda: pos_only(a=1, b=2), "'a'"),
    ],
    ids=["unknown-keyword", "missing-positional", "too-many", "none", "kw-only-given-positionally",
         "kw-only-missing", "positional-only-by-keyword"],
)
def test_bad_call_raises_type_error_naming_task_and_argument(make, needle):
    with pytest.raises(TypeError) as info:
        make()
    message = str(info.value)
    assert needle in message
    name = message.split("'")[1]
    assert name in {"add", "only_kw", "pos_only"}
    assert f"its signature is {name}(" in message


def test_an_argument_given_twice_is_refused_by_python_naming_task_and_argument():
    # A task's call binds its first parameters by name (no dict per call), so Python refuses this
    # call itself, as it would the function's, naming the task and the argument.
    with pytest.raises(TypeError, match=r"^add\(\) got multiple values for argument 'x'$"):
        add(1, x=1)


def test_the_one_argument_fast_path_is_checked_too():
    with pytest.raises(TypeError, match="only_kw.*too many positional"):
        only_kw(add(1))  # a lazy argument, the commonest call in a loop
    with pytest.raises(TypeError, match="only_kw.*too many positional"):
        only_kw([1, 2])  # a container argument goes through the general path


def test_the_error_comes_before_any_upstream_task_runs():
    ran: list[int] = []

    @cs.task
    def upstream():
        ran.append(1)
        return 1

    with pytest.raises(TypeError, match="'nope'"):
        cs.run(add(upstream(), nope=3))
    assert ran == []


def test_a_failed_pattern_is_not_remembered_and_a_good_one_is():
    @cs.task
    def two(a, b):
        return a + b

    assert two.sig_ok == set()
    for _ in range(2):
        with pytest.raises(TypeError):
            two(1)
    assert two.sig_ok == set()
    two(1, b=2)  # stored as two(1, 2): ``b`` binds as the second positional argument
    two(1, b=3)
    assert two.sig_ok == {2}
    assert cs.run(two(1, b=2)) == 3


def test_map_is_checked_per_call_pattern():
    with pytest.raises(TypeError, match="add.*'z'"):
        add.map(x=[1, 2], z=[1, 2])
    with pytest.raises(TypeError, match="add.*'x'"):
        add.map(y=[1, 2])
    assert cs.run(add.map(x=[1, 2], y=[10, 20])) == [11, 22]


def test_valid_calls_still_work():
    assert cs.run(anything(1, 2, k=3)) == ((1, 2), {"k": 3})
    assert cs.run(pos_only(1, b=2)) == 3
    assert cs.run(only_kw(k=5)) == 5


def test_a_keyword_named_like_a_positional_only_parameter_goes_to_var_keyword():
    @cs.task
    def opts(x=0, /, **more):
        return (x, more)

    # Python passes ``x=1`` to ``**more`` (``inspect.Signature.bind`` alone would refuse it)
    assert cs.run(opts(x=1)) == opts.fn(x=1) == (0, {"x": 1})
    assert cs.run(opts(5, x=1)) == (5, {"x": 1})


def test_a_callable_without_a_readable_signature_is_not_checked_early():
    wrapped = cs.task(functools.partial(max, 0))  # builtins may have no signature
    assert cs.run(wrapped(5)) == 5
    assert cs.run(wrapped(-5, -7)) == 0


def test_the_one_keyword_fast_path_checks_a_new_keyword_after_a_known_one():
    @cs.task
    def step(x):
        return x

    step(x=add(1))  # remembered: the next call by this keyword skips the check
    step(x=add(2))
    with pytest.raises(TypeError, match=r"step\(z=_\)"):
        step(z=add(1))  # another single keyword is checked, lazy or literal
    with pytest.raises(TypeError, match=r"step\(z=_\)"):
        step(z=1)
    assert cs.run(step(x=add(3))) == 3
