"""Which (trigger id, event id) pairs this processor group has seen recently.

A sender's retry (Slack resends with X-Slack-Retry-Num and the same event_id; a Standard
Webhooks sender reuses its webhook-id; a cron failover re-fires a tick with the same tick id)
must not become a second delivery. Raw events are keyed by trigger id, so one trigger's pairs
live on one raw partition, and each partition's marks are kept by whichever worker owns it:

- A new mark is pending in memory until the Kafka transaction that carries its event commits.
  The transaction also carries the mark as a record on the deduplication changelog, a topic
  co-partitioned with raw-events.
- Only after the commit is the mark written to the partition's local store (`DedupeStore`).
  So an aborted transaction leaves no mark anywhere, and after a crash the local store may be
  behind the changelog, never ahead of it.
- When a worker is given a partition, it opens the partition's store and reads the changelog
  (read_committed) from the offset the store is complete up to, so it knows exactly the marks
  of every committed transaction, whoever wrote them. A missing store is rebuilt from the
  changelog, whose retention covers the two windows the store keeps.

Both engines use these marks and this changelog, so switching engines keeps them.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from processors.dedupe_store import DedupeStore, StoreLocked, StoreMemory
from runtime.kafka import standalone_consumer
from runtime.metrics import PROCESSOR_DEDUPE_KEYS, PROCESSOR_DEDUPE_RESTORED
from runtime.settings import Settings
from schemas.topics import PROCESSOR_DEDUPE

log = logging.getLogger("triggerline.processors")

# Changelog records read per restore step, and applied to the store in one write.
RESTORE_BATCH = 10_000
_SCRATCH = ".scratch-"


def mark_key(trigger_id: str, event_id: str) -> bytes:
    return f"{trigger_id}/{event_id}".encode()


class PartitionMarks:
    """One raw partition's marks: committed ones in its store, newer ones in memory.

    `pending` marks belong to the transaction being filled; `committing` ones to the transaction
    being committed, while processing goes on into the next one. Both count as seen.
    """

    def __init__(self, partition: int, store: DedupeStore) -> None:
        self.partition = partition
        self.store = store
        self._pending: dict[bytes, int] = {}
        self._committing: dict[bytes, int] = {}

    def seen_before(self, key: bytes, timestamp_ms: int) -> bool:
        """Whether the key was seen within the window; marks it as seen either way."""
        if key in self._pending or key in self._committing or self.store.seen(key):
            return True
        self._pending[key] = timestamp_ms
        return False

    def begin_commit(self) -> list[tuple[bytes, int]]:
        """The pending marks, as (key, timestamp in ms), to write to the changelog in the open
        transaction; they count as seen until `committed` or `discard`. Marks written to a
        transaction that has not committed yet stay with it."""
        moving, self._pending = self._pending, {}
        self._committing.update(moving)
        return list(moving.items())

    def committed(self, changelog_offset: int | None) -> None:
        """The transaction committed: its marks go to the store, which is then complete up to
        `changelog_offset` (the offset after the transaction's last changelog record; None
        when it carried no marks)."""
        if changelog_offset is not None:
            self.store.apply(self._committing.items(), changelog_offset)
        elif self._committing:
            raise RuntimeError("a transaction with marks must say where they ended")
        self._committing = {}

    def discard(self) -> None:
        """The transaction will not commit; its marks were never written anywhere."""
        self._pending = {}
        self._committing = {}


class DedupeStores:
    """The local stores of the raw partitions this worker owns, brought up to date from the
    changelog when a partition is assigned."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._directory = settings.local_dir / "processors" / settings.topics.prefix / "dedupe"
        self._window_ms = int(settings.processor.dedupe_window_s * 1000)
        self._memory = StoreMemory.of(settings.processor.dedupe_memory_mb * 1024 * 1024)
        self._topic = PROCESSOR_DEDUPE.name(settings.topics.prefix)
        self._consumer: AIOKafkaConsumer | None = None
        self._open: dict[int, PartitionMarks] = {}
        self._directory.mkdir(parents=True, exist_ok=True)
        _remove_abandoned_scratch_stores(self._directory)

    async def _reader(self) -> AIOKafkaConsumer:
        """The changelog reader, started on first use: it reads one partition at a time, by
        assignment, outside any group."""
        if self._consumer is None:
            consumer = standalone_consumer(self._settings)
            await consumer.start()
            self._consumer = consumer
        return self._consumer

    async def stop(self) -> None:
        self.close_all()
        if self._consumer is not None:
            await self._consumer.stop()

    def get(self, partition: int) -> PartitionMarks | None:
        return self._open.get(partition)

    def partitions(self) -> list[int]:
        return list(self._open)

    def open(self, partition: int) -> PartitionMarks:
        """The partition's marks as its local store has them (see `catch_up`)."""
        marks = self._open.get(partition)
        if marks is None:
            marks = self._open[partition] = PartitionMarks(partition, self._open_store(partition))
        return marks

    async def restore(self, partition: int) -> PartitionMarks:
        """`open`, then `catch_up`."""
        marks = self.open(partition)
        await self.catch_up(partition)
        return marks

    async def catch_up(self, partition: int) -> None:
        """Read the partition's changelog into its open store, up to the end.

        Call only once this worker's transactional producer for the partition has started:
        that fences any earlier owner and ends its open transaction, so nothing more can be
        committed to the changelog partition behind this read.
        """
        marks = self._open[partition]
        started = time.perf_counter()
        restored = await self._catch_up(marks.store, partition)
        PROCESSOR_DEDUPE_RESTORED.inc(restored)
        if restored:
            log.info(
                "deduplication marks restored from the changelog",
                extra={
                    "partition": partition,
                    "marks": restored,
                    "seconds": round(time.perf_counter() - started, 3),
                },
            )

    def close(self, partition: int) -> None:
        marks = self._open.pop(partition, None)
        if marks is None:
            return
        if _SCRATCH in marks.store.path.name:
            marks.store.destroy()
        else:
            marks.store.close()

    def close_all(self) -> None:
        for partition in list(self._open):
            self.close(partition)

    def report(self) -> None:
        PROCESSOR_DEDUPE_KEYS.set(sum(m.store.key_count() for m in self._open.values()))

    def _open_store(self, partition: int) -> DedupeStore:
        path = self._directory / str(partition)
        try:
            return DedupeStore(path, self._window_ms, self._memory)
        except StoreLocked:
            # Another worker on this host holds it (or a stalled one that will be fenced): this
            # worker keeps a store of its own for the partition, rebuilt from the changelog.
            scratch = self._directory / f"{partition}{_SCRATCH}{os.getpid()}"
            shutil.rmtree(scratch, ignore_errors=True)
            log.warning(
                "deduplication store in use by another process; rebuilding a private one",
                extra={"partition": partition, "path": str(path)},
            )
            return DedupeStore(scratch, self._window_ms, self._memory)

    async def _catch_up(self, store: DedupeStore, partition: int) -> int:
        tp = TopicPartition(self._topic, partition)
        consumer = await self._reader()
        consumer.assign([tp])
        first = (await consumer.beginning_offsets([tp]))[tp]
        # read_committed: the last stable offset, so aborted marks are never restored.
        end = (await consumer.end_offsets([tp]))[tp]
        start = store.changelog_offset
        if start > end:
            # The store outlived its changelog (the topic was recreated): start afresh.
            log.warning(
                "deduplication store is ahead of its changelog; rebuilding it",
                extra={"partition": partition, "store_offset": start, "changelog_end": end},
            )
            store.clear()
            start = 0
        # Records before the changelog's start were deleted by retention: older than the window.
        start = max(start, first)
        restored = 0
        if start < end:
            consumer.seek(tp, start)
            while await consumer.position(tp) < end:
                # Short waits: a fetch that ends in transaction markers returns no records.
                records = await consumer.getmany(tp, timeout_ms=50, max_records=RESTORE_BATCH)
                batch = [
                    (r.key, r.timestamp) for r in records.get(tp, []) if r.offset < end and r.key
                ]
                restored += store.apply(batch, min(await consumer.position(tp), end))
        store.apply((), end)
        return restored


def _remove_abandoned_scratch_stores(directory: Path) -> None:
    """Private stores of processes that no longer run (a crash leaves them behind)."""
    for path in directory.glob(f"*{_SCRATCH}*"):
        pid = int(path.name.rsplit(_SCRATCH, 1)[1])
        if pid == os.getpid() or not _running(pid):
            shutil.rmtree(path, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
