"""MessageBus.wants: whether publishing an event type would reach a subscriber (subclasses included)."""

from __future__ import annotations

import cascade as cs


def test_wants_names_exactly_the_event_types_someone_listens_to() -> None:
    bus = cs.MessageBus()
    assert not bus.wants(cs.TaskSkipped)
    unsubscribe = bus.subscribe(cs.TaskSkipped, lambda event: None)
    assert bus.wants(cs.TaskSkipped)
    assert not bus.wants(cs.RunStarted)
    unsubscribe()
    assert not bus.wants(cs.TaskSkipped)


def test_a_subscriber_to_every_event_wants_each_event_type() -> None:
    bus = cs.MessageBus()
    bus.subscribe(cs.Event, lambda event: None)
    assert bus.wants(cs.TaskSkipped) and bus.wants(cs.RunStarted)
