"""`python -m dispatchers.sink`: copy the delivery-log topic into PostgreSQL for the API.

A consumer group of its own reads the topic in batches, inserts each batch in one transaction
and commits the offsets only after the transaction committed. A row's primary key is its topic
position, so records read again after a crash insert nothing twice.

Only a connection failure retries the batch. A row PostgreSQL refuses as data (a value it cannot
store) would be refused forever, so the batch is then written row by row and each refused row is
set aside (logged and counted) while the others commit. Text is made storable first: PostgreSQL
text cannot hold NUL, which any sender can put into an id or an error message. Rows older than
the retention are deleted in bounded batches between writes.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from aiokafka import AIOKafkaConsumer, ConsumerRecord

from runtime.consumer_lag import ConsumerLagReporter
from runtime.kafka import group_consumer
from runtime.logging import configure_logging
from runtime.metrics import SINK_ROWS, SINK_ROWS_PRUNED, SINK_ROWS_SET_ASIDE, UNDECODABLE_RECORDS
from runtime.ops_server import OpsServer
from runtime.settings import Settings, get_settings
from schemas.codec import RecordDecodeError, RecordPosition
from schemas.redaction import redact_url
from schemas.topics import DELIVERY_LOG

log = logging.getLogger("triggerline.sink")

BATCH_RECORDS = 2000
RETRY_S = 1.0
# Pruning deletes this many rows per statement, so no statement holds locks for long, and runs
# again at once while it finds full batches, else after the interval.
PRUNE_BATCH_ROWS = 5000
PRUNE_INTERVAL_S = 60.0
# Stands in for NUL, which PostgreSQL text cannot hold.
NUL_REPLACEMENT = "\ufffd"

INSERT = """
INSERT INTO delivery_log (
    log_partition, log_offset, event_id, trigger_id, project_id, stage, outcome, at,
    correlation_id, target_kind, target_ref, attempt, reason, http_status, error, latency_ms,
    replay, replay_id, destination, received_at
) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (log_partition, log_offset) DO NOTHING
"""
PRUNE = """
DELETE FROM delivery_log WHERE (log_partition, log_offset) IN (
    SELECT log_partition, log_offset FROM delivery_log WHERE at < %s ORDER BY at LIMIT %s
)
"""
# Errors of one row's values; any other error is the connection's or the database's.
ROW_ERRORS = (psycopg.DataError, psycopg.IntegrityError)


def storable(value: str | None) -> str | None:
    return None if value is None else value.replace("\x00", NUL_REPLACEMENT)


def row_of(record: ConsumerRecord[bytes, bytes]) -> tuple[Any, ...] | None:
    position = RecordPosition(record.topic, record.partition, record.offset)
    try:
        e = DELIVERY_LOG.decode(record.value, position)
    except RecordDecodeError as exc:
        # Nothing to show for it; the producer's own dead letters and logs cover the cause.
        UNDECODABLE_RECORDS.labels("sink").inc()
        log.error("undecodable delivery-log record skipped", extra={"error": str(exc)})
        return None
    return (
        record.partition,
        record.offset,
        storable(e.event_id),
        storable(e.trigger_id),
        storable(e.project_id),
        e.stage,
        e.outcome,
        e.at,
        storable(e.correlation_id),
        e.target_kind,
        # The table holds no target credential, whichever writer's record this is.
        storable(None if e.target_ref is None else redact_url(e.target_ref)),
        e.attempt,
        storable(e.reason),
        e.http_status,
        storable(e.error),
        e.latency_ms,
        e.replay,
        storable(e.replay_id),
        e.destination,
        e.received_at,
    )


class DeliveryLogSink:
    def __init__(self, settings: Settings, consumer: AIOKafkaConsumer) -> None:
        self._url = settings.database.url.get_secret_value()
        self._consumer = consumer
        self._stopping = asyncio.Event()
        self._retention = timedelta(seconds=settings.sink.delivery_log_retention_s)
        self._next_prune = 0.0

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        conn: psycopg.AsyncConnection[Any] | None = None
        try:
            while not self._stopping.is_set():
                conn = await self._prune_if_due(conn)
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
                try:
                    inserted = await _insert_batch(conn, rows)
                except ROW_ERRORS as exc:
                    log.warning(
                        "delivery-log batch refused; writing row by row",
                        extra={"error": str(exc)},
                    )
                    inserted = await _insert_each(conn, rows)
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

    async def _prune_if_due(
        self, conn: psycopg.AsyncConnection[Any] | None
    ) -> psycopg.AsyncConnection[Any] | None:
        """Delete one batch of rows past the retention, if it is time; returns the connection."""
        if time.monotonic() < self._next_prune:
            return conn
        try:
            if conn is None or conn.closed:
                conn = await psycopg.AsyncConnection.connect(self._url)
            async with conn.transaction(), conn.cursor() as cursor:
                await cursor.execute(PRUNE, (datetime.now(UTC) - self._retention, PRUNE_BATCH_ROWS))
                deleted = cursor.rowcount
        except psycopg.Error as exc:
            # Pruning is housekeeping: a failure waits for the next interval, writes go on.
            log.warning("delivery-log pruning failed", extra={"error": str(exc)})
            self._next_prune = time.monotonic() + PRUNE_INTERVAL_S
            if conn is not None and conn.closed:
                conn = None
            return conn
        SINK_ROWS_PRUNED.inc(max(deleted, 0))
        if deleted < PRUNE_BATCH_ROWS:
            self._next_prune = time.monotonic() + PRUNE_INTERVAL_S
        return conn


async def _insert_batch(conn: psycopg.AsyncConnection[Any], rows: list[tuple[Any, ...]]) -> int:
    async with conn.transaction(), conn.cursor() as cursor:
        await cursor.executemany(INSERT, rows)
        return cursor.rowcount


async def _insert_each(conn: psycopg.AsyncConnection[Any], rows: list[tuple[Any, ...]]) -> int:
    """Insert row by row in one transaction, setting aside each row refused as data."""
    inserted = 0
    async with conn.transaction(), conn.cursor() as cursor:
        for row in rows:
            try:
                async with conn.transaction():  # a savepoint: a refused row undoes only itself
                    await cursor.execute(INSERT, row)
                    inserted += max(cursor.rowcount, 0)
            except ROW_ERRORS as exc:
                SINK_ROWS_SET_ASIDE.inc()
                log.error(
                    "delivery-log record set aside: PostgreSQL refused it",
                    extra={"partition": row[0], "offset": row[1], "error": str(exc)},
                )
    return inserted


async def serve(settings: Settings) -> None:
    consumer = group_consumer(
        settings,
        DELIVERY_LOG.name(settings.topics.prefix),
        group=settings.group("delivery-log-sink"),
    )
    sink = DeliveryLogSink(settings, consumer)
    started = {"consumer": False}
    ops = OpsServer(settings.ops_host, settings.sink.metrics_port, lambda: dict(started))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, sink.stop)
    await ops.start()
    await consumer.start()
    started["consumer"] = True
    lag = asyncio.create_task(ConsumerLagReporter(consumer).run(), name="consumer-lag")
    try:
        await sink.run()
    finally:
        lag.cancel()
        await asyncio.gather(lag, return_exceptions=True)
        await consumer.stop()
        await ops.stop()
        log.info("stopped")


def main() -> None:
    settings = get_settings()
    configure_logging("delivery-log-sink", settings)
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
