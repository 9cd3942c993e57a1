"""Keep the cyclic garbage collector from rescanning a graph while it is being built.

Building and compiling a graph allocates several container objects per node that all stay alive
until the build ends. CPython's collector runs a young-generation pass every 700 net allocations
and, every so often, a pass over everything older, so a 100,000-node build would walk its own
growing graph again and again (most of the time of a big one-shot run, and why it grew faster
than linearly). ``collector_paused()`` switches the collector off for the duration of such a
build; nothing a build allocates is cyclic garbage, so nothing is collected later than it would
have been, and the next regular pass after it sees the new objects once.

Safe by construction:

- the collector's state is restored on every exit (``finally``), exceptions included, and only
  when this module switched it off: a collector the application disabled stays disabled;
- pauses nest (one counter for every thread): the collector comes back when the outermost ends;
- nothing is frozen or moved between generations, so no object is kept or leaked.
"""

from __future__ import annotations

import gc
import threading
from types import TracebackType

__all__ = ["collector_paused"]

_lock = threading.Lock()
_depth = 0
_ours = False  # whether the outermost pause switched the collector off (so it switches it on)


class _Pause:
    __slots__ = ()

    def __enter__(self) -> None:
        global _depth, _ours
        with _lock:
            if _depth == 0 and gc.isenabled():
                gc.disable()
                _ours = True
            _depth += 1

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        global _depth, _ours
        with _lock:
            _depth -= 1
            if _depth == 0 and _ours:
                _ours = False
                gc.enable()


_PAUSE = _Pause()


def collector_paused() -> _Pause:
    """A context manager that keeps the cyclic garbage collector off while it is open (see the
    module docstring); it restores the collector's state however the block exits."""
    return _PAUSE
