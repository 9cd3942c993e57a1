"""Everything that belongs to one run, and nothing that belongs to the engine.

Runs on a shared engine never see each other's context; the engine keeps only what is meant to be
shared (compiled programs, constraints, the bus, counters).
"""

from __future__ import annotations

from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from .constraints import ConstraintManager
from .events import MessageBus
from .resources import ResourceScope
from .state import StateBackend

if TYPE_CHECKING:
    from ..spec.resource import Resource

__all__ = ["RunContext"]


class RunContext:
    """Per-run state: id, params, run-scope resources, the iteration counter."""

    __slots__ = (
        "run_id", "params", "bus", "constraints", "resources", "resources_registry", "state",
        "iteration", "evaluate", "thread_executor",
    )

    def __init__(self, run_id: str, params: dict[str, Any], bus: MessageBus,
                 constraints: ConstraintManager, registry: dict[str, Resource],
                 state: StateBackend | None, thread_executor: Executor | None,
                 evaluate: Callable[[Any, RunContext], Awaitable[Any]]) -> None:
        self.run_id = run_id
        self.params = params
        self.bus = bus
        self.constraints = constraints
        self.resources_registry = registry
        self.resources = ResourceScope(registry, run_id, bus)
        self.state = state
        self.iteration = 0
        self.thread_executor = thread_executor
        self.evaluate: Callable[[Any], Awaitable[Any]] = lambda target: evaluate(target, self)
