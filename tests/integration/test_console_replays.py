"""The console's replay pages on the real app (with its replay worker), Kafka and PostgreSQL: a
dry run first, then the same request started from its report, watched, and cancelled."""

from __future__ import annotations

import html
import re
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest

from runtime.settings import Settings
from tests.integration.support.console import (
    assert_console_headers,
    assert_no_inline_code,
    csrf_of,
    key_of,
    sign_in,
)
from tests.integration.support.control_plane import (
    WHSEC,
    control_plane,
    project_with_key,
    webhook_trigger,
)
from tests.integration.support.polling import eventually
from tests.support.signing import standard_webhook_headers

pytestmark = pytest.mark.integration

HIDDEN = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')


def said(page: httpx.Response) -> str:
    return " ".join(page.text.split())


async def send_events(client: httpx.AsyncClient, trigger_id: str, count: int) -> None:
    """Signed events ingest accepts, once the trigger has reached its view of the configs."""
    for seq in range(count):
        body = orjson.dumps({"seq": seq})
        headers = standard_webhook_headers(body, WHSEC, msg_id=f"msg_{uuid.uuid4().hex}")

        async def post(body: bytes = body, headers: dict[str, str] = headers) -> bool | None:
            answer = await client.post(f"/webhooks/{trigger_id}", content=body, headers=headers)
            if answer.status_code == 404:
                return None
            assert answer.status_code == 200, answer.text
            return True

        await eventually(post)


async def test_a_replay_is_dry_run_started_watched_and_cancelled(settings: Settings) -> None:
    settings = settings.override(replay__poll_interval_s=0.2)
    _, acme = await project_with_key(settings, "acme")
    _, globex = await project_with_key(settings, "globex")
    start = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S")
    async with control_plane(settings) as client:
        created = await client.post("/triggers", json=webhook_trigger("orders"), headers=acme)
        assert created.status_code == 201, created.text
        orders = created.json()["id"]
        await send_events(client, orders, 3)
        theirs = await client.post(
            "/replays", json={"from": f"{start}Z", "rate_per_s": 1}, headers=globex
        )
        assert theirs.status_code == 201, theirs.text
        csrf = await sign_in(client, key_of(acme))

        form = await client.get("/console/replays")
        assert form.status_code == 200, form.text
        assert 'name="action" value="dry_run"' in form.text
        assert_console_headers(form)
        assert_no_inline_code(form)

        # Bad input re-renders the form with the API's messages, naming each field.
        bad = await client.post(
            "/console/replays",
            data={"csrf": csrf, "action": "dry_run", "from": "", "rate_per_s": "fast"},
        )
        assert bad.status_code == 422
        assert "<code>from</code>" in bad.text
        assert "<code>rate_per_s</code>" in bad.text
        too_fast = await client.post(
            "/console/replays",
            data={"csrf": csrf, "action": "dry_run", "from": start, "rate_per_s": "5000"},
        )
        assert too_fast.status_code == 422
        assert "at most 1000" in too_fast.text

        dry = await client.post(
            "/console/replays",
            data={
                "csrf": csrf,
                "action": "dry_run",
                "from": start,
                "trigger_id": orders,
                "rate_per_s": "1",
            },
        )
        assert dry.status_code == 200, dry.text
        assert "Nothing was sent." in dry.text
        assert_console_headers(dry)
        assert_no_inline_code(dry)
        assert "3 would be replayed: 3 routed, 0 skipped" in said(dry)
        assert (await client.get("/console/replays")).text.count("/console/replays/") == 0

        # The report starts exactly the request it reported on.
        fields = {name: html.unescape(value) for name, value in HIDDEN.findall(dry.text)}
        assert (fields["action"], fields["trigger_id"], fields["from"]) == ("start", orders, start)
        started = await client.post("/console/replays", data=fields)
        assert started.status_code == 303, started.text
        location = started.headers["location"]
        replay_id = location.rsplit("/", 1)[1]
        assert location == f"/console/replays/{replay_id}"

        watched = await client.get(location)
        assert watched.status_code == 200
        assert_console_headers(watched)
        assert_no_inline_code(watched)
        assert '<meta http-equiv="refresh" content="2">' in watched.text
        assert re.search(r'id="replay-state" class="state-(pending|running)"', watched.text)
        assert "orders" in watched.text
        assert "console, api key tl_" in watched.text

        refused = await client.post(f"{location}/cancel", data={"csrf": "forged"})
        assert refused.status_code == 403
        cancelled = await client.post(f"{location}/cancel", data={"csrf": csrf_of(watched)})
        assert cancelled.status_code == 303

        async def ended() -> httpx.Response | None:
            page = await client.get(location)
            return page if 'class="state-cancelled"' in page.text else None

        final = await eventually(ended, timeout_s=30)
        assert "Cancel replay</button>" not in final.text
        listed = await client.get("/console/replays")
        assert f'href="/console/replays/{replay_id}"' in listed.text
        assert listed.text.count('href="/console/replays/') == 1
        again = await client.post(f"{location}/cancel", data={"csrf": csrf})
        assert again.status_code == 409
        assert "already ended" in again.text

        # Another project's replay is not found.
        other = await client.get(f"/console/replays/{theirs.json()['id']}")
        assert other.status_code == 404
        assert (await client.get("/console/replays/not-a-uuid")).status_code == 404
