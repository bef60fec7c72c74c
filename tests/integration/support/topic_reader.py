"""Reads a topic from the beginning, for assertions on what the pipeline wrote."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiokafka import ConsumerRecord

from runtime.kafka import reached, whole_topic_consumer
from runtime.settings import Settings

Record = tuple[bytes | None, bytes | None]


async def read_until(
    settings: Settings,
    topic: str,
    done: Callable[[list[Record]], bool],
    timeout_s: float = 60.0,
) -> list[Record]:
    """Every committed record of `topic`, read until `done(records)` holds or time runs out."""
    consumer = await whole_topic_consumer(settings, topic)
    seen: list[Record] = []
    try:
        async with asyncio.timeout(timeout_s):
            while not done(seen):
                batch = await consumer.getmany(timeout_ms=300)
                seen.extend((m.key, m.value) for records in batch.values() for m in records)
    finally:
        await consumer.stop()
    return seen


async def read_all(settings: Settings, topic: str) -> list[Record]:
    """Every committed record of `topic` up to its current end, as (key, value)."""
    return [(m.key, m.value) for m in await read_all_records(settings, topic)]


async def read_all_records(settings: Settings, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every committed record of `topic` up to its current end, headers and all."""
    consumer = await whole_topic_consumer(settings, topic)
    seen: list[ConsumerRecord[bytes, bytes]] = []
    try:
        ends = await consumer.end_offsets(list(consumer.assignment()))
        async with asyncio.timeout(60):
            while not await reached(consumer, ends):
                batch = await consumer.getmany(timeout_ms=300)
                seen.extend(m for records in batch.values() for m in records)
    finally:
        await consumer.stop()
    return seen
