"""The dispatcher loop: routed records in, ordered deliveries per lane out, offsets committed
after.

Records of one partition are grouped into lanes: a lane is a key (the correlation id) and a
destination (the routed record's DESTINATION_HEADER; "default" for records written before
destinations, which have none). Each lane has one worker that delivers its records one after
another, so a conversation stays in order at each destination, while different lanes proceed
concurrently within per-partition and process-wide bounds. A lane that is slow, waiting to
retry, behind an open circuit or a rate limit holds back only its own records: one destination
never delays another's records of the same conversation. The partition's commit point stays at
its lowest unfinished record. When too many records of a partition are unfinished, the
partition is paused until they drain: memory stays bounded however slow a target is (so a
destination with a large backlog behind its rate limit can fill that bound and pause the
partition for every destination).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import CommitFailedError, KafkaError

from dispatchers.tracker import PartitionTracker, RetryState
from dispatchers.work_item import WorkItem
from runtime.metrics import DISPATCH_PAUSED_PARTITIONS, DISPATCH_PENDING
from runtime.settings import Settings
from schemas.codec import RecordPosition
from schemas.topics import DESTINATION_HEADER
from schemas.triggers import DEFAULT_DESTINATION

log = logging.getLogger("triggerline.dispatchers")

FETCH_TIMEOUT_MS = 100
# Bounds what one fetch adds on top of the pause threshold.
FETCH_MAX_RECORDS = 500
# The lane of a routed record written before destinations existed, which has no header.
DEFAULT_LANE_DESTINATION = DEFAULT_DESTINATION.encode()

# (key, destination): the records delivered one after another, in offset order.
Lane = tuple[bytes, bytes]


class InFlightSlots:
    """One slot of the partition's in-flight bound and one of the process's, held together."""

    def __init__(self, partition: asyncio.Semaphore, overall: asyncio.Semaphore) -> None:
        self._partition = partition
        self._overall = overall

    async def __aenter__(self) -> None:
        await self._partition.acquire()
        try:
            await self._overall.acquire()
        except BaseException:
            self._partition.release()
            raise

    async def __aexit__(self, *_: object) -> None:
        self._overall.release()
        self._partition.release()


@dataclass
class PartitionWork:
    tracker: PartitionTracker
    slots: InFlightSlots
    lanes: dict[Lane, deque[WorkItem]] = field(default_factory=dict)
    workers: set[asyncio.Task[None]] = field(default_factory=set)
    paused: bool = False


class CommittedOffsets:
    """Reads the group's committed offsets with their metadata (the consumer API drops it)."""

    def __init__(self, admin: AIOKafkaAdminClient, group: str) -> None:
        self._admin = admin
        self._group = group

    async def fetch(
        self, partitions: list[TopicPartition]
    ) -> dict[TopicPartition, tuple[int, str]]:
        if not partitions:
            return {}
        found = await self._admin.list_consumer_group_offsets(self._group, partitions=partitions)
        return {
            tp: (meta.offset, meta.metadata or "")
            for tp, meta in found.items()
            if meta.offset is not None and meta.offset >= 0
        }


