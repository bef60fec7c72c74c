"""The processors' decision for one raw event: route it, skip it (with a reason), or ignore it.

Pure functions over records and compiled trigger config, so the rules are testable without a
broker; the engines only move the results onto topics. Two steps, because deduplication sits
between them: `normalize` (the trigger's kind) and `decide` (allow-list, then the CEL filter).
"""

from __future__ import annotations

import logging

import msgspec

from kinds import KINDS
from kinds.base import Ignored, Normalized, UnroutableEvent
from processors.rules import RoutingTrigger
from runtime.cel import CelEvaluationError
from schemas.records import RawEvent, RoutedEvent

log = logging.getLogger("triggerline.processors")


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


Decision = Routed | Skipped | FilterFailed | Ignored


def normalize(raw: RawEvent, trigger: RoutingTrigger) -> Normalized | Ignored:
    if not trigger.active:
        return Ignored(raw.id, "trigger paused")
    kind = KINDS.get(raw.definition)
    if kind is None:
        raise UnroutableEvent(f"no trigger kind {raw.definition!r}")
    event = kind.normalize(raw, trigger.correlation)
    if isinstance(event, Normalized) and event.note is not None:
        log.warning(
            "normalized with a caveat",
            extra={
                "trigger_id": trigger.trigger_id,
                "event_id": event.event_id,
                "note": event.note,
            },
        )
    return event


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
