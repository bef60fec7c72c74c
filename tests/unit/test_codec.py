from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from schemas.codec import RecordDecodeError, RecordPosition
from schemas.records import RawEvent, RoutedEvent
from schemas.topics import RAW_EVENTS, ROUTED_EVENTS, TRIGGER_CONFIG

pytestmark = pytest.mark.unit

POSITION = RecordPosition("triggerline.raw-events", 3, 42)


def raw_event() -> RawEvent:
    return RawEvent(
        id="e1",
        trigger_id="t1",
        project_id="p1",
        definition="slack",
        received_at=datetime(2026, 11, 27, 12, 0, tzinfo=UTC),
        content_type="application/json",
        body='{"text":"héllo"}',
        headers={"x-slack-retry-num": "1"},
    )


def test_raw_event_round_trips_with_body_bytes_unchanged() -> None:
    event = raw_event()
    decoded = RAW_EVENTS.decode(RAW_EVENTS.encode(event))
    assert decoded == event
    assert decoded.body.encode() == '{"text":"héllo"}'.encode()


def routed_event() -> RoutedEvent:
    return RoutedEvent(
        id="Ev1",
        source="/triggers/t1",
        type="slack.message",
        subject="C1:1.0",
        time=datetime(2026, 11, 27, tzinfo=UTC),
        data={"a": {"nested": [1, 2]}},
        triggerid="t1",
        projectid="p1",
        targetkind="noop",
        targetref="",
        receivedat=datetime(2026, 11, 27, tzinfo=UTC),
    )


def test_routed_event_uses_cloudevents_attribute_names() -> None:
    event = routed_event()
    wire = ROUTED_EVENTS.encode(event)
    assert b'"specversion":"1.0"' in wire
    assert b'"datacontenttype":"application/json"' in wire
    assert ROUTED_EVENTS.decode(wire) == event


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (None, "no value"),
        (b"{not json", "not JSON"),
        (b"[1,2]", "JSON object"),
        (b'{"v":99}', "schema version 99"),
        (b'{"v":1,"id":"x"}', "missing required field `trigger_id`"),
    ],
)
def test_decode_errors_name_the_position_and_the_problem(raw: bytes | None, problem: str) -> None:
    with pytest.raises(RecordDecodeError) as caught:
        RAW_EVENTS.decode(raw, POSITION)
    message = str(caught.value)
    assert "triggerline.raw-events[3]@42" in message
    assert problem in message


def test_a_topic_resized_for_a_deployment_keeps_the_codec_of_its_record_type() -> None:
    deployed = replace(RAW_EVENTS, partitions=12, min_insync_replicas=2)
    wire = deployed.encode(raw_event())

    assert deployed.name("p") == "p.raw-events"
    assert RAW_EVENTS.decode(wire) == raw_event()
    with pytest.raises(RecordDecodeError, match="cannot decode RawEvent"):
        deployed.decode(ROUTED_EVENTS.encode(routed_event()))


def test_a_v1_trigger_config_record_reads_as_its_default_destination() -> None:
    # Written before destinations: one target, its signing secret among the secrets.
    v1 = (
        b'{"trigger_id":"t1","project_id":"p1","definition":"slack","name":"n",'
        b'"status":"active","target":{"kind":"http","ref":"https://example.com/in",'
        b'"display_name":"","timeout_s":5.0,"max_attempts":3,"max_age_s":600.0},'
        b'"updated_at":"2026-12-01T00:00:00Z","revision":4,"config":{},'
        b'"secrets":{"SLACK_SIGNING_SECRET":"k1:a","TARGET_SIGNING_SECRET":"k1:b"},"v":1}'
    )
    config = TRIGGER_CONFIG.decode(v1)
    (default,) = config.destinations
    assert (default.name, default.target.ref, default.target.max_attempts) == (
        "default",
        "https://example.com/in",
        3,
    )
    assert default.signing_secret == "k1:b"
    assert config.secrets == {"SLACK_SIGNING_SECRET": "k1:a"}
    again = TRIGGER_CONFIG.decode(TRIGGER_CONFIG.encode(config))
    assert (again.destinations, again.target, again.v) == (config.destinations, None, 2)
