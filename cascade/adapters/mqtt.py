"""An MQTT :class:`~cascade.adapters.connector.Connector` on aiomqtt (``pip install cascade-workflows[mqtt]``).

One background Task owns the connection and keeps it up:

- **connect**: ``await connector.connect()`` starts it and returns once the broker accepted the
  connection (``ConnectionError`` naming the broker when it cannot within ``connect_timeout``).
- **status and last will**: on every connection it publishes ``{"status": "online"}`` retained to
  ``status_topic`` (default ``cascade/status/<client_id>``); the broker publishes the last will
  ``{"status": "offline"}`` there if the connection dies; ``disconnect()`` publishes it itself.
- **reconnect**: a lost connection is retried with exponential backoff (``backoff=(first, max)``
  seconds), then every subscription is made again.
- **retained state, explicitly**: retained messages come after a SUBSCRIBE in no announced number,
  so ``subscribe()`` does not return on a guess (no sleep): after the broker acknowledged the
  subscription it publishes a nonce to this client's own ``cascade/_sync/<client_id>`` topic and
  waits for it to come back. The broker sends one client's messages in order, so by then every
  retained message of the new subscription was delivered to the handler. After a reconnect the same
  barrier closes the resubscription, and a subscription made with ``on_resync=`` is told which
  retained topics it saw (a clear that happened meanwhile shows as a topic no longer there).

Payloads: ``bytes`` are sent as they are, ``str`` as UTF-8, ``None`` as an empty payload (retained:
clears the topic), anything else as JSON. Handlers receive :class:`~cascade.adapters.connector.Message`
with ``bytes`` payloads. Delivery follows :class:`~cascade.adapters.connector.InMemoryConnector`'s
policy: a sync handler is called inline by the reader (it must return at once); an async handler
gets a bounded queue (``max_pending``, oldest dropped) and a worker Task. ``publish_nowait`` queues a
message for the connection Task (bounded, oldest dropped) so that a synchronous event handler can
publish without waiting; ``publish`` waits until the message was handed to the broker connection.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections import deque
from typing import Any, Callable
from urllib.parse import urlsplit

from .connector import BoundedDelivery, Message, _is_async, topic_matches, validate_filter, validate_topic

try:
    import aiomqtt
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "cascade.adapters.mqtt needs aiomqtt: pip install 'cascade-workflows[mqtt]'"
    ) from exc

__all__ = ["MQTTConnector", "MQTTSubscription", "parse_broker_url"]

_log = logging.getLogger("cascade.mqtt")
SYNC_ROOT = "cascade/_sync"
QOS = 1


def parse_broker_url(url: str) -> tuple[str, int]:
    """``mqtt://host:port`` (or ``host:port``, ``host``) to ``(host, port)``; port default 1883.
    Raises ``ValueError`` for anything else."""
    if not isinstance(url, str) or not url:
        raise ValueError(f"broker must be mqtt://host:port, got {url!r}")
    parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    if parts.scheme not in ("mqtt", "tcp"):
        raise ValueError(f"broker {url!r}: only mqtt:// is supported")
    try:
        port = parts.port or 1883
    except ValueError:
        raise ValueError(f"broker {url!r}: the port must be a number from 1 to 65535") from None
    if not parts.hostname:
        raise ValueError(f"broker {url!r} names no host")
    return parts.hostname, port


def encode_payload(payload: Any) -> bytes:
    """The bytes sent for ``payload`` (see the module docstring)."""
    if payload is None:
        return b""
    if isinstance(payload, (bytes, bytearray)):
        return bytes(payload)
    if isinstance(payload, str):
        return payload.encode()
    return json.dumps(payload).encode()


class MQTTSubscription(BoundedDelivery):
    """One subscription of an :class:`MQTTConnector`; ``await sub.unsubscribe()`` ends it."""

    def __init__(self, owner: MQTTConnector, topic: str, handler: Callable[[Message], Any],
                 on_resync: Callable[[set[str]], Any] | None, max_pending: int) -> None:
        self.topic = topic
        self.handler = handler
        self.on_resync = on_resync
        self.active = True
        self.dropped = 0
        self._owner = owner
        self._queue: deque[Message] | None = deque() if _is_async(handler) else None
        self._worker: asyncio.Task[None] | None = None
        self._max = max_pending
        self._seen: set[str] | None = None  # retained topics seen during a resync

    def _deliver(self, msg: Message) -> None:
        if self._seen is not None and msg.retained:
            self._seen.add(msg.topic)
        self._hand_over(msg)

    async def unsubscribe(self) -> None:
        """Stop delivery now (queued messages dropped); the broker subscription ends with the last
        local subscription of its filter."""
        if not self.active:
            return
        self.active = False
        if self._queue is not None:
            self._queue.clear()
        worker = self._worker
        if worker is not None and worker is not asyncio.current_task():
            worker.cancel()
        await self._owner._remove(self)


class MQTTConnector:
    """A :class:`~cascade.adapters.connector.Connector` talking to an MQTT broker (see the module docstring).

    ``broker``: ``mqtt://host:port``. ``client_id``: default ``cascade-<random>``. ``backoff``:
    first and longest wait between reconnection attempts (seconds). ``connect_timeout``: how long
    :meth:`connect` and a subscription's retained-state barrier wait. ``announce=False``: no status
    topic and no last will (for short-lived clients such as the command line). ``connections``
    counts successful connections (1 + reconnects).
    """

    supports_resync = True

    def __init__(self, broker: str = "mqtt://127.0.0.1:1883", *, client_id: str | None = None,
                 status_topic: str | None = None, backoff: tuple[float, float] = (0.05, 2.0),
                 keepalive: int = 5, connect_timeout: float = 10.0, max_pending: int = 1000,
                 max_outgoing: int = 10_000, announce: bool = True) -> None:
        self.host, self.port = parse_broker_url(broker)
        self.client_id = client_id or f"cascade-{uuid.uuid4().hex[:12]}"
        self.status_topic = status_topic or f"cascade/status/{self.client_id}"
        validate_topic(self.status_topic)
        first, longest = backoff
        if not (0 < first <= longest):
            raise ValueError(f"backoff must be (first, max) with 0 < first <= max, got {backoff!r}")
        self.backoff = (float(first), float(longest))
        self.keepalive = keepalive
        self.announce = announce
        self.connect_timeout = connect_timeout
        self.max_pending = max_pending
        self.connections = 0
        self.last_error: str | None = None
        self._sync_topic = f"{SYNC_ROOT}/{self.client_id}"
        self._subs: dict[str, list[MQTTSubscription]] = {}  # filter -> local subscriptions
        self._barriers: dict[str, asyncio.Future[None]] = {}
        self._fresh: dict[str, MQTTSubscription] = {}  # filter -> the subscriber awaiting its retained
        self._outgoing: deque[tuple[str, bytes, bool]] = deque(maxlen=max_outgoing)
        self._wake_sender = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        self._connected = asyncio.Event()
        self._first_failed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def url(self) -> str:
        """The broker as ``mqtt://host:port``."""
        return f"mqtt://{self.host}:{self.port}"

    @property
    def connected(self) -> bool:
        """Whether a broker connection is up now."""
        return self._client is not None and self._connected.is_set()

    # -- connection -------------------------------------------------------------------------------
    async def connect(self) -> None:
        """Start the connection Task and wait for the first connection.

        Raises ``ConnectionError`` naming the broker when the first attempt fails or does not succeed
        within ``connect_timeout`` (the Task is stopped then); only an established connection is
        retried when it drops."""
        if self._task is None or self._task.done():
            self._closing = False
            self._first_failed.clear()
            self._task = asyncio.get_running_loop().create_task(self._run())
        connected = asyncio.ensure_future(self._connected.wait())
        failed = asyncio.ensure_future(self._first_failed.wait())
        try:
            await asyncio.wait({connected, failed}, timeout=self.connect_timeout,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            connected.cancel()
            failed.cancel()
        if not self._connected.is_set():
            await self.disconnect()
            detail = f": {self.last_error}" if self.last_error else ""
            raise ConnectionError(f"cannot connect to the MQTT broker at {self.url}{detail}") from None

    async def disconnect(self) -> None:
        """Send what is queued, publish the offline status, close the connection, end every subscription."""
        self._closing = True
        client = self._client
        if client is not None and self._connected.is_set():
            try:
                while self._outgoing:
                    topic, data, retain = self._outgoing.popleft()
                    await client.publish(topic, data, qos=QOS, retain=retain)
                if self.announce:
                    await client.publish(self.status_topic, self._status("offline"), qos=QOS, retain=True)
            except aiomqtt.MqttError as exc:
                _log.warning("MQTT %s: could not say goodbye: %s", self.url, exc)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        for subs in list(self._subs.values()):
            for sub in list(subs):
                sub.active = False
                if sub._worker is not None:
                    sub._worker.cancel()
        self._subs.clear()
        for fut in self._barriers.values():
            fut.cancel()
        self._barriers.clear()

    def _status(self, status: str) -> bytes:
        return json.dumps({"status": status, "client_id": self.client_id}).encode()

    async def _run(self) -> None:
        delay = self.backoff[0]
        will = aiomqtt.Will(self.status_topic, self._status("offline"), qos=QOS, retain=True) if self.announce else None
        while not self._closing:
            sender: asyncio.Task[None] | None = None
            try:
                async with aiomqtt.Client(self.host, self.port, identifier=self.client_id, will=will,
                                          keepalive=self.keepalive, timeout=self.connect_timeout) as client:
                    await client.subscribe(self._sync_topic, qos=QOS)
                    if self.announce:
                        await client.publish(self.status_topic, self._status("online"), qos=QOS, retain=True)
                    self._client = client
                    reader = asyncio.get_running_loop().create_task(self._read(client))
                    try:
                        if self.connections > 0:
                            await self._resubscribe(client)
                        self.connections += 1
                        delay = self.backoff[0]
                        self.last_error = None
                        self._connected.set()
                        sender = asyncio.get_running_loop().create_task(self._send(client))
                        await reader
                    finally:
                        reader.cancel()
            except (aiomqtt.MqttError, ConnectionError, TimeoutError) as exc:
                self.last_error = str(exc) or type(exc).__name__
                if not self.connections:
                    self._first_failed.set()  # connect() reports it: a wrong address is not retried
                    break
                _log.warning("MQTT %s: connection lost (%s); reconnecting in %.2fs", self.url, exc, delay)
            finally:
                self._connected.clear()
                self._client = None
                if sender is not None:
                    sender.cancel()
                for fut in self._barriers.values():
                    if not fut.done():
                        fut.set_exception(ConnectionError(f"connection to {self.url} lost"))
                self._barriers.clear()
            if self._closing:
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff[1])

    async def _resubscribe(self, client: aiomqtt.Client) -> None:
        """Subscribe every filter again and close with a barrier; then tell ``on_resync`` subscribers
        which retained topics came back."""
        subs = [s for group in self._subs.values() for s in group]
        for sub in subs:
            sub._seen = set()
        try:
            for flt in list(self._subs):
                await client.subscribe(flt, qos=QOS)
            await self._barrier(client)
        finally:
            seen = [(s, s._seen) for s in subs]
            for sub in subs:
                sub._seen = None
        for sub, topics in seen:
            if sub.active and sub.on_resync is not None and topics is not None:
                try:
                    sub.on_resync(topics)
                except Exception:
                    _log.exception("on_resync of %r failed", sub.topic)

    async def _barrier(self, client: aiomqtt.Client) -> None:
        nonce = uuid.uuid4().hex
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._barriers[nonce] = fut
        try:
            await client.publish(self._sync_topic, nonce.encode(), qos=QOS)
            await asyncio.wait_for(asyncio.shield(fut), self.connect_timeout)
        finally:
            self._barriers.pop(nonce, None)

    async def _read(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            topic = message.topic.value
            payload = message.payload
            data = payload if isinstance(payload, bytes) else encode_payload(payload)
            if topic == self._sync_topic:
                fut = self._barriers.get(data.decode(errors="replace"))
                if fut is not None and not fut.done():
                    fut.set_result(None)
                continue
            msg = Message(topic, data, bool(message.retain))
            for flt, subs in list(self._subs.items()):
                if topic_matches(flt, topic):
                    fresh = self._fresh.get(flt) if msg.retained else None
                    for sub in [fresh] if fresh is not None else list(subs):
                        if sub.active:
                            sub._deliver(msg)

    async def _send(self, client: aiomqtt.Client) -> None:
        while True:
            while self._outgoing:
                topic, data, retain = self._outgoing[0]
                await client.publish(topic, data, qos=QOS, retain=retain)
                self._outgoing.popleft()  # only once handed over: a lost connection keeps it queued
            self._wake_sender.clear()
            await self._wake_sender.wait()

    # -- the Connector protocol -----------------------------------------------------------------
    async def publish(self, topic: str, payload: Any, retain: bool = False) -> None:
        """Send ``payload`` (see the module docstring for its encoding); waits until it was handed to
        the connection, or queues it while reconnecting. Raises ``ValueError`` for a bad topic."""
        validate_topic(topic)
        data = encode_payload(payload)
        client = self._client
        if client is not None and self._connected.is_set() and not self._outgoing:
            try:
                await client.publish(topic, data, qos=QOS, retain=retain)
                return
            except aiomqtt.MqttError:
                pass  # the connection Task reconnects; send it then
        self._outgoing.append((topic, data, retain))
        self._wake_sender.set()

    def publish_nowait(self, topic: str, payload: Any, retain: bool = False) -> None:
        """Queue ``payload`` for the connection Task (bounded: the oldest is dropped when full)."""
        validate_topic(topic)
        self._outgoing.append((topic, encode_payload(payload), retain))
        self._wake_sender.set()

    async def subscribe(self, topic: str, handler: Callable[[Message], Any], *,
                        on_resync: Callable[[set[str]], Any] | None = None,
                        max_pending: int | None = None) -> MQTTSubscription:
        """Subscribe ``handler`` to the filter ``topic``; returns once every retained message that
        matches was delivered to it (see the module docstring). ``on_resync(topics)`` is called after
        each reconnect with the retained topics that came back. Raises ``ConnectionError`` when not
        connected, ``ValueError`` for a bad filter, ``TypeError`` for a handler that is not callable."""
        validate_filter(topic)
        if not callable(handler):
            raise TypeError(f"subscribe({topic!r}, handler): handler must be callable, got {handler!r}")
        if topic.startswith(SYNC_ROOT):
            raise ValueError(f"{SYNC_ROOT}/ is reserved for the connector's own barrier messages")
        client = self._client
        if client is None or not self._connected.is_set():
            raise ConnectionError(f"not connected to {self.url}: await connector.connect() first")
        sub = MQTTSubscription(self, topic, handler, on_resync,
                               self.max_pending if max_pending is None else max_pending)
        group = self._subs.get(topic)
        if group is None:
            self._subs[topic] = [sub]
            await client.subscribe(topic, qos=QOS)
            await self._barrier(client)
        else:
            # The broker sends retained messages on SUBSCRIBE only: subscribing the same filter
            # again makes it send them again; until the barrier they go to the new subscriber only.
            group.append(sub)
            self._fresh[topic] = sub
            try:
                await client.subscribe(topic, qos=QOS)
                await self._barrier(client)
            finally:
                self._fresh.pop(topic, None)
        return sub

    async def _remove(self, sub: MQTTSubscription) -> None:
        group = self._subs.get(sub.topic)
        if group is None or sub not in group:
            return
        group.remove(sub)
        if not group:
            del self._subs[sub.topic]
            client = self._client
            if client is not None and self._connected.is_set():
                try:
                    await client.unsubscribe(sub.topic)
                except aiomqtt.MqttError:
                    pass

    @property
    def subscription_count(self) -> int:
        """How many local subscriptions are active."""
        return sum(len(g) for g in self._subs.values())
