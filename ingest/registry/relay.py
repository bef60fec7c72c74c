"""Carries committed registry changes from the outbox to the compacted trigger-config topic.

Exactly one relay publishes at a time (a PostgreSQL advisory lock), in outbox order, and marks
rows published only after Kafka acknowledged them. Each record carries its outbox sequence
number in a header. A relay killed between publishing a batch and marking it leaves at most that
one batch published but unmarked; its successor reads the tail of every partition first and
marks those rows without sending them again. So nothing is skipped, and no trigger's older state
is ever published after its newer state: the topic's revisions per trigger only go up.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner
from psycopg import AsyncConnection

from runtime.kafka import reached, whole_topic_consumer
from runtime.settings import Settings
from schemas.topics import TRIGGER_CONFIG

log = logging.getLogger("triggerline.relay")

# Any constant shared by all relays of one database; spells "TLRELAY1" in ASCII.
RELAY_LOCK_ID = 0x544C52454C415931
BATCH_SIZE = 500
SEQ_HEADER = "outbox-seq"
# How long a starting relay may take to read the tail of the topic before it retries.
TAIL_READ_TIMEOUT_S = 30.0


class OutboxRelay:
    def __init__(self, settings: Settings, producer: AIOKafkaProducer) -> None:
        self._settings = settings
        self._producer = producer
        self._topic = TRIGGER_CONFIG.name(settings.topic_prefix)
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
                self.is_leader = False
                log.warning("outbox relay interrupted; retrying", extra={"error": str(exc)})
                await asyncio.sleep(2)

    async def _relay_while_leader(self) -> None:
        url = self._settings.database_url.get_secret_value()
        async with await AsyncConnection.connect(url, autocommit=True) as conn:
            while not await self._try_lock(conn):
                self.is_leader = False
                await asyncio.sleep(5)
            self.is_leader = True
            await self.recover()
            await conn.execute("LISTEN trigger_config_outbox")
            while True:
                while await self.publish_pending(conn):
                    pass
                # A notification arrives at commit; the timeout is the safety net.
                async for _ in conn.notifies(timeout=1.0, stop_after=1):
                    pass

    async def _try_lock(self, conn: AsyncConnection[Any]) -> bool:
        cursor = await conn.execute("SELECT pg_try_advisory_lock(%s)", (RELAY_LOCK_ID,))
        row = await cursor.fetchone()
        return bool(row and row[0])

    async def publish_pending(self, conn: AsyncConnection[Any]) -> int:
        """Publish one batch of pending changes; returns how many were published."""
        cursor = await conn.execute(
            """
            SELECT seq, trigger_id, payload FROM trigger_config_outbox
            WHERE published_at IS NULL ORDER BY seq LIMIT %s
            """,
            (BATCH_SIZE,),
        )
        rows = await cursor.fetchall()
        if not rows:
            return 0
        partitions = sorted(await self._producer.partitions_for(self._topic))
        futures = []
        for seq, trigger_id, payload in rows:
            if seq in self._already_published:
                continue
            key = str(trigger_id).encode()
            # Sends are pipelined; the idempotent producer keeps their order per partition.
            futures.append(
                await self._producer.send(
                    self._topic,
                    key=key,
                    value=None if payload is None else bytes(payload),
                    partition=self._partitioner(key, partitions, partitions),
                    headers=[(SEQ_HEADER, str(seq).encode())],
                )
            )
        await asyncio.gather(*futures)
        await self._mark_published(conn, [seq for seq, _, _ in rows])
        log.info("published trigger config changes", extra={"count": len(rows)})
        return len(rows)

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
