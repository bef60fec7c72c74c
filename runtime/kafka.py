"""The one place Kafka clients are built, so every service gets the same safe defaults."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import murmurhash2
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import DefaultPartitioner

from runtime.settings import Settings
from schemas.topics import MAX_RECORD_BYTES

# Kafka's default partitioner (the Java client's and aiokafka's): murmur2 with this seed.
_MURMUR2_SEED = 0x9747B28C
_AIOKAFKA_PARTITIONER = DefaultPartitioner()


def key_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives `key`, so that every Triggerline
    producer (and any Java client) puts one correlation id on one partition."""
    return (murmurhash2.murmurhash2(key, _MURMUR2_SEED) & 0x7FFFFFFF) % partitions


def default_partitioner(
    key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]
) -> int:
    """aiokafka's default partitioner with murmur2 in C rather than in Python, which costs
    several microseconds a record."""
    if key is None:
        return int(_AIOKAFKA_PARTITIONER(key, all_partitions, available))
    return all_partitions[key_partition(key, len(all_partitions))]


def durable_producer(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    """An idempotent producer; a send completes once every in-sync replica has the record."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka.bootstrap_servers,
        "acks": "all",
        "enable_idempotence": True,
        # A short linger batches concurrent requests without adding noticeable latency.
        "linger_ms": 2,
        "client_id": f"{settings.topics.prefix}-producer",
        "max_request_size": MAX_RECORD_BYTES,
        "partitioner": default_partitioner,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


def group_consumer(
    settings: Settings, *topics: str, group: str, **overrides: Any
) -> AIOKafkaConsumer:
    """A consumer-group member that commits by hand, only after the effect of a record."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka.bootstrap_servers,
        "group_id": group,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        # Never act on records of transactions the processors aborted.
        "isolation_level": "read_committed",
        "client_id": f"{group}-consumer",
    }
    options.update(overrides)
    return AIOKafkaConsumer(*topics, **options)


def standalone_consumer(settings: Settings, *topics: str, **overrides: Any) -> AIOKafkaConsumer:
    """A consumer outside any group, for reading a whole topic (compacted views, tools)."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka.bootstrap_servers,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "isolation_level": "read_committed",
    }
    options.update(overrides)
    return AIOKafkaConsumer(*topics, **options)


def admin_client(settings: Settings, **overrides: Any) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers, **overrides)


async def whole_topic_consumer(settings: Settings, topic: str) -> AIOKafkaConsumer:
    """A started consumer outside any group, assigned every partition of `topic` from the start.

    Without a group, aiokafka assigns a subscribed topic's partitions itself once it has the
    topic's metadata, which `start()` waits for.
    """
    consumer = standalone_consumer(settings, topic)
    try:
        await consumer.start()
        partitions = consumer.assignment()
        if partitions:
            await consumer.seek_to_beginning(*partitions)
    except BaseException:
        # Cancelled or failed while it starts: the consumer must not outlive its caller.
        await consumer.stop()
        raise
    if not partitions:
        await consumer.stop()
        raise LookupError(f"topic {topic} does not exist; run `triggerline topics ensure`")
    return consumer


async def reached(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    """Whether the consumer's position has reached `ends` on every partition."""
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True
