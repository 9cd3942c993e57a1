"""Invariant 6 (nightly): flat memory. A long tail-call loop of stable shape runs in bounded memory
(allocated memory blocks do not grow after warm-up) and constant stack depth."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import os
import sys
from typing import Any

import pytest
from hypothesis import Phase, given, settings

from .builder import Built, Recorder, make_engine, run_recorded
from .model import Body, Workflow
from .profiles import PROFILE
from .strategies import stable_workflows

ITERATIONS = int(os.environ.get("CASCADE_PROPERTIES_ITERATIONS", 1_000_000 if PROFILE == "nightly" else 50_000))
GROWTH_LIMIT = 2000  # allocated memory blocks (sys.getallocatedblocks) allowed to appear after warm-up


def _depth() -> int:
    f: Any = sys._getframe()
    d = 0
    while f is not None:
        d += 1
        f = f.f_back
    return d


def _without_shape_changes(wf: Workflow) -> Workflow:
    loops = tuple(dataclasses.replace(lp, bodies=tuple(
        Body(tuple(dataclasses.replace(nd, map_extra=0) for nd in b.nodes)) for b in lp.bodies)) for lp in wf.loops)
    return dataclasses.replace(wf, loops=loops)


@pytest.mark.nightly
@settings(max_examples=3, phases=(Phase.explicit, Phase.generate))  # each example is a long loop
@given(stable_workflows(max_start=0, max_nodes=4, extras=False))
def test_flat_memory_over_long_loops(wf: Workflow) -> None:
    wf = _without_shape_changes(dataclasses.replace(wf, start=ITERATIONS))
    built = Built(wf)
    rec = Recorder(keep_calls=False)
    samples: list[tuple[int, int]] = []
    every = max(ITERATIONS // 50, 1)

    def probe(n: int) -> None:
        if n % every == 0:
            gc.collect()
            samples.append((sys.getallocatedblocks(), _depth()))

    rec.probe = probe
    engine = make_engine(True)
    out = asyncio.run(run_recorded(engine, built.target(), rec))
    assert out[0] == "ok", out
    assert engine.stats.hot_plan_misses <= 8, engine.stats  # the loop ran on the hot path
    steady = samples[len(samples) // 5:]  # after warm-up
    mem = [m for m, _ in steady]
    assert max(mem) - min(mem) <= GROWTH_LIMIT, f"allocated blocks grew by {max(mem) - min(mem)} over the loop: {mem}"
    # constant stack depth: a step may run inline or in a Task, but depth must not grow with n
    half = len(samples) // 2
    early, late = [d for _, d in samples[:half]], [d for _, d in samples[half:]]
    assert max(late) <= max(early), f"stack depth grows: early {sorted(set(early))}, late {sorted(set(late))}"
