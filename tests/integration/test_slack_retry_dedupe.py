"""A Slack retry (same event_id, X-Slack-Retry-Num: 1) POSTed to ingest is delivered once."""

from __future__ import annotations

import time
import uuid

import httpx
import orjson
import pytest
from psycopg import AsyncConnection

from ingest.registry.store import NewTrigger, create_project
from runtime.secrets import Keyring
from runtime.settings import Settings
from schemas.topics import DELIVERY_LOG
from schemas.triggers import Target
from tests.integration.support.delivery_log import log_entries
from tests.integration.support.polling import eventually
from tests.integration.support.registry import create_trigger, only
from tests.integration.support.stages import running_stages, wait_until_ready, with_free_ports
from tests.integration.support.topic_reader import read_until
from tests.support.signing import slack_headers

pytestmark = pytest.mark.integration

SIGNING_SECRET = "retry-signing-secret"


def message(event_id: str, text: str) -> bytes:
    return orjson.dumps(
        {
            "type": "event_callback",
            "team_id": "T1",
            "event_id": event_id,
            "event_time": int(time.time()),
            "event": {"type": "message", "channel": "C9", "user": "U1", "text": text, "ts": "5.1"},
        }
    )


async def test_a_slack_retry_is_delivered_once(settings: Settings) -> None:
    settings = with_free_ports(settings)
    async with await AsyncConnection.connect(settings.database.url.get_secret_value()) as conn:
        project_id = await create_project(conn, "retries")
        trigger = await create_trigger(
            conn,
            Keyring.from_setting(settings.secret_keys),
            NewTrigger(
                project_id=project_id,
                definition="slack",
                name="retries",
                destinations=only(Target("noop")),
                config={"event_types": ["message"]},
                secrets={"SLACK_SIGNING_SECRET": SIGNING_SECRET},
            ),
        )
    url = f"http://127.0.0.1:{settings.ingest.port}/webhooks/{trigger.trigger_id}"
    event_id, marker_id = f"Ev{uuid.uuid4().hex[:10]}", f"Ev{uuid.uuid4().hex[:10]}"
    original = message(event_id, "first try")

    with running_stages(settings, "ingest", "processors", "dispatchers"):
        await wait_until_ready(f"http://127.0.0.1:{settings.ingest.port}/readyz")
        async with httpx.AsyncClient() as client:

            async def post_original() -> httpx.Response | None:
                response = await client.post(
                    url, content=original, headers=slack_headers(original, SIGNING_SECRET)
                )
                return None if response.status_code == 404 else response

            assert (await eventually(post_original)).status_code == 200
            retry_headers = {
                **slack_headers(original, SIGNING_SECRET),
                "x-slack-retry-num": "1",
                "x-slack-retry-reason": "http_timeout",
            }
            retried = await client.post(url, content=original, headers=retry_headers)
            assert retried.status_code == 200, retried.text
            # Same trigger, same raw partition: once the marker is delivered, the retry
            # before it has been decided too.
            marker = message(marker_id, "after the retry")
            posted = await client.post(
                url, content=marker, headers=slack_headers(marker, SIGNING_SECRET)
            )
            assert posted.status_code == 200

        records = await read_until(
            settings,
            DELIVERY_LOG.name(settings.topics.prefix),
            lambda seen: any(e.outcome == "delivered" for e in log_entries(seen, marker_id)),
        )

    journey = log_entries(records, event_id)
    # The duplicate decision and the delivery race each other; what counts is one of each.
    assert sorted((e.stage, e.outcome) for e in journey) == [
        ("dispatcher", "delivered"),
        ("processor", "duplicate"),
        ("processor", "routed"),
    ]
    duplicate = next(e for e in journey if e.outcome == "duplicate")
    assert duplicate.reason == "already seen (retry 1)"
