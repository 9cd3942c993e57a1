"""Engine-wide constraints: shared capacities (``system_resources``), pauses and concurrency limits.

State: ``available`` per capacity name, a FIFO of waiters for capacity, the set of paused scopes and
per-task running counts. ``gating`` is True while any pause or limit is set; executors read only
that flag on their fast path and take the governed path (which waits here) when it is set.
Release always happens in ``finally`` blocks of the callers, so cancellation frees every slot.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

__all__ = ["ConstraintManager"]

_GLOBAL = "*"


def _scope(task: Any) -> str:
    if task is None:
        return _GLOBAL
    if isinstance(task, str):
        return task
    name = getattr(task, "name", None)
    if isinstance(name, str):
        return name
    raise TypeError(f"expected a task, a task name or None, got {task!r}")


class ConstraintManager:
    """Capacities, pauses and concurrency limits shared by every run of one engine."""

    def __init__(self, system_resources: dict[str, float] | None = None) -> None:
        caps = dict(system_resources or {})
        for name, amount in caps.items():
            if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount < 0:
                raise ValueError(f"system_resources[{name!r}] must be a number >= 0, got {amount!r}")
        self.capacity = caps
        self.available = dict(caps)
        self._waiters: deque[tuple[dict[str, float], asyncio.Future[None]]] = deque()
        self._paused: set[str] = set()
        self._limits: dict[str, int] = {}
        self._running: dict[str, int] = {}
        self._changed: asyncio.Event | None = None
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

    # -- pause and limits -------------------------------------------------------------------------
    def pause(self, task: Any = None) -> None:
        """Hold every call of ``task`` (a task or its name; ``None`` for all tasks) until resumed."""
        self._paused.add(_scope(task))
        self._update()

    def resume(self, task: Any = None) -> None:
        """Undo :meth:`pause` for ``task`` (``None`` for the global pause)."""
        self._paused.discard(_scope(task))
        self._update()

    def set_limit(self, task: Any, limit: int | None) -> None:
        """Run at most ``limit`` calls of ``task`` at once across all runs; ``None`` removes it."""
        scope = _scope(task)
        if limit is None:
            self._limits.pop(scope, None)
        elif isinstance(limit, int) and limit >= 1:
            self._limits[scope] = limit
        else:
            raise ValueError(f"concurrency limit for {scope!r} must be an int >= 1, got {limit!r}")
        self._update()

    def _update(self) -> None:
        self.gating = bool(self._paused or self._limits)
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def block_reason(self, task_name: str) -> str | None:
        """Why a call of ``task_name`` may not start now, or ``None``."""
        if _GLOBAL in self._paused or task_name in self._paused:
            return "paused"
        limit = self._limits.get(task_name)
        if limit is not None and self._running.get(task_name, 0) >= limit:
            return "concurrency_limit"
        return None

    async def enter(self, task_name: str) -> None:
        """Wait until ``task_name`` may start, then count it as running (pair with :meth:`leave`)."""
        while self.block_reason(task_name) is not None:
            if self._changed is None:
                self._changed = asyncio.Event()
            await self._changed.wait()
        self._running[task_name] = self._running.get(task_name, 0) + 1

    def leave(self, task_name: str) -> None:
        count = self._running.get(task_name, 0) - 1
        if count <= 0:
            self._running.pop(task_name, None)
        else:
            self._running[task_name] = count
        if task_name in self._limits:
            self._update()
