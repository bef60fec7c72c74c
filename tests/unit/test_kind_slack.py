from __future__ import annotations

from typing import Any

import pytest

from kinds.slack import slack_event

pytestmark = pytest.mark.unit


def envelope(event: dict[str, Any], **outer: Any) -> dict[str, Any]:
    return {"type": "event_callback", "team_id": "T1", "event_id": "Ev1", "event": event, **outer}


def test_thread_reply_correlates_to_its_root() -> None:
    root = slack_event(envelope({"type": "message", "channel": "C1", "ts": "100.1"}))
    reply = slack_event(
        envelope({"type": "message", "channel": "C1", "ts": "200.2", "thread_ts": "100.1"})
    )
    assert root.correlation_id == reply.correlation_id == "C1:100.1"


def test_channel_event_without_ts_correlates_to_the_channel() -> None:
    event = slack_event(envelope({"type": "member_joined_channel", "channel": "C9", "user": "U1"}))
    assert event.correlation_id == "C9"


@pytest.mark.parametrize(
    ("event", "user_id", "channel_id"),
    [
        ({"type": "team_join", "user": {"id": "U7", "name": "ada"}}, "U7", None),
        ({"type": "user_change", "user": {"id": "U8", "profile": {}}}, "U8", None),
        ({"type": "channel_created", "channel": {"id": "C5", "name": "x"}}, None, "C5"),
        ({"type": "channel_rename", "channel": {"id": "C6", "name": "y"}}, None, "C6"),
    ],
)
def test_object_shaped_fields_yield_their_ids(
    event: dict[str, Any], user_id: str | None, channel_id: str | None
) -> None:
    normalized = slack_event(envelope(event))
    assert normalized.user_id == user_id
    assert normalized.channel_id == channel_id


def test_team_level_event_correlates_to_the_team() -> None:
    assert slack_event(envelope({"type": "team_join", "user": {"id": "U7"}})).correlation_id == "T1"


def test_unexpected_shapes_do_not_crash() -> None:
    normalized = slack_event(
        {"type": "event_callback", "event": ["not", "an", "object"], "event_time": "x"}
    )
    assert normalized.event_type is None
    assert normalized.event_time is None
    assert normalized.correlation_id == "unknown"
