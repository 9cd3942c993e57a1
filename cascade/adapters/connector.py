"""Connectors: publish/subscribe messaging between runs (and, through a broker, between processes).

A :class:`Connector` is the small protocol the engine and the messaging tasks (``cs.publish``,
``cs.recv``) talk to; :class:`InMemoryConnector` is the engine's default and the reference
implementation, the MQTT adapter implements the same protocol against a broker.

Topics follow MQTT: levels separated by ``/``; a subscription filter may use ``+`` (exactly one
level) and ``#`` (any number of levels, itself last, zero levels included: ``a/#`` matches ``a``).
Wildcards at the first level never match topics starting with ``$`` (MQTT's system topics).

Delivery policy of :class:`InMemoryConnector` (the part that makes thousands of subscribers safe):

- A *sync* handler is called inline by ``publish``, in subscription order, and must return at once
  (like an asyncio callback: set a future, append to a list). An exception it raises is logged and
  dropped; it never reaches the publisher or the other subscribers.
- An *async* handler (a coroutine function) gets a bounded queue of ``max_pending`` messages and one
  worker Task that awaits the handler for one message at a time. ``publish`` only appends to the
  queue. When the queue is full the **oldest** queued message is dropped (counted in
  ``Subscription.dropped``): a slow or stuck subscriber loses its backlog, the publisher and every
  other subscriber go on. The worker is started when a message arrives and ends when the queue is
  empty, so an idle subscription costs no Task.

So ``publish`` never awaits a subscriber. ``unsubscribe`` stops delivery at once: queued messages
are discarded and a running handler call is cancelled.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import os
import weakref
from collections import deque
from inspect import CO_COROUTINE
from threading import get_ident
from types import FunctionType
from typing import Any, Callable, NamedTuple, Protocol, runtime_checkable

__all__ = [
    "TIMED_OUT", "Connector", "InMemoryConnector", "Message", "Subscription", "topic_matches",
    "validate_filter", "validate_topic",
]

_log = logging.getLogger("cascade.connector")
_SPARE = 1024  # emptied per-topic sets an InMemoryConnector keeps for reuse
_message = tuple.__new__  # Message(...) without NamedTuple's Python-level __new__ (hot path)


class Message(NamedTuple):
    """One delivered message: its ``topic``, ``payload`` and whether it was a ``retained`` one."""

    topic: str
    payload: Any
    retained: bool = False


Handler = Callable[[Message], Any]


@runtime_checkable
class Subscription(Protocol):
    """The handle ``Connector.subscribe`` returns; ``await sub.unsubscribe()`` ends delivery."""

    topic: str

    async def unsubscribe(self) -> None:
        """Stop delivering to this subscription (idempotent)."""
        ...


@runtime_checkable
class Connector(Protocol):
    """What the engine needs from a messaging backend.

    ``subscribe(topic, handler)`` calls ``handler(message)`` with a :class:`Message` for every
    message published to a topic the filter ``topic`` matches (MQTT ``+``/``#`` wildcards), the
    retained ones first; ``publish(topic, payload, retain=False)`` sends ``payload``; with
    ``retain=True`` the broker keeps it for later subscribers (a retained ``None`` clears it).
    """

    async def connect(self) -> None:
        """Open the connection (a no-op for in-process connectors)."""
        ...

    async def disconnect(self) -> None:
        """Close the connection; every subscription ends."""
        ...

    async def publish(self, topic: str, payload: Any, retain: bool = False) -> None:
        """Send ``payload`` to every subscriber of ``topic``; never waits for a subscriber."""
        ...

    async def subscribe(self, topic: str, handler: Handler) -> Subscription:
        """Deliver messages matching the filter ``topic`` to ``handler`` until unsubscribed."""
        ...


def validate_topic(topic: Any) -> str:
    """Check a topic to publish to: a non-empty string without wildcards. Returns it."""
    if not isinstance(topic, str) or not topic:
        raise ValueError(f"a topic must be a non-empty string, got {topic!r}")
    if "+" in topic or "#" in topic:
        raise ValueError(f"cannot publish to {topic!r}: wildcards '+' and '#' are for subscriptions")
    return topic


def validate_filter(topic: Any) -> str:
    """Check a subscription filter: ``+`` fills a whole level, ``#`` is a whole last level."""
    if not isinstance(topic, str) or not topic:
        raise ValueError(f"a topic filter must be a non-empty string, got {topic!r}")
    levels = topic.split("/")
    for i, level in enumerate(levels):
        if ("+" in level or "#" in level) and len(level) > 1:
            raise ValueError(f"topic filter {topic!r}: a wildcard must be a whole level, got {level!r}")
        if level == "#" and i != len(levels) - 1:
            raise ValueError(f"topic filter {topic!r}: '#' must be the last level")
    return topic


def _match_levels(flt: list[str], levels: list[str]) -> bool:
    if flt[0] in ("+", "#") and levels[0].startswith("$"):
        return False
    n = len(levels)
    for i, f in enumerate(flt):
        if f == "#":
            return True
        if i >= n:
            return False
        if f != "+" and f != levels[i]:
            return False
    return len(flt) == n


def topic_matches(topic_filter: str, topic: str) -> bool:
    """Whether the MQTT filter ``topic_filter`` matches the concrete ``topic``."""
    return _match_levels(topic_filter.split("/"), topic.split("/"))


def _arm(fut: Any, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
    """Complete the listener ``fut`` with ``TIMED_OUT`` after ``timeout`` seconds unless a message
    comes first: the future is its timer's callback (no arguments tuple per listen)."""
    fut._timer = loop.call_at(loop.time() + timeout, fut, context=_TIMER_CONTEXT)


def _is_async(handler: Any) -> bool:
    if type(handler) is FunctionType:  # the common case, without inspect's unwrapping
        return bool(handler.__code__.co_flags & CO_COROUTINE)
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None)
    )


