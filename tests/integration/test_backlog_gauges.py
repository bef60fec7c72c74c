"""The backlog gauges measure what is really there: a consumer group's lag on real Kafka, and the
outbox relay's unpublished registry changes in real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import REGISTRY
from psycopg import AsyncConnection

from ingest.registry.outbox_backlog import measure_backlog
from runtime.consumer_lag import ConsumerLagReporter, measure_lag
from runtime.kafka import durable_producer, group_consumer
from runtime.settings import Settings
from schemas.topics import ROUTED_EVENTS
from tests.integration.support.polling import eventually

pytestmark = pytest.mark.integration

SENT = 5
COMMITTED = 2


@pytest.fixture
async def member(settings: Settings) -> AsyncIterator[AIOKafkaConsumer]:
    """A group member that owns every partition of the routed topic, `SENT` records on
    partition 0, and its group's offset committed at `COMMITTED` there."""
    topic = ROUTED_EVENTS.name(settings.topics.prefix)
    producer = durable_producer(settings)
    await producer.start()
    try:
        for n in range(SENT):
            await producer.send_and_wait(topic, f"record {n}".encode(), key=b"k", partition=0)
    finally:
        await producer.stop()
    consumer = group_consumer(settings, topic, group=settings.group("lag-gauge"))
    await consumer.start()
    try:

        async def assigned() -> bool | None:
            await consumer.getmany(timeout_ms=100)
            return len(consumer.assignment()) == ROUTED_EVENTS.partitions or None

        await eventually(assigned)
        await consumer.commit({TopicPartition(topic, 0): COMMITTED})
        yield consumer
    finally:
        await consumer.stop()


async def test_a_members_lag_is_the_end_minus_its_groups_commit(
    settings: Settings, member: AIOKafkaConsumer
) -> None:
    topic = ROUTED_EVENTS.name(settings.topics.prefix)

    lags = await measure_lag(member)

    # Partitions the group never committed count from their start: empty, so 0.
    partitions = range(ROUTED_EVENTS.partitions)
    assert lags == {(topic, p): SENT - COMMITTED if p == 0 else 0 for p in partitions}

    await ConsumerLagReporter(member).report()
    labels = {"topic": topic, "partition": "0"}
    assert REGISTRY.get_sample_value("triggerline_consumer_lag", labels) == SENT - COMMITTED


async def test_the_outbox_backlog_is_its_unpublished_rows_and_the_oldest_ones_age(
    database_url: str,
) -> None:
    async with await AsyncConnection.connect(database_url, autocommit=True) as conn:
        empty = await measure_backlog(conn)
        insert = """
            INSERT INTO trigger_config_outbox (trigger_id, payload, created_at, published_at,
                failed_at)
            VALUES (gen_random_uuid(), NULL, now() - make_interval(secs => %s), %s, %s)
        """
        await conn.execute(insert, (300, "2026-01-01T00:00:00Z", None))  # published
        await conn.execute(insert, (200, None, "2026-01-01T00:00:00Z"))  # set aside
        await conn.execute(insert, (90, None, None))
        await conn.execute(insert, (10, None, None))

        backlog = await measure_backlog(conn)

    assert (empty.rows, empty.oldest_age_s) == (0, 0.0)
    assert backlog.rows == 2
    assert 90 <= backlog.oldest_age_s < 120
