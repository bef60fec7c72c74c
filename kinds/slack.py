"""Slack Events API and interactivity: signed with the app's signing secret (v0).

Correlation: one conversation, one ordered stream — the thread, else a top-level message (its
replies name its ts as their thread_ts), else the channel, else the workspace.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from pydantic import AfterValidator, Field, WithJsonSchema

from kinds.base import (
    FORM,
    JSON,
    TEXT,
    Envelope,
    Expression,
    Handshake,
    Ignored,
    Normalized,
    WebhookKind,
    WebhookRequest,
    content_types,
    envelope_object,
    form_payload,
    raw_object,
    text_of,
)
from kinds.config import BoolExpression, ConfigModel, RateLimitConfig, UniqueItems, config_error
from kinds.slack_event_types import SLACK_EVENT_TYPES
from runtime.signatures import SignatureRejected, check_timestamp, hmac_sha256, matches_any
from schemas.records import RawEvent

MAX_CLOCK_SKEW_S = 300
CORRELATION_FALLBACK = "unknown"
# Interactivity payloads have no event_callback wrapper but are events all the same.
ROUTED_ENVELOPES = frozenset({"event_callback", "block_actions", "view_submission", "shortcut"})


def _slack_event_type(name: str) -> str:
    if name not in SLACK_EVENT_TYPES:
        raise config_error("slack_event_type", f"{name!r} is not a Slack Events API event type")
    return name


SlackEventType = Annotated[
    str,
    AfterValidator(_slack_event_type),
    WithJsonSchema({"type": "string", "enum": sorted(SLACK_EVENT_TYPES)}),
]


class SlackConfig(ConfigModel):
    event_types: Annotated[
        list[SlackEventType],
        Field(
            min_length=1,
            max_length=len(SLACK_EVENT_TYPES),
            description="Slack Events API event types to route.",
            json_schema_extra={"uniqueItems": True},
        ),
        UniqueItems,
    ]
    filter: BoolExpression | None = Field(
        default=None, description="CEL over `event` (the Slack event); must yield bool."
    )
    rate_limit: RateLimitConfig | None = None


class SlackEvent(msgspec.Struct, frozen=True):
    """The fields of a Slack envelope that filters see, flat."""

    envelope_type: str
    event_type: str | None
    subtype: str | None
    team_id: str | None
    channel_id: str | None
    thread_id: str | None
    user_id: str | None
    bot_id: str | None
    app_id: str | None
    text: str | None
    ts: str | None
    event_id: str | None
    event_time: int | None

    @property
    def correlation_id(self) -> str:
        if self.channel_id and self.thread_id:
            return f"{self.channel_id}:{self.thread_id}"
        if self.channel_id and self.ts and self.event_type == "message":
            return f"{self.channel_id}:{self.ts}"
        return self.channel_id or self.team_id or CORRELATION_FALLBACK

    def fields(self) -> dict[str, Any]:
        return msgspec.structs.asdict(self)


def _id_of(value: Any) -> str | None:
    """Some events carry an object where others carry an id (team_join, channel_created...)."""
    if isinstance(value, dict):
        return text_of(value.get("id"))
    return text_of(value)


def slack_event(envelope: dict[str, Any]) -> SlackEvent:
    event = envelope.get("event")
    if not isinstance(event, dict):
        event = {}
    # Interactivity payloads carry channel, user and team objects at the top level.
    channel = event.get("channel", envelope.get("channel"))
    event_time = envelope.get("event_time")
    return SlackEvent(
        envelope_type=str(envelope.get("type", "")),
        event_type=text_of(event.get("type")),
        subtype=text_of(event.get("subtype")),
        team_id=_id_of(envelope.get("team_id", envelope.get("team"))),
        channel_id=_id_of(channel),
        thread_id=text_of(event.get("thread_ts")),
        user_id=_id_of(event.get("user", envelope.get("user"))),
        bot_id=text_of(event.get("bot_id")),
        app_id=text_of(envelope.get("api_app_id")),
        text=text_of(event.get("text")),
        ts=text_of(event.get("ts")),
        event_id=text_of(envelope.get("event_id")),
        event_time=event_time if isinstance(event_time, int) else None,
    )


class Slack(WebhookKind):
    slug = "slack"
    title = "Slack Events API"
    description = "Events from a Slack app, verified with the app's signing secret."
    config_model = SlackConfig
    required_secrets = ("SLACK_SIGNING_SECRET",)
    verification = "slack_v0"
    # Slack's retries carry the same event_id; the number and reason show on the journey.
    kept_headers = ("x-slack-retry-num", "x-slack-retry-reason")

    def verify(self, request: WebhookRequest, secrets: Iterable[str], now: float) -> None:
        timestamp = request.headers.get("x-slack-request-timestamp")
        signature = request.headers.get("x-slack-signature")
        if not timestamp or not signature:
            raise SignatureRejected(
                "missing_headers", "missing X-Slack-Request-Timestamp or X-Slack-Signature"
            )
        check_timestamp(timestamp, "X-Slack-Request-Timestamp", now, MAX_CLOCK_SKEW_S)
        base = b"v0:" + timestamp.encode() + b":" + request.body
        presented = [signature.encode()]
        for secret in secrets:
            expected = b"v0=" + hmac_sha256(secret.encode(), base).hex().encode()
            if matches_any(expected, presented):
                return
        raise SignatureRejected("mismatch", "signature does not match")

    def parse(self, request: WebhookRequest) -> Envelope | Handshake:
        content_types(request.content_type, JSON, FORM)
        envelope = envelope_object(
            form_payload(request.body) if request.content_type == FORM else request.body
        )
        if envelope.get("type") == "url_verification":
            return Handshake(str(envelope.get("challenge", "")).encode(), TEXT)
        return Envelope(text_of(envelope.get("event_id")), "event_id")

    def normalize(self, raw: RawEvent, correlation: Expression | None) -> Normalized | Ignored:
        envelope = raw_object(raw)
        event = slack_event(envelope)
        event_id = event.event_id or raw.id
        if event.envelope_type not in ROUTED_ENVELOPES:
            return Ignored(event_id, f"envelope type {event.envelope_type!r} is not routed")
        fields = event.fields()
        return Normalized(
            event_id=event_id,
            event_type=event.event_type or event.envelope_type,
            correlation_id=event.correlation_id,
            time=(
                datetime.fromtimestamp(event.event_time, UTC)
                if event.event_time
                else raw.received_at
            ),
            fields=fields,
            data={"slack": fields, "envelope": envelope},
        )


KIND = Slack()
