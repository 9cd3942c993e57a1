"""Where node results and skips of a run are recorded when a state backend is configured.

Without a backend the executor keeps an iteration's results in local arrays and drops them when the
iteration ends. With one, each settled node is also written to it under
``(iteration, node position)``, and a finished iteration's entries are cleared when the next one
starts, so memory stays flat over long tail-call loops.
"""

from __future__ import annotations

from typing import Any, Hashable, Protocol, runtime_checkable

__all__ = ["InMemoryStateBackend", "StateBackend"]


@runtime_checkable
class StateBackend(Protocol):
    """The small protocol a state backend implements."""

    def put_result(self, run_id: str, key: Hashable, value: Any) -> None:
        """Record the value of node ``key`` of run ``run_id``."""
        ...

    def put_skip(self, run_id: str, key: Hashable, reason: str) -> None:
        """Record that node ``key`` of run ``run_id`` was skipped, and why."""
        ...

    def get_result(self, run_id: str, key: Hashable) -> Any:
        """The recorded value of node ``key``; raises ``KeyError`` when there is none."""
        ...

    def get_skip(self, run_id: str, key: Hashable) -> str | None:
        """The recorded skip reason of node ``key``, ``None`` when it was not skipped."""
        ...

    def clear(self, run_id: str) -> None:
        """Forget everything recorded for run ``run_id``."""
        ...


class InMemoryStateBackend:
    """Dictionaries per run id, in this process."""

    def __init__(self) -> None:
        self._results: dict[str, dict[Hashable, Any]] = {}
        self._skips: dict[str, dict[Hashable, str]] = {}

    def put_result(self, run_id: str, key: Hashable, value: Any) -> None:
        """Record the value of node ``key`` of run ``run_id``."""
        self._results.setdefault(run_id, {})[key] = value

    def put_skip(self, run_id: str, key: Hashable, reason: str) -> None:
        """Record that node ``key`` of run ``run_id`` was skipped, and why."""
        self._skips.setdefault(run_id, {})[key] = reason

    def get_result(self, run_id: str, key: Hashable) -> Any:
        """The recorded value; raises ``KeyError`` when there is none."""
        return self._results[run_id][key]

    def get_skip(self, run_id: str, key: Hashable) -> str | None:
        """The recorded skip reason of node ``key``, ``None`` when it was not skipped."""
        return self._skips.get(run_id, {}).get(key)

    def clear(self, run_id: str) -> None:
        """Forget everything recorded for run ``run_id``."""
        self._results.pop(run_id, None)
        self._skips.pop(run_id, None)

    def __len__(self) -> int:
        return sum(len(d) for d in self._results.values()) + sum(len(d) for d in self._skips.values())
