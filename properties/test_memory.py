"""Invariant 6 (nightly): flat memory. A long tail-call loop of stable shape runs in bounded memory
(traced allocations do not grow after warm-up) and constant stack depth."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
import tracemalloc
from typing import Any

import pytest
from hypothesis import given

from .builder import Built, Recorder, make_engine, run_recorded
from .model import Workflow
from .profiles import PROFILE, ci_settings
from .strategies import stable_workflows

ITERATIONS = int(os.environ.get("CASCADE_PROPERTIES_ITERATIONS", 1_000_000 if PROFILE == "nightly" else 50_000))
GROWTH_LIMIT = 512 * 1024  # bytes of traced memory allowed to appear after warm-up


def _depth() -> int:
    f: Any = sys._getframe()
    d = 0
    while f is not None:
        d += 1
        f = f.f_back
    return d


@pytest.mark.nightly
@ci_settings(3)
@given(stable_workflows(max_start=0, max_nodes=4, extras=False))
def test_flat_memory_over_long_loops(wf: Workflow) -> None:
    wf = dataclasses.replace(wf, start=ITERATIONS)
    built = Built(wf)
    rec = Recorder(keep_calls=False)
    samples: list[tuple[int, int]] = []
    every = max(ITERATIONS // 50, 1)

    def probe(n: int) -> None:
        if n % every == 0:
            samples.append((tracemalloc.get_traced_memory()[0], _depth()))

    rec.probe = probe
    engine = make_engine(True)
    tracemalloc.start()
    try:
        out = asyncio.run(run_recorded(engine, built.target(), rec))
    finally:
        tracemalloc.stop()
    assert out[0] == "ok", out
    assert engine.stats.hot_plan_hits >= ITERATIONS - 2, engine.stats
    steady = samples[len(samples) // 5:]  # after warm-up
    mem = [m for m, _ in steady]
    assert max(mem) - min(mem) <= GROWTH_LIMIT, f"memory grew by {max(mem) - min(mem)} bytes over the loop"
    # constant stack depth: a step may run inline or in a Task, but depth must not grow with n
    half = len(samples) // 2
    early, late = [d for _, d in samples[:half]], [d for _, d in samples[half:]]
    assert max(late) <= max(early), f"stack depth grows: early {sorted(set(early))}, late {sorted(set(late))}"
