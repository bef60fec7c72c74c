"""The processors' decision for one raw event: route it, skip it (with a reason), or ignore it.

Pure functions over records and compiled trigger config, so the rules are testable without a
broker; the faust app only moves the results onto topics. Two steps, because deduplication sits
between them: `normalize` (per definition) and `decide` (allow-list, then the CEL filter).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import msgspec
import orjson

from processors.cron import parse_tick, tick_fields
from processors.rules import RoutingTrigger
from processors.slack import normalize_slack
from runtime.cel import CelEvaluationError
from schemas.codec import RecordDecodeError
from schemas.records import RawEvent, RoutedEvent

log = logging.getLogger("triggerline.processors")

# Interactivity payloads have no event_callback wrapper but are events all the same.
ROUTED_SLACK_ENVELOPES = frozenset(
    {"event_callback", "block_actions", "view_submission", "shortcut"}
)


class Normalized(msgspec.Struct, frozen=True):
    """One event in Triggerline's terms, whatever the sender."""

    # The sender's id for the event (Slack event_id, webhook-id, tick id): retries share it.
    event_id: str
    event_type: str
    correlation_id: str
    time: datetime
    # What filters see as `event`: flat, JSON-typed fields.
    fields: dict[str, Any]
    # The routed CloudEvent's data.
    data: dict[str, Any]


class Routed(msgspec.Struct, frozen=True):
    event: RoutedEvent


class Skipped(msgspec.Struct, frozen=True):
    """A valid event the trigger's rules chose not to deliver; the reason is shown to users."""

    event_id: str
    correlation_id: str | None
    reason: str


class FilterFailed(msgspec.Struct, frozen=True):
    """The trigger's filter could not be evaluated on this event; the message is shown to users."""

    event_id: str
    correlation_id: str
    error: str


class Ignored(msgspec.Struct, frozen=True):
    """Not an event at all for routing purposes (paused trigger, non-event envelope)."""

    event_id: str
    reason: str


Decision = Routed | Skipped | FilterFailed | Ignored


class UnroutableEvent(ValueError):
    """The raw record is well-formed but its body cannot be routed; it is dead-lettered."""


def normalize(raw: RawEvent, trigger: RoutingTrigger) -> Normalized | Ignored:
    if not trigger.active:
        return Ignored(raw.id, "trigger paused")
    if raw.definition == "slack":
        return _normalize_slack(raw)
    if raw.definition == "cron":
        return _normalize_cron(raw)
    if raw.definition == "webhook":
        return _normalize_webhook(raw, trigger)
    raise UnroutableEvent(f"no routing rules for definition {raw.definition!r}")


def decide(raw: RawEvent, trigger: RoutingTrigger, event: Normalized) -> Decision:
    if trigger.config_error is not None:
        return FilterFailed(event.event_id, event.correlation_id, trigger.config_error)
    if trigger.event_types is not None and event.event_type not in trigger.event_types:
        allowed = ", ".join(sorted(trigger.event_types))
        return Skipped(
            event.event_id,
            event.correlation_id,
            f"event_type {event.event_type!r} not in [{allowed}]",
        )
    if trigger.filter is not None:
        try:
            matched = trigger.filter.evaluate(event.fields)
        except CelEvaluationError as exc:
            return FilterFailed(event.event_id, event.correlation_id, f"filter failed: {exc}")
        if not matched:
            return Skipped(event.event_id, event.correlation_id, "filter returned false")
    return Routed(
        RoutedEvent(
            id=event.event_id,
            source=f"/triggers/{trigger.trigger_id}",
            type=f"{raw.definition}.{event.event_type}",
            subject=event.correlation_id,
            time=event.time,
            data=event.data,
            triggerid=trigger.trigger_id,
            projectid=trigger.project_id,
            targetkind=trigger.target.kind,
            targetref=trigger.target.ref,
            receivedat=raw.received_at,
            replay=raw.replay,
        )
    )


def _normalize_slack(raw: RawEvent) -> Normalized | Ignored:
    envelope = _json_object(
        parse_qs(raw.body).get("payload", ["{}"])[0]
        if raw.content_type == "application/x-www-form-urlencoded"
        else raw.body
    )
    event = normalize_slack(envelope)
    event_id = event.event_id or raw.id
    if event.envelope_type not in ROUTED_SLACK_ENVELOPES:
        return Ignored(event_id, f"envelope type {event.envelope_type!r} is not routed")
    fields = event.fields()
    return Normalized(
        event_id=event_id,
        event_type=event.event_type or event.envelope_type,
        correlation_id=event.correlation_id,
        time=datetime.fromtimestamp(event.event_time, UTC) if event.event_time else raw.received_at,
        fields=fields,
        data={"slack": fields, "envelope": envelope},
    )


def _normalize_cron(raw: RawEvent) -> Normalized:
    try:
        tick = parse_tick(raw.body)
    except RecordDecodeError as exc:
        raise UnroutableEvent(f"body is not a cron tick: {exc.problem}") from None
    fields = tick_fields(tick)
    return Normalized(
        event_id=tick.tick_id,
        event_type="tick",
        correlation_id=tick.trigger_id,
        time=tick.scheduled_at,
        fields=fields,
        data={"cron": fields},
    )


def _normalize_webhook(raw: RawEvent, trigger: RoutingTrigger) -> Normalized:
    webhook_id = raw.headers.get("webhook-id") or raw.id
    # The sender's body, plus its webhook-id; the id wins over a body field of the same name.
    fields = {**_json_object(raw.body), "webhook_id": webhook_id}
    return Normalized(
        event_id=webhook_id,
        event_type="received",
        correlation_id=_webhook_correlation(trigger, fields, webhook_id),
        time=raw.received_at,
        fields=fields,
        data=fields,
    )


def _webhook_correlation(trigger: RoutingTrigger, fields: dict[str, Any], fallback: str) -> str:
    if trigger.correlation is None:
        return fallback
    try:
        value = trigger.correlation.evaluate(fields)
    except CelEvaluationError as exc:
        # Ordering by webhook-id still delivers the event; the log says why it is not grouped.
        log.warning(
            "correlation expression failed; using webhook-id",
            extra={"trigger_id": trigger.trigger_id, "event_id": fallback, "error": str(exc)},
        )
        return fallback
    return str(value) or fallback


def _json_object(text: str) -> dict[str, Any]:
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise UnroutableEvent(f"body is not JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise UnroutableEvent("body is not a JSON object")
    return parsed
