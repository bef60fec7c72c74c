"""The delivery-log sink copies the topic into PostgreSQL once, however often it re-reads it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import psycopg
import pytest

from dispatchers.sink import DeliveryLogSink
from runtime.kafka import durable_producer, group_consumer
from runtime.settings import Settings
from schemas.records import DELIVERY_LOG_RECORD, DeliveryLogRecord
from schemas.topics import DELIVERY_LOG
from tests.integration.polling import eventually

pytestmark = pytest.mark.integration


def stored_rows(settings: Settings) -> list[tuple[str, str, int]]:
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        return conn.execute(
            "SELECT event_id, outcome, attempt FROM delivery_log ORDER BY event_id, attempt"
        ).fetchall()


async def run_sink_until(settings: Settings, group: str, rows: int) -> None:
    consumer = group_consumer(settings, DELIVERY_LOG.name(settings.topic_prefix), group=group)
    await consumer.start()
    sink = DeliveryLogSink(settings, consumer)
    task = asyncio.create_task(sink.run())
    try:

        async def written() -> bool | None:
            got = await asyncio.to_thread(stored_rows, settings)
            return True if len(got) >= rows else None

        await eventually(written)
        # Let the sink pass through the whole topic (its commit follows each insert).
        ends = await consumer.end_offsets(list(consumer.assignment()))

        async def committed_to_end() -> bool | None:
            for tp, end in ends.items():
                if (await consumer.committed(tp) or 0) < end:
                    return None
            return True

        await eventually(committed_to_end)
    finally:
        sink.stop()
        await task
        await consumer.stop()


async def test_rows_arrive_once_even_when_the_topic_is_read_again(settings: Settings) -> None:
    entries = [
        DeliveryLogRecord(
            event_id=f"ev-{n}",
            trigger_id="t-1",
            project_id="p-1",
            stage="dispatcher",
            outcome="retrying" if attempt == 1 else "delivered",
            at=datetime.now(UTC),
            correlation_id="c-1",
            target_kind="http",
            target_ref="https://example.com/hook",
            attempt=attempt,
            http_status=503 if attempt == 1 else 200,
        )
        for n in range(50)
        for attempt in (1, 2)
    ]
    producer = durable_producer(settings)
    await producer.start()
    try:
        topic = DELIVERY_LOG.name(settings.topic_prefix)
        for entry in entries:
            await producer.send(
                topic, DELIVERY_LOG_RECORD.encode(entry), key=entry.event_id.encode()
            )
        await producer.flush()
    finally:
        await producer.stop()

    await run_sink_until(settings, f"{settings.topic_prefix}.sink-a", len(entries))
    first = stored_rows(settings)
    assert len(first) == 100
    assert first[:2] == [("ev-0", "retrying", 1), ("ev-0", "delivered", 2)]

    # A second group reads everything again from the start: nothing is inserted twice.
    await run_sink_until(settings, f"{settings.topic_prefix}.sink-b", len(entries))
    assert stored_rows(settings) == first
