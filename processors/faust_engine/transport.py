"""faust's aiokafka transport with two corrections that exactly-once processing depends on.

**Seeks fence off earlier batches.** After a rebalance faust resumes the stream partitions and
only then seeks them to their committed offsets, while its fetch loop may be half-way through a
batch read from the old positions. faust lets that batch's remaining records keep flowing after
the seek, and the record being delivered as the seek finishes overwrites the partition's read
offset with its own. faust drops every later record below a partition's read offset and counts
the offsets it skips over as acknowledged; so the records between the committed offset and that
stale one are never handed to the agent, the committed offset can never pass the first of
them, and the partition's transaction stays open until the worker restarts. Here every
completed seek fences off the batches fetched before it: the rest of such a batch is not handed
over and the partitions are sought to their committed offsets again, so its records are read
again (whether it was fetched before the seek or, with aiokafka's positions already moved past
it, after), and the read offsets are the seek's. Acknowledgements and skipped-offset ranges
recorded before a seek are forgotten, so a commit past the committed offset is earned by
records read after it.

**A failed transaction step stops the worker.** faust's producer logs and carries on when
beginning, committing or aborting a transaction fails, or when a commit names a transactional
producer it no longer has (one fenced in a rebalance, say); the consumer then counts those
offsets as committed while the transaction that held their outputs was aborted. Here any such
failure stops the worker at once, exactly as a SIGKILL would: Kafka aborts its open
transactions, and after a restart the events are read again from the committed offsets.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from contextlib import aclosing
from typing import Any, cast

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message

from processors.faults import Faults
from processors.stop import stop_worker_now

log = logging.getLogger("triggerline.processors")


def _ignore(partition: int) -> None:
    pass


class SeekFencedConsumer(faust_aiokafka.Consumer):
    """faust's aiokafka consumer with batches fenced by seeks (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seeks = 0

    async def perform_seek(self) -> None:
        await super().perform_seek()
        # faust seeks every assigned partition.
        for tp in self.assignment():
            self._acked.pop(tp, None)
            self._acked_index.pop(tp, None)
            self._gap.pop(tp, None)
        self.seeks += 1

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:  # noqa: ASYNC109 (faust calls it so)
        seeks_before = self.seeks
        # faust's getmany is an async generator; closing it stops the batch's iteration.
        records = cast(AsyncGenerator[tuple[TP, Message]], super().getmany(timeout))
        async with aclosing(records) as batch:
            async for tp, message in batch:
                if self.seeks != seeks_before:
                    break
                yield tp, message
        if self.seeks != seeks_before:
            # Records of this batch were not handed over, and the batch may have been fetched
            # after the seek, with aiokafka's positions already past them. Seeking again reads
            # them again, and its read offsets replace the one the fetch loop stored for the
            # last record it handed over.
            log.info("a batch fetched across a seek to committed offsets is read again")
            await self.perform_seek()


class TransactionGuardedProducer(faust_aiokafka.Producer):
    """faust's aiokafka producer, except that a failed transaction step stops the worker."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Set by the app factory: the exactly-once tests inject failures through `faults`, and
        # `on_committed(partition)` learns of each source partition's committed transaction.
        self.faults = Faults("")
        self.on_committed: Callable[[int], None] = _ignore

    async def begin_transaction(self, transactional_id: str) -> None:
        try:
            producer = self._transaction_producers.get(transactional_id)
            if producer is None:
                producer = self._new_producer(transactional_id=transactional_id)
                await producer.start()
                self._transaction_producers[transactional_id] = producer
                self._trn_locks[transactional_id] = asyncio.Lock()
            async with self._trn_locks[transactional_id]:
                self._ensure_producer()
                # A rebalance asks again for partitions the worker keeps; their transaction
                # is still open and carries on.
                if not producer._txn_manager.is_in_transaction():
                    await producer.begin_transaction()
        except Exception as exc:
            stop_worker_now(exc)

    async def commit_transaction(self, transactional_id: str) -> None:
        try:
            async with self._trn_locks[transactional_id]:
                await self._transaction_producers[transactional_id].commit_transaction()
        except Exception as exc:
            stop_worker_now(exc)

    async def abort_transaction(self, transactional_id: str) -> None:
        try:
            async with self._trn_locks[transactional_id]:
                await self._transaction_producers[transactional_id].abort_transaction()
        except Exception as exc:
            stop_worker_now(exc)

    async def commit_transactions(
        self,
        tid_to_offset_map: Mapping[str, Mapping[TP, int]],
        group_id: str,
        start_new_transaction: bool = True,
    ) -> None:
        try:
            for transactional_id, offsets in tid_to_offset_map.items():
                async with self._trn_locks[transactional_id]:
                    producer = self._transaction_producers[transactional_id]
                    self.faults.reach("send-offsets")
                    await producer.send_offsets_to_transaction(offsets, group_id)
                    self.faults.reach("before-commit")
                    await producer.commit_transaction()
                    for tp in offsets:
                        self.on_committed(tp.partition)
                    if start_new_transaction:
                        await producer.begin_transaction()
        except Exception as exc:
            stop_worker_now(exc)


class ExactlyOnceTransport(faust_aiokafka.Transport):
    Consumer = SeekFencedConsumer
    Producer = TransactionGuardedProducer
