"""The console's triggers list and trigger page on the real ingest app, over PostgreSQL and
Kafka: what they show, the changes they make through the control plane, and isolation."""

from __future__ import annotations

import html
import re
import uuid
from datetime import timedelta

import psycopg
import pytest

from dispatchers.sink import INSERT
from ingest.console import triggers as triggers_page
from runtime.settings import Settings
from tests.integration.support.console import HOSTILE, cells, create, key_of, log_row, sign_in
from tests.integration.support.control_plane import control_plane, project_with_key, webhook_trigger

pytestmark = pytest.mark.integration


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
        missing = await client.get(f"/console/triggers/{theirs}")
        assert missing.status_code == 404
        assert "no such trigger" in missing.text
        assert 'action="/console/sign-out"' in missing.text  # still signed in: the nav shows
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
