"""``@cs.task(offload=..., executor=...)``: where a task's body runs (remote executors: tests/adapters)."""

from __future__ import annotations

import threading

import pytest

import cascade as cs


def test_offload_thread_runs_a_sync_body_in_another_thread() -> None:
    @cs.task(offload="thread")
    def where() -> int:
        return threading.get_ident()

    assert where.offload is True
    assert cs.run(where()) != threading.get_ident()


@pytest.mark.parametrize("bad", ["process", 2, None])
def test_offload_takes_true_false_or_thread(bad: object) -> None:
    with pytest.raises(TypeError, match=r"offload=...\) of 'f' must be True, False or 'thread'"):
        cs.task(name="f", offload=bad)(lambda: None)  # type: ignore[arg-type]


def test_executor_names_are_strings_and_default_to_none() -> None:
    assert cs.task(lambda: 1).executor is None
    assert cs.task(executor="dask")(lambda: 1).executor == "dask"
    with pytest.raises(TypeError, match=r"executor=...\) of 'f' must be a non-empty string, got 3"):
        cs.task(name="f", executor=3)(lambda: None)  # type: ignore[arg-type]


def test_a_task_naming_a_missing_executor_fails_before_anything_runs() -> None:
    ran: list[int] = []

    @cs.task
    def first() -> int:
        ran.append(1)
        return 1

    @cs.task(executor="gpu")
    def second(x: int) -> int:
        return x

    with pytest.raises(ValueError, match="task 'second' asks for executor 'gpu', which this engine does not have"):
        cs.run(second(first()))
    assert ran == []
