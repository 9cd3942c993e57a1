"""A call's cache policy is part of its identity: cached or not, and which cache kind, tell calls apart."""

from __future__ import annotations

from pathlib import Path

import cascade as cs
from cascade.graph.build import build_graph


@cs.task(name="pid_inc")
def inc(x: int) -> int:
    return x + 1


def ids(target: object) -> tuple[str, str]:
    graph = build_graph(target)
    return graph.structural_id, graph.template_id


def test_a_cached_call_and_an_uncached_one_with_the_same_retry_differ() -> None:
    retried = ids(inc(1).with_retry(max_attempts=2))
    cached = ids(inc(1).with_retry(max_attempts=2).with_cache(cs.InMemoryCache()))
    assert retried[0] != cached[0] and retried[1] != cached[1]


def test_calls_cached_in_caches_of_different_kinds_differ(tmp_path: Path) -> None:
    in_memory = ids(inc(1).with_cache(cs.InMemoryCache()))
    on_disk = ids(inc(1).with_cache(cs.FileCache(tmp_path)))
    assert in_memory[0] != on_disk[0] and in_memory[1] != on_disk[1]
    assert in_memory == ids(inc(1).with_cache(cs.InMemoryCache()))  # the kind counts, not the instance
