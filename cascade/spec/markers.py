"""Argument markers resolved at run time: run params, environment variables, injected resources."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..errors import ParamError

__all__ = ["Env", "Inject", "Marker", "Param", "inject"]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


class Marker:
    """Base of the markers; a marker is part of a graph's shape, its run-time value is not."""

    __slots__ = ()

    @property
    def shape_key(self) -> tuple[Any, ...]:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Param(Marker):
    """Value of ``run(..., params={name: value})``.

    Missing with no default raises :class:`cascade.ParamError` before any task runs. ``type``, when
    given, converts the value (``type=int`` turns ``"3"`` into ``3``).
    """

    name: str
    default: Any = MISSING
    type: Any = None

    @property
    def shape_key(self) -> tuple[Any, ...]:
        """What of the marker is part of a template: the name, whether it has a default, the type."""
        return ("param", self.name, self.default is MISSING, getattr(self.type, "__qualname__", None))

    def resolve(self, params: dict[str, Any]) -> Any:
        """The value from ``params`` (converted by ``type``), else the default; raises
        :class:`cascade.ParamError` when it is missing or cannot be converted."""
        if self.name in params:
            value = params[self.name]
        elif self.default is not MISSING:
            return self.default
        else:
            given = f" (given: {', '.join(map(repr, params))})" if params else ""
            raise ParamError(f"missing param {self.name!r}: pass params={{{self.name!r}: ...}} to run(){given}")
        if self.type is not None and not isinstance(value, self.type):
            try:
                value = self.type(value)
            except (TypeError, ValueError) as exc:
                raise ParamError(
                    f"param {self.name!r}: cannot convert {value!r} to {self.type.__name__}: {exc}"
                ) from exc
        return value


@dataclass(frozen=True, slots=True)
class Env(Marker):
    """Value of the environment variable ``name`` when the run executes."""

    name: str
    default: Any = MISSING

    @property
    def shape_key(self) -> tuple[Any, ...]:
        """What of the marker is part of a template: the name and whether it has a default."""
        return ("env", self.name, self.default is MISSING)

    def resolve(self) -> Any:
        """The variable's value now, else the default; raises :class:`cascade.ParamError` when unset."""
        value = os.environ.get(self.name)
        if value is not None:
            return value
        if self.default is not MISSING:
            return self.default
        raise ParamError(f"environment variable {self.name!r} is not set and cs.Env gives no default")


@dataclass(frozen=True, slots=True)
class Inject(Marker):
    """Placeholder for a registered resource; see :func:`inject`."""

    name: str

    @property
    def shape_key(self) -> tuple[Any, ...]:
        return ("inject", self.name)


def inject(name: str) -> Any:
    """Mark a parameter default (or an argument value) to receive the resource ``name``."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"cs.inject() takes a resource name, got {name!r}")
    return Inject(name)
