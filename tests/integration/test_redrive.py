"""`triggerline dead-letters redrive` sends dead-lettered deliveries back to routed-events."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from runtime.kafka import durable_producer
from runtime.redrive import Redrivable, RedriveFilter, read_letters, redrivable, redrive
from runtime.settings import Settings
from schemas.records import DeadLetter, RawEvent, RoutedEvent
from schemas.topics import DEAD_LETTERS, DESTINATION_HEADER, RAW_EVENTS, ROUTED_EVENTS
from tests.integration.support.stages import stage_env
from tests.integration.support.topic_reader import read_all, read_all_records

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)


def routed(event_id: str, trigger: str, destination: str = "default") -> bytes:
    return ROUTED_EVENTS.encode(
        RoutedEvent(
            id=event_id,
            source=f"/triggers/{trigger}",
            type="webhook.message",
            subject="conv-1",
            time=NOW,
            data={},
            triggerid=trigger,
            projectid="P",
            targetkind="noop",
            targetref="",
            receivedat=NOW,
            destination=destination,
        )
    )


def letter(
    settings: Settings,
    event_id: str | None,
    trigger: str,
    age_h: float,
    destination: str = "default",
) -> DeadLetter:
    value = routed(event_id, trigger, destination) if event_id else b"\xff not json"
    return DeadLetter(
        stage="dispatcher",
        reason="gave up after 8 attempts",
        failed_at=NOW - timedelta(hours=age_h),
        source_topic=ROUTED_EVENTS.name(settings.topics.prefix),
        source_partition=0,
        source_offset=1,
        key_b64=base64.b64encode(b"conv-1").decode(),
        value_b64=base64.b64encode(value).decode(),
        event_id=event_id,
        trigger_id=trigger,
    )


async def write_letters(settings: Settings, letters: list[DeadLetter]) -> None:
    producer = durable_producer(settings)
    await producer.start()
    try:
        for item in letters:
            await producer.send_and_wait(
                DEAD_LETTERS.name(settings.topics.prefix), DEAD_LETTERS.encode(item), key=b"k"
            )
    finally:
        await producer.stop()


async def routed_values(settings: Settings) -> list[tuple[str, str, str]]:
    """(event id, trigger id, destination) of each routed record, which must carry its
    destination header too."""
    records = await read_all_records(settings, ROUTED_EVENTS.name(settings.topics.prefix))
    found = []
    for record in records:
        event = ROUTED_EVENTS.decode(record.value)
        assert (DESTINATION_HEADER, event.destination.encode()) in record.headers
        found.append((event.id, event.triggerid, event.destination))
    return found


async def test_redrive_by_trigger_and_by_time(settings: Settings) -> None:
    await write_letters(
        settings,
        [
            letter(settings, "ev-a-old", "A", age_h=48),
            letter(settings, "ev-a-new", "A", age_h=1),
            letter(settings, "ev-b", "B", age_h=1),
            letter(settings, None, "A", age_h=1),
        ],
    )
    letters = await read_letters(settings)
    by_trigger = await redrive(settings, letters, RedriveFilter(trigger_id="A"))
    assert (by_trigger.scanned, by_trigger.matched, by_trigger.redriven) == (4, 3, 2)
    assert by_trigger.not_redrivable == {"undecodable record": 1}
    assert sorted(await routed_values(settings)) == [
        ("ev-a-new", "A", "default"),
        ("ev-a-old", "A", "default"),
    ]

    recent = await redrive(settings, letters, RedriveFilter(since=NOW - timedelta(hours=2)))
    assert recent.redriven == 2
    values = await routed_values(settings)
    assert values.count(("ev-b", "B", "default")) == 1
    assert values.count(("ev-a-new", "A", "default")) == 2


async def test_the_command_shows_progress_and_a_summary(settings: Settings) -> None:
    await write_letters(
        settings, [letter(settings, "ev-1", "T", 1), letter(settings, "ev-2", "U", 1)]
    )
    command = [sys.executable, "-m", "deploy.cli", "dead-letters", "redrive", "--trigger", "T"]
    done = await asyncio.to_thread(
        subprocess.run, command, env=stage_env(settings), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "scanned 2 dead letters; 1 matched; re-drove 1" in done.stdout
    assert "re-driving" in done.stdout + done.stderr
    assert await routed_values(settings) == [("ev-1", "T", "default")]

    refused = await asyncio.to_thread(
        subprocess.run, command[:5], env=stage_env(settings), capture_output=True, text=True
    )
    assert refused.returncode != 0
    assert "--all" in refused.stderr


async def test_two_triggers_or_destinations_sharing_an_event_id_keep_a_letter_each(
    settings: Settings,
) -> None:
    letters = [
        letter(settings, "ev-shared", "A", age_h=1),
        letter(settings, "ev-shared", "B", age_h=1),
        letter(settings, "ev-shared", "B", age_h=1, destination="audit"),
    ]
    await write_letters(settings, letters)
    summary = await redrive(settings, await read_letters(settings), RedriveFilter())
    assert summary.redriven == 3
    assert sorted(await routed_values(settings)) == [
        ("ev-shared", "A", "default"),
        ("ev-shared", "B", "audit"),
        ("ev-shared", "B", "default"),
    ]


def processor_letter(
    settings: Settings, reason: str, value: bytes, trigger_id: str | None = None
) -> DeadLetter:
    return DeadLetter(
        stage="processor",
        reason=reason,
        failed_at=NOW,
        source_topic=RAW_EVENTS.name(settings.topics.prefix),
        source_partition=0,
        source_offset=7,
        key_b64=base64.b64encode(b"trigger-key").decode(),
        value_b64=base64.b64encode(value).decode(),
        error="TimeoutError()",
        trigger_id=trigger_id,
    )


def raw_event(raw_id: str) -> RawEvent:
    return RawEvent(
        id=raw_id,
        trigger_id="T",
        project_id="P",
        definition="webhook",
        received_at=NOW,
        content_type="application/json",
        body="{}",
    )


async def test_processing_errors_go_back_to_the_processors(settings: Settings) -> None:
    encoded = RAW_EVENTS.encode(raw_event("raw-1"))
    await write_letters(
        settings,
        [
            processor_letter(settings, "processing_error", encoded),
            # The processors would refuse these again: they stay where they are.
            processor_letter(settings, "unroutable", encoded, trigger_id="T"),
            processor_letter(settings, "processing_error", encoded[:20]),
            letter(settings, "ev-other", "U", age_h=1),
        ],
    )
    summary = await redrive(settings, await read_letters(settings), RedriveFilter(trigger_id="T"))
    assert (summary.matched, summary.redriven) == (2, 1)
    assert summary.not_redrivable == {"from the processor stage: unroutable": 1}
    redriven = await read_all(settings, RAW_EVENTS.name(settings.topics.prefix))
    assert redriven == [(b"trigger-key", encoded)]
    assert await routed_values(settings) == []


def test_a_trigger_unusable_letter_can_go_back_once_its_cause_is_fixed(settings: Settings) -> None:
    plan = redrivable(
        processor_letter(settings, "trigger_unusable", RAW_EVENTS.encode(raw_event("raw-2"))),
        settings.topics.prefix,
    )
    assert isinstance(plan, Redrivable)
    assert (plan.topic, plan.trigger_id, plan.event_id) == (
        RAW_EVENTS.name(settings.topics.prefix),
        "T",
        "raw-2",
    )
