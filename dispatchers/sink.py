"""`python -m dispatchers.sink`: copy the delivery-log topic into PostgreSQL for the API.

A consumer group of its own reads the topic in batches, inserts each batch in one transaction
and commits the offsets only after the transaction committed. A row's primary key is its topic
position, so records read again after a crash insert nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

import psycopg
from aiokafka import AIOKafkaConsumer, ConsumerRecord

from runtime.kafka import group_consumer
from runtime.logging import configure_logging
from runtime.metrics import SINK_ROWS, UNDECODABLE_RECORDS
from runtime.ops_server import OpsServer
from runtime.settings import Settings, get_settings
from schemas.codec import RecordDecodeError, RecordPosition
from schemas.records import DELIVERY_LOG_RECORD
from schemas.topics import DELIVERY_LOG

log = logging.getLogger("triggerline.sink")

BATCH_RECORDS = 2000
RETRY_S = 1.0

INSERT = """
INSERT INTO delivery_log (
    log_partition, log_offset, event_id, trigger_id, project_id, stage, outcome, at,
    correlation_id, target_kind, target_ref, attempt, reason, http_status, error, latency_ms,
    replay, received_at
) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (log_partition, log_offset) DO NOTHING
"""


def row_of(record: ConsumerRecord[bytes, bytes]) -> tuple[Any, ...] | None:
    position = RecordPosition(record.topic, record.partition, record.offset)
    try:
        e = DELIVERY_LOG_RECORD.decode(record.value, position)
    except RecordDecodeError as exc:
        # Nothing to show for it; the producer's own dead letters and logs cover the cause.
        UNDECODABLE_RECORDS.labels("sink").inc()
        log.error("undecodable delivery-log record skipped", extra={"error": str(exc)})
        return None
    return (
        record.partition,
        record.offset,
        e.event_id,
        e.trigger_id,
        e.project_id,
        e.stage,
        e.outcome,
        e.at,
        e.correlation_id,
        e.target_kind,
        e.target_ref,
        e.attempt,
        e.reason,
        e.http_status,
        e.error,
        e.latency_ms,
        e.replay,
        e.received_at,
    )


class DeliveryLogSink:
    def __init__(self, settings: Settings, consumer: AIOKafkaConsumer) -> None:
        self._url = settings.database_url.get_secret_value()
        self._consumer = consumer
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        conn: psycopg.AsyncConnection[Any] | None = None
        try:
            while not self._stopping.is_set():
                batches = await self._consumer.getmany(timeout_ms=200, max_records=BATCH_RECORDS)
                if not batches:
                    continue
                rows = [row for records in batches.values() for r in records if (row := row_of(r))]
                conn = await self._write(conn, rows)
                if conn is None:
                    return  # stopping before the batch was written: it will be read again
                await self._consumer.commit(
                    {tp: records[-1].offset + 1 for tp, records in batches.items()}
                )
        finally:
            if conn is not None:
                await conn.close()

    async def _write(
        self, conn: psycopg.AsyncConnection[Any] | None, rows: list[tuple[Any, ...]]
    ) -> psycopg.AsyncConnection[Any] | None:
        """Insert until it succeeds; returns the connection, or None if stopped first."""
        while not self._stopping.is_set():
            try:
                if conn is None or conn.closed:
                    conn = await psycopg.AsyncConnection.connect(self._url)
                async with conn.transaction(), conn.cursor() as cursor:
                    await cursor.executemany(INSERT, rows)
                    inserted = cursor.rowcount
            except psycopg.OperationalError as exc:
                log.error("delivery-log write failed; retrying", extra={"error": str(exc)})
                if conn is not None:
                    await conn.close()
                conn = None
                await asyncio.sleep(RETRY_S)
            else:
                SINK_ROWS.inc(max(inserted, 0))
                return conn
        return None


async def serve(settings: Settings) -> None:
    consumer = group_consumer(
        settings,
        DELIVERY_LOG.name(settings.topic_prefix),
        group=settings.group("delivery-log-sink"),
    )
    sink = DeliveryLogSink(settings, consumer)
    started = {"consumer": False}
    ops = OpsServer("127.0.0.1", settings.sink_metrics_port, lambda: dict(started))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, sink.stop)
    await ops.start()
    await consumer.start()
    started["consumer"] = True
    try:
        await sink.run()
    finally:
        await consumer.stop()
        await ops.stop()
        log.info("stopped")


def main() -> None:
    settings = get_settings()
    configure_logging("delivery-log-sink", settings.log_level)
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
