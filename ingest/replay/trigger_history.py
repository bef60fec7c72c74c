"""One trigger's raw events on the raw-events topic: its newest N, those of a time range, or
one event by its id and the time ingest received it (the console's journey payload).

Raw records are keyed by trigger id, so a trigger's events share one partition with those of
other triggers whose ids hash there. Every read goes through `raw_history.read_spans` on that
one partition, bounded in records, and skip the copies replays produce: they are
history's repeats, not events a sender sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

from ingest.registry.errors import RegistryError
from ingest.replay.raw_history import Span, read_spans, spans_between
from ingest.replay.selection import Selector
from runtime.kafka import standalone_consumer
from runtime.settings import Settings
from schemas.records import RawEvent
from schemas.topics import RAW_EVENTS

# Records read at most for one answer, whatever the window: other triggers' events share the
# partition, and reading 100,000 of them takes 0.6 to 0.8 s (benchmarks/filter_preview.py).
MAX_SCANNED = 100_000
# The newest N are looked for in the last 2N records of the partition first, then in chunks
# twice as large each time further back.
FIRST_CHUNK_PER_EVENT = 2
MIN_CHUNK = 500
# A time range is read forwards in chunks of this many records, so that reading stops soon
# after the event limit is passed.
RANGE_CHUNK = 5000
# Fetches large enough that a chunk takes few round trips (raw records are ~1 KiB).
FETCH_BYTES = 8 * 1024 * 1024


class HistoryUnavailable(RegistryError):
    """The raw-events topic could not be read; retrying later may work."""

    status = 503


@dataclass(frozen=True, slots=True)
class TriggerHistory:
    """The trigger's events found, oldest first, and how the reading ended."""

    events: list[RawEvent]
    scanned: int
    # Stopped at MAX_SCANNED before the window was covered.
    scan_bound_reached: bool
    # A time range held more of the trigger's events than were asked for; the oldest are kept.
    event_limit_reached: bool = False


@asynccontextmanager
async def trigger_partition(
    settings: Settings, trigger_id: str
) -> AsyncIterator[tuple[AIOKafkaConsumer, TopicPartition]]:
    """A started consumer assigned only the partition the trigger's events are written to."""
    topic = RAW_EVENTS.name(settings.topics.prefix)
    consumer = standalone_consumer(
        settings, topic, max_partition_fetch_bytes=FETCH_BYTES, fetch_max_bytes=FETCH_BYTES
    )
    try:
        # Subscribed without a group, start() waits for the topic's metadata and assigns every
        # partition; only the trigger's one is kept.
        await consumer.start()
        partitions = sorted(tp.partition for tp in consumer.assignment())
        if not partitions:
            raise HistoryUnavailable(f"topic {topic} does not exist")
        # The partition ingest's producer picks for the trigger id as key.
        partition = DefaultPartitioner()(trigger_id.encode(), partitions, partitions)
        consumer.unsubscribe()
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        yield consumer, tp
    except KafkaError as exc:
        raise HistoryUnavailable(
            f"raw events unavailable ({type(exc).__name__}); retry later"
        ) from exc
    finally:
        await consumer.stop()


async def newest_events(
    consumer: AIOKafkaConsumer,
    tp: TopicPartition,
    trigger_id: str,
    count: int,
    *,
    max_scanned: int = MAX_SCANNED,
) -> TriggerHistory:
    """The trigger's newest `count` events, read backwards from the end in growing chunks."""
    key = trigger_id.encode()
    end = (await consumer.end_offsets([tp]))[tp]
    floor = (await consumer.beginning_offsets([tp]))[tp]
    chunk = max(count * FIRST_CHUNK_PER_EVENT, MIN_CHUNK)
    found: list[RawEvent] = []
    covered = scanned = 0
    while end > floor and len(found) < count and covered < max_scanned:
        start = max(floor, end - min(chunk, max_scanned - covered))
        older, read = await _events_of(consumer, tp, Span(start, end), key)
        found = older + found
        scanned += read
        covered += end - start
        end, chunk = start, chunk * 2
    return TriggerHistory(
        events=found[-count:],
        scanned=scanned,
        scan_bound_reached=end > floor and len(found) < count,
    )


