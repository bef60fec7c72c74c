"""Where a time range lies on the raw-events topic, and reading the raw events in it.

Replays, their dry runs and filter previews all read history here. Positions come from the
broker's time index (`offsets_for_times`): each record's timestamp is when ingest produced it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.codec import RecordDecodeError, RecordPosition
from schemas.records import RawEvent
from schemas.topics import RAW_EVENTS

FETCH_TIMEOUT_MS = 500


@dataclass(frozen=True, slots=True)
class Span:
    """Offsets [start, end) of one partition."""

    start: int
    end: int

    @property
    def size(self) -> int:
        return max(0, self.end - self.start)


def millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


async def spans_between(
    consumer: AIOKafkaConsumer, since: datetime, until: datetime
) -> dict[TopicPartition, Span]:
    """Per assigned partition, the offsets of the records stamped in [since, until).

    A bound past the newest record is the partition's end; `until` is fixed when this is
    called, so records produced later are never part of the range.
    """
    partitions = sorted(consumer.assignment(), key=lambda tp: tp.partition)
    ends = await consumer.end_offsets(partitions)
    starts = await consumer.offsets_for_times({tp: millis(since) for tp in partitions})
    stops = await consumer.offsets_for_times({tp: millis(until) for tp in partitions})
    spans = {}
    for tp in partitions:
        start = starts[tp].offset if starts[tp] is not None else ends[tp]
        stop = stops[tp].offset if stops[tp] is not None else ends[tp]
        spans[tp] = Span(start, stop)
    return spans


@dataclass(frozen=True, slots=True)
class HistoricRecord:
    """A raw-events record, decoded when it could be."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes
    event: RawEvent | None


async def read_spans(
    consumer: AIOKafkaConsumer, spans: dict[TopicPartition, Span], max_records: int = 2000
) -> AsyncGenerator[list[HistoricRecord], None]:
    """Batches of the records in `spans`, each partition in offset order.

    The consumer must be assigned the spans' partitions; this seeks it to each start.
    """
    remaining = {tp: span for tp, span in spans.items() if span.size}
    for tp, span in remaining.items():
        consumer.seek(tp, span.start)
    paused = [tp for tp in consumer.assignment() if tp not in remaining]
    if paused:
        consumer.pause(*paused)
    while remaining:
        fetched = await consumer.getmany(
            *remaining, timeout_ms=FETCH_TIMEOUT_MS, max_records=max_records
        )
        batch: list[HistoricRecord] = []
        for tp, records in fetched.items():
            if tp not in remaining:
                continue
            span = remaining[tp]
            for record in records:
                if record.offset >= span.end:
                    break
                batch.append(decoded(tp, record.offset, record.key, record.value or b""))
            if await consumer.position(tp) >= span.end:
                del remaining[tp]
                consumer.pause(tp)
        if batch:
            yield batch


def decoded(tp: TopicPartition, offset: int, key: bytes | None, value: bytes) -> HistoricRecord:
    position = RecordPosition(tp.topic, tp.partition, offset)
    try:
        event: RawEvent | None = RAW_EVENTS.decode(value, position)
    except RecordDecodeError:
        event = None
    return HistoricRecord(tp.partition, offset, key, value, event)
