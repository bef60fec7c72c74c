"""The two engines side by side: the same raw records give the same routed records, decisions
and dead letters on either; and a group switched from one engine to the other mid-stream (and
back) carries on from the committed offsets and deduplication marks, with no gap and no repeat.
"""

from __future__ import annotations

import signal
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import msgspec
import orjson
import pytest

from runtime.kafka import durable_producer
from runtime.settings import Settings
from schemas.records import RawEvent
from schemas.ticks import CRON_TICK, CronTick
from schemas.topics import DEAD_LETTERS, DELIVERY_LOG, RAW_EVENTS, ROUTED_EVENTS
from schemas.triggers import DefinitionSlug, Target, TriggerConfig
from tests.integration.support.isolation import drop_topics, isolated_settings
from tests.integration.support.polling import eventually
from tests.integration.support.processor_outputs import (
    all_routed,
    assert_decided_once,
    assert_exactly_once,
    raw_events_committed,
    routed_grows_by,
)
from tests.integration.support.processor_records import (
    PROJECT,
    Records,
    one_trigger_per_partition,
    slack_message,
    slack_trigger,
    steady_stream,
    triggers_on_every_partition,
)
from tests.integration.support.processor_workers import ENGINES, processor_workers
from tests.integration.support.topic_reader import read_all

pytestmark = pytest.mark.integration


@pytest.fixture
async def engine_settings(
    base_settings: Settings, database_url: str
) -> AsyncIterator[dict[str, Settings]]:
    """Topics of their own for each engine."""
    made = {engine: await isolated_settings(base_settings, database_url) for engine in ENGINES}
    yield made
    for settings in made.values():
        await drop_topics(settings)


def trigger(definition: DefinitionSlug, trigger_id: str, **config: Any) -> TriggerConfig:
    return TriggerConfig(
        trigger_id=trigger_id,
        project_id=PROJECT,
        definition=definition,
        name=f"{definition}-{trigger_id[:8]}",
        status="active",
        target=Target("noop"),
        updated_at=datetime(2026, 12, 1, tzinfo=UTC),
        revision=1,
        config=config,
    )


def raw(trigger_id: str, definition: DefinitionSlug, body: str, **fields: Any) -> RawEvent:
    return RawEvent(
        id=uuid.uuid4().hex,
        trigger_id=trigger_id,
        project_id=PROJECT,
        definition=definition,
        received_at=datetime(2026, 12, 1, 12, tzinfo=UTC),
        content_type=fields.pop("content_type", "application/json"),
        body=body,
        **fields,
    )


def workload() -> tuple[list[TriggerConfig], list[bytes]]:
    """Triggers and raw records covering every kind of decision."""
    ids = triggers_on_every_partition()
    configs = [
        slack_trigger(
            ids[0], event_types=["message", "app_mention"], filter='event.text.startsWith("m")'
        ),
        slack_trigger(ids[1], status="paused"),
        slack_trigger(ids[2]),
        trigger("webhook", ids[3], correlation="event.conv"),
        trigger("cron", ids[4]),
    ]
    records: list[bytes] = []
    for n in range(40):
        message = slack_message(ids[n % 3], f"Ev{n:04d}", text="x" if n % 5 == 0 else f"m{n}")
        records.append(RAW_EVENTS.encode(message))
        if n % 7 == 0:
            records.append(RAW_EVENTS.encode(slack_message(ids[n % 3], f"Ev{n:04d}", retry=1)))
    envelope = {"type": "block_actions", "team": {"id": "T1"}, "channel": {"id": "C1"}}
    form = urlencode({"payload": orjson.dumps(envelope).decode()})
    tick = CronTick(
        tick_id="tick-1",
        trigger_id=ids[4],
        schedule="@hourly",
        timezone="UTC",
        scheduled_at=datetime(2026, 12, 1, 12, tzinfo=UTC),
        fired_at=datetime(2026, 12, 1, 12, 0, 1, tzinfo=UTC),
    )
    filter_error = {"type": "event_callback", "event_id": "EvNoText", "event": {"type": "message"}}
    records += [
        RAW_EVENTS.encode(
            raw(ids[0], "slack", form, content_type="application/x-www-form-urlencoded")
        ),
        RAW_EVENTS.encode(raw(ids[0], "slack", orjson.dumps(filter_error).decode())),
        RAW_EVENTS.encode(raw(ids[2], "slack", '{"type": "app_rate_limited"}')),
        RAW_EVENTS.encode(raw(ids[2], "slack", "not json")),
        RAW_EVENTS.encode(
            raw(ids[3], "webhook", '{"conv": "c1", "n": 1}', headers={"webhook-id": "w1"})
        ),
        RAW_EVENTS.encode(
            raw(ids[3], "webhook", '{"conv": "c1", "n": 2}', headers={"webhook-id": "w2"})
        ),
        RAW_EVENTS.encode(raw(ids[4], "cron", CRON_TICK.encode(tick).decode())),
        RAW_EVENTS.encode(raw(ids[5], "slack", "{}")),
        b"not a raw event",
    ]
    return configs, records


