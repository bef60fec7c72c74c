from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kinds.base import Ignored, Normalized, UnroutableEvent
from kinds.routing import FilterFailed, Routed, Skipped, decide, normalize
from runtime.cel import ENGINES, EngineName
from schemas.ticks import CRON_TICK, CronTick
from tests.unit.support.routing import ORDER, raw, run, trigger

pytestmark = pytest.mark.unit

MESSAGE = {
    "type": "event_callback",
    "team_id": "T1",
    "event_id": "Ev9",
    "event_time": 1_764_000_000,
    "event": {"type": "message", "channel": "C1", "ts": "1.5", "text": "deploy failed"},
}


def test_message_is_routed_as_a_cloudevent_keyed_by_conversation() -> None:
    decision = run(raw(MESSAGE), trigger(event_types=["message"]))
    assert isinstance(decision, Routed)
    event = decision.event
    assert (event.id, event.type, event.subject, event.source) == (
        "Ev9",
        "slack.message",
        "C1:1.5",
        "/triggers/t1",
    )
    assert isinstance(event.data, dict)
    assert event.data["slack"]["text"] == "deploy failed"
    assert event.time == datetime.fromtimestamp(1_764_000_000, UTC)


def test_event_type_outside_the_allow_list_is_skipped_with_the_reason() -> None:
    decision = run(raw(MESSAGE), trigger(event_types=["app_mention", "reaction_added"]))
    assert isinstance(decision, Skipped)
    assert decision.reason == "event_type 'message' not in [app_mention, reaction_added]"


@pytest.mark.parametrize("engine", ENGINES)
def test_filter_decides_after_the_allow_list(engine: EngineName) -> None:
    matching = trigger(engine=engine, filter='event.text.contains("deploy")')
    assert isinstance(run(raw(MESSAGE), matching), Routed)
    other = trigger(engine=engine, filter='event.channel_id == "C2"')
    decision = run(raw(MESSAGE), other)
    assert isinstance(decision, Skipped)
    assert (decision.reason, decision.correlation_id) == ("filter returned false", "C1:1.5")


@pytest.mark.parametrize("engine", ENGINES)
def test_filter_runtime_error_is_a_filter_error_with_the_message(engine: EngineName) -> None:
    decision = run(raw(MESSAGE), trigger(engine=engine, filter='event.no_such == "x"'))
    assert isinstance(decision, FilterFailed)
    assert decision.error.startswith("filter failed: ")
    assert "no_such" in decision.error


def test_filter_that_does_not_compile_is_reported_on_every_event() -> None:
    rules = trigger(filter="event.text ==")
    assert rules.config_error is not None
    decision = run(raw(MESSAGE), rules)
    assert isinstance(decision, FilterFailed)
    assert decision.error.startswith("filter does not compile: 1:14: ")


def test_non_event_envelopes_are_ignored() -> None:
    decision = run(raw({"type": "app_rate_limited", "team_id": "T1"}), trigger())
    assert isinstance(decision, Ignored)
    assert "app_rate_limited" in decision.reason


def test_paused_trigger_is_ignored() -> None:
    assert isinstance(run(raw(MESSAGE), trigger(status="paused")), Ignored)


def test_interactivity_form_payload_is_routed() -> None:
    payload = {
        "type": "block_actions",
        "team": {"id": "T1"},
        "channel": {"id": "C2"},
        "user": {"id": "U1"},
    }
    decision = run(raw(payload, "application/x-www-form-urlencoded"), trigger())
    assert isinstance(decision, Routed)
    assert decision.event.subject == "C2"


def test_non_json_body_is_unroutable() -> None:
    with pytest.raises(UnroutableEvent, match="not JSON"):
        normalize(raw("{oops"), trigger())


TICK = CronTick(
    tick_id="tick-1",
    trigger_id="t1",
    schedule="*/5 * * * *",
    timezone="Europe/Paris",
    scheduled_at=datetime(2026, 11, 27, 9, 5, tzinfo=UTC),
    fired_at=datetime(2026, 11, 27, 9, 5, 1, tzinfo=UTC),
)


def test_cron_tick_is_correlated_by_trigger_and_identified_by_tick() -> None:
    event = raw(CRON_TICK.encode(TICK).decode(), definition="cron")
    normalized = normalize(event, trigger("cron", schedule="*/5 * * * *"))
    assert isinstance(normalized, Normalized)
    assert (normalized.event_id, normalized.correlation_id) == ("tick-1", "t1")
    assert normalized.fields["schedule"] == "*/5 * * * *"
    assert normalized.fields["scheduled_at"] == "2026-11-27T09:05:00+00:00"
    (decision,) = decide(event, trigger("cron"), normalized)
    assert isinstance(decision, Routed)
    assert (decision.event.type, decision.event.time) == ("cron.tick", TICK.scheduled_at)
    assert isinstance(decision.event.data, dict)
    assert decision.event.data["cron"]["fired_at"] == "2026-11-27T09:05:01+00:00"


def test_cron_tick_times_are_cel_timestamps() -> None:
    event = raw(CRON_TICK.encode(TICK).decode(), definition="cron")
    rules = trigger(
        "cron", filter='timestamp(event.fired_at) - timestamp(event.scheduled_at) < duration("5s")'
    )
    assert isinstance(run(event, rules), Routed)


def test_a_body_that_is_not_a_tick_is_unroutable() -> None:
    with pytest.raises(UnroutableEvent, match="not a cron tick"):
        normalize(raw({"hello": 1}, definition="cron"), trigger("cron"))


@pytest.mark.parametrize("engine", ENGINES)
def test_webhook_is_the_body_plus_its_id_correlated_by_expression(engine: EngineName) -> None:
    event = raw(ORDER, definition="webhook", headers={"webhook-id": "msg_1"})
    rules = trigger(
        "webhook",
        engine,
        correlation='"customer:" + event.order.customer',
        filter='event.type == "order.paid"',
    )
    decision = run(event, rules)
    assert isinstance(decision, Routed)
    assert (decision.event.id, decision.event.subject) == ("msg_1", "customer:c-3")
    assert decision.event.data == {**ORDER, "webhook_id": "msg_1"}


def test_webhook_correlation_falls_back_to_the_webhook_id() -> None:
    event = raw(ORDER, definition="webhook", headers={"webhook-id": "msg_2"})
    assert isinstance(plain := run(event, trigger("webhook")), Routed)
    assert plain.event.subject == "msg_2"
    failing = trigger("webhook", correlation="event.no_such_field")
    assert isinstance(fallback := run(event, failing), Routed)
    assert fallback.event.subject == "msg_2"


def test_webhook_filter_sees_the_webhook_id() -> None:
    event = raw(ORDER, definition="webhook", headers={"webhook-id": "msg_3"})
    decision = run(event, trigger("webhook", filter='event.webhook_id.startsWith("x")'))
    assert isinstance(decision, Skipped)
