"""The dispatcher loop: routed events in, deliveries and delivery-log records out.

Offsets are committed by hand and only after the effect: a record counts as done once its target
acknowledged it (or it was dead-lettered) and its delivery-log record was acknowledged by Kafka.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from dispatchers.targets import AttemptResult, deliver
from runtime.logging import log_context
from runtime.metrics import (
    DISPATCH_ATTEMPT_LATENCY,
    DISPATCH_DELIVERIES,
    DISPATCH_END_TO_END_LATENCY,
    DISPATCH_IN_FLIGHT,
    UNDECODABLE_RECORDS,
)
from runtime.settings import Settings
from schemas.codec import RecordDecodeError, RecordPosition
from schemas.records import (
    DEAD_LETTER,
    DELIVERY_LOG_RECORD,
    ROUTED_EVENT,
    DeadLetter,
    DeliveryLogRecord,
    Outcome,
    RoutedEvent,
)
from schemas.topics import DEAD_LETTERS, DELIVERY_LOG

log = logging.getLogger("triggerline.dispatchers")


class Dispatcher:
    def __init__(
        self, settings: Settings, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer
    ) -> None:
        self._consumer = consumer
        self._producer = producer
        self._delivery_log = DELIVERY_LOG.name(settings.topic_prefix)
        self._dead_letters = DEAD_LETTERS.name(settings.topic_prefix)
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            batches = await self._consumer.getmany(timeout_ms=200, max_records=500)
            for tp, records in batches.items():
                for record in records:
                    await self._dispatch(record)
                # Everything up to here is delivered or dead-lettered and logged.
                await self._consumer.commit({tp: records[-1].offset + 1})

    async def _dispatch(self, record: ConsumerRecord[bytes, bytes]) -> None:
        position = RecordPosition(record.topic, record.partition, record.offset)
        try:
            event = ROUTED_EVENT.decode(record.value, position)
        except RecordDecodeError as exc:
            UNDECODABLE_RECORDS.labels("dispatcher").inc()
            log.error("undecodable routed event", extra={"error": str(exc)})
            await self._dead_letter(record, None, "undecodable", str(exc))
            return
        with log_context(
            event_id=event.id, correlation_id=event.subject, trigger_id=event.triggerid
        ):
            DISPATCH_IN_FLIGHT.inc()
            started = time.perf_counter()
            try:
                result = await deliver(event)
            finally:
                DISPATCH_IN_FLIGHT.dec()
            elapsed = time.perf_counter() - started
            DISPATCH_ATTEMPT_LATENCY.labels(event.targetkind).observe(elapsed)
            await self._log_attempt(event, result, elapsed)
            if result.outcome == "delivered":
                DISPATCH_END_TO_END_LATENCY.labels(event.targetkind).observe(
                    (datetime.now(UTC) - event.receivedat).total_seconds()
                )
            else:
                await self._dead_letter(record, event, "delivery_failed", result.error)
                await self._log(event, "dead_lettered", attempt=1, error=result.error)

    async def _log_attempt(
        self, event: RoutedEvent, result: AttemptResult, elapsed_s: float
    ) -> None:
        outcome: Outcome = "delivered" if result.outcome == "delivered" else "failed"
        DISPATCH_DELIVERIES.labels(event.targetkind, outcome).inc()
        await self._log(
            event,
            outcome,
            attempt=1,
            http_status=result.http_status,
            error=result.error,
            latency_ms=elapsed_s * 1000,
        )

    async def _log(
        self,
        event: RoutedEvent,
        outcome: Outcome,
        *,
        attempt: int,
        http_status: int | None = None,
        error: str | None = None,
        latency_ms: float | None = None,
    ) -> None:
        entry = DeliveryLogRecord(
            event_id=event.id,
            trigger_id=event.triggerid,
            project_id=event.projectid,
            stage="dispatcher",
            outcome=outcome,
            at=datetime.now(UTC),
            correlation_id=event.subject,
            target_kind=event.targetkind,
            target_ref=event.targetref,
            attempt=attempt,
            http_status=http_status,
            error=error,
            latency_ms=latency_ms,
            replay=event.replay,
        )
        await self._producer.send_and_wait(
            self._delivery_log, DELIVERY_LOG_RECORD.encode(entry), key=event.id.encode()
        )

    async def _dead_letter(
        self,
        record: ConsumerRecord[bytes, bytes],
        event: RoutedEvent | None,
        reason: str,
        error: str | None,
    ) -> None:
        letter = DeadLetter(
            stage="dispatcher",
            reason=reason,
            failed_at=datetime.now(UTC),
            source_topic=record.topic,
            source_partition=record.partition,
            source_offset=record.offset,
            key_b64=None if record.key is None else base64.b64encode(record.key).decode(),
            value_b64=None if record.value is None else base64.b64encode(record.value).decode(),
            event_id=event.id if event else None,
            trigger_id=event.triggerid if event else None,
            error=error,
        )
        key = event.id if event else f"{record.topic}/{record.partition}/{record.offset}"
        await self._producer.send_and_wait(
            self._dead_letters, DEAD_LETTER.encode(letter), key=key.encode()
        )
