"""MQTTConnector against a real mosquitto: publish/subscribe, wildcards, retained state delivered
before ``subscribe`` returns, the last will, reconnecting after a broker restart, clear errors."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

import cascade as cs
from cascade.adapters.mqtt import MQTTConnector, parse_broker_url


async def until(predicate, timeout: float = 10.0) -> None:
    """Wait for ``predicate()`` (I/O with a broker: bounded by a generous timeout, not a speed claim)."""
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout)


def test_broker_urls_are_parsed_or_rejected_with_a_clear_error():
    assert parse_broker_url("mqtt://example.org:1884") == ("example.org", 1884)
    assert parse_broker_url("127.0.0.1") == ("127.0.0.1", 1883)
    for bad, message in [("http://x:1", "only mqtt://"), ("mqtt://:1883", "names no host"),
                         ("mqtt://h:99999", "port must be a number")]:
        with pytest.raises(ValueError, match=message):
            parse_broker_url(bad)


@pytest.mark.asyncio
async def test_publish_subscribe_with_wildcards(mqtt):
    got: list[cs.Message] = []
    sub = await mqtt.subscribe("sensors/+/temp", got.append)
    await mqtt.publish("sensors/1/temp", b"21.5")
    await mqtt.publish("sensors/2/humidity", b"40")  # no match
    await mqtt.publish("sensors/3/temp", {"c": 19})  # JSON-encoded
    await until(lambda: len(got) == 2)
    assert got == [cs.Message("sensors/1/temp", b"21.5", False), cs.Message("sensors/3/temp", b'{"c": 19}', False)]
    await sub.unsubscribe()
    await mqtt.publish("sensors/4/temp", b"1")
    # a round trip on another subscription proves the broker handled that publish already
    marker: list[cs.Message] = []
    await mqtt.subscribe("marker", marker.append)
    await mqtt.publish("marker", b"x")
    await until(lambda: marker)
    assert len(got) == 2 and mqtt.subscription_count == 1


@pytest.mark.asyncio
async def test_retained_messages_are_delivered_before_subscribe_returns(mqtt):
    for i in range(20):
        await mqtt.publish(f"state/{i}", str(i), retain=True)
    await mqtt.publish("state/5", None, retain=True)  # cleared
    got: list[cs.Message] = []
    await mqtt.subscribe("state/#", got.append)
    # no waiting here: the barrier in subscribe() guarantees they all arrived
    assert sorted(int(m.payload) for m in got) == [i for i in range(20) if i != 5]
    assert all(m.retained for m in got)
    # a second subscriber of the same filter gets them too, the first one not twice
    again: list[cs.Message] = []
    await mqtt.subscribe("state/#", again.append)
    assert len(again) == 19 and len(got) == 19


@pytest.mark.asyncio
async def test_an_async_handler_gets_messages_in_order(mqtt):
    got: list[bytes] = []

    async def slow(message: cs.Message) -> None:
        await asyncio.sleep(0.001)
        got.append(message.payload)

    await mqtt.subscribe("q", slow)
    for i in range(10):
        await mqtt.publish("q", str(i))
    await until(lambda: len(got) == 10)
    assert got == [str(i).encode() for i in range(10)]


@pytest.mark.asyncio
async def test_an_unreachable_broker_is_one_clear_error(mosquitto):
    url = mosquitto.url
    mosquitto.stop()
    connector = MQTTConnector(url, connect_timeout=0.5)
    with pytest.raises(ConnectionError, match=f"cannot connect to the MQTT broker at {url}"):
        await connector.connect()
    assert connector._task is None  # nothing left running


@pytest.mark.asyncio
async def test_status_topic_says_online_and_the_last_will_says_offline(mosquitto, mqtt):
    states: list[dict] = []
    await mqtt.subscribe("cascade/status/doomed", lambda m: states.append(json.loads(m.payload)) if m.payload else None)
    script = (
        "import asyncio, os, sys\n"
        "from cascade.adapters.mqtt import MQTTConnector\n"
        "async def main():\n"
        f"    c = MQTTConnector({mosquitto.url!r}, client_id='doomed')\n"
        "    await c.connect()\n"
        "    print('up', flush=True)\n"
        "    await asyncio.sleep(60)\n"
        "asyncio.run(main())\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 20)  # type: ignore[union-attr]
        assert line.strip() == b"up"
        await until(lambda: states[-1:] == [{"status": "online", "client_id": "doomed"}])
    finally:
        proc.kill()  # no DISCONNECT: the broker publishes the last will
        proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]
    await until(lambda: states[-1:] == [{"status": "offline", "client_id": "doomed"}])


@pytest.mark.asyncio
async def test_reconnects_after_a_broker_restart_and_resubscribes(mosquitto):
    connector = MQTTConnector(mosquitto.url, backoff=(0.02, 0.2))
    resyncs: list[set[str]] = []
    got: list[bytes] = []
    try:
        await connector.connect()
        await connector.publish("keep/a", b"1", retain=True)
        await connector.subscribe("live", lambda m: got.append(m.payload))
        await connector.subscribe("keep/#", lambda m: None, on_resync=resyncs.append)
        await asyncio.to_thread(mosquitto.restart)  # retained messages persist across it
        await until(lambda: connector.connections == 2)
        await until(lambda: resyncs == [{"keep/a"}])
        await connector.publish("live", b"after")
        await until(lambda: got == [b"after"])
    finally:
        await connector.disconnect()


@pytest.mark.asyncio
async def test_publish_nowait_is_sent_by_the_connection_task(mqtt):
    got: list[bytes] = []
    await mqtt.subscribe("t/#", lambda m: got.append(m.payload))
    for i in range(50):
        mqtt.publish_nowait(f"t/{i}", str(i))
    await until(lambda: len(got) == 50)
    assert got == [str(i).encode() for i in range(50)]
