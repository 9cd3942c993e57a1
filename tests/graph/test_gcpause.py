"""The collector pause around graph builds: restored on every exit, never leaked into task code."""

from __future__ import annotations

import gc
import sys
import time
import weakref
from collections.abc import Iterator

import pytest

import cascade as cs
from cascade.graph.gcpause import collector_paused


@pytest.fixture(autouse=True)
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


@pytest.fixture
def no_thread_switch() -> Iterator[None]:
    """Keep other threads (the session's Dask cluster) from taking the interpreter between a
    pause's end and the test's reading of the collector's counts: their allocations would move
    the counts or start a pass. A thread that is waiting already gets one turn in the short
    sleep, and then waits for the long interval."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(60.0)
    time.sleep(0.02)
    yield
    sys.setswitchinterval(interval)


def test_the_collector_is_off_inside_and_back_on_after():
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_the_collector_comes_back_when_the_block_raises():
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_a_collector_the_application_disabled_stays_disabled():
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("boom")
    assert not gc.isenabled()


def test_nested_pauses_restore_once_at_the_outermost():
    with collector_paused():
        with collector_paused():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()


@cs.task
def whether_collecting(x: int) -> bool:
    return gc.isenabled()


@cs.task
def all_of(xs: list[bool]) -> bool:
    return all(xs)


@pytest.mark.parametrize("hot", [True, False])
def test_task_bodies_run_with_the_collector_on(hot):
    # the pause covers building and compiling only, never the run's own code
    assert cs.run(all_of(whether_collecting.map(x=range(50))), hot_plans=hot) is True
    assert gc.isenabled()


class BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


@cs.task
def ident(x: object) -> object:
    return x


def test_a_build_that_raises_leaves_the_collector_on():
    with pytest.raises(TypeError, match="no repr"):
        cs.run(ident(ident([1, BadRepr()])))
    assert gc.isenabled()


def test_a_compile_that_raises_leaves_the_collector_on():
    @cs.task
    def needs(db: object = cs.inject("nowhere")) -> object:
        return db

    with pytest.raises(cs.ResourceError):
        cs.run(needs())
    assert gc.isenabled()


def test_a_map_that_raises_leaves_the_collector_on():
    with pytest.raises(ValueError, match="equal length"):
        ident.map(x=[1, 2], y=[1])
    assert gc.isenabled()


def test_nothing_is_frozen_and_a_finished_graph_is_collectable():
    class Box:
        pass

    box = Box()
    box.me = box  # a cycle: only the collector frees it
    ref = weakref.ref(box)
    assert cs.run(all_of(whether_collecting.map(x=[box] * 10))) is True  # the graph holds box
    del box
    gc.collect()
    assert ref() is None
    assert gc.get_freeze_count() == 0


# -- promotion after a big build (see "Promotion" in cascade/graph/gcpause.py) ---------------------
class _Node:
    """A tracked object with a weak reference, to find it in a generation and see it freed."""


def _generation_of(obj: object) -> int | None:
    return next((g for g in range(3) if any(o is obj for o in gc.get_objects(generation=g))), None)


def test_a_big_pause_promotes_its_objects_to_the_oldest_generation_without_a_pass(no_thread_switch):
    import cascade.graph.gcpause as gcpause

    gc.collect()
    passes = []
    gc.callbacks.append(callback := lambda phase, info: passes.append(info["generation"]))
    try:
        with collector_paused():
            kept = [_Node() for _ in range(gcpause.PROMOTE_AFTER + 1_000)]  # the count is net: some margin
        assert gc.get_count()[0] < 10  # the build's allocations no longer count as young
        assert passes == []  # promoted, not traversed
        assert _generation_of(kept[-1]) == 2
        assert gc.get_freeze_count() == 0  # nothing left frozen
    finally:
        gc.callbacks.remove(callback)


def test_a_small_pause_leaves_its_objects_young():
    gc.collect()
    with collector_paused():
        kept = [_Node() for _ in range(100)]
    assert _generation_of(kept[-1]) == 0


def test_promotion_leaves_an_application_freeze_alone(no_thread_switch):
    import cascade.graph.gcpause as gcpause

    gc.collect()
    frozen = _Node()
    gc.freeze()
    passes: list[int] = []
    gc.callbacks.append(callback := lambda phase, info: passes.append(info["generation"]))
    try:
        with collector_paused():
            kept = [_Node() for _ in range(gcpause.PROMOTE_AFTER + 1_000)]  # the count is net: some margin
        young = gc.get_count()[0]  # read first: the next allocations may start a pass
        # Not promoted: the build still counts as young. Another thread (a session's Dask
        # cluster) may allocate once the collector is back and start the young pass before the
        # count is read; that pass is seen by the callback, a promotion is not.
        assert (young > gcpause.PROMOTE_AFTER // 2 or passes) and kept
        assert _generation_of(kept[-1]) != 2 or 1 in passes or 2 in passes
        # the application's permanent generation left in place (its count may only fall, as
        # frozen objects that die leave it)
        assert gc.get_freeze_count() > 0
        assert _generation_of(frozen) is None  # still frozen: in no generation
    finally:
        gc.callbacks.remove(callback)
        gc.unfreeze()


def test_cyclic_garbage_promoted_by_a_big_pause_is_still_collected():
    import cascade.graph.gcpause as gcpause

    gc.collect()
    cycle = _Node()
    cycle.me = cycle  # type: ignore[attr-defined]
    alive = weakref.ref(cycle)
    del cycle
    with collector_paused():
        kept = [_Node() for _ in range(gcpause.PROMOTE_AFTER + 1_000)]  # the count is net: some margin
    assert alive() is not None  # young garbage moved to the oldest generation with the build
    gc.collect()
    assert alive() is None and len(kept) == gcpause.PROMOTE_AFTER + 1_000