class RecordDeliverer(Protocol):
    """Takes one record to its end (dispatchers/delivery.py `Deliverer`): True once it is
    finished, False if it was given back because the dispatcher is stopping."""

    async def deliver_record(
        self,
        item: WorkItem,
        slot: AbstractAsyncContextManager[None],
        on_retry: Callable[[RetryState], None],
    ) -> bool: ...


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        consumer: AIOKafkaConsumer,
        deliverer: RecordDeliverer,
        stopping: asyncio.Event,
        committed: CommittedOffsets,
    ) -> None:
        self._settings = settings
        self._consumer = consumer
        self._deliverer = deliverer
        self._stopping = stopping
        self._committed = committed
        self._overall = asyncio.Semaphore(settings.dispatcher.max_in_flight)
        self._partitions: dict[TopicPartition, PartitionWork] = {}
        self._max_pending = settings.dispatcher.max_pending_per_partition
        self._failure: BaseException | None = None

    def stop(self) -> None:
        self._stopping.set()

    @property
    def pending(self) -> int:
        return sum(len(work.tracker) for work in self._partitions.values())

    async def run(self) -> None:
        committer = asyncio.create_task(self._commit_periodically(), name="dispatcher-commit")
        try:
            while not self._stopping.is_set():
                batches = await self._consumer.getmany(
                    timeout_ms=FETCH_TIMEOUT_MS, max_records=FETCH_MAX_RECORDS
                )
                for tp, records in batches.items():
                    work = self._partitions.get(tp)
                    if work is None:
                        continue  # revoked while the fetch was under way
                    for record in records:
                        self._accept(tp, work, record)
                self._apply_backpressure()
        finally:
            await self._drain(list(self._partitions), self._settings.dispatcher.shutdown_deadline_s)
            committer.cancel()
            await asyncio.gather(committer, return_exceptions=True)
            await self._commit(list(self._partitions))
        if self._failure is not None:
            raise RuntimeError("a delivery worker failed") from self._failure

    # Rebalance callbacks, awaited by aiokafka between fetches.

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        mine = [tp for tp in revoked if tp in self._partitions]
        await self._drain(mine, deadline_s=0)
        await self._commit(mine)
        for tp in mine:
            self._partitions.pop(tp)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        restored = await self._committed.fetch(assigned)
        log.info(
            "partitions assigned",
            extra={"partitions": {tp.partition: restored.get(tp, (0, ""))[0] for tp in assigned}},
        )
        for tp in assigned:
            offset, metadata = restored.get(tp, (0, ""))
            self._partitions[tp] = PartitionWork(
                PartitionTracker(offset, metadata),
                InFlightSlots(
                    asyncio.Semaphore(self._settings.dispatcher.max_in_flight_per_partition),
                    self._overall,
                ),
            )

    def _accept(
        self, tp: TopicPartition, work: PartitionWork, record: ConsumerRecord[bytes, bytes]
    ) -> None:
        tracker = work.tracker
        tracker.add(record.offset)
        if tracker.finished_before(record.offset):
            tracker.finish(record.offset)
            return
        item = WorkItem(
            RecordPosition(record.topic, record.partition, record.offset),
            record.key,
            record.value,
            tracker.retries.get(record.offset),
            headers=record.headers,
        )
        # A record without a key is ordered with nothing; its offset makes it a key of its own.
        key = record.key if record.key is not None else f"@{record.offset}".encode()
        lane = (key, _destination(record))
        queue = work.lanes.get(lane)
        if queue is not None:
            queue.append(item)
            return
        work.lanes[lane] = deque([item])
        worker = asyncio.create_task(self._drain_lane(work, lane))
        work.workers.add(worker)
        worker.add_done_callback(work.workers.discard)
        DISPATCH_PENDING.set(self.pending)

    async def _drain_lane(self, work: PartitionWork, lane: Lane) -> None:
        queue = work.lanes[lane]
        try:
            while queue and not self._stopping.is_set():
                item = queue[0]

                def remember(state: RetryState, offset: int = item.position.offset) -> None:
                    work.tracker.set_retry(offset, state)

                finished = await self._deliverer.deliver_record(item, work.slots, remember)
                if not finished:
                    return
                queue.popleft()
                work.tracker.finish(item.position.offset)
        except Exception as exc:
            # A bug must not leave a lane stuck silently: stop the process, whose records stay
            # uncommitted and are delivered again after a restart.
            log.exception("delivery worker failed; stopping")
            self._failure = exc
            self._stopping.set()
        finally:
            if not queue or self._stopping.is_set():
                work.lanes.pop(lane, None)

    def _apply_backpressure(self) -> None:
        for tp, work in self._partitions.items():
            held = len(work.tracker)
            if not work.paused and held >= self._max_pending:
                self._consumer.pause(tp)
                work.paused = True
                log.warning("partition paused: too much held-back work", extra={"tp": str(tp)})
            elif work.paused and held <= self._max_pending // 2:
                self._consumer.resume(tp)
                work.paused = False
        DISPATCH_PAUSED_PARTITIONS.set(sum(w.paused for w in self._partitions.values()))
        DISPATCH_PENDING.set(self.pending)

    async def _commit_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._settings.dispatcher.commit_interval_s)
            self._apply_backpressure()
            await self._commit([tp for tp, w in self._partitions.items() if w.tracker.dirty])

    async def _commit(self, partitions: list[TopicPartition]) -> None:
        offsets = {}
        for tp in partitions:
            work = self._partitions.get(tp)
            if work is not None and work.tracker.dirty:
                offsets[tp] = work.tracker.commit_point()
        if not offsets:
            return
        try:
            await self._consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            # The group moved on (or Kafka is away); whoever owns these partitions now resumes
            # from the last successful commit, repeating at most the work since then.
            log.warning("offset commit failed", extra={"error": str(exc)})
            for tp in offsets:
                if tp in self._partitions:
                    self._partitions[tp].tracker.dirty = True

    async def _drain(self, partitions: list[TopicPartition], deadline_s: float) -> None:
        """Let in-flight attempts finish within the deadline; give back whatever is left."""
        workers = [t for tp in partitions for t in self._partitions[tp].workers]
        if not workers:
            return
        unfinished = set(workers)
        if deadline_s > 0:
            _, unfinished = await asyncio.wait(workers, timeout=deadline_s)
        for task in unfinished:
            task.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)


# aiokafka checks listeners with isinstance; registering keeps the Dispatcher a plain class.
ConsumerRebalanceListener.register(Dispatcher)


def _destination(record: ConsumerRecord[bytes, bytes]) -> bytes:
    for name, value in record.headers or ():
        if name == DESTINATION_HEADER:
            return value or DEFAULT_LANE_DESTINATION
    return DEFAULT_LANE_DESTINATION
