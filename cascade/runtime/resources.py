"""Setting up and tearing down injected resources.

A run-scope resource is set up the first time a run needs it and torn down when the run ends; a
task-scope resource lives around one call. A resource may inject other resources (``cs.inject``
parameter defaults): :func:`dependency_order` puts them first, checked once per template at compile
time (unknown names, cycles, a run-scope resource injecting a task-scope one), so setup runs in
dependency order and teardown, last opened first, in reverse.

Teardown resumes the generator after its ``yield`` (an exception in the run is *not* thrown into
it: teardown code runs as after a normal exit) and always happens: the scopes are closed in
``finally`` blocks, also on failure and cancellation, and one failing teardown never stops the
others (:func:`teardown_all`). What a teardown error does then (:func:`_settle`):

- the call or run already failed (or was cancelled): that exception keeps propagating, unchanged in
  type, and each teardown error is attached to it: a note (``add_note``) naming the resource, and
  the exception itself appended to its ``cascade_teardown_errors`` list. Teardown errors met while
  a cancellation propagates are also logged (asyncio often replaces a cancelled Task's exception
  object with a fresh ``CancelledError``, so the notes may not reach the awaiter);
- only teardown failed: the first teardown error propagates, the later ones attached to it;
- a teardown that is itself cancelled (or raises another ``BaseException`` that is not an
  ``Exception``) wins over an ordinary exception: a cancellation is never turned into something else.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, Iterable

from ..errors import ResourceError
from ..spec.resource import Resource
from .events import MessageBus, ResourceAcquired, ResourceReleased

__all__ = [
    "CONSTANT", "TEARDOWN_ERRORS", "ResourceScope", "constant_resource", "dependency_order",
    "setup_resource", "teardown_all", "teardown_resource",
]

_log = logging.getLogger("cascade.resources")

# Attribute of a propagating exception that lists the teardown errors attached to it.
TEARDOWN_ERRORS = "cascade_teardown_errors"


def dependency_order(roots: Iterable[str], registry: dict[str, Resource]) -> list[str]:
    """``roots`` and every resource they inject, transitively, each after what it injects.

    The roots must be registered (the caller names the task in that error). Raises
    :class:`cascade.ResourceError` for a resource injecting an unknown one, for a cycle (naming
    the resources around it) and for a run-scope resource injecting a task-scope one.
    Iterative depth-first walk: grey names are on the current path, so meeting one is a cycle.
    """
    order: list[str] = []
    done: set[str] = set()
    for root in roots:
        if root in done:
            continue
        path = [root]
        stack = [iter(registry[root].injected)]
        on_path = {root}
        while stack:
            for param, dep in stack[-1]:
                owner = registry[path[-1]]
                if dep not in registry:
                    known = ", ".join(sorted(registry)) or "none registered"
                    raise ResourceError(
                        f"resource {owner.name!r} parameter {param!r} injects unknown resource "
                        f"{dep!r} (known: {known})"
                    )
                if owner.scope == "run" and registry[dep].scope == "task":
                    raise ResourceError(
                        f"run-scope resource {owner.name!r} (parameter {param!r}) cannot inject "
                        f"task-scope resource {dep!r}: it would outlive it. Make {owner.name!r} "
                        f"task-scope or {dep!r} run-scope"
                    )
                if dep in on_path:
                    cycle = path[path.index(dep):] + [dep]
                    raise ResourceError(f"resources inject each other in a cycle: {' -> '.join(cycle)}")
                if dep not in done:
                    path.append(dep)
                    on_path.add(dep)
                    stack.append(iter(registry[dep].injected))
                    break
            else:
                stack.pop()
                name = path.pop()
                on_path.discard(name)
                done.add(name)
                order.append(name)
    return order


async def setup_resource(res: Resource, deps: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """Run ``res`` up to its ``yield``; returns ``(generator, value)``.

    ``deps`` maps the resources ``res`` injects to their values (set up before it).
    """
    kwargs = {param: deps[name] for param, name in res.injected} if deps is not None and res.injected else {}
    gen = res.fn(**kwargs)
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


async def teardown_all(opened: list[Any], scope: str, primary: BaseException | None,
                       run_id: str, bus: MessageBus | None) -> None:
    """Tear down every ``(resource, generator)`` in ``opened``, last first, emptying the list (a
    bare name in it is a constant resource's: only its release is published).

    Every teardown runs whatever the others do. ``primary`` is the exception already propagating
    (``None`` if none); see the module docstring for what happens to teardown errors.
    """
    errors: list[tuple[str, BaseException]] = []
    while opened:
        item = opened.pop()
        if type(item) is str:  # the name of a constant resource (ResourceScope): nothing to undo
            if bus is not None and bus.active:
                bus.publish(ResourceReleased(run_id, item, scope))
            continue
        res, gen = item
        try:
            await teardown_resource(res, gen)
        except BaseException as exc:  # keep tearing the others down
            where = f"the teardown of {scope}-scope resource {res.name!r}"
            _note(exc, f"cascade: raised by {where}")
            errors.append((where, exc))
        if bus is not None and bus.active:
            bus.publish(ResourceReleased(run_id, res.name, scope))
    if errors:
        _settle(primary, errors)


def _settle(primary: BaseException | None, errors: list[tuple[str, BaseException]]) -> None:
    """Attach teardown ``errors`` to ``primary``, or raise the one that must propagate."""
    fatal = next((e for _, e in errors if not isinstance(e, Exception)), None)
    if primary is not None and (fatal is None or not isinstance(primary, Exception)):
        _attach(primary, errors)
        if not isinstance(primary, Exception):
            for where, err in errors:
                _log.error("%s failed while %r propagated", where, primary, exc_info=err)
        return
    head = fatal if fatal is not None else errors[0][1]
    _attach(head, [(w, e) for w, e in errors if e is not head])
    raise head


def _attach(target: BaseException, errors: list[tuple[str, BaseException]]) -> None:
    if not errors:
        return
    for where, err in errors:
        _note(target, f"cascade: {where} failed too: {err!r}")
    try:
        setattr(target, TEARDOWN_ERRORS, list(getattr(target, TEARDOWN_ERRORS, ())) + [e for _, e in errors])
    except (AttributeError, TypeError):  # an exception type that takes no attributes
        pass


def _note(exc: BaseException, note: str) -> None:
    try:
        exc.add_note(note)
    except (AttributeError, TypeError):
        pass


# Attribute of a run-scope resource's function marking it *constant*: calling the attribute's value
# gives the resource's value; nothing is opened and there is nothing to tear down (see
# :func:`constant_resource`).
CONSTANT = "__cascade_constant__"


def constant_resource(name: str, value: Callable[[], Any]) -> Resource:
    """A run-scope resource whose value is ``value()`` (something that outlives the run, such as
    the engine's connector).

    It is an ordinary generator resource (yield the value, no cleanup) for every code path; a run's
    :class:`ResourceScope` recognises it and keeps no generator and no teardown for it, while
    publishing the same ``ResourceAcquired``/``ResourceReleased`` events at the same points.
    """

    def provide() -> Any:
        yield value()

    setattr(provide, CONSTANT, value)
    provide.__name__ = provide.__qualname__ = name.replace(".", "_")
    return Resource(name, provide, "run")


class ResourceScope:
    """The run-scope resources of one run, opened on demand and closed in reverse order: the part
    of a run's :class:`~cascade.runtime.context.RunContext` that holds them (it is mixed in there,
    so a run costs no object of its own for it), reading the context's ``bus``, ``run_id`` and
    ``resources_registry``.

    ``values``: name -> value of every resource set up so far, in the order they were set up.
    Generator resources also keep their generator for the teardown; a constant one
    (:func:`constant_resource`) keeps nothing, but its release is still published.
    """

    __slots__ = ("values", "_gens", "_lock")
    bus: MessageBus
    run_id: str
    resources_registry: dict[str, Resource]
    # Set by the class that mixes this in (RunContext's __init__): {}, None, None at the start.
    values: dict[str, Any]
    _gens: dict[str, tuple[Resource, Any]] | None  # name -> (resource, generator)
    _lock: asyncio.Lock | None

    def busy(self) -> bool:
        """Whether another call of this run is setting resources up right now."""
        lock = self._lock
        return lock is not None and lock.locked()

    def must_close(self) -> bool:
        """Whether :meth:`close` has anything to do: a teardown, or a release to publish."""
        return bool(self._gens) or bool(self.values) and self.bus.active

    async def ensure(self, names: tuple[str, ...]) -> None:
        """Set up the run-scope resources ``names`` that are not set up yet, in the given order
        (compiled as :func:`dependency_order`, so what a resource injects is set up before it)."""
        missing = [n for n in names if n not in self.values]
        if not missing:
            return
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # two nodes of one run must not set one resource up twice
            for name in missing:
                if name in self.values:
                    continue
                res = self.resources_registry[name]
                if getattr(res.fn, CONSTANT, None) is not None:
                    self._constant(name, res)
                    continue
                gen, value = await setup_resource(res, self.values)
                self._opened(name, res, gen)
                self.values[name] = value
                self._acquired(name)

    def ensure_now(self, names: tuple[str, ...]) -> None:
        """:meth:`ensure` for resources that are all sync generators or constant, while no other
        call of the run sets any up (``not busy()``): nothing here can suspend, so no lock is
        needed (the sequential walker sets such resources up in place)."""
        values = self.values
        for name in names:
            if name in values:
                continue
            res = self.resources_registry[name]
            if getattr(res.fn, CONSTANT, None) is not None:
                self._constant(name, res)
                continue
            kwargs = {param: values[dep] for param, dep in res.injected} if res.injected else {}
            gen = res.fn(**kwargs)
            try:
                value = next(gen)
            except StopIteration:
                raise ResourceError(f"resource {res.name!r} finished without yielding a value") from None
            self._opened(name, res, gen)
            values[name] = value
            self._acquired(name)

    def _opened(self, name: str, res: Resource, gen: Any) -> None:
        gens = self._gens
        if gens is None:
            gens = self._gens = {}
        gens[name] = (res, gen)

    def _constant(self, name: str, res: Resource) -> None:
        self.values[name] = getattr(res.fn, CONSTANT)()
        self._acquired(name)

    def _acquired(self, name: str) -> None:
        if self.bus.active:
            self.bus.publish(ResourceAcquired(self.run_id, name, "run"))

    async def close(self, primary: BaseException | None = None) -> None:
        """Tear everything down, last opened first. ``primary``: the run's own exception, if it
        failed or was cancelled; teardown errors are attached to it, else the first one is raised."""
        gens = self._gens or {}
        opened: list[Any] = [gens.get(name, name) for name in self.values]  # a bare name: a constant
        self.values.clear()
        self._gens = None
        await teardown_all(opened, "run", primary, self.run_id, self.bus)
