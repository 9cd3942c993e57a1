"""Binding a new iteration to a cached program: the heart of the hot path.

The engine found a program under the target's ``_shape`` (a Merkle hash of the template built
incrementally as lazy results were created). Binding fetches every node's lazy object straight from
the target along the program's extraction paths, checks that each has the shape and calls the task
the program expects and that sharing matches (edges the template shares are shared now, and no two
nodes are now one object), and returns the objects in plan order. The executors read literal
arguments from these objects, so nothing is rebuilt, solved or hashed. Any mismatch returns ``None``
and the engine takes the slow path.
"""

from __future__ import annotations

from typing import Any

from ..spec.lazy import DEPS, SHAPE, TASK, LazyResult
from .program import Program

__all__ = ["bind"]


def bind(prog: Program, target: Any, into: list[Any] | None = None) -> list[Any] | None:
    """The lazy objects of ``target``'s iteration in ``prog``'s plan order, or ``None`` on mismatch.

    ``into``: a list of the caller's to fill when it has the program's length and every node has
    an extraction path (then every slot is written; on a mismatch it is left partly filled), else a
    new list is made.
    """
    n = len(prog.steps)
    if into is not None and len(into) == n and len(prog.extract) == n - 1:
        objs = into
    else:
        objs = [None] * n
    objs[n - 1] = target
    shapes = prog.shapes
    tasks = prog.tasks
    try:
        if prog.calls_only:  # every node is a LazyResult: plain tuple indexing, no type checks
            if target[TASK] is not tasks[n - 1]:
                return None
            for p, parent, i in prog.extract:
                o = objs[parent][i] if i > 0 else objs[parent][DEPS][~i]
                if o[SHAPE] != shapes[p] or o[TASK] is not tasks[p]:
                    return None
                objs[p] = o
        else:
            if type(target) is LazyResult and target[TASK] is not tasks[n - 1]:
                return None
            for p, parent, i in prog.extract:
                o = objs[parent][i] if i > 0 else objs[parent]._deps[~i]
                if o._shape != shapes[p] or (type(o) is LazyResult and o[TASK] is not tasks[p]):
                    return None
                objs[p] = o
    except (IndexError, AttributeError, TypeError):  # only on a hash collision between shapes
        return None
    for c, slot, p in prog.shared:
        if objs[c]._deps[slot] is not objs[p]:
            return None
    # Two nodes of the template must not be one object now (that would be a different graph). One
    # object has one shape, so only nodes of equal shape can collide: the program lists them.
    for group in prog.twins:
        if len({id(objs[p]) for p in group}) != len(group):
            return None
    return objs
