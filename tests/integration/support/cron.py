"""Shared pieces of the cron producer's integration tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from runtime.kafka import durable_producer
from runtime.settings import Settings
from schemas.ticks import CRON_TICK, CronProgress, CronTick
from schemas.topics import CRON_PROGRESS, RAW_EVENTS, TRIGGER_CONFIG
from schemas.triggers import Target, TriggerConfig, TriggerStatus
from tests.integration.support.topic_reader import read_all, read_until


@dataclass
class SteppedClock:
    """A clock the test sets by hand."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


def cron_config(
    schedule: str,
    changed_at: datetime,
    status: TriggerStatus = "active",
    revision: int = 1,
    trigger_id: str | None = None,
    **config: Any,
) -> TriggerConfig:
    return TriggerConfig(
        trigger_id=trigger_id or str(uuid.uuid4()),
        project_id="p-cron",
        definition="cron",
        name=f"cron-{uuid.uuid4().hex[:6]}",
        status=status,
        target=Target("noop"),
        updated_at=changed_at,
        revision=revision,
        config={"schedule": schedule, "timezone": "UTC", **config},
    )


async def publish(
    settings: Settings, *configs: TriggerConfig, progress: list[CronProgress] | None = None
) -> None:
    """Write trigger configs (and, to stage an outage, earlier progress) straight to the topics."""
    producer = durable_producer(settings)
    await producer.start()
    try:
        for config in configs:
            await producer.send_and_wait(
                TRIGGER_CONFIG.name(settings.topics.prefix),
                TRIGGER_CONFIG.encode(config),
                key=config.trigger_id.encode(),
            )
        for entry in progress or []:
            await producer.send_and_wait(
                CRON_PROGRESS.name(settings.topics.prefix),
                CRON_PROGRESS.encode(entry),
                key=entry.trigger_id.encode(),
            )
    finally:
        await producer.stop()


def ticks_of(records: list[tuple[bytes | None, bytes | None]]) -> list[CronTick]:
    return [
        CRON_TICK.decode(RAW_EVENTS.decode(value).body.encode()) for _, value in records if value
    ]


async def wait_for_ticks(settings: Settings, count: int, timeout_s: float = 60) -> list[CronTick]:
    topic = RAW_EVENTS.name(settings.topics.prefix)
    await read_until(settings, topic, lambda seen: len(seen) >= count, timeout_s)
    return ticks_of(await read_all(settings, topic))
