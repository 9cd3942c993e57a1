"""Engine counters a test can read (deterministic, unlike clocks)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["EngineStats"]


@dataclass(slots=True)
class EngineStats:
    """Counts since the engine was created: graphs built, plans solved, hot-plan cache use, tail calls."""

    graph_builds: int = 0
    plan_solves: int = 0
    hot_plan_hits: int = 0
    hot_plan_misses: int = 0
    tail_calls: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict."""
        return asdict(self)
