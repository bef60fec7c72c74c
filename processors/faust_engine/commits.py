"""faust's commits with Triggerline's rules: whole events only, and deduplication marks in them.

faust commits on a timer: it snapshots the acknowledged offsets, then commits each source
partition's transaction. An event being processed at that moment may already have sent its
routed record into the transaction while its offset is not in the snapshot; a crash before the
next commit then leaves the routed record committed and the event unconsumed, and the restart
routes it again. So each event is handled and acknowledged under one lock, and the commit
takes the same lock.

Inside it, before faust commits, each partition's pending deduplication marks are written to
the changelog through that partition's producer, so they join the same transaction as their
events' outputs and offsets. faust may leave a partition out of a commit (one it is giving
up), so the marks go to the local store (processors/dedupe.py) only when the producer reports
that partition's transaction committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from processors.dedupe import DedupeStores
from processors.faults import Faults
from processors.faust_engine.outputs import transactional_id
from processors.stop import stop_worker_now


class CommitGuard:
    def __init__(
        self,
        stores: DedupeStores,
        raw_topic: str,
        changelog_topic: str,
        faults: Faults,
        exactly_once: bool,
    ) -> None:
        self.lock = asyncio.Lock()
        self._stores = stores
        self._raw_topic = raw_topic
        self._changelog_topic = changelog_topic
        self._faults = faults
        self._exactly_once = exactly_once
        # Per raw partition, the changelog offset after the marks written to its open
        # transaction.
        self._written: dict[int, int] = {}

    def install(self, app: Any) -> None:
        """Wraps the consumer's commit; call once the app's consumer exists."""
        consumer = app.consumer
        commit = consumer.commit

        async def guarded_commit(*args: Any, **kwargs: Any) -> Any:
            async with self.lock:
                try:
                    await app.producer.buffer.flush()
                    written = await self._write_marks(app)
                except Exception as exc:
                    # A send failed in the transaction (a fenced producer, say): faust would
                    # crash gracefully, and a graceful stop may commit.
                    stop_worker_now(exc)
                if not self._exactly_once:
                    # Without transactions the changelog records are final once acknowledged.
                    for partition, offset in written.items():
                        self._apply(partition, offset)
                else:
                    self._written.update(written)
                return await commit(*args, **kwargs)

        consumer.commit = guarded_commit

    def transaction_committed(self, partition: int) -> None:
        """Kafka committed the partition's transaction: its marks may go to the local store."""
        self._faults.reach("after-commit")
        self._apply(partition, self._written.pop(partition, None))

    def _apply(self, partition: int, offset: int | None) -> None:
        marks = self._stores.get(partition)
        if marks is not None:
            marks.committed(offset)

    async def _write_marks(self, app: Any) -> dict[int, int]:
        """Sends every partition's pending marks; the changelog offset after each one's last."""
        sent: dict[int, Awaitable[Any]] = {}
        for partition in self._stores.partitions():
            marks = self._stores.get(partition)
            pending = marks.begin_commit() if marks is not None else []
            if not pending:
                continue
            producer = self._producer(app, partition)
            for key, timestamp_ms in pending:
                sent[partition] = await producer.send(
                    self._changelog_topic,
                    key=key,
                    value=b"",
                    partition=partition,
                    timestamp_ms=timestamp_ms,
                )
        return {p: int((await future).offset) + 1 for p, future in sent.items()}

    def _producer(self, app: Any, partition: int) -> Any:
        """The aiokafka producer whose transaction carries the partition's outputs."""
        if not self._exactly_once:
            return app.producer._ensure_producer()
        tid = transactional_id(app, self._raw_topic, partition)
        return app.producer._transaction_producers[tid]
