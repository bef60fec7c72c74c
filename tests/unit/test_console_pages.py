"""The pure parts of the console's events, journey and ops pages and of `triggerline status`."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from deploy.group_reset import CONSUMER_STAGES
from ingest.api.deliveries import DeliveryStep
from ingest.console.events import EventRow, grouped
from ingest.console.filters import Checked, query, time_field
from ingest.console.formatting import when
from ingest.console.payloads import MAX_SHOWN_CHARS, pretty
from runtime.metrics import DISPATCH_CIRCUITS
from runtime.settings import Settings
from runtime.status import (
    CIRCUITS_METRIC,
    STAGE_INPUTS,
    Circuits,
    CronLeader,
    PartitionLag,
    StageLag,
    Status,
    StatusUnavailable,
    circuit_counts,
    dispatcher_circuits,
    format_status,
    read_status,
    status_json,
)

pytestmark = pytest.mark.unit


def test_times_without_a_zone_are_utc_and_bad_fields_are_named() -> None:
    checked = Checked()
    assert checked.time("since", "2026-03-01T12:00") == datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert checked.time("until", "2026-03-01T12:00:00+02:00") == datetime(
        2026, 3, 1, 10, tzinfo=UTC
    )
    assert checked.time("since", "") is None
    assert checked.errors == []
    assert checked.time("since", "yesterday") is None
    assert checked.text("event_id", "a\x00b") is None
    assert checked.text("event_id", "x" * 201) is None
    assert checked.choice("outcome", "exploded", ("routed", "skipped")) is None
    checked.ordered(datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
    assert [e.path for e in checked.errors] == [
        "since",
        "event_id",
        "event_id",
        "outcome",
        "until",
    ]
    assert checked.text("event_id", "  ev-1 ") == "ev-1"


def test_times_are_shown_in_utc() -> None:
    moment = datetime.fromisoformat("2026-03-01T14:00:00.123456+02:00")
    assert when(moment) == "2026-03-01 12:00:00"
    assert when(moment, precise=True) == "2026-03-01 12:00:00.123"
    assert when(None) == "—"
    assert time_field(moment) == "2026-03-01T12:00:00"
    assert query(a="1", b="", c=None, d="x y&z") == "a=1&d=x+y%26z"


def test_a_page_groups_its_rows_by_correlation_id_in_order_of_their_newest() -> None:
    def row(event_id: str, correlation_id: str | None) -> EventRow:
        step = DeliveryStep(
            stage="processor",
            outcome="routed",
            at=datetime(2026, 3, 1, tzinfo=UTC),
            event_id=event_id,
            correlation_id=correlation_id,
        )
        return EventRow(step, "t")

    groups = grouped([row("e1", "c2"), row("e2", "c1"), row("e3", "c2"), row("e4", None)])
    assert [(g.correlation_id, [r.step.event_id for r in g.rows]) for g in groups] == [
        ("c2", ["e1", "e3"]),
        ("c1", ["e2"]),
        (None, ["e4"]),
    ]


def test_payloads_are_pretty_printed_and_bounded() -> None:
    text, cut = pretty('{"a":{"b":[1,2]},"t":"<script>"}', "application/json; charset=utf-8")
    assert (text, cut) == (
        '{\n  "a": {\n    "b": [\n      1,\n      2\n    ]\n  },\n  "t": "<script>"\n}',
        False,
    )
    form, _ = pretty(
        "token=x&payload=%7B%22type%22%3A%22block_actions%22%7D",
        "application/x-www-form-urlencoded",
    )
    assert orjson.loads(form) == {"token": "x", "payload": {"type": "block_actions"}}
    assert pretty("not json {", "application/json") == ("not json {", False)
    long, cut = pretty('"' + "x" * (MAX_SHOWN_CHARS + 10) + '"', "application/json")
    assert (len(long), cut) == (MAX_SHOWN_CHARS, True)


def test_circuits_are_counted_by_state_from_the_dispatchers_metrics() -> None:
    assert next(iter(DISPATCH_CIRCUITS.describe())).name == CIRCUITS_METRIC
    registry = CollectorRegistry()
    gauge = Gauge(CIRCUITS_METRIC, "circuits", ["target_kind", "state"], registry=registry)
    gauge.labels("http", "open").set(2)
    gauge.labels("kafka", "open").set(1)
    gauge.labels("http", "closed").set(7)
    Gauge("other_metric", "x", registry=registry).set(5)
    counts = circuit_counts(generate_latest(registry).decode())
    assert counts == {"open": 3, "half_open": 0, "closed": 7}


async def test_circuits_of_a_dispatcher_that_does_not_answer_are_unknown() -> None:
    # Port 9 (discard) on loopback: nothing listens there.
    circuits = await dispatcher_circuits(Settings().override(dispatcher__metrics_port=9))
    assert circuits.by_state is None
    assert circuits.open is None
    assert circuits.unknown is not None
    assert "127.0.0.1:9/metrics" in circuits.unknown


def test_status_prints_and_serialises_the_same_numbers() -> None:
    status = Status(
        stages=(
            StageLag(
                "processors",
                "tl.processors",
                "tl.raw-events",
                2,
                (PartitionLag(0, 5, 8, 3), PartitionLag(1, None, 4, 4)),
            ),
        ),
        dead_letters=6,
        circuits=Circuits("http://127.0.0.1:9102/metrics", by_state={"open": 1, "closed": 2}),
        cron_leader=CronLeader("leader", "tl.cron-consumer", "/127.0.0.1"),
    )
    printed = format_status(status)
    assert "processors         lag        7  members 2  group tl.processors" in printed
    assert "partition 1: committed - end 4" in printed
    assert "open circuits: 1 (open 1, closed 2;" in printed
    assert "dead letters: 6" in printed
    assert "cron leader: tl.cron-consumer on /127.0.0.1" in printed
    # Read back as a client would, which also proves it serializes.
    body = orjson.loads(orjson.dumps(status_json(status)))
    assert body["stages"][0]["lag"] == 7
    assert body["circuits"]["open"] == 1
    unknown = Status((), 0, Circuits("u", unknown="no answer"), CronLeader("none", detail="none"))
    assert "open circuits: unknown (no answer)" in format_status(unknown)


def test_status_reads_the_stages_groups_reset_moves() -> None:
    assert [(name, spec) for name, spec in STAGE_INPUTS] == [
        (stage.name, stage.topic) for stage in CONSUMER_STAGES
    ]


async def test_status_says_so_when_kafka_does_not_answer() -> None:
    # Port 9 (discard) on loopback: no broker there.
    settings = Settings().override(kafka__bootstrap_servers="127.0.0.1:9")
    with pytest.raises(StatusUnavailable, match=r"Kafka at 127\.0\.0\.1:9 did not answer"):
        await read_status(settings)