class BoundedDelivery:
    """The delivery policy every connector's subscriptions share (see the module docstring): a plain
    handler is called inline and its errors are logged; an async handler gets a queue of at most
    ``_max`` messages (the oldest dropped and counted in ``dropped``) drained by a Task that exists
    only while messages wait. Subclasses set ``topic``, ``handler``, ``active``, ``dropped``,
    ``_queue`` (``None`` for a plain handler), ``_worker`` and ``_max``."""

    __slots__ = ("topic", "handler", "active", "dropped", "_queue", "_worker", "_max")
    topic: str
    handler: Any
    active: bool
    dropped: int
    _queue: deque[Message] | None
    _worker: asyncio.Task[None] | None
    _max: int

    def _hand_over(self, msg: Message) -> None:
        queue = self._queue
        if queue is None:
            try:
                self.handler(msg)
            except Exception:
                _log.exception("subscriber of %r failed on a message to %r", self.topic, msg.topic)
            return
        if len(queue) >= self._max:
            queue.popleft()
            self.dropped += 1
        queue.append(msg)
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        queue = self._queue
        assert queue is not None
        try:
            while queue and self.active:
                msg = queue.popleft()
                try:
                    await self.handler(msg)
                except Exception:
                    _log.exception("subscriber of %r failed on a message to %r", self.topic, msg.topic)
        finally:
            self._worker = None


class InMemorySubscription(BoundedDelivery):
    """A subscription of an :class:`InMemoryConnector` (see the module's delivery policy).

    ``dropped`` counts messages discarded because this subscription's queue was full.
    """

    __slots__ = ("_owner", "_levels", "_future")

    def __init__(self, owner: InMemoryConnector, topic: str, handler: Handler, levels: list[str] | None,
                 is_async: bool, max_pending: int) -> None:
        self.topic = topic
        self.handler = handler
        self.active = True
        self.dropped = 0
        self._owner = owner
        self._levels = levels  # split filter for wildcard subscriptions, None for exact topics
        self._queue: deque[Message] | None = deque() if is_async else None
        self._worker: asyncio.Task[None] | None = None
        self._max = max_pending
        self._future: _Inbox | None = None  # a cs.recv listening on a filter (see _listen)

    def _deliver(self, msg: Message) -> None:
        fut = self._future
        if fut is not None:  # a one-shot listener: the first message completes its future
            fut._take(msg)  # an _Inbox: completes once, then leaves
            return
        self._hand_over(msg)

    async def unsubscribe(self) -> None:
        """Stop delivery now: discard queued messages, cancel a running handler call."""
        self._close()

    def _close(self) -> None:
        if not self.active:
            return
        self.active = False
        self._owner._remove(self)
        if self._queue is not None:
            self._queue.clear()
        worker = self._worker
        if worker is not None and worker is not asyncio.current_task():
            worker.cancel()

    def __repr__(self) -> str:
        state = "active" if self.active else "closed"
        return f"<InMemorySubscription {self.topic!r} {state}>"


_CONNECTORS: weakref.WeakSet[InMemoryConnector] = weakref.WeakSet()


def _forget_loops() -> None:
    """In a forked child: no connector's remembered loop runs there (its thread id may match)."""
    for connector in list(_CONNECTORS):
        connector._loop = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_loops)


