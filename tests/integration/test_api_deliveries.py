"""`GET /triggers/{id}/deliveries` and `GET /events/{id}` over the delivery log in PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from dispatchers.sink import INSERT
from runtime.settings import Settings
from tests.integration.support.control_plane import control_plane, project_with_key, webhook_trigger

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def log_row(
    offset: int, event_id: str, owner: tuple[str, str], step: str, seconds: float, **fields: Any
) -> tuple[Any, ...]:
    """A row as the sink writes it; `owner` is (trigger id, project id), `step` stage:outcome."""
    trigger_id, project_id = owner
    stage, outcome = step.split(":")
    return (
        0,
        offset,
        event_id,
        trigger_id,
        project_id,
        stage,
        outcome,
        T0 + timedelta(seconds=seconds),
        fields.get("correlation_id", "conv-1"),
        "http",
        fields.get("target_ref", "https://example.com/hook"),
        fields.get("attempt", 0),
        fields.get("reason"),
        fields.get("http_status"),
        fields.get("error"),
        fields.get("latency_ms"),
        False,
        None,
        fields.get("destination"),
        T0 if stage == "dispatcher" else None,
    )


async def create_trigger(client: Any, headers: dict[str, str], name: str) -> str:
    response = await client.post(
        "/triggers",
        json=webhook_trigger(name),
        headers=headers,
    )
    assert response.status_code == 201, response.text
    trigger_id: str = response.json()["id"]
    return trigger_id


async def test_deliveries_and_journeys_are_served_per_project(settings: Settings) -> None:
    acme_id, acme = await project_with_key(settings, "acme")
    globex_id, globex = await project_with_key(settings, "globex")
    async with control_plane(settings) as client:
        trigger = await create_trigger(client, acme, "orders")
        other = await create_trigger(client, globex, "theirs")
        rows = [
            log_row(1, "ev-1", (trigger, acme_id), "processor:routed", 1),
            log_row(
                2,
                "ev-1",
                (trigger, acme_id),
                "dispatcher:retrying",
                2,
                attempt=1,
                http_status=503,
                error="target answered 503",
            ),
            log_row(
                3,
                "ev-1",
                (trigger, acme_id),
                "dispatcher:delivered",
                3,
                attempt=2,
                http_status=204,
                latency_ms=12.5,
            ),
            log_row(
                4,
                "ev-2",
                (trigger, acme_id),
                "processor:skipped",
                4,
                reason="filter rejected the event",
                correlation_id="conv-2",
            ),
            log_row(5, "ev-3", (other, globex_id), "dispatcher:delivered", 5, attempt=1),
        ]
        with psycopg.connect(settings.database.url.get_secret_value()) as conn:
            conn.cursor().executemany(INSERT, rows)

        page = (await client.get(f"/triggers/{trigger}/deliveries?limit=3", headers=acme)).json()
        assert [(i["event_id"], i["outcome"]) for i in page["items"]] == [
            ("ev-2", "skipped"),
            ("ev-1", "delivered"),
            ("ev-1", "retrying"),
        ]
        rest = await client.get(
            f"/triggers/{trigger}/deliveries",
            params={"limit": 3, "cursor": page["next_cursor"]},
            headers=acme,
        )
        assert [i["outcome"] for i in rest.json()["items"]] == ["routed"]
        assert rest.json()["next_cursor"] is None

        async def outcomes(**params: str) -> list[str]:
            got = await client.get(f"/triggers/{trigger}/deliveries", params=params, headers=acme)
            assert got.status_code == 200, got.text
            return [i["outcome"] for i in got.json()["items"]]

        assert await outcomes(outcome="retrying") == ["retrying"]
        assert await outcomes(correlation_id="conv-2") == ["skipped"]
        assert await outcomes(event_id="ev-1") == ["delivered", "retrying", "routed"]
        assert await outcomes(since="2026-03-01T12:00:02", until="2026-03-01T12:00:04Z") == [
            "delivered",
            "retrying",
        ]

        journey = (await client.get("/events/ev-1", headers=acme)).json()
        assert journey["final_outcome"] == "delivered"
        assert [(s["stage"], s["outcome"], s["attempt"]) for s in journey["steps"]] == [
            ("ingest", "received", 0),
            ("processor", "routed", 0),
            ("dispatcher", "retrying", 1),
            ("dispatcher", "delivered", 2),
        ]
        assert journey["steps"][2]["http_status"] == 503
        skipped = (await client.get("/events/ev-2", headers=acme)).json()
        assert skipped["final_outcome"] == "skipped"
        assert skipped["steps"][-1]["reason"] == "filter rejected the event"

        # Another project's trigger and event look like missing ones.
        for path in (f"/triggers/{other}/deliveries", "/events/ev-3", "/events/nope"):
            missing = await client.get(path, headers=acme)
            assert missing.status_code == 404, path
        assert (await client.get("/events/ev-3", headers=globex)).status_code == 200
        bad = await client.get(
            f"/triggers/{trigger}/deliveries", params={"cursor": "garbage"}, headers=acme
        )
        assert bad.status_code == 400
        unauthenticated = await client.get(f"/triggers/{trigger}/deliveries")
        assert unauthenticated.status_code == 401


async def test_a_retried_event_is_delivered_and_shared_ids_stay_apart(settings: Settings) -> None:
    project_id, key = await project_with_key(settings, "acme")
    async with control_plane(settings) as client:
        orders = await create_trigger(client, key, "orders")
        invoices = await create_trigger(client, key, "invoices")
        rows = [
            log_row(1, "ev-1", (orders, project_id), "processor:routed", 1),
            log_row(2, "ev-1", (orders, project_id), "dispatcher:delivered", 2, attempt=1),
            # The sender retried an event that was already delivered.
            log_row(3, "ev-1", (orders, project_id), "processor:duplicate", 3),
            # Another trigger's sender chose the same id for its own event.
            log_row(4, "ev-1", (invoices, project_id), "processor:routed", 4),
            log_row(5, "ev-1", (invoices, project_id), "dispatcher:retrying", 5, attempt=1),
        ]
        with psycopg.connect(settings.database.url.get_secret_value()) as conn:
            conn.cursor().executemany(INSERT, rows)

        shared = await client.get("/events/ev-1", headers=key)
        assert shared.status_code == 409, shared.text
        assert "trigger_id" in shared.json()["error"]

        delivered = await client.get("/events/ev-1", params={"trigger_id": orders}, headers=key)
        assert delivered.status_code == 200, delivered.text
        journey = delivered.json()
        assert (journey["trigger_id"], journey["final_outcome"]) == (orders, "delivered")
        assert [s["outcome"] for s in journey["steps"]] == [
            "received",
            "routed",
            "delivered",
            "duplicate",
        ]

        pending = await client.get(
            "/events/ev-1", params={"trigger_id": invoices.upper()}, headers=key
        )
        assert pending.status_code == 200, pending.text
        assert pending.json()["final_outcome"] == "in_progress"
        assert [s["outcome"] for s in pending.json()["steps"]] == ["received", "routed", "retrying"]


async def test_target_urls_are_shown_without_credentials(settings: Settings) -> None:
    # Whatever a row holds, the API never shows a target URL's credentials.
    project_id, key = await project_with_key(settings, "acme")
    async with control_plane(settings) as client:
        trigger = await create_trigger(client, key, "orders")
        ref = "https://alice:pw-SECRET@hooks.example/in?token=tok-SECRET#frag-SECRET"
        row = log_row(
            1, "ev-1", (trigger, project_id), "dispatcher:delivered", 1, attempt=1, target_ref=ref
        )
        with psycopg.connect(settings.database.url.get_secret_value()) as conn:
            conn.execute(INSERT, row)

        shown = "https://redacted:redacted@hooks.example/in?token=redacted#redacted"
        page = await client.get(f"/triggers/{trigger}/deliveries", headers=key)
        assert page.status_code == 200, page.text
        assert [i["target_ref"] for i in page.json()["items"]] == [shown]
        journey = await client.get("/events/ev-1", headers=key)
        assert journey.status_code == 200, journey.text
        assert journey.json()["steps"][-1]["target_ref"] == shown
        assert "SECRET" not in page.text + journey.text
