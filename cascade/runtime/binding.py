"""Binding a new iteration to a cached program: the heart of the hot path.

The engine found a program under the target's ``_shape`` (a Merkle hash of the template built
incrementally as lazy results were created). Binding fetches every node's lazy object straight from
the target along the program's extraction paths, checks that each has the shape the program expects
and that sharing matches (edges the template shares are shared now, and no two nodes are now one
object), and returns the objects in plan order. The executors read literal arguments from these
objects, so nothing is rebuilt, solved or hashed. Any mismatch returns ``None`` and the engine takes
the slow path.
"""

from __future__ import annotations

from typing import Any

from ..spec.lazy import DEPS, SHAPE, LazyResult
from .program import Program

__all__ = ["bind"]


def bind(prog: Program, target: Any) -> list[Any] | None:
    """The lazy objects of ``target``'s iteration in ``prog``'s plan order, or ``None`` on mismatch."""
    n = len(prog.steps)
    if n == 1:
        return [target]  # the target's shape matched the program's: nothing else to fetch
    objs: list[Any] = [None] * n
    objs[n - 1] = target
    shapes = prog.shapes
    try:
        for p, parent, slot in prog.extract:
            o = objs[parent][DEPS][slot] if type(objs[parent]) is LazyResult else objs[parent]._deps[slot]
            if (o[SHAPE] if type(o) is LazyResult else o._shape) != shapes[p]:
                return None
            objs[p] = o
    except (IndexError, AttributeError):  # only on a hash collision between different shapes
        return None
    for c, slot, p in prog.shared:
        if objs[c]._deps[slot] is not objs[p]:
            return None
    if len(set(map(id, objs))) != n:
        return None  # two nodes of the template are one object now: a different graph
    return objs
