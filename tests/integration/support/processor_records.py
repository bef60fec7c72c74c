"""Test input for processor workers: Slack triggers and events, written to the raw and
trigger-config topics by an idempotent producer."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka.partitioner import DefaultPartitioner

from runtime.kafka import durable_producer
from runtime.settings import Settings
from schemas.records import RawEvent
from schemas.topics import RAW_EVENTS, TRIGGER_CONFIG
from schemas.triggers import DEFAULT_DESTINATION, Destination, Target, TriggerConfig, TriggerStatus

PROJECT = "p-processor-tests"


def triggers_on_every_partition() -> list[str]:
    """One trigger id per raw-events partition, so that every worker of a group owns some."""
    partitioner = DefaultPartitioner()
    partitions = list(range(RAW_EVENTS.partitions))
    by_partition: dict[int, str] = {}
    while len(by_partition) < len(partitions):
        candidate = str(uuid.uuid4())
        by_partition.setdefault(partitioner(candidate.encode(), partitions, partitions), candidate)
    return [by_partition[p] for p in partitions]


async def one_trigger_per_partition(records: Records) -> list[str]:
    """Publishes an active Slack trigger for every raw-events partition; their ids."""
    triggers = triggers_on_every_partition()
    for trigger_id in triggers:
        await records.config(slack_trigger(trigger_id))
    return triggers


def slack_trigger(
    trigger_id: str,
    *,
    revision: int = 1,
    status: TriggerStatus = "active",
    destinations: tuple[Destination, ...] = (Destination(DEFAULT_DESTINATION, Target("noop")),),
    **config: Any,
) -> TriggerConfig:
    return TriggerConfig(
        trigger_id=trigger_id,
        project_id=PROJECT,
        definition="slack",
        name=f"slack-{trigger_id[:8]}",
        status=status,
        destinations=destinations,
        updated_at=datetime.now(UTC),
        revision=revision,
        config=config,
    )


def slack_message(
    trigger_id: str, event_id: str, text: str = "hello", *, retry: int | None = None
) -> RawEvent:
    """A Slack message event; with `retry`, Slack's resend of it (same event id)."""
    envelope = {
        "type": "event_callback",
        "team_id": "T1",
        "event_id": event_id,
        "event_time": 1_764_000_000,
        "event": {"type": "message", "channel": "C1", "user": "U1", "text": text, "ts": "1.1"},
    }
    return RawEvent(
        id=uuid.uuid4().hex,
        trigger_id=trigger_id,
        project_id=PROJECT,
        definition="slack",
        received_at=datetime.now(UTC),
        content_type="application/json",
        body=orjson.dumps(envelope).decode(),
        headers={} if retry is None else {"x-slack-retry-num": str(retry)},
    )


class Records:
    """An idempotent producer for test input on the raw and trigger-config topics."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._producer = durable_producer(settings, linger_ms=5)

    async def __aenter__(self) -> Records:
        await self._producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._producer.stop()

    async def config(self, config: TriggerConfig) -> None:
        topic = TRIGGER_CONFIG.name(self._settings.topics.prefix)
        await self._producer.send_and_wait(
            topic, TRIGGER_CONFIG.encode(config), key=config.trigger_id.encode()
        )

    async def delete(self, trigger_id: str) -> None:
        topic = TRIGGER_CONFIG.name(self._settings.topics.prefix)
        await self._producer.send_and_wait(topic, None, key=trigger_id.encode())

    async def raw(self, *events: RawEvent) -> None:
        topic = RAW_EVENTS.name(self._settings.topics.prefix)
        futures = [
            await self._producer.send(topic, RAW_EVENTS.encode(e), key=e.trigger_id.encode())
            for e in events
        ]
        for future in futures:
            await future


@dataclass
class Sent:
    """What a test stream sent: distinct events, and those of them that were resent once."""

    events: set[str]
    resent: set[str]


async def produce_steadily(
    records: Records, triggers: list[str], total: int, batch: int = 100, resends: int = 0
) -> Sent:
    """`total` distinct Slack events spread over the triggers, a batch every 50 ms; with
    `resends`, each batch also resends (as Slack retries) that many events of the one before."""
    sent: list[str] = []
    resent: set[str] = set()
    while len(sent) < total:
        ids = [f"Ev{uuid.uuid4().hex}" for _ in range(min(batch, total - len(sent)))]
        again = sent[-batch:][:resends]
        await records.raw(
            *(slack_message(trigger_of(triggers, i), i) for i in ids),
            *(slack_message(trigger_of(triggers, i), i, retry=1) for i in again),
        )
        sent.extend(ids)
        resent.update(again)
        await asyncio.sleep(0.05)
    return Sent(set(sent), resent)


async def produce_until(
    records: Records, triggers: list[str], stop: asyncio.Event, sent: Sent, resends: int = 2
) -> None:
    """20 distinct events every 50 ms, plus `resends` resends of the batch before, until
    `stop`; what was sent accumulates in `sent` as it goes."""
    previous: list[str] = []
    while not stop.is_set():
        ids = [f"Ev{uuid.uuid4().hex}" for _ in range(20)]
        again = previous[:resends]
        await records.raw(
            *(slack_message(trigger_of(triggers, i), i) for i in ids),
            *(slack_message(trigger_of(triggers, i), i, retry=1) for i in again),
        )
        sent.events.update(ids)
        sent.resent.update(again)
        previous = ids
        await asyncio.sleep(0.05)


@asynccontextmanager
async def steady_stream(
    records: Records, triggers: list[str], resends: int = 2
) -> AsyncIterator[Sent]:
    """`produce_until` for as long as the block runs; the `Sent` it yields fills as events go
    out and is complete once the block has exited."""
    sent = Sent(set(), set())
    stop = asyncio.Event()
    producing = asyncio.create_task(produce_until(records, triggers, stop, sent, resends))
    try:
        yield sent
    finally:
        stop.set()
        await producing


def trigger_of(triggers: list[str], event_id: str) -> str:
    """The trigger an event id is sent to, the same for its resends."""
    return triggers[int(event_id[2:10], 16) % len(triggers)]
