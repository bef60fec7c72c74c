"""The batch engine: one aiokafka consumer, one transactional producer per owned raw partition.

The loop fetches raw records in batches (`getmany`, read_committed), hands each to the shared
decision code, and appends the outputs to its partition's buffer; every commit interval each
partition with new work commits its buffer in its own transaction, concurrently with the others
and with further processing (processors/batch_engine/partition.py).

**Fencing.** aiokafka's TxnOffsetCommit carries no group generation (no KIP-447), so a producer
per worker would not fence a stalled former owner. Each raw partition therefore has its own
transactional id, `<group>-0-<partition>`, the scheme faust uses for the same group (so the two
engines fence each other too). Starting that producer bumps the id's epoch: a former owner can
commit nothing more, and Kafka aborts its open transaction.

**Taking on a partition**, in this order: start its producer (the fence), read its committed
offset (only now final), seek to it and pause the partition, then restore its deduplication
marks from the changelog and only then resume and process it. aiokafka refreshes committed
offsets before it calls the rebalance listener, so its own idea of the position may be stale
until that seek. It sends no heartbeats while the listener runs, so the restore, which may read
millions of marks, runs after it, in the background. And it logs and swallows exceptions
raised in the listener, so every listener step that fails stops the worker
(processors/stop.py) instead.

**Giving up a partition** waits for its commit in flight and commits what is left, then stops
its producer. A batch fetched before a rebalance is dropped: its records are fetched again
from the new positions.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import time
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition

from kinds.routing import RoutingTrigger
from processors.batch_engine.partition import (
    ConsumerCommitter,
    OffsetCommitter,
    PartitionWork,
    Placement,
    TransactionCommitter,
)
from processors.dedupe import DedupeStores
from processors.faults import Faults
from processors.handler import RawEventHandler
from processors.rules import routing_view
from processors.spans import ProcessorSpans
from processors.stop import stop_worker_now
from runtime.config_view import TriggerConfigView
from runtime.consumer_lag import LagGauge
from runtime.kafka import admin_client, durable_producer, group_consumer
from runtime.metrics import PROCESSOR_CONSUMER_LAG
from runtime.ops_server import OpsServer
from runtime.settings import Settings
from runtime.tracing import Tracing
from schemas.topics import (
    DEAD_LETTERS,
    DELIVERY_LOG,
    MAX_RECORD_BYTES,
    PROCESSOR_DEDUPE,
    RAW_EVENTS,
    ROUTED_EVENTS,
    TopicSpec,
)

log = logging.getLogger("triggerline.processors")

# Records handed over per fetch: processing them delays the next commit check by about 20 ms.
FETCH_MAX_RECORDS = 500
# Outputs of one destination partition per record batch; Kafka takes up to 4 MiB per batch.
BATCH_BYTES = 1024 * 1024
LAG_INTERVAL_S = 5.0
# faust's topic group number for raw-events, so the transactional ids of the engines agree.
TOPIC_GROUP = 0


def transactional_id(group: str, partition: int) -> str:
    return f"{group}-{TOPIC_GROUP}-{partition}"


class BatchWorker:
    def __init__(self, settings: Settings, tracing: Tracing | None = None) -> None:
        self._settings = settings
        prefix = settings.topics.prefix
        self._group = settings.group("processors")
        self._raw_topic = RAW_EVENTS.name(prefix)
        self._changelog_topic = PROCESSOR_DEDUPE.name(prefix)
        self._interval_s = settings.processor.commit_interval_s
        self._max_pending = settings.processor.max_pending_records
        self._faults = Faults(settings.processor.fault)
        self._consumer = group_consumer(
            settings,
            group=self._group,
            session_timeout_ms=int(settings.processor.session_timeout_s * 1000),
            heartbeat_interval_ms=int(settings.processor.session_timeout_s * 1000 / 4),
            max_partition_fetch_bytes=MAX_RECORD_BYTES,
        )
        self._view: TriggerConfigView[RoutingTrigger] = routing_view(settings)
        self._handler = RawEventHandler(
            self._view,
            prefix,
            max_correlation_id_bytes=settings.processor.max_correlation_id_bytes,
            spans=None if tracing is None else ProcessorSpans(tracing, settings),
            event_lines_per_s=settings.log_event_lines_per_s,
        )
        self._stores = DedupeStores(settings)
        self._lag = LagGauge()
        self._ops = OpsServer(
            settings.ops_host, settings.processor.metrics_port, self._readiness, self._view.problems
        )
        # At-least-once shares one idempotent producer; exactly-once has one per partition.
        self._shared_producer = (
            None if settings.processor.exactly_once else self._producer(transactional=None)
        )
        self._partitions: dict[int, PartitionWork] = {}
        self._placement: Placement | None = None
        self._restoring: asyncio.Task[None] | None = None
        # Held while records are processed and while the listener changes the partitions.
        self._lock = asyncio.Lock()
        self._generation = 0
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    def _readiness(self) -> dict[str, bool]:
        # A partition is not processed until its deduplication marks are restored.
        restored = all(work.ready for work in self._partitions.values())
        return {"config": self._view.ready, "marks_restored": restored}

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop)
        await self._ops.start()
        await self._view.start()
        reporting = asyncio.create_task(self._report(), name="report")
        try:
            self._placement = await self._read_placement()
            if self._shared_producer is not None:
                await self._shared_producer.start()
            self._consumer.subscribe([self._raw_topic], listener=self)
            await self._consumer.start()
            # What start-up loaded lives as long as the process; full collections skip it.
            gc.freeze()
            await self._loop()
            async with self._lock:
                await self._stop_restoring()
                await self._release(list(self._partitions))
        finally:
            reporting.cancel()
            await self._consumer.stop()
            await self._stores.stop()
            if self._shared_producer is not None:
                await self._shared_producer.stop()
            await self._view.stop()
            await self._ops.stop()
            log.info("stopped")

    async def _loop(self) -> None:
        consumer = self._consumer
        handle = self._handler.handle
        timeout_ms = max(1, int(self._interval_s * 1000 / 2))
        while not self._stopping.is_set():
            generation = self._generation
            batches = await consumer.getmany(timeout_ms=timeout_ms, max_records=FETCH_MAX_RECORDS)
            async with self._lock:
                if generation == self._generation:
                    for tp, records in batches.items():
                        work = self._partitions.get(tp.partition)
                        # A partition still restoring is sought again before it resumes.
                        if work is None or not work.ready:
                            continue
                        outputs = work.outputs
                        marks = work.marks
                        for record in records:
                            if record.offset >= work.next_offset:
                                outputs.extend(await handle(record, marks))
                                work.next_offset = record.offset + 1
                self._commit_due()
            # getmany returns buffered records without suspending: without this the commits,
            # the fetcher and the group heartbeat would wait until the buffer ran dry.
            await asyncio.sleep(0)

    def _commit_due(self) -> None:
        now = time.monotonic()
        for work in self._partitions.values():
            full = len(work.outputs) >= self._max_pending
            if work.committing:
                if full:
                    # Backpressure: stop fetching until the commit in flight finishes.
                    self._consumer.pause(work.tp)
                continue
            if work.has_work and (full or now - work.last_commit_started >= self._interval_s):
                work.start_commit()
            if work.ready and work.tp in self._consumer.paused():
                self._consumer.resume(work.tp)

    # The rebalance listener. aiokafka swallows what these raise, so nothing may escape.

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._guarded(self._revoke, revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._guarded(self._assign, assigned)

    async def _guarded(
        self,
        step: Callable[[set[TopicPartition]], Awaitable[None]],
        partitions: set[TopicPartition],
    ) -> None:
        try:
            await step(partitions)
        except BaseException as exc:
            stop_worker_now(exc)

    async def _revoke(self, revoked: set[TopicPartition]) -> None:
        async with self._lock:
            self._generation += 1
            await self._stop_restoring()
            await self._release([tp.partition for tp in revoked if tp.topic == self._raw_topic])

    async def _assign(self, assigned: set[TopicPartition]) -> None:
        async with self._lock:
            self._generation += 1
            self._faults.reach("assigned")
            new = sorted(tp for tp in assigned if tp.partition not in self._partitions)
            for tp in assigned:
                kept = self._partitions.get(tp.partition)
                if kept is not None:
                    # A batch fetched before this point is dropped (see `_loop`).
                    self._consumer.seek(tp, kept.next_offset)
            # The fences first, all at once.
            fenced = await asyncio.gather(*(self._fence(tp) for tp in new))
            works = [
                await self._take_on(tp, producer, committer)
                for tp, (producer, committer) in zip(new, fenced, strict=True)
            ]
            for work in works:
                self._partitions[work.tp.partition] = work
            await self._stop_restoring()
            self._restoring = asyncio.create_task(self._restore(works), name="restore")
            log.info(
                "partitions assigned",
                extra={"partitions": sorted(p.partition for p in assigned)},
            )

    async def _restore(self, works: list[PartitionWork]) -> None:
        """Brings each new partition's marks up to date, then lets it be processed."""
        try:
            for work in works:
                await self._stores.catch_up(work.tp.partition)
                # Records fetched before the pause took effect were dropped, not processed.
                self._consumer.seek(work.tp, work.next_offset)
                work.ready = True
                self._consumer.resume(work.tp)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            stop_worker_now(exc)

    async def _stop_restoring(self) -> None:
        if self._restoring is not None:
            self._restoring.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._restoring
            self._restoring = None

    async def _fence(self, tp: TopicPartition) -> tuple[AIOKafkaProducer, OffsetCommitter]:
        if self._shared_producer is not None:
            return self._shared_producer, ConsumerCommitter(self._consumer)
        producer = self._producer(transactional=transactional_id(self._group, tp.partition))
        await producer.start()
        # Waits for the producer id: the epoch bump that fences any former owner.
        await producer.begin_transaction()
        return producer, TransactionCommitter(producer, self._group)

    async def _take_on(
        self, tp: TopicPartition, producer: AIOKafkaProducer, committer: OffsetCommitter
    ) -> PartitionWork:
        consumer = self._consumer
        committed = await consumer.committed(tp)
        if committed is None:
            committed = (await consumer.beginning_offsets([tp]))[tp]
        consumer.seek(tp, committed)
        # Not fetched until its marks are restored (`_restore`).
        consumer.pause(tp)
        marks = self._stores.open(tp.partition)
        end = (await consumer.end_offsets([tp]))[tp]
        PROCESSOR_CONSUMER_LAG.labels(str(tp.partition)).set(max(0, end - committed))
        if self._placement is None:
            raise RuntimeError("partitions assigned before the output topics were described")
        return PartitionWork(
            tp,
            producer=producer,
            committer=committer,
            marks=marks,
            placement=self._placement,
            changelog_topic=self._changelog_topic,
            next_offset=committed,
            faults=self._faults,
        )

    async def _release(self, partitions: list[int]) -> None:
        works = [self._partitions.pop(p) for p in partitions if p in self._partitions]
        await asyncio.gather(*(work.finish() for work in works))
        for work in works:
            if work.producer is not self._shared_producer:
                await work.producer.stop()
            self._stores.close(work.tp.partition)
            with contextlib.suppress(KeyError):
                PROCESSOR_CONSUMER_LAG.remove(str(work.tp.partition))

    def _producer(self, transactional: str | None) -> AIOKafkaProducer:
        return durable_producer(
            self._settings,
            transactional_id=transactional,
            linger_ms=0,
            max_batch_size=BATCH_BYTES,
            client_id=f"{self._group}-{transactional or 'producer'}",
        )

    async def _read_placement(self) -> Placement:
        admin = admin_client(self._settings)
        await admin.start()
        try:
            topics: list[TopicSpec] = [ROUTED_EVENTS, DELIVERY_LOG, DEAD_LETTERS]
            names = [spec.name(self._settings.topics.prefix) for spec in topics]
            described = await admin.describe_topics(names)
        finally:
            await admin.close()
        missing = [t["topic"] for t in described if t["error_code"] != 0]
        if missing:
            raise LookupError(f"topics {missing} do not exist; run `triggerline topics ensure`")
        return Placement({t["topic"]: len(t["partitions"]) for t in described})

    async def _report(self) -> None:
        while True:
            await asyncio.sleep(LAG_INTERVAL_S)
            async with self._lock:
                lags: dict[tuple[str, int], int] = {}
                for work in self._partitions.values():
                    end = self._consumer.highwater(work.tp)
                    if end is not None:
                        lag = max(0, end - work.committed_offset)
                        PROCESSOR_CONSUMER_LAG.labels(str(work.tp.partition)).set(lag)
                        lags[work.tp.topic, work.tp.partition] = lag
                self._lag.publish(lags)
                self._stores.report()
                self._handler.flush_metrics()


# aiokafka takes any ConsumerRebalanceListener; the worker is one by its two methods.
ConsumerRebalanceListener.register(BatchWorker)
