"""The console's triggers list and trigger page on the real ingest app, over PostgreSQL and
Kafka: what they show, the changes they make through the control plane, and isolation."""

from __future__ import annotations

import html
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
import pytest

from dispatchers.sink import INSERT
from ingest.console import triggers as triggers_page
from runtime.settings import Settings
from schemas.records import RawEvent
from tests.integration.support.console import key_of, sign_in
from tests.integration.support.control_plane import control_plane, project_with_key, webhook_trigger
from tests.integration.support.processor_records import Records

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)
HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>"


def log_row(
    offset: int, event_id: str, owner: tuple[str, str], outcome: str, ago: timedelta, **fields: Any
) -> tuple[Any, ...]:
    """A delivery-log row as the sink writes it; `owner` is (trigger id, project id)."""
    trigger_id, project_id = owner
    stage = "processor" if outcome in ("routed", "skipped", "filter_error") else "dispatcher"
    return (
        0,
        offset,
        event_id,
        trigger_id,
        project_id,
        stage,
        outcome,
        NOW - ago,
        None,
        "noop",
        None,
        fields.get("attempt", 0),
        fields.get("reason"),
        fields.get("http_status"),
        fields.get("error"),
        fields.get("latency_ms"),
        False,
        None,
        fields.get("destination"),
        None,
    )


async def create(client: Any, headers: dict[str, str], body: dict[str, Any]) -> str:
    response = await client.post("/triggers", json=body, headers=headers)
    assert response.status_code == 201, response.text
    trigger_id: str = response.json()["id"]
    return trigger_id


def text_of(markup: str) -> str:
    """What a reader sees of some markup: its text, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def cells(page: str, table_id: str) -> list[list[str]]:
    """The text of each body row's cells in the table `table_id`."""
    table = page.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    body = table.split("<tbody>", 1)[1]
    rows = re.findall(r"<tr>(.*?)</tr>", body, re.DOTALL)
    return [
        [text_of(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL)]
        for row in rows
    ]