async def events_between(
    consumer: AIOKafkaConsumer,
    tp: TopicPartition,
    trigger_id: str,
    *,
    since: datetime,
    until: datetime,
    limit: int,
    max_scanned: int = MAX_SCANNED,
) -> TriggerHistory:
    """The trigger's events ingest wrote in [since, until), the oldest `limit` of them; read
    forwards in chunks until more than `limit` are found."""
    key = trigger_id.encode()
    span = (await spans_between(consumer, since, until))[tp]
    end = min(span.end, span.start + max_scanned)
    found: list[RawEvent] = []
    scanned, start = 0, span.start
    while start < end and len(found) <= limit:
        stop = min(end, start + RANGE_CHUNK)
        newer, read = await _events_of(consumer, tp, Span(start, stop), key)
        found.extend(newer)
        scanned += read
        start = stop
    return TriggerHistory(
        events=found[:limit],
        scanned=scanned,
        scan_bound_reached=start < span.end and len(found) <= limit,
        event_limit_reached=len(found) > limit,
    )


# Ingest stamps `received_at` just before it produces the raw record, whose broker timestamp
# is when the producer sent it: within the produce timeout, unless the producer retried. The
# record is looked for among those stamped from a little before to well after.
RECORD_STAMPED_BEFORE = timedelta(seconds=2)
RECORD_STAMPED_AFTER = timedelta(seconds=30)
# Records one lookup reads at most: a page shows the payload within its time budget.
EVENT_MAX_SCANNED = 5000


@dataclass(frozen=True, slots=True)
class EventLookup:
    """One event's raw record, if found, and how many records were read for it."""

    event: RawEvent | None
    scanned: int
    # Stopped at the bound before the window was covered.
    scan_bound_reached: bool


async def event_received_at(
    consumer: AIOKafkaConsumer,
    tp: TopicPartition,
    trigger_id: str,
    event_id: str,
    received_at: datetime,
    *,
    max_scanned: int = EVENT_MAX_SCANNED,
) -> EventLookup:
    """The trigger's raw event whose sender's id is `event_id`, as ingest accepted it at
    `received_at` (never a replay's copy), read from where the broker's time index puts it."""
    key = trigger_id.encode()
    window = await spans_between(
        consumer, received_at - RECORD_STAMPED_BEFORE, received_at + RECORD_STAMPED_AFTER
    )
    span = window[tp]
    end = min(span.end, span.start + max_scanned)
    scanned = 0
    consumer.resume(tp)
    async with aclosing(read_spans(consumer, {tp: Span(span.start, end)})) as batches:
        async for batch in batches:
            for record in batch:
                scanned += 1
                event = record.event
                if record.key != key or event is None or event.replay:
                    continue
                # Ingest names a raw record with an id of its own; the journey's id is the
                # sender's, which the trigger's kind reads while normalizing.
                if event_id in (event.id, Selector.event_id(record)):
                    return EventLookup(event, scanned, scan_bound_reached=False)
    return EventLookup(None, scanned, scan_bound_reached=end < span.end)


async def _events_of(
    consumer: AIOKafkaConsumer, tp: TopicPartition, span: Span, key: bytes
) -> tuple[list[RawEvent], int]:
    """The trigger's live events in the span, in offset order, and how many records were
    read."""
    found: list[RawEvent] = []
    scanned = 0
    # read_spans leaves a partition it finished paused.
    consumer.resume(tp)
    async for batch in read_spans(consumer, {tp: span}):
        scanned += len(batch)
        found.extend(
            record.event
            for record in batch
            if record.key == key and record.event is not None and not record.event.replay
        )
    return found, scanned
