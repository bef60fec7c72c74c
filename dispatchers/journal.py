"""Writes the dispatcher's side of an event's journey: delivery-log records and dead letters,
and a log line for each outcome (within the log budget, runtime/logging.py).

Every write waits for Kafka's acknowledgement and is retried until it gets one, because an offset
may only be committed after its delivery-log record is safely on the topic.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from runtime.logging import OutcomeLog
from runtime.settings import Settings
from runtime.tracing import Tracing
from schemas.records import DeadLetter, DeliveryLogRecord, Outcome, RoutedEvent
from schemas.redaction import redact_url
from schemas.topics import DEAD_LETTERS, DELIVERY_LOG

log = logging.getLogger("triggerline.dispatchers")

WRITE_RETRY_S = 1.0

# Every delivery-log record shows its target redacted; a process delivers to few targets, each
# many times, so each is redacted once (up to this many).
_redacted_target = lru_cache(maxsize=4096)(redact_url)


class Journal:
    def __init__(
        self, settings: Settings, producer: AIOKafkaProducer, tracing: Tracing | None = None
    ) -> None:
        self._producer = producer
        # With tracing on, each record carries the context of the record's `process` span.
        self._tracing = tracing
        self._delivery_log = DELIVERY_LOG.name(settings.topics.prefix)
        self._dead_letters = DEAD_LETTERS.name(settings.topics.prefix)
        self._outcomes = OutcomeLog(log, settings.log_event_lines_per_s)

    async def record(
        self,
        event: RoutedEvent,
        outcome: Outcome,
        *,
        attempt: int,
        reason: str | None = None,
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
            destination=event.destination,
            target_kind=event.targetkind,
            # Shown in /deliveries and /events; the real URL may carry a credential.
            target_ref=_redacted_target(event.targetref),
            attempt=attempt,
            reason=reason,
            http_status=http_status,
            error=error,
            latency_ms=latency_ms,
            replay=event.replay,
            replay_id=event.replayid,
            received_at=event.receivedat,
        )
        await self._send(self._delivery_log, event.id, DELIVERY_LOG.encode(entry))
        self._outcomes.outcome(
            outcome,
            event_id=event.id,
            trigger_id=event.triggerid,
            correlation_id=event.subject,
            destination=event.destination,
            attempt=attempt,
            http_status=http_status,
            reason=reason,
            error=error,
        )

    async def dead_letter(
        self,
        *,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        event: RoutedEvent | None,
        reason: str,
        error: str | None,
        attempts: list[dict[str, Any]] | None = None,
    ) -> None:
        # The routed record unchanged, real target URL included: a re-drive delivers it again.
        # The readable fields (reason, error, attempts) carry only redacted URLs.
        letter = DeadLetter.of(
            "dispatcher",
            reason,
            error,
            source=(topic, partition, offset),
            key=key,
            value=value,
            event_id=event.id if event else None,
            trigger_id=event.triggerid if event else None,
            attempts=attempts,
        )
        await self._send(self._dead_letters, letter.key, DEAD_LETTERS.encode(letter))

    async def _send(self, topic: str, key: str, value: bytes) -> None:
        headers = None if self._tracing is None else self._tracing.current_record_headers()
        while True:
            try:
                await self._producer.send_and_wait(topic, value, key=key.encode(), headers=headers)
            except KafkaError as exc:
                # Holding the record back (and its offset uncommitted) is the only safe choice.
                log.error("cannot write to %s; retrying", topic, extra={"error": str(exc)})
                await asyncio.sleep(WRITE_RETRY_S)
            else:
                return
