"""Writes single records straight to a topic, bypassing the stages that would produce them."""

from __future__ import annotations

from runtime.kafka import durable_producer
from runtime.settings import Settings

# (partition, offset) of a record on its topic.
Position = tuple[int, int]


async def produce(settings: Settings, topic: str, key: bytes, value: bytes) -> Position:
    """Writes one record and waits for the broker's acknowledgement; where it landed."""
    producer = durable_producer(settings)
    await producer.start()
    try:
        metadata = await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()
    return metadata.partition, metadata.offset
