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
- no object is kept or leaked (see Promotion for the one move between generations).

Promotion: when a pause ends after a big build (``PROMOTE_AFTER`` or more net container
allocations), the collector would start with one young-generation pass over everything the build
allocated (measured: about 1 us per node of a 100,000-node run, a sixth of its time), then pass
over it again in the middle generation. Instead every tracked object is moved to the oldest
generation at once (``gc.freeze()`` then ``gc.unfreeze()``: two list moves, nothing traversed),
where the next full collection sees it, as it would have after the young passes. What this delays:
cyclic garbage that was young when the build ended (at most one young generation's worth) is
freed by the next full collection instead of the next young one. It is skipped when the
application has frozen objects itself (``gc.get_freeze_count()``: its permanent generation is left
alone) and when the application disabled the collector; small pauses (a loop's per-iteration
compile on the slow path) never promote, so the young passes keep running for them.
"""

from __future__ import annotations

import gc
import threading
from types import TracebackType

__all__ = ["collector_paused"]

PROMOTE_AFTER = 20_000  # net container allocations in a pause from which its objects are promoted
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
                if gc.get_count()[0] >= PROMOTE_AFTER and not gc.get_freeze_count():
                    gc.freeze()  # see "Promotion" in the module docstring
                    gc.unfreeze()
                gc.enable()


_PAUSE = _Pause()


def collector_paused() -> _Pause:
    """A context manager that keeps the cyclic garbage collector off while it is open (see the
    module docstring); it restores the collector's state however the block exits."""
    return _PAUSE
