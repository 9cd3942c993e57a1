"""``@cs.resource``: generator-based dependency injection with guaranteed teardown."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

from .task import injected_params

__all__ = ["Resource", "resource"]

_SCOPES = ("run", "task")


@dataclass(frozen=True, slots=True)
class Resource:
    """A registered provider: ``fn`` is a generator (or async generator) that yields the value once.

    ``scope="run"`` sets it up once per run and tears it down when the run ends; ``scope="task"``
    sets it up around every call that injects it. Teardown (the code after ``yield``) always runs,
    also when the run fails or is cancelled.

    A resource may use other resources through ``cs.inject(name)`` parameter defaults, as a task
    does; ``injected`` lists them as ``(parameter, resource)``. They are set up before it and torn
    down after it. A run-scope resource cannot inject a task-scope one.
    """

    name: str
    fn: Callable[..., Any]
    scope: str = "run"
    injected: tuple[tuple[str, str], ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "injected", injected_params(self.fn))

    @property
    def is_async(self) -> bool:
        """Whether the resource's function is an async generator."""
        return inspect.isasyncgenfunction(self.fn)


def resource(fn: Any = None, /, *, name: str | None = None, scope: str = "run") -> Any:
    """Declare a resource: ``@cs.resource`` or ``@cs.resource(name=None, scope="run"|"task")``.

    Raises ``ValueError`` for an unknown scope, ``TypeError`` for a function that is not a
    generator or has a parameter without a default (parameters take ``cs.inject(...)`` defaults).
    """
    if scope not in _SCOPES:
        raise ValueError(f"@cs.resource(scope=...) must be 'run' or 'task', got {scope!r}")

    def wrap(f: Callable[..., Any]) -> Resource:
        if not (inspect.isgeneratorfunction(f) or inspect.isasyncgenfunction(f)):
            raise TypeError(
                f"@cs.resource needs a generator function (one that yields its value), got {f!r}"
            )
        res_name = name or f.__name__
        for p in inspect.signature(f).parameters.values():
            if p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise TypeError(
                    f"resource {res_name!r} parameter {p.name!r} has no default: a resource's "
                    "parameters are filled only from cs.inject(...) defaults"
                )
        return Resource(res_name, f, scope)

    return wrap if fn is None else wrap(fn)
