"""Engine-wide constraints: shared capacities (``system_resources``), and the governance of calls by
scope: pauses, concurrency limits and rate limits, each with an optional time to live.

Capacities: ``available`` per capacity name and a FIFO of waiters (``acquire``/``release``).

Governance. A *scope* names a set of calls: ``"global"`` (every call) or ``"task:<glob>"`` (calls of
tasks whose name matches the ``fnmatch`` glob, case-sensitive). A constraint is one (scope, kind)
pair in force, kind being ``pause``, ``concurrency`` (at most N running at once) or ``rate`` (a token
bucket: ``rate`` tokens per second up to ``burst`` tokens, one token per call start; the bucket starts
full). Setting a (scope, kind) again replaces it; a rate limit never touches the concurrency limit of
its scope. A constraint with a TTL lapses by itself.

The hot-path contract: ``gating`` is True while any constraint is in force. Executors read only that
flag on their fast path; when it is set every call takes the governed path, which asks
:meth:`ConstraintManager.block_reason` (for ``TaskBlocked``) and awaits :meth:`ConstraintManager.enter`
before it starts and calls :meth:`ConstraintManager.leave` in a ``finally`` block when it ends. A
limit counts the calls that entered: a call already running when the limit was set (on the hot path,
where nothing was gating) finishes but is not counted.

Waiters. A call that may not start waits on a future of its own, in a FIFO per task name. A *pass*
grants waiters in arrival order (among the names whose first waiter may go) and sets each one's
future; it runs when something can unblock: a constraint removed, loosened or lapsed, a governed call
leaving a limited scope, a token arriving. Nothing is shared between waiters, so no wake-up can be
lost. Granting counts the call as running (and takes its token) at once, so nobody can take its slot
between the grant and its resumption; a pause set in between sends it back to wait. One timer
(``loop.call_later``) is armed at a time: for the next TTL and the next token a rate-held waiter needs.
Release always happens in ``finally`` blocks of the callers, so cancellation frees every slot.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
from collections import deque
from dataclasses import dataclass
from fnmatch import fnmatchcase
from heapq import heapify, heappop, heappush
from time import monotonic, time
from typing import Any

from ..spec.task import known_task_names
from .events import ConstraintChanged, MessageBus, StaticAnalysisWarning

__all__ = ["GLOBAL", "KINDS", "Constraint", "ConstraintManager", "parse_scope"]

_log = logging.getLogger("cascade.constraints")

GLOBAL = "global"
TASK_PREFIX = "task:"
KINDS = ("pause", "concurrency", "rate")
_REASONS = {"pause": "paused", "concurrency": "concurrency_limit", "rate": "rate_limit"}
_FORBIDDEN = frozenset("/+#")  # a scope is one MQTT topic level (cascade/constraints/<scope>/<kind>)


def _escape_glob(name: str) -> str:
    return name.replace("[", "[[]").replace("*", "[*]").replace("?", "[?]")


def parse_scope(scope: Any) -> str:
    """The canonical form of a scope: ``"global"`` or ``"task:<glob>"``.

    Accepts ``None`` or ``"global"`` (every task), ``"task:<glob>"``, a :class:`~cascade.Task`
    (exactly its name) and a bare name or glob (short for ``"task:<glob>"``). Raises ``ValueError`` for
    an empty glob, an unknown prefix (``"project:x"``) or a character that cannot be a topic level
    (``/``, ``+``, ``#``); ``TypeError`` for anything else.
    """
    if scope is None:
        return GLOBAL
    if isinstance(scope, str):
        if scope == GLOBAL:
            return GLOBAL
        if scope.startswith(TASK_PREFIX):
            glob = scope[len(TASK_PREFIX):]
        elif ":" in scope:
            raise ValueError(f"unknown scope {scope!r}: scopes are 'global' and 'task:<glob>'")
        else:
            glob = scope
        if not glob or not glob.strip():
            raise ValueError(f"scope {scope!r} has an empty task glob")
        bad = sorted(_FORBIDDEN.intersection(glob)) + [c for c in glob if ord(c) < 32]
        if bad:
            raise ValueError(f"scope {scope!r} contains {bad[0]!r}, which a scope may not contain")
        return TASK_PREFIX + glob
    name = getattr(scope, "name", None)
    if isinstance(name, str) and name:
        return TASK_PREFIX + _escape_glob(name)
    raise TypeError(f"expected a scope ('global', 'task:<glob>'), a task or a task name, got {scope!r}")


def _deadline(key: str, ttl: float | None, expires_at: float | None) -> float | None:
    """The monotonic deadline of a constraint from a TTL (seconds) or a wall-clock ``expires_at``."""
    if expires_at is not None:
        if isinstance(expires_at, bool) or not isinstance(expires_at, (int, float)) or not math.isfinite(expires_at):
            raise ValueError(f"expires_at for {key!r} must be a finite number (time.time() seconds), "
                             f"got {expires_at!r}")
        return monotonic() + (expires_at - time())
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not (math.isfinite(ttl) and ttl > 0):
        raise ValueError(f"ttl for {key!r} must be a finite number of seconds > 0, got {ttl!r}")
    return monotonic() + ttl


def _check(key: str, kind: str, value: Any, burst: Any) -> None:
    """Raise ``ValueError`` (naming the scope) unless ``value`` and ``burst`` suit ``kind``."""
    if kind not in KINDS:
        raise ValueError(f"unknown constraint kind {kind!r} for {key!r}; expected one of {', '.join(KINDS)}")
    if kind == "pause":
        if value is not None or burst is not None:
            raise ValueError(f"a pause of {key!r} takes no value")
    elif kind == "concurrency":
        if burst is not None:
            raise ValueError(f"a concurrency limit of {key!r} takes no burst")
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"concurrency limit for {key!r} must be an int >= 1, got {value!r}")
    else:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
            raise ValueError(f"rate limit for {key!r} must be a finite number > 0 (calls per second), got {value!r}")
        b = 1 if burst is None else burst
        if isinstance(b, bool) or not isinstance(b, int) or b < 1:
            raise ValueError(f"burst for {key!r} must be an int >= 1, got {burst!r}")


@dataclass(frozen=True, slots=True)
class Constraint:
    """One pause or limit in force, as :meth:`ConstraintManager.active` lists it.

    ``limit``: the concurrency limit; ``rate`` (starts per second) and ``burst``: the rate limit;
    ``expires_in``: seconds left (``None``: no TTL); ``source``: who set it (``"api"``, a topic).
    """

    scope: str
    kind: str
    limit: int | None = None
    rate: float | None = None
    burst: int | None = None
    expires_in: float | None = None
    source: str = "api"


class _Entry:
    """The mutable state of one constraint in force."""

    __slots__ = ("scope", "kind", "glob", "limit", "rate", "burst", "tokens", "stamp", "expires",
                 "running", "source", "born")

    def __init__(self, scope: str, kind: str) -> None:
        self.scope = scope
        self.kind = kind
        self.glob = None if scope == GLOBAL else scope[len(TASK_PREFIX):]
        self.limit: int | None = None
        self.rate: float | None = None
        self.burst: int | None = None
        self.tokens = 0.0
        self.stamp = 0.0
        self.expires: float | None = None
        self.running = 0  # concurrency: calls in this scope that entered and have not left
        self.source = "api"
        self.born = 0  # when it came into force, in the manager's sequence (grants are numbered in it too)

    def matches(self, name: str) -> bool:
        return self.glob is None or fnmatchcase(name, self.glob)

    def refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(float(self.burst or 1), self.tokens + (now - self.stamp) * (self.rate or 0.0))
            self.stamp = now

    def value(self) -> dict[str, Any]:
        if self.kind == "concurrency":
            return {"limit": self.limit}
        if self.kind == "rate":
            return {"rate": self.rate, "burst": self.burst}
        return {}

    def snapshot(self, now: float) -> Constraint:
        left = None if self.expires is None else max(0.0, self.expires - now)
        return Constraint(self.scope, self.kind, self.limit, self.rate, self.burst, left, self.source)


class ConstraintManager:
    """Capacities, pauses, concurrency and rate limits shared by every run of one engine.

    ``bus``: where constraint changes and unmatched scopes are reported (the engine passes its own).
    """

    def __init__(self, system_resources: dict[str, float] | None = None, *,
                 bus: MessageBus | None = None) -> None:
        caps = dict(system_resources or {})
        for name, amount in caps.items():
            if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount < 0:
                raise ValueError(f"system_resources[{name!r}] must be a number >= 0, got {amount!r}")
        self.capacity = caps
        self.available = dict(caps)
        self._waiters: deque[tuple[dict[str, float], asyncio.Future[None]]] = deque()
        self.bus = bus
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._applicable: dict[str, tuple[_Entry, ...]] = {}  # task name -> entries that match it
        self._running: dict[str, int] = {}  # task name -> calls that entered and have not left
        self._queues: dict[str, deque[tuple[int, asyncio.Future[int]]]] = {}
        self._dead: dict[str, int] = {}  # task name -> cancelled waiters left in its queue (see _bury)
        self._seq = itertools.count()
        self._next_expiry = math.inf
        self._timer: tuple[asyncio.AbstractEventLoop, float, asyncio.TimerHandle] | None = None
        self.gating = False

    # -- capacities -------------------------------------------------------------------------------
    def _fits(self, amounts: dict[str, float]) -> bool:
        return all(self.available[n] >= a for n, a in amounts.items())

    def try_acquire(self, amounts: dict[str, float]) -> bool:
        """Take ``amounts`` now if they are free and nobody waits ahead; never suspends."""
        if self._waiters or not self._fits(amounts):
            return False
        for n, a in amounts.items():
            self.available[n] -= a
        return True

    async def acquire(self, amounts: dict[str, float]) -> None:
        """Take ``amounts``, waiting in FIFO order until they are free."""
        if self.try_acquire(amounts):
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((amounts, fut))
        try:
            await fut
        except BaseException:
            if fut.done() and not fut.cancelled():
                self.release(amounts)  # granted, then cancelled before resuming: pass it on
            else:
                # Not granted. The entry is not removed here: a release in the same loop cycle
                # as the cancellation may already have dropped it (``_wake`` drops done futures).
                # Cancelling the future (a no-op when the cancellation did it, needed when the
                # coroutine is closed) marks the entry dead wherever it sits; ``_wake`` drops dead
                # entries at the head and grants the live waiters behind them that now fit.
                fut.cancel()
                self._wake()
                if len(self._waiters) > 32:  # a long queue behind a stuck head: drop the dead now
                    self._waiters = deque(w for w in self._waiters if not w[1].done())
            raise

    def release(self, amounts: dict[str, float]) -> None:
        """Give ``amounts`` back and grant waiters that now fit."""
        for n, a in amounts.items():
            self.available[n] += a
        self._wake()

    def _wake(self) -> None:
        # Invariant after every call: the queue is empty or its head is a live waiter that does
        # not fit. Dead entries (cancelled waiters) further back are dropped when they reach the head.
        while self._waiters:
            amounts, fut = self._waiters[0]
            if fut.done():
                self._waiters.popleft()
                continue
            if not self._fits(amounts):
                return
            self._waiters.popleft()
            for n, a in amounts.items():
                self.available[n] -= a
            fut.set_result(None)

    # -- governance: pause, concurrency and rate limits on scopes --------------------------------
    def pause(self, scope: Any = None, *, ttl: float | None = None, source: str = "api") -> None:
        """Hold every call in ``scope`` until :meth:`resume` (or until ``ttl`` seconds passed).

        ``scope``: ``"global"`` (or ``None``), ``"task:<glob>"``, a task (exactly that name) or a
        bare name/glob (short for ``"task:<name>"``). Raises ``ValueError`` for a malformed scope or
        TTL. A scope that matches no task defined so far is reported (see :meth:`set`).
        """
        self.set(scope, "pause", ttl=ttl, source=source)

    def resume(self, scope: Any = None) -> None:
        """Lift the pause on ``scope`` (``None``: the global pause); a no-op when there is none."""
        self.clear(scope, "pause")

    def limit(self, scope: Any, *, concurrency: int | None = None, rate: float | None = None,
              burst: int | None = None, ttl: float | None = None, source: str = "api") -> None:
        """Cap the calls in ``scope``: at most ``concurrency`` running at once, and/or at most
        ``rate`` starts per second (a token bucket of ``burst`` tokens, default 1, starting full).

        Each given kind replaces the previous one of that scope and kind; the kind not given is left
        as it is. ``ttl``: seconds until the limits set here lapse. Raises ``ValueError`` for bad
        numbers (naming the scope) and when neither ``concurrency`` nor ``rate`` is given.
        """
        if burst is not None and rate is None:
            raise ValueError(f"limit({scope!r}): burst=... needs rate=...")
        if concurrency is None and rate is None:
            raise ValueError(f"limit({scope!r}): give concurrency=..., rate=... or both")
        key = parse_scope(scope)
        if concurrency is not None:  # check both before setting either: all or nothing
            _check(key, "concurrency", concurrency, None)
        if rate is not None:
            _check(key, "rate", rate, burst)
        _deadline(key, ttl, None)
        if concurrency is not None:
            self.set(scope, "concurrency", concurrency, ttl=ttl, source=source)
        if rate is not None:
            self.set(scope, "rate", rate, burst=burst, ttl=ttl, source=source)

    def set_limit(self, task: Any, limit: int | None) -> None:
        """Run at most ``limit`` calls of ``task`` at once across all runs; ``None`` removes it."""
        if limit is None:
            self.clear(task, "concurrency")
        else:
            self.set(task, "concurrency", limit)

    def set(self, scope: Any, kind: str, value: float | None = None, *, burst: int | None = None,
            ttl: float | None = None, expires_at: float | None = None, source: str = "api") -> Constraint:
        """Put one constraint in force: ``kind`` is ``"pause"`` (no value), ``"concurrency"``
        (``value``: an int >= 1) or ``"rate"`` (``value``: starts per second > 0, ``burst``: an int
        >= 1). It replaces the constraint of the same scope and kind. ``ttl`` (seconds > 0) or
        ``expires_at`` (``time.time()`` seconds) makes it lapse by itself.

        A scope that matches no task defined so far is reported: logged as a warning and published
        as ``StaticAnalysisWarning(code="CS-W010")`` on the engine's bus; the constraint is kept
        (tasks may be defined later). Raises ``ValueError`` for anything malformed.
        """
        key = parse_scope(scope)
        _check(key, kind, value, burst)
        expires = _deadline(key, ttl, expires_at)
        if expires is not None and expires <= monotonic():  # lapsed already (a stale expires_at)
            self.clear(key, kind)
            return Constraint(key, kind, None, None, None, 0.0, source)
        entry = self._entries.get((key, kind))
        if entry is None:
            entry = _Entry(key, kind)
            entry.born = next(self._seq)
        if kind == "concurrency":
            entry.limit = value  # type: ignore[assignment]
        elif kind == "rate":
            b = 1 if burst is None else burst
            now = monotonic()
            if entry.rate is not None:  # keep the tokens it has (refilled at the old rate)
                entry.refill(now)
            else:
                entry.tokens = float(b)
            entry.stamp = now
            entry.rate = float(value)  # type: ignore[arg-type]  # _check: a finite number > 0
            entry.burst = b
            entry.tokens = min(entry.tokens, float(b))
        entry.expires = expires
        entry.source = source
        if (key, kind) not in self._entries:
            if kind == "concurrency":
                entry.running = sum(c for n, c in self._running.items() if entry.matches(n))
            self._entries[key, kind] = entry
            self._applicable.clear()
            self._check_known(key)
        self._changed(entry, cleared=False)
        return entry.snapshot(monotonic())

    def clear(self, scope: Any = None, kind: str | None = None) -> bool:
        """Remove the constraint of ``scope`` and ``kind`` (every kind when ``kind`` is None).
        Returns whether anything was in force. Raises ``ValueError`` for a malformed scope or kind."""
        key = parse_scope(scope)
        if kind is not None and kind not in KINDS:
            raise ValueError(f"unknown constraint kind {kind!r}; expected one of {', '.join(KINDS)}")
        found = False
        for k in KINDS if kind is None else (kind,):
            entry = self._entries.pop((key, k), None)
            if entry is not None:
                found = True
                self._applicable.clear()
                self._changed(entry, cleared=True)
        return found

    def clear_all(self) -> None:
        """Remove every pause and limit (capacities are not affected)."""
        for key, kind in list(self._entries):
            self.clear(key, kind)

    def active(self) -> list[Constraint]:
        """The pauses and limits in force now, sorted by scope and kind."""
        now = monotonic()
        self._expire(now)
        return sorted((e.snapshot(now) for e in self._entries.values()),
                      key=lambda c: (c.scope, KINDS.index(c.kind)))

    @property
    def waiting(self) -> int:
        """How many calls wait for a pause or limit right now."""
        return sum(1 for q in self._queues.values() for _, f in q if not f.done())

    def _changed(self, entry: _Entry, cleared: bool) -> None:
        self.gating = bool(self._entries)
        self._next_expiry = min((e.expires for e in self._entries.values() if e.expires is not None),
                                default=math.inf)
        if self.bus is not None and self.bus.active:
            self.bus.publish(ConstraintChanged("", entry.scope, entry.kind,
                                               None if cleared else entry.value(), entry.source))
        self._pass()

    def _check_known(self, key: str) -> None:
        if key == GLOBAL:
            return
        glob = key[len(TASK_PREFIX):]
        names = known_task_names()
        if any(fnmatchcase(n, glob) for n in names):
            return
        message = (f"constraint scope {key!r} matches no task defined so far; task scopes match the "
                   f"task's name (its function's __name__ or @cs.task(name=...)) with a glob")
        _log.warning(message)
        if self.bus is not None and self.bus.active:
            self.bus.publish(StaticAnalysisWarning("", "CS-W010", key, message))

    def _applicable_to(self, name: str) -> tuple[_Entry, ...]:
        found = self._applicable.get(name)
        if found is None:
            found = tuple(sorted((e for e in self._entries.values() if e.matches(name)),
                                 key=lambda e: KINDS.index(e.kind)))
            if len(self._applicable) > 4096:
                self._applicable.clear()
            self._applicable[name] = found
        return found

    def _blocker(self, name: str, now: float) -> _Entry | None:
        """The first constraint (pauses first) that keeps a call of ``name`` from starting now."""
        for e in self._applicable_to(name):
            if e.expires is not None and e.expires <= now:
                continue  # lapsed; removed by the next _expire
            kind = e.kind
            if kind == "pause":
                return e
            if kind == "concurrency":
                if e.running >= e.limit:  # type: ignore[operator]
                    return e
            else:
                e.refill(now)
                if e.tokens < 1.0:
                    return e
        return None

    def block_reason(self, task_name: str) -> str | None:
        """Why a call of ``task_name`` may not start now (``"paused"``, ``"concurrency_limit"``,
        ``"rate_limit"``), or ``None``."""
        now = monotonic()
        if now >= self._next_expiry:
            self._expire(now)
        if self._queues:
            self._pass(now)  # after a pass, a name with waiters left has its first one held back
        e = self._blocker(task_name, now)
        return None if e is None else _REASONS[e.kind]

    def _grant(self, name: str) -> None:
        self._running[name] = self._running.get(name, 0) + 1
        for e in self._applicable_to(name):
            if e.kind == "concurrency":
                e.running += 1
            elif e.kind == "rate":
                e.tokens -= 1.0

    def _ungrant(self, name: str, granted: int) -> None:
        """Undo a grant (numbered ``granted``) whose call never started (cancelled, or held back
        before it resumed): the tokens it took go back to the rate limits that were in force then."""
        for e in self._applicable_to(name):
            if e.kind == "rate" and e.born < granted:
                e.tokens = min(float(e.burst), e.tokens + 1.0)  # type: ignore[arg-type]
        self.leave(name)

    def _late_rates(self, name: str, granted: int, now: float) -> list[_Entry] | None:
        """The rate limits on ``name`` that came into force after its grant numbered ``granted``
        (the grant took no token from them), or ``None`` when one of them has no token now."""
        late = []
        for e in self._applicable_to(name):
            if e.kind == "rate" and e.born > granted and (e.expires is None or e.expires > now):
                e.refill(now)
                if e.tokens < 1.0:
                    return None
                late.append(e)
        return late

    async def enter(self, task_name: str) -> None:
        """Wait until a call of ``task_name`` may start, then count it as running (pair with
        :meth:`leave`). Does not suspend when nothing holds the call back, so a governed call takes
        the same event-loop cycles as an ungoverned one. Waiters of one task name are served first in,
        first out; each waits on a future of its own."""
        now = monotonic()
        if now >= self._next_expiry:
            self._expire(now)
        if self._queues:
            self._pass(now)  # earlier waiters that may go now go first
        while True:
            if not self._queues.get(task_name) and self._blocker(task_name, now) is None:
                self._grant(task_name)
                return
            fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            queue = self._queues.get(task_name)
            if queue is None:
                queue = self._queues[task_name] = deque()
            queue.append((next(self._seq), fut))
            self._schedule(now)
            try:
                granted = await fut
            except BaseException:
                if fut.done() and not fut.cancelled():
                    self._ungrant(task_name, fut.result())  # granted, then cancelled before resuming
                else:
                    fut.cancel()  # marks the entry dead; _pass drops it when it reaches the front
                    self._bury(task_name)
                raise
            # Between the grant and this resumption a pause may have been set, a concurrency limit
            # lowered below what is running, or a rate limit put in force (the grant took none of
            # its tokens): the call takes one now, or gives the grant back and waits again.
            now = monotonic()
            if not self._revoked(task_name, now) and (late := self._late_rates(task_name, granted, now)) is not None:
                for e in late:
                    e.tokens -= 1.0
                return
            self._ungrant(task_name, granted)

    def _bury(self, name: str) -> None:
        """Count a dead waiter of ``name``; once the dead are half of a long queue (waiters cancelled
        behind a held-back first one, which a pass never reaches), drop them all: memory stays
        bounded and each waiter is copied O(1) times on average."""
        dead = self._dead.get(name, 0) + 1
        queue = self._queues.get(name)
        if queue is None or dead * 2 <= max(len(queue), 32):
            self._dead[name] = dead
            return
        self._dead.pop(name, None)
        live = deque(w for w in queue if not w[1].done())
        if live:
            self._queues[name] = live
        else:
            del self._queues[name]

    def _revoked(self, name: str, now: float) -> bool:
        for e in self._applicable_to(name):
            if e.expires is not None and e.expires <= now:
                continue
            if e.kind == "pause" or (e.kind == "concurrency" and e.running > e.limit):  # type: ignore[operator]
                return True
        return False

    def leave(self, task_name: str) -> None:
        """Count a call of ``task_name`` that :meth:`enter` let start as finished."""
        count = self._running.get(task_name, 0) - 1
        if count <= 0:
            self._running.pop(task_name, None)
        else:
            self._running[task_name] = count
        limited = False
        for e in self._applicable_to(task_name):
            if e.kind == "concurrency" and e.running > 0:
                e.running -= 1
                limited = True
        if limited and self._queues:
            self._pass()

    def _pass(self, now: float | None = None) -> None:
        """Grant every waiter that may start now, oldest first across task names (FIFO per name).

        A heap holds each name's first live waiter by arrival. The oldest is granted if nothing
        holds its name back, and its name's next waiter joins the heap; a name held back leaves the
        heap for this pass: granting only takes slots and tokens (and ``now`` is fixed), so what is
        held back now stays held back until the pass ends. O(waiters granted x log names). Then
        the timer is armed.
        """
        queues = self._queues
        if not queues:
            self._schedule(now)
            return
        if now is None:
            now = monotonic()
        if now >= self._next_expiry:
            self._expire(now, wake=False)
        heap: list[tuple[int, str]] = []
        for name, queue in list(queues.items()):
            if self._live_head(name, queue):
                heap.append((queue[0][0], name))
        heapify(heap)
        while heap:
            _, name = heappop(heap)
            if self._blocker(name, now) is not None:
                continue
            queue = queues[name]
            _, fut = queue.popleft()
            self._grant(name)
            fut.set_result(next(self._seq))  # the grant's number (see _late_rates)
            if self._live_head(name, queue):
                heappush(heap, (queue[0][0], name))
        self._schedule(now)

    def _live_head(self, name: str, queue: deque[tuple[int, asyncio.Future[int]]]) -> bool:
        """Drop dead waiters (cancelled, or of an event loop that is gone) from the front of
        ``name``'s queue; forget the queue once empty. Whether a live waiter is left."""
        while queue and (queue[0][1].done() or queue[0][1].get_loop().is_closed()):
            queue.popleft()
        if not queue:
            del self._queues[name]
            self._dead.pop(name, None)
            return False
        return True

    def _expire(self, now: float, wake: bool = True) -> None:
        if now < self._next_expiry:
            return
        for key, entry in list(self._entries.items()):
            if entry.expires is not None and entry.expires <= now:
                del self._entries[key]
                self._applicable.clear()
                self.gating = bool(self._entries)
                if self.bus is not None and self.bus.active:
                    self.bus.publish(ConstraintChanged("", entry.scope, entry.kind, None, "ttl"))
        self._next_expiry = min((e.expires for e in self._entries.values() if e.expires is not None),
                                default=math.inf)
        if wake:
            self._pass(now)

    def _schedule(self, now: float | None = None) -> None:
        """Keep one timer armed for the next moment something may unblock by itself: a TTL lapsing
        (gating must drop even with nobody waiting) or a token arriving for a rate-held waiter."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: TTLs are checked lazily by the next enter/active
        if now is None:
            now = monotonic()
        due = self._next_expiry
        for name, queue in self._queues.items():
            if not queue:
                continue
            e = self._blocker(name, now)
            if e is not None and e.kind == "rate":
                due = min(due, now + (1.0 - e.tokens) / e.rate)  # type: ignore[operator]
        timer = self._timer
        if timer is not None:
            if timer[0] is loop and timer[1] <= due and not timer[2].cancelled():
                return
            timer[2].cancel()
            self._timer = None
        if due == math.inf:
            return
        handle = loop.call_later(max(0.0, due - now), self._on_timer)
        self._timer = (loop, due, handle)

    def _on_timer(self) -> None:
        self._timer = None
        now = monotonic()
        self._expire(now, wake=False)
        self._pass(now)
