"""A config view on real Kafka: a lookup of an unknown id catches up with the topic at once
(a backlog of events for unknown triggers costs a sync each), and a config written just before
is found."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from runtime import config_view
from runtime.config_view import TriggerConfigView
from runtime.kafka import durable_producer
from runtime.settings import Settings
from schemas.topics import TRIGGER_CONFIG
from schemas.triggers import Target, TriggerConfig

pytestmark = pytest.mark.integration


def config(trigger_id: str) -> TriggerConfig:
    return TriggerConfig(
        trigger_id=trigger_id,
        project_id=str(uuid.uuid4()),
        definition="webhook",
        name="synced",
        status="active",
        target=Target("noop"),
        updated_at=datetime.now(UTC),
        revision=1,
    )


async def test_lookups_of_unknown_ids_do_not_wait_out_the_poll(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A poll this long would hold each lookup for ten minutes if a sync waited for it; and a
    # sync whose end offsets queued behind the fetch long-poll would take half a second.
    monkeypatch.setattr(config_view, "SYNC_POLL_MS", 600_000)
    view: TriggerConfigView[str] = TriggerConfigView(settings, "test", lambda c: c.name)
    await view.start()
    try:
        await view.wait_ready(30)
        async with asyncio.timeout(30):
            for _ in range(100):
                assert await view.lookup(str(uuid.uuid4())) is None
            created = config(str(uuid.uuid4()))
            producer = durable_producer(settings)
            await producer.start()
            try:
                await producer.send_and_wait(
                    TRIGGER_CONFIG.name(settings.topics.prefix),
                    TRIGGER_CONFIG.encode(created),
                    key=created.trigger_id.encode(),
                )
            finally:
                await producer.stop()
            assert await view.lookup(created.trigger_id) == "synced"
    finally:
        await view.stop()
