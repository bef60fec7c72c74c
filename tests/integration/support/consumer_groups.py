"""How far a stage's consumer group has committed, read from the broker."""

from __future__ import annotations

from runtime.kafka import admin_client, whole_topic_consumer
from runtime.settings import Settings


async def uncommitted(settings: Settings, topic: str, stage: str) -> dict[int, int]:
    """Per partition of `topic`, how many records `stage`'s group has not committed."""
    consumer = await whole_topic_consumer(settings, topic)
    admin = admin_client(settings)
    await admin.start()
    try:
        ends = await consumer.end_offsets(list(consumer.assignment()))
        committed = await admin.list_consumer_group_offsets(settings.group(stage))
    finally:
        await admin.close()
        await consumer.stop()
    behind = {}
    for tp, end in ends.items():
        offset = committed.get(tp)
        done = offset.offset if offset is not None and offset.offset >= 0 else 0
        if end > done:
            behind[tp.partition] = end - done
    return behind
