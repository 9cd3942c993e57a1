"""Bad numbers in policies fail when the lazy result is made, naming the task and the argument."""

from __future__ import annotations

import math

import pytest

import cascade as cs


@cs.task
def fetch(x=0):
    return x


BAD_RETRY = [
    ({"max_attempts": True}, TypeError, "max_attempts"),
    ({"max_attempts": 2.0}, TypeError, "max_attempts"),
    ({"max_attempts": "3"}, TypeError, "max_attempts"),
    ({"max_attempts": 0}, ValueError, "max_attempts"),
    ({"max_attempts": -1}, ValueError, "max_attempts"),
    ({"delay": math.nan}, ValueError, "delay"),
    ({"delay": math.inf}, ValueError, "delay"),
    ({"delay": -0.5}, ValueError, "delay"),
    ({"delay": True}, TypeError, "delay"),
    ({"delay": "1"}, TypeError, "delay"),
    ({"delay": 10**400}, ValueError, "delay"),
    ({"backoff": math.nan}, ValueError, "backoff"),
    ({"backoff": -math.inf}, ValueError, "backoff"),
    ({"backoff": -2}, ValueError, "backoff"),
    ({"backoff": False}, TypeError, "backoff"),
    # every setting finite, but the wait before the last attempt overflows
    ({"max_attempts": 2000, "delay": 1.0, "backoff": 10.0}, ValueError, "backoff"),
]


@pytest.mark.parametrize(("kwargs", "error", "arg"), BAD_RETRY, ids=[repr(k) for k, _, _ in BAD_RETRY])
def test_with_retry_rejects_bad_numbers_naming_task_and_argument(kwargs, error, arg):
    with pytest.raises(error) as info:
        fetch(1).with_retry(**kwargs)
    assert "'fetch'" in str(info.value) and f"{arg}=" in str(info.value)
    with pytest.raises(error, match=f"{arg}="):
        fetch.map(x=[1, 2]).with_retry(**kwargs)
    with pytest.raises(error, match="'fetch'"):
        fetch.map(x=[]).with_retry(**kwargs)  # no element to check: the map checks once itself


def test_retry_policy_itself_validates():
    with pytest.raises(ValueError, match="delay"):
        cs.RetryPolicy(3, math.nan, 1.0)
    with pytest.raises(TypeError, match="max_attempts"):
        cs.RetryPolicy(True)


def test_with_retry_accepts_edge_values():
    assert fetch(1).with_retry(max_attempts=1, delay=0, backoff=0).retry == cs.RetryPolicy(1, 0, 0)
    big = fetch(1).with_retry(max_attempts=10**6, delay=0.0, backoff=10.0)  # never waits: fine
    assert big.retry.delay_before(10**6) == 0.0
    assert fetch(1).with_retry(max_attempts=4, delay=0.5, backoff=2).retry.delay_before(4) == 2.0


BAD_AMOUNTS = [
    (math.nan, ValueError),
    (math.inf, ValueError),
    (-1, ValueError),
    (-0.1, ValueError),
    (True, TypeError),
    ("1", TypeError),
    (None, TypeError),
]


@pytest.mark.parametrize(("amount", "error"), BAD_AMOUNTS, ids=[repr(a) for a, _ in BAD_AMOUNTS])
def test_with_constraints_rejects_bad_amounts_naming_task_and_argument(amount, error):
    with pytest.raises(error) as info:
        fetch(1).with_constraints(cpu=1, slot=amount)
    assert "'fetch'" in str(info.value) and "slot=" in str(info.value)
    with pytest.raises(error, match="slot="):
        fetch.map(x=[]).with_constraints(slot=amount)


@pytest.mark.asyncio
async def test_nan_amount_can_no_longer_run_ungoverned(any_engine):
    # the reported symptom: slot=nan made every call skip the capacity check
    with pytest.raises(ValueError, match="slot="):
        fetch(1).with_constraints(slot=float("nan"))
    engine = cs.Engine(system_resources={"slot": 1}, hot_plans=any_engine.hot_plans)
    assert await engine.run(fetch(3).with_constraints(slot=1.0)) == 3
