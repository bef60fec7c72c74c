"""The delivery-log sink copies the topic into PostgreSQL once, however often it re-reads it.

A record PostgreSQL refuses never stops it, and rows past their retention are pruned.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from prometheus_client import REGISTRY

from dispatchers.sink import INSERT, DeliveryLogSink
from runtime.kafka import durable_producer, group_consumer
from runtime.settings import Settings
from schemas.records import DeliveryLogRecord
from schemas.topics import DELIVERY_LOG
from tests.integration.support.polling import eventually

pytestmark = pytest.mark.integration


def stored_rows(settings: Settings) -> list[tuple[str, str, int]]:
    with psycopg.connect(settings.database.url.get_secret_value()) as conn:
        return conn.execute(
            "SELECT event_id, outcome, attempt FROM delivery_log ORDER BY event_id, attempt"
        ).fetchall()


async def run_sink_until(settings: Settings, group: str, rows: int) -> None:
    consumer = group_consumer(settings, DELIVERY_LOG.name(settings.topics.prefix), group=group)
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
        topic = DELIVERY_LOG.name(settings.topics.prefix)
        for entry in entries:
            await producer.send(topic, DELIVERY_LOG.encode(entry), key=entry.event_id.encode())
        await producer.flush()
    finally:
        await producer.stop()

    await run_sink_until(settings, f"{settings.topics.prefix}.sink-a", len(entries))
    first = stored_rows(settings)
    assert len(first) == 100
    assert first[:2] == [("ev-0", "retrying", 1), ("ev-0", "delivered", 2)]

    # A second group reads everything again from the start: nothing is inserted twice.
    await run_sink_until(settings, f"{settings.topics.prefix}.sink-b", len(entries))
    assert stored_rows(settings) == first


def log_record(event_id: str, **fields: Any) -> DeliveryLogRecord:
    return DeliveryLogRecord(
        **{
            "event_id": event_id,
            "trigger_id": "t-1",
            "project_id": "p-1",
            "stage": "dispatcher",
            "outcome": "delivered",
            "at": datetime.now(UTC),
            "attempt": 1,
            **fields,
        }
    )


async def produce_log(settings: Settings, entries: list[DeliveryLogRecord]) -> None:
    producer = durable_producer(settings)
    await producer.start()
    try:
        for entry in entries:
            # One key, so one partition, in this order: the good record after the bad ones.
            await producer.send_and_wait(
                DELIVERY_LOG.name(settings.topics.prefix),
                DELIVERY_LOG.encode(entry),
                key=b"same-partition",
            )
    finally:
        await producer.stop()


async def test_refused_rows_are_set_aside_and_the_rest_is_written(settings: Settings) -> None:
    set_aside_before = REGISTRY.get_sample_value("triggerline_sink_rows_set_aside_total") or 0
    await produce_log(
        settings,
        [
            log_record("ev-\x00nul", error="target said \x00", correlation_id="c\x00"),
            # Beyond PostgreSQL's integer: refused as data whatever is done to text.
            log_record("ev-huge", attempt=2**40),
            log_record("ev-ok"),
        ],
    )
    consumer = group_consumer(
        settings, DELIVERY_LOG.name(settings.topics.prefix), group=f"{settings.topics.prefix}.sink"
    )
    await consumer.start()
    sink = DeliveryLogSink(settings, consumer)
    task = asyncio.create_task(sink.run())
    try:

        async def written(count: int) -> bool | None:
            got = await asyncio.to_thread(stored_rows, settings)
            return True if len(got) >= count else None

        await eventually(lambda: written(2))
        assert {row[0] for row in stored_rows(settings)} == {"ev-\ufffdnul", "ev-ok"}
        with psycopg.connect(settings.database.url.get_secret_value()) as conn:
            assert conn.execute(
                "SELECT error, correlation_id FROM delivery_log WHERE event_id = 'ev-\ufffdnul'"
            ).fetchone() == ("target said \ufffd", "c\ufffd")
        set_aside = REGISTRY.get_sample_value("triggerline_sink_rows_set_aside_total")
        assert set_aside == set_aside_before + 1
        # The sink is still running and writes what comes next.
        await produce_log(settings, [log_record("ev-after")])
        await eventually(lambda: written(3))
        assert not task.done()
    finally:
        sink.stop()
        await task
        await consumer.stop()


async def test_rows_past_the_retention_are_pruned(settings: Settings) -> None:
    old = datetime.now(UTC) - timedelta(seconds=settings.sink.delivery_log_retention_s + 60)
    with psycopg.connect(settings.database.url.get_secret_value()) as conn:
        conn.cursor().executemany(
            INSERT,
            [
                (0, n, f"ev-old-{n}", "t", "p", "dispatcher", "delivered", old)
                + (None,) * 3
                + (1,)
                + (None,) * 4
                + (False, None, None, None)
                for n in range(3)
            ],
        )
    await produce_log(settings, [log_record("ev-new")])
    await run_sink_until(settings, f"{settings.topics.prefix}.sink", 1)
    assert [row[0] for row in stored_rows(settings)] == ["ev-new"]


async def test_target_urls_are_stored_without_credentials(settings: Settings) -> None:
    # Whoever wrote the record, the table never holds the URL's credentials.
    ref = "https://alice:pw-SECRET@hooks.example/in?token=tok-SECRET"
    await produce_log(
        settings,
        [
            log_record("ev-http", target_kind="http", target_ref=ref),
            log_record("ev-kafka", target_kind="kafka", target_ref="orders.created"),
        ],
    )
    await run_sink_until(settings, f"{settings.topics.prefix}.sink", 2)
    with psycopg.connect(settings.database.url.get_secret_value()) as conn:
        stored = conn.execute(
            "SELECT event_id, target_ref FROM delivery_log ORDER BY event_id"
        ).fetchall()
    assert stored == [
        ("ev-http", "https://redacted:redacted@hooks.example/in?token=redacted"),
        ("ev-kafka", "orders.created"),
    ]
