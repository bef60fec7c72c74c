"""What Triggerline needs from the pinned broker, shown with the clients it uses.

Kafka 4.x dropped old protocol versions; aiokafka speaks old versions of the transactional
requests. These tests are why the pinned broker version is what it is.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import NewTopic

from runtime.kafka import (
    admin_client,
    durable_producer,
    group_consumer,
)
from runtime.settings import Settings
from tests.integration.support.polling import eventually
from tests.integration.support.topic_reader import read_until

pytestmark = pytest.mark.integration

FAUST_APP = Path(__file__).parent / "support" / "faust_eos_app.py"


async def create_topics(settings: Settings, *names: str, partitions: int = 2) -> None:
    admin = admin_client(settings)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    finally:
        await admin.close()


async def read_values(settings: Settings, topic: str, expected: int) -> list[bytes]:
    records = await read_until(settings, topic, lambda seen: len(seen) >= expected)
    return [value for _, value in records if value is not None]


async def test_idempotent_producer_transactions_and_consumer_group(base_settings: Settings) -> None:
    source, sink = f"smoke-in-{uuid.uuid4().hex[:8]}", f"smoke-out-{uuid.uuid4().hex[:8]}"
    await create_topics(base_settings, source, sink)

    producer = durable_producer(base_settings)
    await producer.start()
    try:
        for i in range(10):
            await producer.send_and_wait(source, f"v{i}".encode(), key=f"k{i}".encode())
    finally:
        await producer.stop()

    group = f"smoke-{uuid.uuid4().hex[:8]}"
    consumer: AIOKafkaConsumer = group_consumer(base_settings, source, group=group)
    transactional = durable_producer(base_settings, transactional_id=f"smoke-{uuid.uuid4().hex}")
    await consumer.start()
    await transactional.start()
    try:
        seen: dict[TopicPartition, int] = {}
        count = 0
        async with asyncio.timeout(60):
            while count < 10:
                for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                    count += len(records)
                    seen[tp] = records[-1].offset + 1
        async with transactional.transaction():
            await transactional.send(sink, b"copied", key=b"k")
            await transactional.send_offsets_to_transaction(seen, group)

        # Offsets sent inside the transaction become the group's committed offsets once the
        # coordinator has applied the commit marker, which follows the commit shortly.
        async def offsets_committed() -> bool | None:
            committed = [await consumer.committed(tp) for tp in seen]
            return True if committed == list(seen.values()) else None

        await eventually(offsets_committed)
    finally:
        await transactional.stop()
        await consumer.stop()
    assert await read_values(base_settings, sink, 1) == [b"copied"]


async def test_faust_worker_processes_with_exactly_once(base_settings: Settings) -> None:
    source, sink = f"faust-in-{uuid.uuid4().hex[:8]}", f"faust-out-{uuid.uuid4().hex[:8]}"
    await create_topics(base_settings, source, sink)
    producer = durable_producer(base_settings)
    await producer.start()
    try:
        for i in range(20):
            await producer.send_and_wait(source, f"e{i}".encode(), key=f"k{i % 4}".encode())
    finally:
        await producer.stop()

    env = {
        **os.environ,
        "SMOKE_SOURCE": source,
        "SMOKE_SINK": sink,
        "SMOKE_APP_ID": f"smoke-{uuid.uuid4().hex[:8]}",
        "KAFKA_BOOTSTRAP_SERVERS": base_settings.kafka.bootstrap_servers,
        "TRIGGERLINE_LOCAL_DIR": str(base_settings.local_dir),
    }
    worker = await asyncio.create_subprocess_exec(sys.executable, str(FAUST_APP), env=env)
    try:
        outputs = await read_values(base_settings, sink, 20)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(worker.wait(), 20)
        except TimeoutError:
            worker.kill()
            await worker.wait()
    assert sorted(outputs) == sorted(f"e{i}:done".encode() for i in range(20))
