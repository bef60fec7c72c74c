"""Runs one replay: reads its range of the raw-events topic and sends a marked copy of every
selected event back to that topic, at the replay's rate, where the processors route it like
any other event (but never deduplicate it).

Exactly once, across crashes: each Kafka transaction holds a batch of copies and, as offsets of
the replay's own consumer group, the position after the last record read, with the running
counts in the offset metadata. A runner that dies leaves its open transaction to be aborted
when the next runner of the replay (same transactional id) starts, and that runner resumes
from the committed position with the committed counts.

Transactions are short and frequent: copies are paced into memory and written every tenth of a
second, because an open transaction on a raw partition holds back every live record behind it
from the processors (they read committed records only), and because a burst of copies makes live
events queue behind it in the processors and the dispatchers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from psycopg import AsyncConnection

from ingest.replay import store
from ingest.replay.raw_history import HistoricRecord, Span, read_spans, spans_between
from ingest.replay.selection import Selector
from ingest.replay.store import Progress, Replay, ReplayState
from runtime.kafka import admin_client, durable_producer, whole_topic_consumer
from runtime.metrics import REPLAY_COPIES
from runtime.settings import Settings
from schemas.topics import RAW_EVENTS

log = logging.getLogger("triggerline.replay")

# A transaction closes after this long at the latest. Short transactions keep the copies
# flowing at the replay's rate instead of arriving in bursts that the processors and the
# dispatchers would have to queue live events behind; they also show progress and cancels
# promptly when few records are selected.
TRANSACTION_INTERVAL_S = 0.1
# Raw records decoded between two yields to the event loop, which ingest's webhooks share.
READ_BATCH = 200
# Bounds how long a runner that dies mid-transaction holds back live records on its
# partitions: the broker aborts the transaction after this.
TRANSACTION_TIMEOUT_MS = 10_000


@dataclass
class PartitionCounts:
    scanned: int = 0
    selected: int = 0


@dataclass
class RunProgress:
    """A running replay's figures, for progress bars and the replays table."""

    to_scan: int
    counts: dict[int, PartitionCounts] = field(default_factory=dict)

    @property
    def scanned(self) -> int:
        return sum(c.scanned for c in self.counts.values())

    @property
    def selected(self) -> int:
        return sum(c.selected for c in self.counts.values())

    def row(self) -> Progress:
        return Progress(to_scan=self.to_scan, scanned=self.scanned, selected=self.selected)


