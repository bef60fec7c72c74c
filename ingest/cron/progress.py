"""Reads the cron progress topic: the last scheduled time fired per trigger."""

from __future__ import annotations

import logging
from datetime import datetime

from runtime.kafka import reached, whole_topic_consumer
from runtime.settings import Settings
from schemas.codec import RecordDecodeError, RecordPosition
from schemas.topics import CRON_PROGRESS

log = logging.getLogger("triggerline.cron")


async def load_progress(settings: Settings) -> dict[str, datetime]:
    """Every trigger's last fired scheduled time, as committed by any former leader."""
    topic = CRON_PROGRESS.name(settings.topics.prefix)
    consumer = await whole_topic_consumer(settings, topic)
    progress: dict[str, datetime] = {}
    try:
        ends = await consumer.end_offsets(list(consumer.assignment()))
        while not await reached(consumer, ends):
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                for record in records:
                    key = record.key.decode() if record.key else ""
                    if record.value is None:
                        progress.pop(key, None)
                        continue
                    try:
                        entry = CRON_PROGRESS.decode(
                            record.value, RecordPosition(tp.topic, tp.partition, record.offset)
                        )
                    except RecordDecodeError as exc:
                        log.error(
                            "undecodable cron progress; ignoring it", extra={"error": str(exc)}
                        )
                        continue
                    progress[key] = entry.last_scheduled_at
    finally:
        await consumer.stop()
    return progress
