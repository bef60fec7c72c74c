"""Filter preview on real Kafka and PostgreSQL: `POST /triggers/{id}/filter-preview` and
`triggerline triggers preview-filter` evaluate a filter against a trigger's raw events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner

from ingest.replay.trigger_history import (
    TriggerHistory,
    events_between,
    newest_events,
    trigger_partition,
)
from runtime.settings import Settings
from schemas.records import RawEvent
from schemas.topics import RAW_EVENTS
from tests.integration.support.cli import triggerline
from tests.integration.support.control_plane import control_plane, project_with_key, webhook_trigger
from tests.integration.support.processor_records import Records

pytestmark = pytest.mark.integration

X_AND_Y = 'event.x == 1 && event.y.startsWith("a")'
# Each webhook event's body and the verdict, deciding clause and reason start under X_AND_Y.
WEBHOOK_EVENTS: list[tuple[str, dict[str, Any], str, int | None, str | None]] = [
    ("wh-match", {"x": 1, "y": "abc"}, "match", None, None),
    ("wh-x", {"x": 2, "y": "abc"}, "miss", 1, "clause 1 of 2 (event.x == 1) returned false"),
    (
        "wh-y",
        {"x": 1, "y": "bcd"},
        "miss",
        2,
        'clause 2 of 2 (event.y.startsWith("a")) returned false',
    ),
    (
        "wh-no-y",
        {"x": 1},
        "error",
        2,
        'clause 2 of 2 (event.y.startsWith("a")) failed: ',
    ),
]
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


def webhook_raw(trigger_id: str, webhook_id: str, body: dict[str, Any], **fields: Any) -> RawEvent:
    return RawEvent(
        id=uuid.uuid4().hex,
        trigger_id=trigger_id,
        project_id="p",
        definition="webhook",
        received_at=datetime.now(UTC),
        content_type="application/json",
        body=orjson.dumps(body).decode(),
        headers={"webhook-id": webhook_id},
        **fields,
    )


def slack_raw(trigger_id: str, event_id: str, envelope_type: str, event_type: str) -> RawEvent:
    envelope = {
        "type": envelope_type,
        "team_id": "T1",
        "event_id": event_id,
        "event_time": 1_764_000_000,
        "event": {"type": event_type, "channel": "C1", "user": "U1", "text": "hi", "ts": "1.1"},
    }
    return RawEvent(
        id=event_id,
        trigger_id=trigger_id,
        project_id="p",
        definition="slack",
        received_at=datetime.now(UTC),
        content_type="application/json",
        body=orjson.dumps(envelope).decode(),
    )


async def create(client: Any, headers: dict[str, str], body: dict[str, Any]) -> str:
    response = await client.post("/triggers", json=body, headers=headers)
    assert response.status_code == 201, response.text
    trigger_id: str = response.json()["id"]
    return trigger_id


def verdicts(answer: dict[str, Any]) -> list[tuple[str, str, int | None]]:
    return [(e["event_id"], e["verdict"], e["clause"]) for e in answer["events"]]


async def test_a_filter_is_previewed_per_event_with_the_deciding_clause(settings: Settings) -> None:
    _, acme = await project_with_key(settings, "acme")
    _, globex = await project_with_key(settings, "globex")
    async with control_plane(settings) as client:
        trigger = await create(client, acme, webhook_trigger("orders"))
        other = await create(client, acme, webhook_trigger("other"))
        before = datetime.now(UTC) - timedelta(seconds=1)
        async with Records(settings) as records:
            await records.raw(webhook_raw(other, "theirs", {"x": 1, "y": "a"}))
            await records.raw(*(webhook_raw(trigger, i, body) for i, body, *_ in WEBHOOK_EVENTS))
            # A replay's copy is history repeated, not an event: never previewed.
            await records.raw(webhook_raw(trigger, "wh-match", {"x": 1, "y": "a"}, replay=True))
        after = datetime.now(UTC) + timedelta(seconds=1)

        url = f"/triggers/{trigger}/filter-preview"
        response = await client.post(url, json={"filter": X_AND_Y}, headers=acme)
        assert response.status_code == 200, response.text
        answer = response.json()
        expected = [(i, verdict, clause) for i, _, verdict, clause, _ in WEBHOOK_EVENTS]
        assert verdicts(answer) == expected
        for event, (_, _, _, _, reason) in zip(answer["events"], WEBHOOK_EVENTS, strict=True):
            assert event["event_type"] == "received"
            assert event["correlation_id"] == event["event_id"]
            if reason is None:
                assert event["reason"] is None
            else:
                assert event["reason"].startswith(reason)
        error = answer["events"][3]
        assert "y" in error["reason"]
        assert error["clause_source"] == 'event.y.startsWith("a")'
        assert answer["totals"] == {"match": 1, "miss": 2, "error": 1, "ignored": 0}
        assert answer["filter"] == X_AND_Y
        assert answer["scanned"] >= len(WEBHOOK_EVENTS) + 1
        assert answer["scan_bound_reached"] is False

        # The newest two only; then a time range around everything written.
        newest = await client.post(url, json={"filter": X_AND_Y, "last": 2}, headers=acme)
        assert verdicts(newest.json()) == expected[2:]
        ranged = await client.post(
            url,
            json={"filter": X_AND_Y, "since": before.isoformat(), "until": after.isoformat()},
            headers=acme,
        )
        assert verdicts(ranged.json()) == expected
        empty = await client.post(
            url,
            json={
                "filter": X_AND_Y,
                "since": (before - timedelta(hours=1)).isoformat(),
                "until": before.isoformat(),
            },
            headers=acme,
        )
        assert empty.json()["events"] == []

        # A disjunction lists every clause; the trigger's own (no) filter matches everything.
        either = await client.post(
            url, json={"filter": "event.x == 3 || event.y == 'z'"}, headers=acme
        )
        assert either.json()["events"][0]["reason"] == (
            "every clause returned false: (1) event.x == 3; (2) event.y == 'z'"
        )
        own = await client.post(url, json={}, headers=acme)
        assert own.json()["totals"]["match"] == len(WEBHOOK_EVENTS)

        # Another project's trigger does not exist for this one.
        theirs = await client.post(url, json={"filter": X_AND_Y}, headers=globex)
        assert theirs.status_code == 404

        cli = await triggerline(
            settings,
            "triggers",
            "preview-filter",
            trigger,
            "--project",
            "acme",
            "--filter",
            X_AND_Y,
        )
    assert cli.code == 0, cli.stderr
    lines = cli.stdout.splitlines()
    assert [line.split("\t")[:3] for line in lines[:-1]] == [
        [verdict, event_id, "received"] for event_id, _, verdict, _, _ in WEBHOOK_EVENTS
    ]
    assert lines[1].split("\t")[3] == "clause 1 of 2 (event.x == 1) returned false"
    assert lines[-1].startswith("4 events: match 1, miss 2, error 1, ignored 0; ")


async def test_event_type_misses_and_ignored_envelopes(settings: Settings) -> None:
    _, acme = await project_with_key(settings, "acme")
    body = {
        "definition": "slack",
        "name": "chat",
        "target": {"kind": "noop"},
        "secrets": {"SLACK_SIGNING_SECRET": SLACK_SECRET},
        "config": {"event_types": ["message"], "filter": 'event.text == "hi"'},
    }
    async with control_plane(settings) as client:
        trigger = await create(client, acme, body)
        async with Records(settings) as records:
            await records.raw(
                slack_raw(trigger, "Ev1", "event_callback", "message"),
                slack_raw(trigger, "Ev2", "event_callback", "reaction_added"),
                slack_raw(trigger, "Ev3", "app_rate_limited", "message"),
            )
        url = f"/triggers/{trigger}/filter-preview"
        own = (await client.post(url, json={"last": 10}, headers=acme)).json()
        assert [(e["event_id"], e["verdict"]) for e in own["events"]] == [
            ("Ev1", "match"),
            ("Ev2", "miss"),
            ("Ev3", "ignored"),
        ]
        assert own["events"][1]["reason"] == "event_type 'reaction_added' not in [message]"
        assert own["events"][1]["event_type"] == "reaction_added"
        assert own["events"][2]["reason"] == "envelope type 'app_rate_limited' is not routed"
        assert own["event_types"] == ["message"]

        # Another list: the message is now the event-type miss; the reaction is the filter's.
        tried = await client.post(
            url,
            json={"event_types": ["reaction_added"], "filter": 'event.text == "x"'},
            headers=acme,
        )
        events = tried.json()["events"]
        assert events[0]["reason"] == "event_type 'message' not in [reaction_added]"
        assert (events[1]["verdict"], events[1]["reason"]) == (
            "miss",
            "the filter as a whole returned false",
        )

        # A paused trigger routes nothing.
        await client.post(f"/triggers/{trigger}/pause", headers=acme)
        paused = (await client.post(url, json={}, headers=acme)).json()
        assert {e["reason"] for e in paused["events"]} == {"trigger paused"}


async def test_requests_a_user_must_change_are_refused_with_the_reason(
    settings: Settings,
) -> None:
    _, acme = await project_with_key(settings, "acme")
    async with control_plane(settings) as client:
        trigger = await create(client, acme, webhook_trigger("orders"))
        url = f"/triggers/{trigger}/filter-preview"

        async def refused(body: dict[str, Any]) -> list[dict[str, str]]:
            response = await client.post(url, json=body, headers=acme)
            assert response.status_code == 422, response.text
            errors: list[dict[str, str]] = response.json()["errors"]
            return errors

        [bad_filter] = await refused({"filter": "event.x == 1 &&\n  event.y =="})
        assert bad_filter["path"] == "filter"
        assert bad_filter["message"].startswith("line 2, column ")
        # The same message saving the filter gives.
        saved = await client.patch(
            f"/triggers/{trigger}",
            json={"config": {"filter": "event.x == 1 &&\n  event.y =="}},
            headers=acme,
        )
        assert saved.json()["errors"][0]["message"] == bad_filter["message"]

        assert await refused({"last": 0}) == [
            {"path": "last", "message": "must be between 1 and 1000"}
        ]
        assert (await refused({"last": 1001}))[0]["path"] == "last"
        both = await refused({"last": 5, "since": "2026-01-01T00:00:00Z"})
        assert both[0]["message"] == "give `last` or a time range (`since`), not both"
        backwards = await refused(
            {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}
        )
        assert backwards == [{"path": "until", "message": "must be after `since`"}]
        # Webhook triggers have no event types.
        assert (await refused({"event_types": ["message"]}))[0]["path"] == "event_types"

        cli = await triggerline(
            settings,
            "triggers",
            "preview-filter",
            trigger,
            "--project",
            "acme",
            "--filter",
            "event.x ==",
        )
    assert cli.code != 0
    assert "filter: line 1, column " in cli.stdout + cli.stderr


def neighbour_of(trigger_id: str) -> str:
    """Another trigger id whose events share the trigger's raw-events partition."""
    partitions = list(range(RAW_EVENTS.partitions))
    wanted = DefaultPartitioner()(trigger_id.encode(), partitions, partitions)
    while True:
        candidate = str(uuid.uuid4())
        if DefaultPartitioner()(candidate.encode(), partitions, partitions) == wanted:
            return candidate