class Pacer:
    """Spaces events `1 / rate` seconds apart on average; after an idle spell, up to a tenth of
    a second's worth go at once."""

    def __init__(
        self,
        rate_per_s: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._interval = 1.0 / rate_per_s
        self._burst = max(1.0, rate_per_s / 10)
        self._clock = clock
        self._sleep = sleep
        self._next = clock()

    async def wait(self) -> None:
        now = self._clock()
        self._next = max(self._next, now - self._burst * self._interval) + self._interval
        if self._next > now:
            await self._sleep(self._next - now)


class ReplayRunner:
    """Runs one claimed replay to its end, or until it is cancelled or its lease is lost.

    `conn` is an autocommit connection to the registry; `on_progress` is called after every
    transaction.
    """

    def __init__(
        self,
        settings: Settings,
        replay: Replay,
        owner: str,
        conn: AsyncConnection[Any],
        on_progress: Callable[[RunProgress], None] = lambda _: None,
    ) -> None:
        self._settings = settings
        self._replay = replay
        self._owner = owner
        self._conn = conn
        self._on_progress = on_progress
        self._topic = RAW_EVENTS.name(settings.topics.prefix)
        self._group = settings.replay_group(replay.id)
        target = replay.selection.target
        self._marks: dict[str, Any] = {
            "replay": True,
            "replay_id": replay.id,
            "replay_target": target,
        }
        self._selector = Selector(
            replay.project_id, replay.selection.trigger_ids, replay.selection.event_ids
        )

    async def run(self) -> ReplayState:
        """The state the replay ended in: finished or cancelled (a lost lease also stops it,
        as cancelled here; the row keeps what its new runner says)."""
        consumer = await whole_topic_consumer(self._settings, self._topic)
        producer = durable_producer(
            self._settings,
            transactional_id=self._group,
            transaction_timeout_ms=TRANSACTION_TIMEOUT_MS,
            linger_ms=5,
            client_id=self._group,
        )
        try:
            # Starting fences any earlier runner of this replay and aborts its transaction.
            await producer.start()
            spans, progress = await self._resume_point(consumer)
            self._on_progress(progress)
            go_on = await self._copy(consumer, producer, spans, progress)
        finally:
            await producer.stop()
            await consumer.stop()
        state: ReplayState = "finished" if go_on else "cancelled"
        if go_on or await self._cancel_requested():
            await store.finish(
                self._conn, self._replay.id, self._owner, state=state, progress=progress.row()
            )
        return state

    async def _resume_point(
        self, consumer: AIOKafkaConsumer
    ) -> tuple[dict[TopicPartition, Span], RunProgress]:
        selection = self._replay.selection
        whole = await spans_between(consumer, selection.from_time, selection.to_time)
        progress = RunProgress(to_scan=sum(span.size for span in whole.values()))
        committed = await self._committed(list(whole))
        spans = {}
        for tp, span in whole.items():
            offset, counts = committed.get(tp, (span.start, PartitionCounts()))
            progress.counts[tp.partition] = counts
            spans[tp] = Span(max(span.start, offset), span.end)
        return spans, progress

    async def _committed(
        self, partitions: list[TopicPartition]
    ) -> dict[TopicPartition, tuple[int, PartitionCounts]]:
        admin = admin_client(self._settings)
        await admin.start()
        try:
            found = await admin.list_consumer_group_offsets(self._group, partitions=partitions)
        finally:
            await admin.close()
        committed = {}
        for tp, meta in found.items():
            if meta.offset is None or meta.offset < 0:
                continue
            counts = msgspec.convert(orjson.loads(meta.metadata or "{}"), PartitionCounts)
            committed[tp] = (meta.offset, counts)
        return committed

    async def _copy(
        self,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        spans: dict[TopicPartition, Span],
        progress: RunProgress,
    ) -> bool:
        """Copies the selected records of `spans`; False if it stopped early."""
        pacer = Pacer(self._replay.selection.rate_per_s)
        batch_size = self._settings.replay.transaction_events
        copies: list[HistoricRecord] = []
        positions: dict[TopicPartition, int] = {}
        closes_at = time.monotonic() + TRANSACTION_INTERVAL_S
        async for records in read_spans(consumer, spans, max_records=READ_BATCH):
            for record in records:
                counts = progress.counts[record.partition]
                counts.scanned += 1
                positions[TopicPartition(self._topic, record.partition)] = record.offset + 1
                if self._selector.selects(record):
                    await pacer.wait()
                    copies.append(record)
                    counts.selected += 1
                if len(copies) >= batch_size or time.monotonic() >= closes_at:
                    if not await self._commit(producer, copies, positions, progress):
                        return False
                    copies, positions = [], {}
                    closes_at = time.monotonic() + TRANSACTION_INTERVAL_S
            # Pacing may not sleep at all (few records selected): let webhooks in between.
            await asyncio.sleep(0)
        return await self._commit(producer, copies, positions, progress)

    async def _commit(
        self,
        producer: AIOKafkaProducer,
        copies: list[HistoricRecord],
        positions: dict[TopicPartition, int],
        progress: RunProgress,
    ) -> bool:
        """Writes the copies and the positions in one transaction, then records the progress;
        whether to go on."""
        if positions:
            async with producer.transaction():
                sent = [
                    await producer.send(self._topic, self._copy_of(record), key=record.key)
                    for record in copies
                ]
                offsets = {
                    tp: (offset, orjson.dumps(progress.counts[tp.partition]).decode())
                    for tp, offset in positions.items()
                }
                await producer.send_offsets_to_transaction(offsets, self._group)
            await asyncio.gather(*sent)
            REPLAY_COPIES.inc(len(copies))
        self._on_progress(progress)
        return await store.report_progress(
            self._conn, self._replay.id, self._owner, self._settings.replay.lease_s, progress.row()
        )

    def _copy_of(self, record: HistoricRecord) -> bytes:
        if record.event is None:
            raise ValueError("only decoded raw events are selected")
        return RAW_EVENTS.encode(msgspec.structs.replace(record.event, **self._marks))

    async def _cancel_requested(self) -> bool:
        replay = await store.find_replay(self._conn, self._replay.project_id, self._replay.id)
        return replay.cancel_requested and replay.state == "running"
