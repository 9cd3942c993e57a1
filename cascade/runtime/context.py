"""Everything that belongs to one run, and nothing that belongs to the engine.

Runs on a shared engine never see each other's context; the engine keeps only what is meant to be
shared (compiled programs, constraints, the bus, counters).

A run pays only for what it uses: its id text is made the first time something reads it (an
event, a state backend), its run-scope resources live in the context itself (no scope object;
teardown bookkeeping only once a generator resource is opened), and the context refers to no
function of its own (no closure per run, and no reference cycle: a finished run's context is freed
at once, without the cyclic collector).
"""

from __future__ import annotations

import itertools
import os
from typing import TYPE_CHECKING, Any, Awaitable

from .resources import ResourceScope

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from ..spec.resource import Resource
    from .engine import Engine

__all__ = ["RunContext"]

_run_numbers = itertools.count(1)
_pid = os.getpid()


class RunContext(ResourceScope):
    """Per-run state: id, params, run-scope resources (a :class:`ResourceScope`: the context is
    its own scope, ``ctx.resources is ctx``), the iteration counter.

    ``bus``, ``constraints`` and ``state`` (the engine's state backend) are copied here for the
    executors' direct reads; ``resources_registry`` and ``thread_executor`` are read from the
    engine (rarer paths: setting up a resource, an offloaded call).
    """

    __slots__ = ("engine", "_run_id", "params", "bus", "constraints", "state", "iteration")

    def __init__(self, engine: Engine, params: dict[str, Any]) -> None:
        self.engine = engine
        self._run_id: str | None = None
        self.params = params
        self.bus = engine.bus
        self.constraints = engine.constraints
        self.state = engine.state_backend
        self.iteration = 0
        self.values = {}
        self._gens = None
        self._lock = None

    @property
    def resources_registry(self) -> dict[str, Resource]:  # type: ignore[override]
        """The engine's registered resources, by name."""
        return self.engine._resources

    @property
    def thread_executor(self) -> Executor | None:
        """The engine's executor for ``offload=True`` tasks (``None``: the loop's default)."""
        return self.engine.executor

    @property
    def run_id(self) -> str:  # type: ignore[override]
        """``run-<pid>-<n>``: unique per run in this process (``n`` numbers the process's runs in the
        order their ids were first needed)."""
        run_id = self._run_id
        if run_id is None:
            run_id = self._run_id = f"run-{_pid}-{next(_run_numbers)}"
        return run_id

    @property
    def resources(self) -> ResourceScope:
        """The run's run-scope resources: the context itself."""
        return self

    def evaluate(self, target: Any) -> Awaitable[Any]:
        """The tail-call loop for a lazy result returned by a non-target call of this run."""
        return drive(self.engine, target, None, self)


from .loop import drive  # noqa: E402  (loop's types import this module's only when type checking)