async def test_the_list_shows_destinations_recent_outcomes_and_the_last_error(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme_id, acme = await project_with_key(settings, "acme")
    globex_id, globex = await project_with_key(settings, "globex")
    async with control_plane(settings) as client:
        orders = await create(
            client,
            acme,
            webhook_trigger(
                "orders",
                target=None,
                destinations=[
                    {"name": "default", "target": {"kind": "noop"}},
                    {"name": "audit", "target": {"kind": "kafka", "ref": "audit-events"}},
                ],
            ),
        )
        await create(client, acme, webhook_trigger(HOSTILE))
        theirs = await create(client, globex, webhook_trigger("globex-only"))
        rows = [
            log_row(1, "ev-1", (orders, acme_id), "routed", timedelta(minutes=5)),
            log_row(2, "ev-1", (orders, acme_id), "delivered", timedelta(minutes=5)),
            log_row(3, "ev-2", (orders, acme_id), "routed", timedelta(minutes=4)),
            log_row(4, "ev-2", (orders, acme_id), "retrying", timedelta(minutes=4), attempt=1),
            log_row(5, "ev-2", (orders, acme_id), "retrying", timedelta(minutes=3), attempt=2),
            log_row(
                6,
                "ev-2",
                (orders, acme_id),
                "dead_lettered",
                timedelta(minutes=2),
                attempt=3,
                error=f"HTTP 500 {HOSTILE}",
                destination="audit",
            ),
            # Over an hour ago: not counted, though its error is older than the last one.
            log_row(7, "ev-0", (orders, acme_id), "failed", timedelta(hours=2), error="old"),
            # Another project's rows under acme's trigger id are never acme's.
            log_row(8, "ev-x", (orders, globex_id), "filter_error", timedelta(minutes=1)),
            log_row(9, "ev-y", (theirs, globex_id), "delivered", timedelta(minutes=1)),
        ]
        with psycopg.connect(settings.database.url.get_secret_value()) as conn:
            conn.cursor().executemany(INSERT, rows)

        await sign_in(client, key_of(acme))
        page = await client.get("/console/triggers")
        assert page.status_code == 200
        assert "globex-only" not in page.text
        assert HOSTILE not in page.text
        assert html.escape(HOSTILE) in page.text
        table = {row[0]: row for row in cells(page.text, "triggers")}
        assert set(table) == {"orders", HOSTILE}
        _, kind, status, destinations, counts, last_error = table["orders"]
        assert (kind, status) == ("webhook", "active")
        assert destinations == "default (noop) audit (kafka)"
        # Distinct events per outcome: ev-2's two retries count once.
        assert counts == "routed 2 delivered 1 retrying 1 dead_lettered 1"
        assert "dead_lettered · audit" in last_error
        assert f"HTTP 500 {HOSTILE}" in last_error
        assert f'href="/console/events/ev-2?trigger_id={orders}"' in page.text
        assert table[HOSTILE][4:] == ["none", "none"]
        assert (await client.get("/console")).text == page.text

        # Keyset pages, oldest first, as GET /triggers.
        monkeypatch.setattr(triggers_page, "PAGE_SIZE", 1)
        first = await client.get("/console/triggers")
        assert [row[0] for row in cells(first.text, "triggers")] == ["orders"]
        cursor = re.search(r'href="/console/triggers\?cursor=([^"]+)"', first.text)
        assert cursor is not None
        second = await client.get(f"/console/triggers?cursor={html.unescape(cursor.group(1))}")
        assert [row[0] for row in cells(second.text, "triggers")] == [HOSTILE]
        assert "cursor=" not in second.text
        bad = await client.get("/console/triggers?cursor=bm9wZQ")
        assert bad.status_code == 400
        assert "cursor" in bad.text


async def test_another_projects_trigger_is_not_found(settings: Settings) -> None:
    _, acme = await project_with_key(settings, "acme")
    _, globex = await project_with_key(settings, "globex")
    async with control_plane(settings) as client:
        theirs = await create(client, globex, webhook_trigger("theirs"))
        csrf = await sign_in(client, key_of(acme))
        assert (await client.get(f"/console/triggers/{theirs}")).status_code == 404
        for action, data in (
            ("pause", {}),
            ("resume", {}),
            ("edit", {"name": "mine", "config": "{}"}),
            ("filter-preview", {"last": "5"}),
            ("destinations", {"name": "x", "kind": "noop"}),
            ("destinations/default/edit", {"name": "default", "kind": "noop"}),
            ("destinations/default/remove", {}),
        ):
            answer = await client.post(
                f"/console/triggers/{theirs}/{action}", data={"csrf": csrf, **data}
            )
            assert answer.status_code == 404, action
            assert "no such trigger" in answer.text
        for odd in ("not-a-uuid", str(uuid.uuid4())):
            assert (await client.get(f"/console/triggers/{odd}")).status_code == 404
        untouched = await client.get(f"/triggers/{theirs}", headers=globex)
        assert untouched.json()["status"] == "active"
        assert untouched.json()["name"] == "theirs"
        assert [d["name"] for d in untouched.json()["destinations"]] == ["default"]


async def test_pause_resume_and_edit_through_the_trigger_page(settings: Settings) -> None:
    _, acme = await project_with_key(settings, "acme")
    async with control_plane(settings) as client:
        trigger = await create(client, acme, webhook_trigger("orders"))
        csrf = await sign_in(client, key_of(acme))
        page = await client.get(f"/console/triggers/{trigger}")
        assert (
            f'<code id="webhook-url">{settings.registry.public_base_url}/webhooks/{trigger}</code>'
            in page.text
        )
        assert 'data-copy="webhook-url"' in page.text

        paused = await client.post(f"/console/triggers/{trigger}/pause", data={"csrf": csrf})
        assert paused.status_code == 303
        assert paused.headers["location"] == f"/console/triggers/{trigger}?done=paused"
        assert (await client.get(f"/triggers/{trigger}", headers=acme)).json()["status"] == "paused"
        shown = await client.get(paused.headers["location"])
        assert 'id="trigger-status">paused<' in shown.text
        assert "Resume</button>" in shown.text
        resumed = await client.post(f"/console/triggers/{trigger}/resume", data={"csrf": csrf})
        assert resumed.status_code == 303
        assert (await client.get(f"/triggers/{trigger}", headers=acme)).json()["status"] == "active"

        edit = f"/console/triggers/{trigger}/edit"
        broken = await client.post(
            edit,
            data={
                "csrf": csrf,
                "name": "orders",
                "config": "{}",
                "filter": "event.x == 1 &&\n  event.y ==",
            },
        )
        assert broken.status_code == 422
        assert "line 2, column 13" in broken.text
        assert 'id="edit-filter-error"' in broken.text
        # The form comes back as it was typed, and nothing was saved.
        assert "event.x == 1 &amp;&amp;\n  event.y ==</textarea>" in broken.text
        stored = (await client.get(f"/triggers/{trigger}", headers=acme)).json()
        assert stored["config"].get("filter") is None

        bad_json = await client.post(edit, data={"csrf": csrf, "name": "orders", "config": "{"})
        assert bad_json.status_code == 422
        assert "not valid JSON" in bad_json.text
        unknown = await client.post(
            edit, data={"csrf": csrf, "name": "orders", "config": '{"colour": "red"}'}
        )
        assert unknown.status_code == 422
        assert "config.colour" in unknown.text

        saved = await client.post(
            edit,
            data={
                "csrf": csrf,
                "name": "orders-v2",
                "config": '{"correlation": "event.order_id"}',
                "filter": 'event.kind == "order"',
            },
        )
        assert saved.status_code == 303, saved.text
        stored = (await client.get(f"/triggers/{trigger}", headers=acme)).json()
        assert stored["name"] == "orders-v2"
        assert stored["config"] == {
            "correlation": "event.order_id",
            "filter": 'event.kind == "order"',
        }
        again = await client.get(saved.headers["location"])
        assert "Saved." in again.text
        assert "event.kind == &#34;order&#34;</textarea>" in again.text


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
        assert "match 1 · miss 2 · error 0 · ignored 0" in re.sub(
            r"<[^>]+>|\s+", " ", preview.text
        ).replace("  ", " ")

        broken = await client.post(url, data={"csrf": csrf, "filter": "event.x ==", "last": "10"})
        assert broken.status_code == 422
        assert "line 1, column 11" in broken.text
        too_many = await client.post(url, data={"csrf": csrf, "filter": "", "last": "100000"})
        assert too_many.status_code == 422
        assert "between 1 and 1000" in too_many.text
        nan = await client.post(url, data={"csrf": csrf, "last": "ten"})
        assert nan.status_code == 422
