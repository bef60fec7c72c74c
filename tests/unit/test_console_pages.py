"""The pure parts of the console's pages: filters, events, journeys and payloads."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from ingest.api.deliveries import DeliveryStep
from ingest.console.events import EventRow, grouped
from ingest.console.filters import Checked, query, time_field
from ingest.console.formatting import when
from ingest.console.payloads import MAX_SHOWN_CHARS, pretty

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