class InMemoryConnector:
    """An in-process :class:`Connector`: every state (subscriptions, retained messages) is this
    instance's own, so two connectors never see each other's messages.

    ``max_pending`` bounds the queue of each async handler (drop-oldest; see the module docstring).
    ``connect()``/``disconnect()`` are optional: it delivers from creation on; ``disconnect()`` ends
    every subscription (retained messages are kept, as a broker keeps them).
    """

    def __init__(self, *, max_pending: int = 1000) -> None:
        if not isinstance(max_pending, int) or max_pending < 1:
            raise ValueError(f"InMemoryConnector(max_pending=...) must be an int >= 1, got {max_pending!r}")
        self.max_pending = max_pending
        self.connected = True
        # exact topic -> its subscribers in subscription order (a dict as an ordered set: O(1)
        # removal): subscriptions, and ``cs.recv`` listeners (an :class:`_Inbox` future each: no
        # subscription object per listen). Every entry has ``_deliver(message)``. The commonest
        # topic, an inbox with one listening ``cs.recv``, holds that _Inbox itself instead of a set.
        self._exact: dict[str, Any] = {}
        self._wild: dict[InMemorySubscription, None] = {}
        self._wild_listeners: dict[asyncio.Future[Any], InMemorySubscription] = {}  # cs.recv on a filter
        # Emptied per-topic sets, reused: an inbox that cs.recv subscribes to and leaves on every
        # iteration then allocates no dict per listen (fewer young objects for the GC to traverse).
        self._spare: list[dict[Any, None]] = []
        self._retained: dict[str, Any] = {}
        # The event loop of the last listen, while it runs in the listening thread (see _listen).
        self._loop: asyncio.AbstractEventLoop | None = None
        _CONNECTORS.add(self)

    async def connect(self) -> None:
        """Nothing to open; marks the connector connected."""
        self.connected = True

    async def disconnect(self) -> None:
        """End every subscription (their queued messages are dropped, running handlers cancelled)."""
        self.connected = False
        for topic, subs in list(self._exact.items()):
            for sub in ([subs] if type(subs) is _Inbox else list(subs)):
                if type(sub) is InMemorySubscription:
                    sub._close()
                else:  # a cs.recv listener: it no longer hears anything (it still times out)
                    self._unlisten_exact(topic, sub)
        for sub in list(self._wild):
            sub._close()

    async def publish(self, topic: str, payload: Any, retain: bool = False) -> None:
        """Deliver ``payload`` to every matching subscription; see the module's delivery policy.

        ``retain=True`` keeps it for future subscribers of ``topic`` (``payload=None`` clears the
        retained message instead). Raises ``ValueError`` for an empty topic or one with wildcards.
        """
        self.publish_nowait(topic, payload, retain)

    def publish_nowait(self, topic: str, payload: Any, retain: bool = False) -> None:
        """:meth:`publish` without the coroutine (it never waits anyway)."""
        if type(topic) is not str or not topic or "+" in topic or "#" in topic:
            validate_topic(topic)
        if retain:
            if payload is None:
                self._retained.pop(topic, None)
            else:
                self._retained[topic] = payload
        exact = self._exact.get(topic)
        if exact is not None:
            if type(exact) is _Inbox:  # one listening cs.recv
                if not exact.done():
                    exact._take(_message(Message, (topic, payload, False)))
            else:
                _deliver_all(exact, topic, payload)
        if self._wild:
            levels = topic.split("/")
            msg = _message(Message, (topic, payload, False))
            for sub in list(self._wild):
                if sub.active and _match_levels(sub._levels, levels):  # type: ignore[arg-type]
                    sub._deliver(msg)

    def _publish_each(self, topics: Any, payload: Any, retain: bool, checked: bool = False) -> None:
        """:meth:`publish_nowait` to each of ``topics`` in order (``cs.publish`` to a list), with
        the common case inline: an exact topic whose one subscriber is a ``cs.recv``. ``checked``:
        every topic is known to be valid (``cs.publish`` checked this tuple before)."""
        if retain or self._wild:
            for topic in topics:
                self.publish_nowait(topic, payload, retain)
            return
        exact_subs = self._exact
        for topic in topics:
            if not checked and (type(topic) is not str or not topic or "+" in topic or "#" in topic):
                self.publish_nowait(topic, payload, retain)  # raises
                continue
            subs = exact_subs.get(topic)
            if subs is None:
                continue
            if type(subs) is _Inbox:  # one listening cs.recv
                if not subs.done():
                    subs._take(_message(Message, (topic, payload, False)))
                continue
            _deliver_all(subs, topic, payload)

    async def subscribe(self, topic: str, handler: Handler, *, max_pending: int | None = None
                        ) -> InMemorySubscription:
        """Subscribe ``handler`` to the filter ``topic``; matching retained messages come first.

        ``handler(message)`` may be a plain function (called inline, must not block) or a
        coroutine function (queued, at most ``max_pending`` waiting, oldest dropped first).
        """
        return self.subscribe_nowait(topic, handler, max_pending=max_pending)

    def subscribe_nowait(self, topic: str, handler: Handler, *, max_pending: int | None = None
                         ) -> InMemorySubscription:
        """:meth:`subscribe` without the coroutine."""
        if not callable(handler):
            raise TypeError(f"subscribe({topic!r}, handler): handler must be callable, got {handler!r}")
        return self._add(topic, handler, _is_async(handler), max_pending, None)

    def _listen(self, topic: str, timeout: float | None = None) -> _Inbox:
        """A one-shot listener for ``cs.recv``: a future the first message to the filter ``topic``
        completes (a matching retained message at once), and which then leaves the topic, as it
        does when cancelled (:class:`_Inbox`); :meth:`_unlisten` ends it earlier. On an exact topic
        the future itself is the subscriber. With ``timeout`` (seconds), a listener still waiting
        then completes with :data:`TIMED_OUT`."""
        # asyncio.get_running_loop() makes a getpid() system call each time (a fork check); an
        # asyncio loop whose _thread_id is this thread's is the loop running here now (one loop
        # runs in a thread at a time; a forked child forgets it, see _forget_loops)
        loop = self._loop
        if loop is None or loop._thread_id != get_ident():  # type: ignore[attr-defined]
            loop = self._running_loop()
        fut = _Inbox(loop=loop)
        fut._timer = None
        if type(topic) is not str or not topic or "+" in topic or "#" in topic:
            # validates; a wildcard listens as a subscription
            fut._owner = None  # not registered yet (and a malformed filter raises in _add)
            self._wild_listeners[fut] = self._add(topic, None, False, None, fut)
            fut._owner, fut._topic = self, topic
            if fut.done():  # _add delivered a retained message: leave at once
                fut._leave()
            elif timeout is not None:
                _arm(fut, loop, timeout)
            return fut
        fut._owner, fut._topic = self, topic
        exact = self._exact
        subs = exact.get(topic)
        if subs is None:
            exact[topic] = fut
        else:
            if type(subs) is _Inbox:
                subs = exact[topic] = self._as_set(subs)
            subs[fut] = None
        if self._retained:
            payload = self._retained.get(topic)
            if payload is not None:
                fut._take(Message(topic, payload, True))
                return fut
        if timeout is not None:
            _arm(fut, loop, timeout)
        return fut

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        """The running loop (raises ``RuntimeError`` outside one), remembered when it is one of
        asyncio's own (its ``_thread_id`` is the running thread's, and None once it stops; other
        loops are asked for again on every listen)."""
        loop = asyncio.get_running_loop()
        self._loop = loop if isinstance(loop, asyncio.BaseEventLoop) else None
        return loop

    def _unlisten(self, topic: str, fut: asyncio.Future[Any]) -> None:
        """End a :meth:`_listen` (idempotent)."""
        sub = self._wild_listeners.pop(fut, None) if self._wild_listeners else None
        if sub is not None:
            sub._close()
        else:
            self._unlisten_exact(topic, fut)

    def _unlisten_exact(self, topic: str, fut: Any) -> None:
        subs = self._exact.get(topic)
        if type(subs) is _Inbox:
            if subs is fut:
                del self._exact[topic]
        elif subs is not None:
            subs.pop(fut, None)
            if not subs:
                self._drop(topic, subs)

    def _as_set(self, one: _Inbox) -> dict[Any, None]:
        subs = self._spare.pop() if self._spare else {}
        subs[one] = None
        return subs

    def _drop(self, topic: str, subs: dict[Any, None]) -> None:
        del self._exact[topic]
        if len(self._spare) < _SPARE:
            self._spare.append(subs)

    def _add(self, topic: str, handler: Any, is_async: bool, max_pending: int | None,
             fut: _Inbox | None) -> InMemorySubscription:
        wild = type(topic) is not str or "+" in topic or "#" in topic
        if wild or not topic:
            validate_filter(topic)
        levels = topic.split("/") if wild else None
        sub = InMemorySubscription(self, topic, handler, levels, is_async,
                                   self.max_pending if max_pending is None else max_pending)
        sub._future = fut
        if levels is None:
            subs = self._exact.get(topic)
            if subs is None:
                subs = self._exact[topic] = self._spare.pop() if self._spare else {}
            elif type(subs) is _Inbox:  # the inbox of a listening cs.recv
                subs = self._exact[topic] = self._as_set(subs)
            subs[sub] = None
            if self._retained:
                payload = self._retained.get(topic)
                if payload is not None:
                    sub._deliver(Message(topic, payload, True))
        else:
            self._wild[sub] = None
            for rtopic, payload in list(self._retained.items()):
                if not sub.active:
                    break
                if _match_levels(levels, rtopic.split("/")):
                    sub._deliver(Message(rtopic, payload, True))
        return sub

    def _remove(self, sub: InMemorySubscription) -> None:
        if sub._levels is None:
            subs = self._exact.get(sub.topic)
            if type(subs) is dict:
                subs.pop(sub, None)
                if not subs:
                    self._drop(sub.topic, subs)
        else:
            self._wild.pop(sub, None)

    @property
    def subscription_count(self) -> int:
        """How many subscriptions are active (exact and wildcard; a listening ``cs.recv`` is one)."""
        return sum(1 if type(s) is _Inbox else len(s) for s in self._exact.values()) + len(self._wild)

    def retained(self, topic: str) -> Any:
        """The payload retained on ``topic``, or ``None``."""
        return self._retained.get(topic)



