"""The processors' decision for one raw event: route it, skip it (with a reason), or ignore it.

Pure functions over records and compiled trigger config, so the rules are testable without a
broker; the faust app only moves the results onto topics.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import orjson

from processors.slack import normalize_slack
from schemas.records import RawEvent, RoutedEvent
from schemas.triggers import Target, TriggerConfig


@dataclass(frozen=True, slots=True)
class RoutingTrigger:
    """A trigger's routing rules, compiled once per config revision."""

    trigger_id: str
    project_id: str
    active: bool
    target: Target
    # None routes every event type.
    event_types: frozenset[str] | None


def compile_routing_trigger(config: TriggerConfig) -> RoutingTrigger:
    event_types = config.config.get("event_types")
    return RoutingTrigger(
        trigger_id=config.trigger_id,
        project_id=config.project_id,
        active=config.active,
        target=config.target,
        event_types=frozenset(event_types) if event_types else None,
    )


@dataclass(frozen=True, slots=True)
class Routed:
    event: RoutedEvent


@dataclass(frozen=True, slots=True)
class Skipped:
    """A valid event the trigger's rules chose not to deliver; the reason is shown to users."""

    event_id: str
    correlation_id: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class Ignored:
    """Not an event at all for routing purposes (paused trigger, non-event envelope)."""

    event_id: str
    reason: str


Decision = Routed | Skipped | Ignored


class UnroutableEvent(ValueError):
    """The raw record is well-formed but its body cannot be routed; it is dead-lettered."""


def decide(raw: RawEvent, trigger: RoutingTrigger) -> Decision:
    if not trigger.active:
        return Ignored(raw.id, "trigger paused")
    if raw.definition == "slack":
        return _decide_slack(raw, trigger)
    raise UnroutableEvent(f"no routing rules for definition {raw.definition!r} yet")


def _decide_slack(raw: RawEvent, trigger: RoutingTrigger) -> Decision:
    envelope = _slack_envelope(raw)
    event = normalize_slack(envelope)
    event_id = event.event_id or raw.id
    if event.envelope_type not in (
        "event_callback",
        "block_actions",
        "view_submission",
        "shortcut",
    ):
        return Ignored(event_id, f"envelope type {event.envelope_type!r} is not routed")
    event_type = event.event_type or event.envelope_type
    if trigger.event_types is not None and event_type not in trigger.event_types:
        allowed = ", ".join(sorted(trigger.event_types))
        return Skipped(
            event_id, event.correlation_id, f"event_type {event_type!r} not in [{allowed}]"
        )
    return Routed(
        RoutedEvent(
            id=event_id,
            source=f"/triggers/{trigger.trigger_id}",
            type=f"slack.{event_type}",
            subject=event.correlation_id,
            time=datetime.fromtimestamp(event.event_time, UTC)
            if event.event_time
            else raw.received_at,
            data={"slack": _as_dict(event), "envelope": envelope},
            triggerid=trigger.trigger_id,
            projectid=trigger.project_id,
            targetkind=trigger.target.kind,
            targetref=trigger.target.ref,
            receivedat=raw.received_at,
            replay=raw.replay,
        )
    )


def _slack_envelope(raw: RawEvent) -> dict[str, Any]:
    try:
        if raw.content_type == "application/x-www-form-urlencoded":
            body = parse_qs(raw.body).get("payload", ["{}"])[0]
        else:
            body = raw.body
        envelope = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise UnroutableEvent(f"body is not JSON: {exc}") from None
    if not isinstance(envelope, dict):
        raise UnroutableEvent("body is not a JSON object")
    return envelope


def _as_dict(event: object) -> dict[str, Any]:
    parsed: dict[str, Any] = orjson.loads(orjson.dumps(event))
    return parsed
