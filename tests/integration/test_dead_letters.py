"""A record a stage cannot decode becomes a dead letter, and the stage keeps going.

Each garbage record and the valid record after it share a key, so they land on one partition in
that order: the valid one is only handled if the stage got past the garbage.
"""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

import orjson
import pytest

from runtime.settings import Settings
from schemas.records import DeadLetter, RawEvent, RoutedEvent
from schemas.topics import DEAD_LETTERS, DELIVERY_LOG, RAW_EVENTS, ROUTED_EVENTS, TRIGGER_CONFIG
from schemas.triggers import Target, TriggerConfig
from tests.integration.support.delivery_log import journey
from tests.integration.support.stages import running_stages, with_free_ports
from tests.integration.support.topic_reader import Record, read_until
from tests.integration.support.topic_writer import Position, produce

pytestmark = pytest.mark.integration

# Not JSON, and not even UTF-8: the dead letter must carry it intact all the same.
GARBAGE = b"\xff\xfe<not a record>"


async def publish_trigger(settings: Settings) -> TriggerConfig:
    """A noop trigger, published the way the outbox relay would, without ingest."""
    config = TriggerConfig(
        trigger_id=str(uuid.uuid4()),
        project_id=str(uuid.uuid4()),
        definition="slack",
        name="dead-letters",
        status="active",
        target=Target("noop"),
        updated_at=datetime.now(UTC),
        revision=1,
    )
    topic = TRIGGER_CONFIG.name(settings.topics.prefix)
    await produce(settings, topic, config.trigger_id.encode(), TRIGGER_CONFIG.encode(config))
    return config


def letters_from(records: list[Record], topic: str, position: Position) -> list[DeadLetter]:
    letters = (DEAD_LETTERS.decode(value) for _, value in records)
    return [
        letter
        for letter in letters
        if (letter.source_topic, letter.source_partition, letter.source_offset)
        == (topic, *position)
    ]


async def dead_letter_for(settings: Settings, topic: str, position: Position) -> DeadLetter:
    records = await read_until(
        settings,
        DEAD_LETTERS.name(settings.topics.prefix),
        lambda seen: bool(letters_from(seen, topic, position)),
    )
    [letter] = letters_from(records, topic, position)
    return letter


async def journey_until_delivered(settings: Settings, event_id: str) -> list[tuple[str, str]]:
    records = await read_until(
        settings,
        DELIVERY_LOG.name(settings.topics.prefix),
        lambda seen: ("dispatcher", "delivered") in journey(seen, event_id),
    )
    return journey(records, event_id)


def assert_later_on_same_partition(later: Position, earlier: Position) -> None:
    assert later[0] == earlier[0]
    assert later[1] > earlier[1]


def assert_undecodable(letter: DeadLetter, stage: str, topic: str, position: Position) -> None:
    assert (letter.stage, letter.reason) == (stage, "undecodable")
    assert letter.error is not None
    # The error names where the record is, so an operator can find and re-drive it.
    assert f"{topic}[{position[0]}]@{position[1]}" in letter.error
    assert letter.value_b64 is not None
    assert base64.b64decode(letter.value_b64) == GARBAGE
    assert (letter.event_id, letter.trigger_id) == (None, None)


async def test_processor_dead_letters_garbage_and_routes_the_next_event(
    settings: Settings,
) -> None:
    settings = with_free_ports(settings)
    raw_topic = RAW_EVENTS.name(settings.topics.prefix)
    trigger = await publish_trigger(settings)
    key = trigger.trigger_id.encode()
    event_id = f"Ev{uuid.uuid4().hex[:10]}"
    body = {
        "type": "event_callback",
        "team_id": "T1",
        "event_id": event_id,
        "event": {"type": "message", "channel": "C9", "ts": "9.1", "text": "after garbage"},
    }
    valid = RawEvent(
        id=uuid.uuid4().hex,
        trigger_id=trigger.trigger_id,
        project_id=trigger.project_id,
        definition="slack",
        received_at=datetime.now(UTC),
        content_type="application/json",
        body=orjson.dumps(body).decode(),
    )

    with running_stages(settings, "processors", "dispatchers"):
        garbage_at = await produce(settings, raw_topic, key, GARBAGE)
        valid_at = await produce(settings, raw_topic, key, RAW_EVENTS.encode(valid))
        assert_later_on_same_partition(valid_at, garbage_at)

        letter = await dead_letter_for(settings, raw_topic, garbage_at)
        steps = await journey_until_delivered(settings, event_id)

    assert_undecodable(letter, "processor", raw_topic, garbage_at)
    assert letter.key_b64 is not None
    assert base64.b64decode(letter.key_b64) == key
    assert steps == [("processor", "routed"), ("dispatcher", "delivered")]


async def test_dispatcher_dead_letters_garbage_and_delivers_the_next_event(
    settings: Settings,
) -> None:
    settings = with_free_ports(settings)
    routed_topic = ROUTED_EVENTS.name(settings.topics.prefix)
    # Published although this dispatcher may not need it, so the test does not depend on that.
    trigger = await publish_trigger(settings)
    conversation = f"C9:{uuid.uuid4().hex[:6]}"
    now = datetime.now(UTC)
    valid = RoutedEvent(
        id=f"Ev{uuid.uuid4().hex[:10]}",
        source=f"/triggers/{trigger.trigger_id}",
        type="slack.message",
        subject=conversation,
        time=now,
        data={"text": "after garbage"},
        triggerid=trigger.trigger_id,
        projectid=trigger.project_id,
        targetkind="noop",
        targetref="",
        receivedat=now,
    )

    with running_stages(settings, "dispatchers"):
        key = conversation.encode()
        garbage_at = await produce(settings, routed_topic, key, GARBAGE)
        valid_at = await produce(settings, routed_topic, key, ROUTED_EVENTS.encode(valid))
        assert_later_on_same_partition(valid_at, garbage_at)

        letter = await dead_letter_for(settings, routed_topic, garbage_at)
        steps = await journey_until_delivered(settings, valid.id)

    assert_undecodable(letter, "dispatcher", routed_topic, garbage_at)
    assert steps == [("dispatcher", "delivered")]
