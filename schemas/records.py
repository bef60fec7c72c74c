"""The records that flow between stages, one frozen msgspec Struct per topic value.

Each topic's spec in `schemas.topics` carries the codec of its record type.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec

from schemas.triggers import DEFAULT_DESTINATION, DefinitionSlug, Target, TargetKind


class RawEvent(msgspec.Struct, frozen=True):
    """What ingest accepted, unchanged, with what replay and audit need to know about it."""

    id: str
    trigger_id: str
    project_id: str
    definition: DefinitionSlug
    received_at: datetime
    content_type: str
    # The request body exactly as received. Ingest only accepts UTF-8 bodies (JSON and form
    # encodings), so text round-trips to the same bytes the signature was computed over.
    body: str
    # Only the headers that matter later: Slack retry number and reason, content type,
    # user agent, webhook-id. Names are lower-case.
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    # Set on the copies a replay produces (never by ingest): the replay's id, and the target
    # the replay sends to instead of the trigger's own, if it names one.
    replay: bool = False
    replay_id: str | None = None
    replay_target: Target | None = None
    v: int = 1


class RoutedEvent(msgspec.Struct, frozen=True):
    """A CloudEvent 1.0 in structured mode, with Triggerline's extension attributes.

    Extension names follow the CloudEvents rule (lower-case letters and digits only).
    """

    id: str
    source: str
    type: str
    # The correlation id: one conversation, one ordered stream.
    subject: str
    time: datetime
    # The event's fields, or what the destination's transform made of them.
    data: dict[str, Any] | list[Any] | str
    triggerid: str
    projectid: str
    targetkind: TargetKind
    # The target's URL or topic, unredacted, credentials included: the dispatcher delivers to
    # it. Whatever is made of it for humans goes through `schemas.redaction.redact_url`.
    targetref: str
    # When ingest accepted the original event; the end-to-end latency clock starts here.
    receivedat: datetime
    replay: bool = False
    # The replay that re-sent this event; the event keeps its id (and so its `webhook-id`).
    replayid: str | None = None
    # The trigger's destination this record is for: one record per destination whose filter
    # passed, all keyed by the same correlation id.
    destination: str = DEFAULT_DESTINATION
    # The CloudEvents distributed-tracing extension: the trace context of the span that created
    # this record, written only when tracing is on (an unset attribute is left out).
    traceparent: str | msgspec.UnsetType = msgspec.UNSET
    tracestate: str | msgspec.UnsetType = msgspec.UNSET
    specversion: str = "1.0"
    datacontenttype: str = "application/json"
    v: int = 1


Stage = Literal["ingest", "processor", "dispatcher"]
Outcome = Literal[
    "routed",
    "delivered",
    "retrying",
    "failed",
    "dead_lettered",
    "skipped",
    "filter_error",
    "transform_error",
    "duplicate",
    "ignored",
]


class DeliveryLogRecord(msgspec.Struct, frozen=True):
    """One step of an event's journey: a processing decision or a delivery attempt."""

    event_id: str
    trigger_id: str
    project_id: str
    stage: Stage
    outcome: Outcome
    at: datetime
    correlation_id: str | None = None
    # The destination a step belongs to; None for steps of the whole event (received, a
    # duplicate, the trigger's own filter).
    destination: str | None = None
    target_kind: TargetKind | None = None
    # Redacted (`schemas.redaction.redact_url`): this record is shown to humans.
    target_ref: str | None = None
    # 0 for decisions made before delivery (skips, filter errors); 1.. for delivery attempts.
    attempt: int = 0
    reason: str | None = None
    http_status: int | None = None
    error: str | None = None
    latency_ms: float | None = None
    replay: bool = False
    replay_id: str | None = None
    # When ingest accepted the event, so that the journey can start at "received".
    received_at: datetime | None = None
    v: int = 1


class DeadLetter(msgspec.Struct, frozen=True):
    """A record a stage gave up on, with enough context to understand and re-drive it."""

    stage: Stage
    reason: str
    failed_at: datetime
    source_topic: str
    source_partition: int
    source_offset: int
    # The original key and value, base64-encoded because they may not be valid UTF-8.
    key_b64: str | None
    value_b64: str | None
    event_id: str | None = None
    trigger_id: str | None = None
    error: str | None = None
    attempts: list[dict[str, Any]] = msgspec.field(default_factory=list)
    v: int = 1

    @classmethod
    def of(
        cls,
        stage: Stage,
        reason: str,
        error: str | None,
        *,
        source: tuple[str, int, int],
        key: bytes | None,
        value: bytes | None,
        event_id: str | None,
        trigger_id: str | None,
        attempts: list[dict[str, Any]] | None = None,
    ) -> DeadLetter:
        """The letter for the record at `source` (topic, partition, offset), failed now."""
        topic, partition, offset = source
        return cls(
            stage=stage,
            reason=reason,
            failed_at=datetime.now(UTC),
            source_topic=topic,
            source_partition=partition,
            source_offset=offset,
            key_b64=None if key is None else base64.b64encode(key).decode(),
            value_b64=None if value is None else base64.b64encode(value).decode(),
            event_id=event_id,
            trigger_id=trigger_id,
            error=error,
            attempts=attempts or [],
        )

    @property
    def key(self) -> str:
        """The letter's record key: its event id, else where the record stood."""
        return self.event_id or f"{self.source_topic}/{self.source_partition}/{self.source_offset}"
