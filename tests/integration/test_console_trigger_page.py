"""The console trigger page's destination forms, CEL check and filter preview on the real ingest
app, over PostgreSQL and Kafka."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
import pytest

from dispatchers.sink import INSERT
from runtime.settings import Settings
from schemas.records import RawEvent
from tests.integration.support.console import (
    HOSTILE,
    cells,
    create,
    key_of,
    log_row,
    sign_in,
    text_of,
)
from tests.integration.support.control_plane import control_plane, project_with_key, webhook_trigger
from tests.integration.support.processor_records import Records

pytestmark = pytest.mark.integration


async def test_destinations_are_added_edited_and_removed(settings: Settings) -> None:
    _, acme = await project_with_key(settings, "acme")
    async with control_plane(settings) as client:
        trigger = await create(client, acme, webhook_trigger("orders"))
        csrf = await sign_in(client, key_of(acme))
        base = f"/console/triggers/{trigger}/destinations"

        refused = await client.post(
            base,
            data={
                "csrf": csrf,
                "name": "hook",
                "kind": "http",
                "ref": "not a url",
                "signing_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "transform": "1",
            },
        )
        assert refused.status_code == 422
        assert "expected map, list or string" in refused.text
        # A typed secret is never sent back.
        assert "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" not in refused.text

        added = await client.post(
            base,
            data={
                "csrf": csrf,
                "name": "audit",
                "kind": "kafka",
                "ref": "audit-events",
                "filter": "event.x > 1",
                "per_second": "5",
            },
        )
        assert added.status_code == 303, added.text
        destinations = (await client.get(f"/triggers/{trigger}", headers=acme)).json()[
            "destinations"
        ]
        audit = destinations[1]
        assert (audit["name"], audit["target"]["ref"], audit["filter"]) == (
            "audit",
            "audit-events",
            "event.x > 1",
        )
        assert audit["rate_limit"] == {"per_second": 5.0, "burst": 1}

        taken = await client.post(base, data={"csrf": csrf, "name": "audit", "kind": "noop"})
        assert taken.status_code == 409
        assert "already has a destination named" in taken.text

        # Edit renames and clears what was left blank.
        edited = await client.post(
            f"{base}/audit/edit",
            data={
                "csrf": csrf,
                "name": "ledger",
                "kind": "kafka",
                "ref": "ledger-events",
                "transform": '{"x": event.x}',
            },
        )
        assert edited.status_code == 303, edited.text
        ledger = (await client.get(f"/triggers/{trigger}", headers=acme)).json()["destinations"][1]
        assert (ledger["name"], ledger["target"]["ref"]) == ("ledger", "ledger-events")
        assert (ledger["filter"], ledger["rate_limit"], ledger["transform"]) == (
            None,
            None,
            '{"x": event.x}',
        )
        assert (
            await client.post(
                f"{base}/audit/edit", data={"csrf": csrf, "name": "audit", "kind": "noop"}
            )
        ).status_code == 404

        removed = await client.post(f"{base}/ledger/remove", data={"csrf": csrf})
        assert removed.status_code == 303
        last = await client.post(f"{base}/default/remove", data={"csrf": csrf})
        assert last.status_code == 409
        assert "at least one destination" in last.text
        names = [
            d["name"]
            for d in (await client.get(f"/triggers/{trigger}", headers=acme)).json()["destinations"]
        ]
        assert names == ["default"]


async def test_the_cel_check_answers_line_and_column(settings: Settings) -> None:
    _, acme = await project_with_key(settings, "acme")
    async with control_plane(settings) as client:
        csrf = await sign_in(client, key_of(acme))
        headers = {"x-csrf-token": csrf}

        async def check(body: Any) -> tuple[int, Any]:
            answer = await client.post("/console/cel-check", json=body, headers=headers)
            return answer.status_code, answer.json()

        assert await check({"expression": "event.x == 1", "kind": "filter"}) == (200, {"ok": True})
        status, body = await check(
            {"expression": "event.x == 1 &&\n  event.y ==", "kind": "filter"}
        )
        assert (status, body["ok"], body["line"], body["column"]) == (200, False, 2, 13)
        assert "Syntax error" in body["message"]
        status, body = await check({"expression": "event.x", "kind": "transform"})
        assert (status, body["ok"]) == (200, True)
        status, body = await check({"expression": "1 + 1", "kind": "transform"})
        assert (body["line"], body["column"]) == (1, 1)
        assert "expected map, list or string" in body["message"]
        assert (await check({"expression": "true", "kind": "correlation"}))[0] == 422
        assert (await check({"expression": 1, "kind": "filter"}))[0] == 422
        assert (await check(["true"]))[0] == 422
        raw = await client.post(
            "/console/cel-check",
            content=b"{nope",
            headers={**headers, "content-type": "application/json"},
        )
        assert raw.status_code == 422
        huge = await client.post(
            "/console/cel-check",
            json={"expression": "x" * (settings.registry.api_max_body_bytes + 1), "kind": "filter"},
            headers=headers,
        )
        assert huge.status_code == 413


def webhook_raw(trigger_id: str, webhook_id: str, body: dict[str, Any]) -> RawEvent:
    return RawEvent(
        id=uuid.uuid4().hex,
        trigger_id=trigger_id,
        project_id="p",
        definition="webhook",
        received_at=datetime.now(UTC),
        content_type="application/json",
        body=orjson.dumps(body).decode(),
        headers={"webhook-id": webhook_id},
    )


async def test_filter_preview_and_last_deliveries_on_the_page(settings: Settings) -> None:
    acme_id, acme = await project_with_key(settings, "acme")
    async with control_plane(settings) as client:
        trigger = await create(client, acme, webhook_trigger("orders"))
        async with Records(settings) as records:
            await records.raw(
                webhook_raw(trigger, "wh-match", {"x": 1, "y": "abc"}),
                webhook_raw(trigger, "wh-x", {"x": 2, "y": "abc"}),
                webhook_raw(trigger, "wh-y", {"x": 1, "y": HOSTILE}),
            )
        with psycopg.connect(settings.database.url.get_secret_value()) as conn:
            conn.cursor().executemany(
                INSERT,
                [
                    log_row(1, "wh-match", (trigger, acme_id), "routed", timedelta(seconds=3)),
                    log_row(
                        2,
                        "wh-match",
                        (trigger, acme_id),
                        "delivered",
                        timedelta(seconds=2),
                        attempt=1,
                        latency_ms=12.4,
                        destination="default",
                    ),
                ],
            )
        csrf = await sign_in(client, key_of(acme))
        page = await client.get(f"/console/triggers/{trigger}")
        deliveries = cells(page.text, "deliveries")
        assert [(row[1], row[2], row[3], row[4], row[6]) for row in deliveries] == [
            ("wh-match", "default", "delivered", "1", "12 ms"),
            ("wh-match", "", "routed", "", ""),
        ]
        assert f'href="/console/events/wh-match?trigger_id={trigger}"' in page.text

        url = f"/console/triggers/{trigger}/filter-preview"
        preview = await client.post(
            url,
            data={"csrf": csrf, "filter": 'event.x == 1 && event.y.startsWith("a")', "last": "10"},
        )
        assert preview.status_code == 200, preview.text
        assert HOSTILE not in preview.text
        rows = cells(preview.text, "preview-results")
        assert [(row[0], row[3]) for row in rows] == [
            ("wh-match", "match"),
            ("wh-x", "miss"),
            ("wh-y", "miss"),
        ]
        assert rows[1][5] == "#1: event.x == 1"
        assert rows[2][5] == '#2: event.y.startsWith("a")'
        assert "match 1 · miss 2 · error 0 · ignored 0" in text_of(preview.text)

        broken = await client.post(url, data={"csrf": csrf, "filter": "event.x ==", "last": "10"})
        assert broken.status_code == 422
        assert "line 1, column 11" in broken.text
        too_many = await client.post(url, data={"csrf": csrf, "filter": "", "last": "100000"})
        assert too_many.status_code == 422
        assert "between 1 and 1000" in too_many.text
        nan = await client.post(url, data={"csrf": csrf, "last": "ten"})
        assert nan.status_code == 422
