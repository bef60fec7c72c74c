"""Moves one raw event's decision onto topics: routed event, delivery-log record, dead letter.

Inside the faust agent every send joins the current Kafka transaction, so these writes, the
deduplication table's changelog and the consumed offset become visible together or not at all.
"""

from __future__ import annotations

import base64
import logging
from datetime import UTC, datetime
from typing import Any

from processors.dedupe import SeenEvents
from processors.outputs import Outputs
from processors.routing import (
    FilterFailed,
    Ignored,
    Normalized,
    Routed,
    Skipped,
    UnroutableEvent,
    decide,
    normalize,
)
from processors.rules import RoutingTrigger
from runtime.config_view import TriggerConfigView
from runtime.logging import log_context
from runtime.metrics import PROCESSOR_EVENTS, PROCESSOR_EVENTS_IN, UNDECODABLE_RECORDS
from schemas.codec import RecordDecodeError, RecordPosition
from schemas.records import (
    DEAD_LETTER,
    DELIVERY_LOG_RECORD,
    RAW_EVENT,
    ROUTED_EVENT,
    DeadLetter,
    DeliveryLogRecord,
    Outcome,
    RawEvent,
)
from schemas.topics import DEAD_LETTERS, DELIVERY_LOG, ROUTED_EVENTS

log = logging.getLogger("triggerline.processors")

CLOUDEVENTS_CONTENT_TYPE = b"application/cloudevents+json"


class RawEventHandler:
    def __init__(
        self,
        view: TriggerConfigView[RoutingTrigger],
        seen: SeenEvents,
        outputs: Outputs,
        prefix: str,
    ) -> None:
        self._view = view
        self._seen = seen
        self._outputs = outputs
        self._routed = ROUTED_EVENTS.name(prefix)
        self._delivery_log = DELIVERY_LOG.name(prefix)
        self._dead_letters = DEAD_LETTERS.name(prefix)

    async def handle(self, message: Any) -> None:
        position = RecordPosition(message.topic, message.partition, message.offset)
        try:
            raw = RAW_EVENT.decode(message.value, position)
        except RecordDecodeError as exc:
            PROCESSOR_EVENTS_IN.labels("unknown").inc()
            UNDECODABLE_RECORDS.labels("processor").inc()
            PROCESSOR_EVENTS.labels("unknown", "dead_lettered").inc()
            log.error("undecodable raw event", extra={"error": str(exc)})
            await self.dead_letter(message, "undecodable", str(exc), None)
            return
        PROCESSOR_EVENTS_IN.labels(raw.definition).inc()
        with log_context(raw_id=raw.id, trigger_id=raw.trigger_id):
            await self._handle_raw(message, raw)

    async def _handle_raw(self, message: Any, raw: RawEvent) -> None:
        trigger = await self._view.lookup(raw.trigger_id)
        if trigger is None:
            # Deleted after ingest accepted the event: there is no target left to deliver to.
            await self._record(message, raw, raw.id, "ignored", reason="trigger no longer exists")
            return
        try:
            event = normalize(raw, trigger)
        except UnroutableEvent as exc:
            PROCESSOR_EVENTS.labels(raw.definition, "dead_lettered").inc()
            await self.dead_letter(message, "unroutable", str(exc), raw)
            return
        if isinstance(event, Ignored):
            await self._record(message, raw, event.event_id, "ignored", reason=event.reason)
            return
        # A replay re-drives events on purpose; only live traffic is deduplicated.
        if not raw.replay and self._seen.seen_before(raw.trigger_id, event.event_id):
            await self._record_duplicate(message, raw, event)
            return
        decision = decide(raw, trigger, event)
        if isinstance(decision, Routed):
            routed = decision.event
            await self._outputs.send(
                self._routed,
                routed.subject.encode(),
                ROUTED_EVENT.encode(routed),
                message,
                {"content-type": CLOUDEVENTS_CONTENT_TYPE},
            )
            await self._record(message, raw, routed.id, "routed", correlation_id=routed.subject)
        elif isinstance(decision, Skipped):
            await self._record(
                message,
                raw,
                decision.event_id,
                "skipped",
                correlation_id=decision.correlation_id,
                reason=decision.reason,
            )
        elif isinstance(decision, FilterFailed):
            await self._record(
                message,
                raw,
                decision.event_id,
                "filter_error",
                correlation_id=decision.correlation_id,
                reason=decision.error,
            )

    async def _record_duplicate(self, message: Any, raw: RawEvent, event: Normalized) -> None:
        retry = raw.headers.get("x-slack-retry-num")
        reason = f"already seen (retry {retry})" if retry else "already seen"
        await self._record(
            message,
            raw,
            event.event_id,
            "duplicate",
            correlation_id=event.correlation_id,
            reason=reason,
        )

    async def _record(
        self,
        message: Any,
        raw: RawEvent,
        event_id: str,
        outcome: Outcome,
        *,
        correlation_id: str | None = None,
        reason: str | None = None,
    ) -> None:
        PROCESSOR_EVENTS.labels(raw.definition, outcome).inc()
        with log_context(event_id=event_id, correlation_id=correlation_id):
            log.info(outcome, extra={"reason": reason})
        entry = DeliveryLogRecord(
            event_id=event_id,
            trigger_id=raw.trigger_id,
            project_id=raw.project_id,
            stage="processor",
            outcome=outcome,
            at=datetime.now(UTC),
            correlation_id=correlation_id,
            reason=reason,
            replay=raw.replay,
            received_at=raw.received_at,
        )
        await self._outputs.send(
            self._delivery_log, event_id.encode(), DELIVERY_LOG_RECORD.encode(entry), message
        )

    async def dead_letter(
        self, message: Any, reason: str, error: str, raw: RawEvent | None
    ) -> None:
        letter = DeadLetter(
            stage="processor",
            reason=reason,
            failed_at=datetime.now(UTC),
            source_topic=message.topic,
            source_partition=message.partition,
            source_offset=message.offset,
            key_b64=_b64(message.key),
            value_b64=_b64(message.value),
            event_id=raw.id if raw else None,
            trigger_id=raw.trigger_id if raw else None,
            error=error,
        )
        key = raw.id if raw else f"{message.topic}/{message.partition}/{message.offset}"
        await self._outputs.send(
            self._dead_letters, key.encode(), DEAD_LETTER.encode(letter), message
        )


def _b64(value: bytes | None) -> str | None:
    return None if value is None else base64.b64encode(value).decode()
