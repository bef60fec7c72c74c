from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from processors.routing import Ignored, Routed, RoutingTrigger, Skipped, UnroutableEvent, decide
from schemas.records import RawEvent
from schemas.triggers import Target

pytestmark = pytest.mark.unit


def trigger(event_types: frozenset[str] | None = None, active: bool = True) -> RoutingTrigger:
    return RoutingTrigger("t1", "p1", active, Target("noop"), event_types)


def raw(body: object, content_type: str = "application/json") -> RawEvent:
    text = orjson.dumps(body).decode()
    if content_type != "application/json":
        text = "payload=" + text
    return RawEvent(
        id="r1",
        trigger_id="t1",
        project_id="p1",
        definition="slack",
        received_at=datetime(2026, 11, 27, tzinfo=UTC),
        content_type=content_type,
        body=text,
    )


MESSAGE = {
    "type": "event_callback",
    "team_id": "T1",
    "event_id": "Ev9",
    "event_time": 1_764_000_000,
    "event": {"type": "message", "channel": "C1", "ts": "1.5", "text": "hi"},
}


def test_message_is_routed_as_a_cloudevent_keyed_by_conversation() -> None:
    decision = decide(raw(MESSAGE), trigger(frozenset({"message"})))
    assert isinstance(decision, Routed)
    event = decision.event
    assert (event.id, event.type, event.subject, event.source) == (
        "Ev9",
        "slack.message",
        "C1:1.5",
        "/triggers/t1",
    )
    assert event.data["slack"]["text"] == "hi"


def test_event_type_outside_the_allow_list_is_skipped_with_the_reason() -> None:
    decision = decide(raw(MESSAGE), trigger(frozenset({"app_mention", "reaction_added"})))
    assert isinstance(decision, Skipped)
    assert decision.reason == "event_type 'message' not in [app_mention, reaction_added]"


def test_non_event_envelopes_are_ignored() -> None:
    decision = decide(raw({"type": "app_rate_limited", "team_id": "T1"}), trigger())
    assert isinstance(decision, Ignored)
    assert "app_rate_limited" in decision.reason


def test_paused_trigger_is_ignored() -> None:
    assert isinstance(decide(raw(MESSAGE), trigger(active=False)), Ignored)


def test_interactivity_form_payload_is_routed() -> None:
    payload = {
        "type": "block_actions",
        "team": {"id": "T1"},
        "channel": {"id": "C2"},
        "user": {"id": "U1"},
    }
    decision = decide(raw(payload, "application/x-www-form-urlencoded"), trigger())
    assert isinstance(decision, Routed)
    assert decision.event.subject == "C2"


def test_non_json_body_is_unroutable() -> None:
    event = RawEvent(
        id="r1",
        trigger_id="t1",
        project_id="p1",
        definition="slack",
        received_at=datetime(2026, 11, 27, tzinfo=UTC),
        content_type="application/json",
        body="{oops",
    )
    with pytest.raises(UnroutableEvent, match="not JSON"):
        decide(event, trigger())