def webhook_ids(history: TriggerHistory) -> list[str]:
    return [event.headers["webhook-id"] for event in history.events]


async def test_reading_stops_at_its_bounds_and_says_so(settings: Settings) -> None:
    trigger = str(uuid.uuid4())
    neighbour = neighbour_of(trigger)
    since = datetime.now(UTC) - timedelta(seconds=1)
    async with Records(settings) as records:
        for n in range(6):
            # Two of the neighbour's records after each of the trigger's.
            await records.raw(
                webhook_raw(trigger, f"mine-{n}", {"n": n}),
                webhook_raw(neighbour, f"theirs-{n}-a", {"n": n}),
                webhook_raw(neighbour, f"theirs-{n}-b", {"n": n}),
            )
    until = datetime.now(UTC) + timedelta(seconds=1)

    async with trigger_partition(settings, trigger) as (consumer, tp):
        whole = await newest_events(consumer, tp, trigger, 10)
        assert webhook_ids(whole) == [f"mine-{n}" for n in range(6)]
        assert (whole.scanned, whole.scan_bound_reached) == (18, False)

        newest = await newest_events(consumer, tp, trigger, 2)
        assert webhook_ids(newest) == ["mine-4", "mine-5"]
        assert newest.scan_bound_reached is False

        # The last 7 records hold three of the trigger's events; more were asked for.
        bounded = await newest_events(consumer, tp, trigger, 5, max_scanned=7)
        assert webhook_ids(bounded) == ["mine-4", "mine-5"]
        assert (bounded.scanned, bounded.scan_bound_reached) == (7, True)

        ranged = await events_between(consumer, tp, trigger, since=since, until=until, limit=4)
        assert webhook_ids(ranged) == [f"mine-{n}" for n in range(4)]
        assert (ranged.event_limit_reached, ranged.scan_bound_reached) == (True, False)

        cut = await events_between(
            consumer, tp, trigger, since=since, until=until, limit=10, max_scanned=7
        )
        assert webhook_ids(cut) == ["mine-0", "mine-1", "mine-2"]
        assert (cut.scanned, cut.scan_bound_reached, cut.event_limit_reached) == (7, True, False)
