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

log = logging.getLogger("triggerline.processors")

CLOUDEVENTS_CONTENT_TYPE = b"application/cloudevents+json"


class RawEventHandler:
    def __init__(
        self,
        view: TriggerConfigView[RoutingTrigger],
        seen: SeenEvents,
        *,
        routed: Any,
        delivery_log: Any,
        dead_letters: Any,
    ) -> None:
        # The topics are faust topics; typed loosely because faust ships no type information.
        self._view = view
        self._seen = seen
        self._routed = routed
        self._delivery_log = delivery_log
        self._dead_letters = dead_letters

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
            await self._record(raw, raw.id, None, "ignored", "trigger no longer exists")
            return
        try:
            event = normalize(raw, trigger)
        except UnroutableEvent as exc:
            PROCESSOR_EVENTS.labels(raw.definition, "dead_lettered").inc()
            await self.dead_letter(message, "unroutable", str(exc), raw)
            return
        if isinstance(event, Ignored):
            await self._record(raw, event.event_id, None, "ignored", event.reason)
            return
        # A replay re-drives events on purpose; only live traffic is deduplicated.
        if not raw.replay and self._seen.seen_before(raw.trigger_id, event.event_id):
            await self._record_duplicate(raw, event)
            return
        decision = decide(raw, trigger, event)
        if isinstance(decision, Routed):
            routed = decision.event
            await self._routed.send(
                key=routed.subject.encode(),
                value=ROUTED_EVENT.encode(routed),
                headers={"content-type": CLOUDEVENTS_CONTENT_TYPE},
            )
            await self._record(raw, routed.id, routed.subject, "routed", None)
        elif isinstance(decision, Skipped):
            await self._record(
                raw, decision.event_id, decision.correlation_id, "skipped", decision.reason
            )
        elif isinstance(decision, FilterFailed):
            await self._record(
                raw, decision.event_id, decision.correlation_id, "filter_error", decision.error
            )

    async def _record_duplicate(self, raw: RawEvent, event: Normalized) -> None:
        retry = raw.headers.get("x-slack-retry-num")
        reason = f"already seen (retry {retry})" if retry else "already seen"
        await self._record(raw, event.event_id, event.correlation_id, "duplicate", reason)

    async def _record(
        self,
        raw: RawEvent,
        event_id: str,
        correlation_id: str | None,
        outcome: Outcome,
        reason: str | None,
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
        )
        await self._delivery_log.send(
            key=event_id.encode(), value=DELIVERY_LOG_RECORD.encode(entry)
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
        await self._dead_letters.send(key=key.encode(), value=DEAD_LETTER.encode(letter))


def _b64(value: bytes | None) -> str | None:
    return None if value is None else base64.b64encode(value).decode()