async def run_engine(
    settings: Settings, engine: str, configs: list[TriggerConfig], values: list[bytes]
) -> None:
    async with Records(settings) as writer:
        for config in configs:
            await writer.config(config)
    producer = durable_producer(settings)
    await producer.start()
    try:
        topic = RAW_EVENTS.name(settings.topics.prefix)
        for value in values:
            key = orjson.loads(value)["trigger_id"].encode() if value.startswith(b"{") else b"k"
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()
    with processor_workers(settings, 1, engine):

        async def committed() -> bool | None:
            return True if await raw_events_committed(settings) else None

        await eventually(committed, timeout_s=90, interval_s=0.5)


async def outputs(settings: Settings) -> dict[str, Any]:
    """What the processors wrote, without what differs by run: decision and failure times,
    the topic prefix."""
    prefix = settings.topics.prefix
    routed = await read_all(settings, ROUTED_EVENTS.name(prefix))
    # Each trigger's events are on one raw partition, so their order per conversation is fixed.
    order: dict[tuple[bytes, str], list[str]] = {}
    for key, value in routed:
        event = ROUTED_EVENTS.decode(value)
        order.setdefault((key or b"", event.triggerid), []).append(event.id)
    decisions = [
        DELIVERY_LOG.encode(msgspec.structs.replace(DELIVERY_LOG.decode(v), at=datetime.min))
        for _, v in await read_all(settings, DELIVERY_LOG.name(prefix))
    ]
    letters = []
    for _, value in await read_all(settings, DEAD_LETTERS.name(prefix)):
        letter = DEAD_LETTERS.decode(value)
        unprefixed = msgspec.structs.replace(
            letter,
            failed_at=datetime.min,
            source_topic=letter.source_topic.removeprefix(prefix),
            error=(letter.error or "").replace(prefix, "<prefix>"),
        )
        letters.append(DEAD_LETTERS.encode(unprefixed))
    return {
        "routed": Counter(value for _, value in routed),
        "order": order,
        "decisions": Counter(decisions),
        "dead_letters": Counter(letters),
    }


async def test_both_engines_route_decide_and_dead_letter_alike(
    engine_settings: dict[str, Settings],
) -> None:
    configs, values = workload()
    results = {}
    for engine, settings in engine_settings.items():
        await run_engine(settings, engine, configs, values)
        results[engine] = await outputs(settings)

    batch, faust = results["batch"], results["faust"]
    assert batch == faust
    outcomes = Counter(DELIVERY_LOG.decode(d).outcome for d in batch["decisions"].elements())
    assert set(outcomes) == {
        "routed",
        "skipped",
        "filter_error",
        "duplicate",
        "ignored",
        "dead_lettered",
    }
    assert sum(batch["dead_letters"].values()) == 2


async def test_switching_engines_mid_stream_keeps_offsets_and_marks(settings: Settings) -> None:
    exits = []
    async with Records(settings) as records:
        triggers = await one_trigger_per_partition(records)
        async with steady_stream(records, triggers, resends=5) as sent:
            for engine in ("faust", "batch", "faust"):
                with processor_workers(settings, 1, engine) as group:
                    await routed_grows_by(settings, 300)
                    exits.append(await group.stop_worker(group.workers[0], signal.SIGTERM))
        with processor_workers(settings, 1, "batch"):
            events = await all_routed(settings, len(sent.events))

    assert exits == [0, 0, 0]
    assert_exactly_once(events, sent.events)
    # Resends of events the other engine handled were recognised too.
    await assert_decided_once(settings, sent)
