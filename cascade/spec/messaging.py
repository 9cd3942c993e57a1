"""Messaging tasks: ``cs.wait``, ``cs.recv`` and ``cs.publish``.

They are ordinary tasks (they run on hot plans like any other) whose connector is the engine's
(:attr:`cascade.Engine.connector`), injected as the run-scope resource ``"cascade.connector"``.

``cs.recv`` on timeout returns the sentinel :data:`TIMED_OUT` instead of raising: an exception in a
task fails its run, and an agent loop that listens with a timeout must be able to go on (a task
downstream checks ``msg is cs.TIMED_OUT``). ``TIMED_OUT`` is falsy, a received message is not.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ..adapters.connector import _TIMER_CONTEXT, TIMED_OUT, InMemoryConnector, validate_filter
from ..runtime.resources import constant_resource
from .lazy import LazyResult, literal_call2, literal_shape
from .markers import Marker, inject
from .resource import Resource
from .task import task

if TYPE_CHECKING:
    from ..runtime.engine import Engine

__all__ = ["CONNECTOR_RESOURCE", "TIMED_OUT", "connector_resource", "publish", "recv", "wait"]

CONNECTOR_RESOURCE = "cascade.connector"
_CONNECTOR = inject(CONNECTOR_RESOURCE)


def connector_resource(engine: Engine) -> Resource:
    """The run-scope resource that hands ``engine.connector`` to messaging tasks: a constant one
    (the connector's lifetime is the engine's, not the run's), so a run keeps no generator for it."""
    return constant_resource(CONNECTOR_RESOURCE, lambda: engine.connector)


def _check_seconds(where: str, value: Any, none_ok: bool) -> None:
    if type(value) is float and value >= 0.0 or value is None and none_ok:  # the common cases first
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        allowed = "a number >= 0 or None" if none_ok else "a number >= 0"
        raise ValueError(f"{where} must be {allowed}, got {value!r}")


def _check_topic(where: str, topic: Any, wildcards: bool) -> None:
    if type(topic) is not str or not topic:
        raise ValueError(f"{where} must be a non-empty string, got {topic!r}")
    if not wildcards and ("+" in topic or "#" in topic):
        raise ValueError(f"{where}: cannot publish to {topic!r}, wildcards '+' and '#' are for subscribing")


def _expire(fut: asyncio.Future[Any]) -> None:
    if not fut.done():
        fut.set_result(TIMED_OUT)


@task(name="cs.wait")
async def _wait(seconds: float) -> None:
    _check_seconds("cs.wait(seconds)", seconds, False)
    await asyncio.sleep(seconds)


@task(name="cs.recv")
def _recv(topic: str, timeout: float | None = None, connector: Any = _CONNECTOR) -> Any:
    # A sync task that returns what the engine then awaits (as for any sync task returning an
    # awaitable): on the engine's default connector, the listening future itself, which leaves
    # its topic and cancels its timer the moment it completes (a message, the timeout) or is
    # cancelled, so a listen costs no coroutine. Any other connector: a coroutine that subscribes.
    if type(topic) is not str or not topic:
        _check_topic("cs.recv(topic)", topic, True)
    if type(timeout) is not float or not timeout >= 0.0:
        _check_seconds("cs.recv(timeout)", timeout, True)
    if type(connector) is not InMemoryConnector:
        return _recv_from(connector, topic, timeout)
    return connector._listen(topic, timeout)  # with its timer


async def _recv_from(connector: Any, topic: str, timeout: float | None) -> Any:
    """``cs.recv`` on any other connector: a subscription whose handler completes a future."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[Any] = loop.create_future()

    def deliver(message: Any) -> None:
        if not fut.done():
            fut.set_result(message)

    sub = await connector.subscribe(topic, deliver)
    try:
        if fut.done():  # a retained message, delivered on subscribe
            return fut.result()
        if timeout is None:
            return await fut
        timer = loop.call_later(timeout, _expire, fut, context=_TIMER_CONTEXT)  # _expire reads no context variable
        try:
            return await fut
        finally:
            timer.cancel()
    finally:  # on a message, on timeout and on cancellation alike
        await sub.unsubscribe()


@task(name="cs.publish")
def _publish(topic: Any, payload: Any, retain: bool = False, connector: Any = _CONNECTOR) -> Any:
    # Sync on the engine's default connector (it never waits: no coroutine per publish); any
    # other connector: a coroutine the engine awaits, publishing to each topic in order.
    if type(connector) is not InMemoryConnector:
        return _publish_to(connector, _topics(topic), payload, retain)
    try:  # the connector checks each topic itself
        if type(topic) is str:
            connector.publish_nowait(topic, payload, retain)
        elif _CHECKED.get(id(topic)) is topic:  # _checked(topic), inline
            connector._publish_each(topic, payload, retain, True)
        else:
            connector._publish_each(_topics(topic, False), payload, retain)
    except ValueError as exc:
        raise ValueError(f"cs.publish(topic): {exc}") from None
    return None


async def _publish_to(connector: Any, topics: Any, payload: Any, retain: bool) -> None:
    for t in topics:
        await connector.publish(t, payload, retain)


# Tuples of topics found valid, by id, each kept alive by its entry (so that its id is not reused
# while it is here): an agent publishes to the same tuple of neighbours on every flash, checked
# once. Bounded: when full it starts over (a memo that stopped learning would leave every later
# agent's tuple checked on every call, as lists are).
_CHECKED: dict[int, tuple[str, ...]] = {}
_CHECKED_MAX = 65_536


def _checked(topic: Any) -> bool:
    """Whether ``topic`` is a tuple of topics already found valid (see ``_CHECKED``)."""
    return _CHECKED.get(id(topic)) is topic


def _topics(topic: Any, check: bool = True) -> tuple[str, ...] | list[str]:
    """``topic`` as a sequence of topics (one string, or a list or tuple of them), checked."""
    topics = topic if type(topic) in (list, tuple) else (topic,)
    if check or not topics:
        if not topics:
            raise ValueError("cs.publish(topic) got an empty list of topics")
        for t in topics:
            if type(t) is not str or not t or "+" in t or "#" in t:
                _check_topic("cs.publish(topic)", t, False)
        if type(topic) is tuple:
            if len(_CHECKED) >= _CHECKED_MAX:
                _CHECKED.clear()  # start over: the tuples of agents that are gone go with it
            _CHECKED[id(topic)] = topic
    return topics


def _literal(value: Any) -> bool:
    t = type(value)
    return t is str or t is float or t is tuple or not isinstance(value, (LazyResult, Marker))


def wait(seconds: Any) -> LazyResult:
    """A task that sleeps ``seconds`` (a number >= 0, or a lazy result of one); its value is ``None``.

    Raises ``ValueError`` for a negative or non-numeric literal at once (a lazy one when it runs).
    """
    if _literal(seconds):
        _check_seconds("cs.wait(seconds)", seconds, False)
    return _wait(seconds)


def recv(topic: Any, timeout: Any = None) -> LazyResult:
    """A task whose value is the next :class:`~cascade.adapters.connector.Message` on ``topic``.

    ``topic`` is a subscription filter (MQTT ``+``/``#`` wildcards allowed); a retained message on
    a matching topic is received at once. With ``timeout`` (seconds) and no message in time the
    value is :data:`TIMED_OUT`. The subscription is made when the task starts and always removed
    when it ends: on a message, on timeout and on cancellation. Messages published while no
    ``recv`` is listening are not kept (use ``retain=True`` for state that late listeners need).
    Raises ``ValueError`` for an empty or malformed topic, or a negative timeout.
    """
    if type(timeout) is float and type(topic) is str and timeout >= 0.0 and topic and "+" not in topic \
            and "#" not in topic:  # an agent's listen: checked here, made as _recv(topic, timeout) makes it
        return literal_call2(_recv, _RECV_SHAPE, topic, timeout)
    if type(topic) is not str or not topic or "+" in topic or "#" in topic:
        if _literal(topic):
            _check_topic("cs.recv(topic)", topic, True)
            if "+" in topic or "#" in topic:
                validate_filter(topic)
    if timeout is None:
        return _recv(topic)
    if (type(timeout) is not float or not timeout >= 0.0) and _literal(timeout):
        _check_seconds("cs.recv(timeout)", timeout, True)
    return _recv(topic, timeout)


def publish(topic: Any, payload: Any, retain: bool = False) -> LazyResult:
    """A task that publishes ``payload`` to ``topic`` on the engine's connector; its value is ``None``.

    ``topic`` may also be a list or tuple of topics: the payload goes to each, in order, from one
    call (an agent telling its neighbours). ``retain=True`` keeps the message for later
    subscribers (a retained ``None`` clears it). The publisher never waits for subscribers (see
    the connector's delivery policy). Raises ``ValueError`` for an empty topic or one containing
    wildcards.
    """
    if _CHECKED.get(id(topic)) is topic and not retain and type(payload) in _PAYLOAD_LITERALS:
        # an agent telling its neighbours: topics checked before, made as _publish(topic, payload) makes it
        return literal_call2(_publish, _PUBLISH_SHAPE, topic, payload)
    if (type(topic) is str or _CHECKED.get(id(topic)) is not topic) and _literal(topic):
        _topics(topic)
    return _publish(topic, payload, retain) if retain else _publish(topic, payload)


# Shapes of the calls recv and publish make directly (see literal_call2), and the payload types
# that are plain literals there (those of new_lazy's atomic literals; any other goes through it).
_RECV_SHAPE = literal_shape(_recv, 2)
_PUBLISH_SHAPE = literal_shape(_publish, 2)
_PAYLOAD_LITERALS = frozenset({int, float, str, bool, type(None), bytes})
