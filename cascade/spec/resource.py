"""``@cs.resource``: generator-based dependency injection with guaranteed teardown."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["Resource", "resource"]

_SCOPES = ("run", "task")


@dataclass(frozen=True, slots=True)
class Resource:
    """A registered provider: ``fn`` is a generator (or async generator) that yields the value once.

    ``scope="run"`` sets it up once per run and tears it down when the run ends; ``scope="task"``
    sets it up around every call that injects it. Teardown (the code after ``yield``) always runs,
    also when the run fails or is cancelled.
    """

    name: str
    fn: Callable[..., Any]
    scope: str = "run"

    @property
    def is_async(self) -> bool:
        return inspect.isasyncgenfunction(self.fn)


def resource(fn: Any = None, /, *, name: str | None = None, scope: str = "run") -> Any:
    """Declare a resource: ``@cs.resource`` or ``@cs.resource(name=None, scope="run"|"task")``."""
    if scope not in _SCOPES:
        raise ValueError(f"@cs.resource(scope=...) must be 'run' or 'task', got {scope!r}")

    def wrap(f: Callable[..., Any]) -> Resource:
        if not (inspect.isgeneratorfunction(f) or inspect.isasyncgenfunction(f)):
            raise TypeError(
                f"@cs.resource needs a generator function (one that yields its value), got {f!r}"
            )
        return Resource(name or f.__name__, f, scope)

    return wrap if fn is None else wrap(fn)