class _TimedOut:
    """Type of :data:`TIMED_OUT` (one instance)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "cs.TIMED_OUT"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "TIMED_OUT"


TIMED_OUT: Any = _TimedOut()
"""What ``cs.recv(topic, timeout=...)`` returns when no message came in time (falsy); defined here,
beside the listening future that completes with it, and exported as ``cs.TIMED_OUT``."""


# A listener's timer reads no context variable (here and in cs.recv on other connectors): one
# shared empty context spares call_at a copy_context() (and a GC-tracked object) per listen.
_TIMER_CONTEXT = contextvars.Context()


class _Inbox(asyncio.Future[Any]):
    """The future of a listening ``cs.recv``, itself the subscriber of its exact topic: the first
    message completes it and it leaves its topic at once (with its timer, if any), as it does when
    it is cancelled. ``cs.recv`` is this future, awaited by the engine: no coroutine per listen."""

    __slots__ = ("_owner", "_topic", "_timer")
    _owner: InMemoryConnector | None  # None once it has left (or before it is registered)
    _topic: str
    _timer: asyncio.TimerHandle | None  # its timeout, set by cs.recv

    def _take(self, msg: Any) -> None:
        """Complete with ``msg`` (a message, or ``cs.TIMED_OUT`` from the timer) and leave; a
        listener that already has its message ignores later ones."""
        if not self.done():
            self.set_result(msg)
            self._leave()

    _deliver = _take  # as a subscriber of its topic

    def __call__(self) -> None:
        """Its timer's callback: time out (the future itself is the callback, so a timed listen
        allocates no arguments tuple). A timer that fired has nothing left to cancel."""
        self._timer = None
        self._take(TIMED_OUT)

    def cancel(self, msg: Any = None) -> bool:
        """Cancel (the awaiting run was cancelled) and leave the topic."""
        if not super().cancel(msg):
            return False
        self._leave()
        return True

    def _leave(self) -> None:
        owner = self._owner
        if owner is not None:
            self._owner = None
            timer = self._timer
            if timer is not None:
                self._timer = None
                timer.cancel()
            if owner._wild_listeners:
                owner._unlisten(self._topic, self)
            elif owner._exact.get(self._topic) is self:  # the common case, _unlisten_exact's first
                del owner._exact[self._topic]
            else:
                owner._unlisten_exact(self._topic, self)


def _deliver_all(subs: Any, topic: str, payload: Any) -> None:
    """Deliver a message to one exact topic's subscribers in subscription order (over a copy: a
    handler may subscribe or unsubscribe); a listening ``cs.recv`` takes the first message it gets."""
    if len(subs) == 1:  # the common case (an inbox): no copy of the set
        sub = next(iter(subs))
        if type(sub) is _Inbox:
            if not sub.done():  # no message object for a listener that already has one
                sub._take(_message(Message, (topic, payload, False)))
        elif sub.active:
            sub._deliver(_message(Message, (topic, payload, False)))
        return
    msg = _message(Message, (topic, payload, False))
    for sub in tuple(subs):
        if type(sub) is _Inbox:
            sub._take(msg)
        elif sub.active:
            sub._deliver(msg)
