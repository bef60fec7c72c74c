"""Carries committed registry changes from the outbox to the compacted trigger-config topic.

Exactly one relay publishes at a time (a PostgreSQL advisory lock), in outbox order, and marks
rows published only after Kafka acknowledged them. A relay killed between those two steps
re-publishes the same rows in the same order on restart, so the topic's last value per trigger
is always the newest committed state, never an older one.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaProducer
from psycopg import AsyncConnection

from runtime.settings import Settings
from schemas.topics import TRIGGER_CONFIG

log = logging.getLogger("triggerline.relay")

# Any constant shared by all relays of one database; spells "TLRELAY1" in ASCII.
RELAY_LOCK_ID = 0x544C52454C415931
BATCH_SIZE = 500


class OutboxRelay:
    def __init__(self, settings: Settings, producer: AIOKafkaProducer) -> None:
        self._settings = settings
        self._producer = producer
        self._topic = TRIGGER_CONFIG.name(settings.topic_prefix)
        self.is_leader = False

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
        # Sends are pipelined; the idempotent producer keeps their order per partition.
        futures = [
            await self._producer.send(
                self._topic,
                key=str(trigger_id).encode(),
                value=None if payload is None else bytes(payload),
            )
            for _, trigger_id, payload in rows
        ]
        await asyncio.gather(*futures)
        await conn.execute(
            "UPDATE trigger_config_outbox SET published_at = now() WHERE seq = ANY(%s)",
            ([seq for seq, _, _ in rows],),
        )
        log.info("published trigger config changes", extra={"count": len(rows)})
        return len(rows)
