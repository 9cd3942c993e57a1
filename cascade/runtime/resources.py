"""Setting up and tearing down injected resources.

A run-scope resource is set up the first time a run needs it and torn down when the run ends; a
task-scope resource lives around one call. Teardown resumes the generator after its ``yield`` (an
exception in the run is *not* thrown into it: teardown code runs as after a normal exit) and always
happens: the scopes are closed in ``finally`` blocks, also on failure and cancellation.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..errors import ResourceError
from ..spec.resource import Resource
from .events import MessageBus, ResourceAcquired, ResourceReleased

__all__ = ["ResourceScope", "setup_resource", "teardown_resource"]


async def setup_resource(res: Resource) -> tuple[Any, Any]:
    """Run ``res`` up to its ``yield``; returns ``(generator, value)``."""
    gen = res.fn()
    try:
        value = await gen.__anext__() if res.is_async else next(gen)
    except (StopIteration, StopAsyncIteration):
        raise ResourceError(f"resource {res.name!r} finished without yielding a value") from None
    return gen, value


async def teardown_resource(res: Resource, gen: Any) -> None:
    """Resume ``gen`` past its ``yield`` so its cleanup code runs."""
    try:
        if res.is_async:
            await gen.__anext__()
        else:
            next(gen)
    except (StopIteration, StopAsyncIteration):
        return
    raise ResourceError(f"resource {res.name!r} yielded more than once")


class ResourceScope:
    """The run-scope resources of one run, opened on demand and closed in reverse order."""

    def __init__(self, registry: dict[str, Resource], run_id: str, bus: MessageBus) -> None:
        self._registry = registry
        self._run_id = run_id
        self._bus = bus
        self.values: dict[str, Any] = {}
        self._open: list[tuple[Resource, Any]] = []
        self._lock: asyncio.Lock | None = None

    async def ensure(self, names: tuple[str, ...]) -> None:
        """Set up the run-scope resources ``names`` that are not set up yet."""
        missing = [n for n in names if n not in self.values]
        if not missing:
            return
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # two nodes of one run must not set one resource up twice
            for name in missing:
                if name in self.values:
                    continue
                res = self._registry[name]
                gen, value = await setup_resource(res)
                self._open.append((res, gen))
                self.values[name] = value
                if self._bus.active:
                    self._bus.publish(ResourceAcquired(self._run_id, name, "run"))

    async def close(self) -> None:
        """Tear everything down, last opened first; the first teardown error is raised at the end."""
        error: BaseException | None = None
        while self._open:
            res, gen = self._open.pop()
            self.values.pop(res.name, None)
            try:
                await teardown_resource(res, gen)
            except BaseException as exc:  # keep tearing the others down
                error = error or exc
            if self._bus.active:
                self._bus.publish(ResourceReleased(self._run_id, res.name, "run"))
        if error is not None:
            raise error
