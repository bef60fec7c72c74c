"""Slack envelopes -> normalized events with a correlation id."""

from __future__ import annotations

from typing import Any

import msgspec

CORRELATION_FALLBACK = "unknown"


class NormalizedSlackEvent(msgspec.Struct, frozen=True):
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
        """One conversation, one ordered stream: thread, then message, channel, workspace."""
        if self.channel_id and self.thread_id:
            return f"{self.channel_id}:{self.thread_id}"
        if self.channel_id and self.ts and self.event_type == "message":
            # A top-level message: its replies later name this ts as their thread_ts.
            return f"{self.channel_id}:{self.ts}"
        return self.channel_id or self.team_id or CORRELATION_FALLBACK

    def fields(self) -> dict[str, Any]:
        """The fields as a flat dict: what CEL filters see."""
        return msgspec.structs.asdict(self)


def _id_of(value: Any) -> str | None:
    """Some events carry an object where others carry an id (team_join, channel_created...)."""
    if isinstance(value, dict):
        inner = value.get("id")
        return inner if isinstance(inner, str) else None
    return value if isinstance(value, str) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def normalize_slack(envelope: dict[str, Any]) -> NormalizedSlackEvent:
    event = envelope.get("event")
    if not isinstance(event, dict):
        event = {}
    # Interactivity payloads carry channel, user and team objects at the top level.
    channel = event.get("channel", envelope.get("channel"))
    event_time = envelope.get("event_time")
    return NormalizedSlackEvent(
        envelope_type=str(envelope.get("type", "")),
        event_type=_text(event.get("type")),
        subtype=_text(event.get("subtype")),
        team_id=_id_of(envelope.get("team_id", envelope.get("team"))),
        channel_id=_id_of(channel),
        thread_id=_text(event.get("thread_ts")),
        user_id=_id_of(event.get("user", envelope.get("user"))),
        bot_id=_text(event.get("bot_id")),
        app_id=_text(envelope.get("api_app_id")),
        text=_text(event.get("text")),
        ts=_text(event.get("ts")),
        event_id=_text(envelope.get("event_id")),
        event_time=event_time if isinstance(event_time, int) else None,
    )
