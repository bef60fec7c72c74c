"""Carries committed registry changes from the outbox to the compacted trigger-config topic.

Exactly one relay publishes at a time (a PostgreSQL advisory lock), in outbox order, and marks
rows published only after Kafka acknowledged them. Each record carries its outbox sequence
number in a header. A relay killed between publishing a batch and marking it leaves at most that
one batch published but unmarked; its successor reads the tail of every partition first and
marks those rows without sending them again. So nothing is skipped, and no trigger's older state
is ever published after its newer state: the topic's revisions per trigger only go up.

A row Kafka refuses for itself (too large, invalid) would be refused forever, so it is set aside
(`failed_at`, `error`) and the rows after it flow; the trigger's next change supersedes it. A
failure of the broker or the connection is not the row's fault: the whole batch is retried.
The leader also deletes published rows after their retention, and set-aside rows after theirs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTopicError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)
from aiokafka.partitioner import DefaultPartitioner
from psycopg import AsyncConnection, sql

from runtime.cancellation import stop_if_cancelling
from runtime.kafka import reached, whole_topic_consumer
from runtime.metrics import OUTBOX_ROWS_SET_ASIDE
from runtime.settings import Settings
from schemas.topics import TRIGGER_CONFIG

log = logging.getLogger("triggerline.relay")

# Any constant shared by all relays of one database; spells "TLRELAY1" in ASCII.
RELAY_LOCK_ID = 0x544C52454C415931
BATCH_SIZE = 500
SEQ_HEADER = "outbox-seq"
# How long a starting relay may take to read the tail of the topic before it retries.
TAIL_READ_TIMEOUT_S = 30.0
# Errors about one record that sending it again cannot change.
RECORD_ERRORS: tuple[type[Exception], ...] = (
    MessageSizeTooLargeError,
    RecordTooLargeError,
    RecordListTooLargeError,
    CorruptRecordException,
    InvalidTopicError,
)
# How often the leader prunes, and how many rows one DELETE removes, so that a large backlog of
# old rows is deleted in short transactions that never hold up publishing for long.
PRUNE_INTERVAL_S = 60.0
PRUNE_BATCH = 1000


class OutboxRelay:
    def __init__(self, settings: Settings, producer: AIOKafkaProducer) -> None:
        self._settings = settings
        self._producer = producer
        self._topic = TRIGGER_CONFIG.name(settings.topics.prefix)
        self.is_leader = False
        self._partitioner = DefaultPartitioner()
        # Outbox rows found on the topic by the last tail read: published, maybe not marked.
        self._already_published: set[int] = set()

    async def run(self) -> None:
        """Relay until cancelled; survives database and broker outages by retrying."""
        while True:
            try:
                await self._relay_while_leader()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                stop_if_cancelling()
                self.is_leader = False
                log.warning("outbox relay interrupted; retrying", extra={"error": str(exc)})
                await asyncio.sleep(2)

    async def _relay_while_leader(self) -> None:
        url = self._settings.database.url.get_secret_value()
        async with await AsyncConnection.connect(url, autocommit=True) as conn:
            while not await self._try_lock(conn):
                self.is_leader = False
                await asyncio.sleep(5)
            self.is_leader = True
            await self.recover()
            await conn.execute("LISTEN trigger_config_outbox")
            pruned_at = 0.0
            while True:
                while await self.publish_pending(conn):
                    pass
                if time.monotonic() - pruned_at >= PRUNE_INTERVAL_S:
                    await self.prune(conn)
                    pruned_at = time.monotonic()
                # A notification arrives at commit; the timeout is the safety net.
                async for _ in conn.notifies(timeout=1.0, stop_after=1):
                    pass

    async def _try_lock(self, conn: AsyncConnection[Any]) -> bool:
        cursor = await conn.execute("SELECT pg_try_advisory_lock(%s)", (RELAY_LOCK_ID,))
        row = await cursor.fetchone()
        return bool(row and row[0])

    async def publish_pending(self, conn: AsyncConnection[Any]) -> int:
        """Publish one batch of pending changes; returns how many rows it settled (published
        or set aside)."""
        cursor = await conn.execute(
            """
            SELECT seq, trigger_id, payload FROM trigger_config_outbox
            WHERE published_at IS NULL AND failed_at IS NULL ORDER BY seq LIMIT %s
            """,
            (BATCH_SIZE,),
        )
        rows = await cursor.fetchall()
        if not rows:
            return 0
        partitions = sorted(await self._producer.partitions_for(self._topic))
        sent: list[tuple[int, str, asyncio.Future[Any]]] = []
        refused: list[tuple[int, str, Exception]] = []
        for seq, trigger_id, payload in rows:
            if seq in self._already_published:
                continue
            key = str(trigger_id).encode()
            try:
                # Sends are pipelined; the idempotent producer keeps their order per partition.
                future = await self._producer.send(
                    self._topic,
                    key=key,
                    value=None if payload is None else bytes(payload),
                    partition=self._partitioner(key, partitions, partitions),
                    headers=[(SEQ_HEADER, str(seq).encode())],
                )
            except RECORD_ERRORS as refusal:
                refused.append((seq, str(trigger_id), refusal))
                continue
            sent.append((seq, str(trigger_id), future))
        results = await asyncio.gather(*(future for _, _, future in sent), return_exceptions=True)
        for (seq, trigger_id, _), result in zip(sent, results, strict=True):
            if isinstance(result, RECORD_ERRORS):
                refused.append((seq, trigger_id, result))
            elif isinstance(result, BaseException):
                # Not this row's fault (broker, connection): the whole batch is tried again.
                raise result
        refused_seqs = {seq for seq, _, _ in refused}
        for seq, trigger_id, exc in refused:
            await self._set_aside(conn, seq, trigger_id, exc)
        await self._mark_published(conn, [seq for seq, _, _ in rows if seq not in refused_seqs])
        log.info("published trigger config changes", extra={"count": len(rows) - len(refused)})
        return len(rows)

    async def _set_aside(
        self, conn: AsyncConnection[Any], seq: int, trigger_id: str, exc: Exception
    ) -> None:
        error = f"{type(exc).__name__}: {exc}"
        await conn.execute(
            "UPDATE trigger_config_outbox SET failed_at = now(), error = %s WHERE seq = %s",
            (error, seq),
        )
        OUTBOX_ROWS_SET_ASIDE.inc()
        log.error(
            f"outbox row {seq} of trigger {trigger_id} cannot be published; set aside",
            extra={"trigger_id": trigger_id, "seq": seq, "error": error},
        )

    async def prune(self, conn: AsyncConnection[Any]) -> int:
        """Delete published rows older than their retention and set-aside rows older than
        theirs, PRUNE_BATCH at a time; returns how many were deleted."""
        deleted = 0
        for column, retention_s in (
            ("published_at", self._settings.registry.outbox_retention_s),
            ("failed_at", self._settings.registry.outbox_set_aside_retention_s),
        ):
            while True:
                cursor = await conn.execute(
                    sql.SQL(
                        """
                    DELETE FROM trigger_config_outbox WHERE seq IN (
                        SELECT seq FROM trigger_config_outbox
                        WHERE {column} < now() - make_interval(secs => %s) LIMIT %s)
                    """
                    ).format(column=sql.Identifier(column)),
                    (retention_s, PRUNE_BATCH),
                )
                deleted += cursor.rowcount
                if cursor.rowcount < PRUNE_BATCH:
                    break
        if deleted:
            log.info("pruned old outbox rows", extra={"count": deleted})
        return deleted

    async def _mark_published(self, conn: AsyncConnection[Any], seqs: list[int]) -> None:
        await conn.execute(
            "UPDATE trigger_config_outbox SET published_at = now() WHERE seq = ANY(%s)", (seqs,)
        )

    async def recover(self) -> None:
        """Learn which pending rows a predecessor published without marking them."""
        self._already_published = await self._published_tail()

    async def _published_tail(self) -> set[int]:
        """The outbox rows among the last BATCH_SIZE records of every partition.

        Only the last batch can be published but unmarked, and it is at most BATCH_SIZE records,
        all written after anything else on the topic (there is one relay at a time).
        """
        consumer = await whole_topic_consumer(self._settings, self._topic)
        found: set[int] = set()
        try:
            partitions: list[TopicPartition] = list(consumer.assignment())
            ends = await consumer.end_offsets(partitions)
            for tp in partitions:
                consumer.seek(tp, max(0, ends[tp] - BATCH_SIZE))
            async with asyncio.timeout(TAIL_READ_TIMEOUT_S):
                while not await reached(consumer, ends):
                    batches = await consumer.getmany(timeout_ms=500)
                    for messages in batches.values():
                        for message in messages:
                            found.update(
                                int(value)
                                for name, value in message.headers or ()
                                if name == SEQ_HEADER
                            )
        finally:
            await consumer.stop()
        return found
