"""The console's events search and journey pages, on the real app over real PostgreSQL and
Kafka: delivery-log rows as the sink writes them, raw events where ingest writes them."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import psycopg
import pytest

from dispatchers.sink import INSERT
from runtime.kafka import durable_producer
from runtime.settings import Settings
from schemas.records import RawEvent
from schemas.topics import RAW_EVENTS
from tests.integration.support.console import (
    assert_console_headers,
    assert_no_inline_code,
    key_of,
    sign_in,
)
from tests.integration.support.control_plane import control_plane, project_with_key, webhook_trigger
from tests.integration.support.pipeline import running_pipeline

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
XSS = "<script>alert(1)</script><img src=x onerror=alert(2)>"
JOURNEY_LINK = re.compile(r'href="/console/events/([^"?]+)\?trigger_id=([^"]+)"')


def row(
    offset: int,
    event_id: str,
    owner: tuple[str, str],
    step: str,
    at: datetime,
    **fields: Any,
) -> tuple[Any, ...]:
    """A delivery-log row as the sink writes it; `owner` is (trigger id, project id)."""
    trigger_id, project_id = owner
    stage, outcome = step.split(":")
    return (
        fields.get("partition", 0),
        offset,
        event_id,
        trigger_id,
        project_id,
        stage,
        outcome,
        at,
        fields.get("correlation_id", "C1:100.1"),
        "http" if stage == "dispatcher" else None,
        "https://user:secret@example.com/hook" if stage == "dispatcher" else None,
        fields.get("attempt", 0),
        fields.get("reason"),
        fields.get("http_status"),
        fields.get("error"),
        fields.get("latency_ms"),
        False,
        None,
        fields.get("destination", "default"),
        fields.get("received_at", T0),
    )


def insert(settings: Settings, rows: list[tuple[Any, ...]]) -> None:
    with psycopg.connect(settings.database.url.get_secret_value()) as conn:
        conn.cursor().executemany(INSERT, rows)


async def create_trigger(client: httpx.AsyncClient, headers: dict[str, str], name: str) -> str:
    created = await client.post("/triggers", json=webhook_trigger(name), headers=headers)
    assert created.status_code == 201, created.text
    trigger_id: str = created.json()["id"]
    return trigger_id


def journey_links(page: httpx.Response) -> list[tuple[str, str]]:
    return JOURNEY_LINK.findall(page.text)


async def test_events_are_searched_paged_and_kept_to_the_project(settings: Settings) -> None:
    acme_id, acme = await project_with_key(settings, "acme")
    globex_id, globex = await project_with_key(settings, "globex")
    async with control_plane(settings) as client:
        orders = await create_trigger(client, acme, "orders")
        invoices = await create_trigger(client, acme, "invoices")
        theirs = await create_trigger(client, globex, "theirs")
        rows = [
            row(
                n,
                f"ev-{n}",
                (orders if n % 2 else invoices, acme_id),
                "dispatcher:dead_lettered" if n % 10 == 0 else "processor:routed",
                T0 + timedelta(seconds=n),
                correlation_id=f"C1:{n % 3}",
            )
            for n in range(1, 61)
        ]
        rows.append(row(100, "globex-secret", (theirs, globex_id), "processor:routed", T0))
        insert(settings, rows)
        await sign_in(client, key_of(acme))

        first = await client.get("/console/events")
        assert first.status_code == 200, first.text
        assert_console_headers(first)
        assert_no_inline_code(first)
        links = journey_links(first)
        # Newest first, a page of 50, each linking to its journey with its trigger.
        assert [event for event, _ in links] == [f"ev-{n}" for n in range(60, 10, -1)]
        assert ("ev-59", orders) in links
        assert ("ev-58", invoices) in links
        assert "globex-secret" not in first.text
        older = re.search(r'href="/console/events\?([^"]+)" rel="next"', first.text)
        assert older is not None
        second = await client.get("/console/events?" + older.group(1).replace("&amp;", "&"))
        assert [event for event, _ in journey_links(second)] == [
            f"ev-{n}" for n in range(10, 0, -1)
        ]
        assert 'rel="next"' not in second.text

        dead = await client.get("/console/events", params={"outcome": "dead_lettered"})
        assert [event for event, _ in journey_links(dead)] == [
            f"ev-{n}" for n in (60, 50, 40, 30, 20, 10)
        ]
        by_trigger = await client.get(
            "/console/events", params={"trigger_id": orders, "since": "2026-03-01T12:00:50"}
        )
        assert [event for event, _ in journey_links(by_trigger)] == [
            f"ev-{n}" for n in (59, 57, 55, 53, 51)
        ]
        by_correlation = await client.get("/console/events", params={"correlation_id": "C1:1"})
        assert {event for event, _ in journey_links(by_correlation)} == {
            f"ev-{n}" for n in range(1, 61) if n % 3 == 1
        }
        by_event = await client.get("/console/events", params={"event_id": "ev-7"})
        assert journey_links(by_event) == [("ev-7", orders)]

        grouped = await client.get(
            "/console/events", params={"group": "correlation", "until": "2026-03-01T12:00:07"}
        )
        assert_console_headers(grouped)
        assert_no_inline_code(grouped)
        headings = re.findall(
            r'class="group-title">\s*Correlation <a[^>]*>([^<]+)</a>', grouped.text
        )
        assert headings == ["C1:0", "C1:2", "C1:1"]

        # Another project's trigger and event look like missing ones.
        foreign = await client.get("/console/events", params={"trigger_id": theirs})
        assert foreign.status_code == 422
        assert "no such trigger in this project" in foreign.text
        assert (await client.get("/console/events/globex-secret")).status_code == 404

        # Bad input re-renders the form naming each field; it is never a 500.
        bad = await client.get(
            "/console/events",
            params={
                "outcome": "exploded",
                "since": "yesterday",
                "event_id": "a\x01b",
            },
        )
        assert bad.status_code == 422
        for field in ("outcome", "since", "event_id"):
            assert f"<code>{field}</code>" in bad.text
        backwards = await client.get(
            "/console/events",
            params={"since": "2026-03-01T13:00", "until": "2026-03-01T12:00"},
        )
        assert backwards.status_code == 422
        assert "<code>until</code>: must be after `since`" in backwards.text.replace("&#96;", "`")
        forged = await client.get("/console/events", params={"cursor": "garbage"})
        assert forged.status_code == 400

        # Signed out, the page sends the browser to sign in.
        client.cookies.clear()
        signed_out = await client.get("/console/events")
        assert (signed_out.status_code, signed_out.headers["location"]) == (
            303,
            "/console/sign-in",
        )


async def produce_raw(settings: Settings, event: RawEvent) -> None:
    producer = durable_producer(settings)
    await producer.start()
    try:
        await producer.send_and_wait(
            RAW_EVENTS.name(settings.topics.prefix),
            RAW_EVENTS.encode(event),
            key=event.trigger_id.encode(),
        )
    finally:
        await producer.stop()


async def test_a_journey_shows_every_step_and_the_payload_escaped(settings: Settings) -> None:
    project_id, key = await project_with_key(settings, "acme")
    async with control_plane(settings) as client:
        orders = await create_trigger(client, key, "orders")
        invoices = await create_trigger(client, key, "invoices")
        received = datetime.now(UTC)
        body = orjson.dumps({"event": {"type": "message", "text": XSS}})
        await produce_raw(
            settings,
            RawEvent(
                # Ingest's own id; the journey's is the sender's webhook-id.
                id=uuid.uuid4().hex,
                trigger_id=orders,
                project_id=project_id,
                definition="webhook",
                received_at=received,
                content_type="application/json",
                body=body.decode(),
                headers={"webhook-id": "ev-xss"},
            ),
        )
        owner = (orders, project_id)

        def at(seconds: float) -> datetime:
            return received + timedelta(seconds=seconds)

        insert(
            settings,
            [
                row(1, "ev-xss", owner, "processor:routed", at(0.1), received_at=received),
                row(
                    2,
                    "ev-xss",
                    owner,
                    "dispatcher:retrying",
                    at(1),
                    attempt=1,
                    http_status=503,
                    latency_ms=12.25,
                    error="target answered 503: <b>busy</b>",
                    received_at=received,
                ),
                row(
                    3,
                    "ev-xss",
                    owner,
                    "dispatcher:delivered",
                    at(2),
                    attempt=2,
                    http_status=204,
                    latency_ms=8.5,
                    received_at=received,
                ),
                row(
                    4,
                    "ev-xss",
                    owner,
                    "processor:skipped",
                    at(0.1),
                    destination="audit",
                    reason="filter <i>rejected</i> it",
                    received_at=received,
                ),
                # Two more events of the same conversation, and one of another.
                row(5, "ev-next", owner, "processor:routed", at(5)),
                row(6, "ev-later", owner, "processor:routed", at(6)),
                row(7, "ev-apart", owner, "processor:routed", at(7), correlation_id="C2:1"),
                # The same id seen by two triggers.
                row(8, "ev-shared", owner, "processor:routed", at(8)),
                row(9, "ev-shared", (invoices, project_id), "processor:routed", at(9)),
            ],
        )
        await sign_in(client, key_of(key))

        page = await client.get("/console/events/ev-xss", params={"trigger_id": orders})
        assert page.status_code == 200, page.text
        assert_console_headers(page)
        assert_no_inline_code(page)
        html = page.text
        # The payload, pretty-printed and escaped; nothing it holds is markup.
        assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;" in html
        assert "<script>alert" not in html
        assert "<img src=x" not in html
        assert '"type": "message"' in html.replace("&#34;", '"')
        # Every step: received, routed, skipped with its reason, each attempt, the outcomes.
        steps = re.findall(r'<strong class="outcome-([a-z_]+)">', html)
        assert steps == ["received", "routed", "skipped", "retrying", "delivered"]
        assert "filter &lt;i&gt;rejected&lt;/i&gt; it" in html
        assert "target answered 503: &lt;b&gt;busy&lt;/b&gt;" in html
        assert "<dd>503</dd>" in html
        assert "12.2 ms" in html or "12.3 ms" in html
        assert 'id="final-outcome">delivered<' in html
        assert re.search(r'Destination">default</td><td[^>]*>delivered<', html)
        assert re.search(r'Destination">audit</td><td[^>]*>skipped<', html)
        # No target credential is shown.
        assert "secret@" not in html
        # The conversation's other events, newest first; not another conversation's.
        related = re.findall(r'<li><a href="/console/events/([^"?]+)\?', html)
        assert related == ["ev-shared", "ev-shared", "ev-later", "ev-next"]

        shared = await client.get("/console/events/ev-shared")
        assert shared.status_code == 409
        assert_console_headers(shared)
        assert_no_inline_code(shared)
        assert sorted(journey_links(shared)) == sorted(
            [("ev-shared", orders), ("ev-shared", invoices)]
        )
        chosen = await client.get("/console/events/ev-shared", params={"trigger_id": invoices})
        assert chosen.status_code == 200
        assert "invoices" in chosen.text

        # An event whose raw record is not on the topic says why there is no payload.
        gone = await client.get("/console/events/ev-later", params={"trigger_id": orders})
        assert gone.status_code == 200
        assert 'id="payload-missing"' in gone.text
        assert (await client.get("/console/events/nope")).status_code == 404


async def test_an_event_sent_through_the_pipeline_shows_its_whole_journey(
    settings: Settings,
) -> None:
    async with running_pipeline(settings) as pipeline:
        event_id = f"msg_{uuid.uuid4().hex}"
        body = orjson.dumps({"type": "message", "text": XSS})
        accepted = await pipeline.post_signed(pipeline.ordinary_id, body, event_id)
        assert accepted.status_code == 200, accepted.text
        await pipeline.journey(event_id, pipeline.ordinary_id)
        await sign_in(pipeline.client, key_of(pipeline.auth))

        found = await pipeline.client.get("/console/events", params={"event_id": event_id})
        assert journey_links(found)[0] == (event_id, pipeline.ordinary_id)
        page = await pipeline.client.get(found.url.join(f"/console/events/{event_id}"))
        assert page.status_code == 200, page.text
        steps = re.findall(r'<strong class="outcome-([a-z_]+)">', page.text)
        assert steps == ["received", "routed", "delivered"]
        assert 'id="final-outcome">delivered<' in page.text
        assert (
            "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;" in page.text
        )
        assert "<script>alert" not in page.text
