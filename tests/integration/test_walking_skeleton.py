"""A signed Slack event travels ingest -> processors -> dispatchers on real Kafka and PostgreSQL."""

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
from schemas.topics import DELIVERY_LOG, RAW_EVENTS
from schemas.triggers import Target, TriggerConfig
from tests.integration.support.delivery_log import log_entries
from tests.integration.support.polling import eventually
from tests.integration.support.registry import create_trigger, only
from tests.integration.support.stages import running_stages, wait_until_ready, with_free_ports
from tests.integration.support.topic_reader import read_all, read_until
from tests.support.signing import slack_headers

pytestmark = pytest.mark.integration

SIGNING_SECRET = "e2e-signing-secret"


async def post_when_trigger_known(
    client: httpx.AsyncClient, url: str, body: bytes
) -> httpx.Response:
    """The trigger reaches ingest through the outbox relay and the config topic; until it has,
    the route answers 404."""

    async def post() -> httpx.Response | None:
        response = await client.post(url, content=body, headers=slack_headers(body, SIGNING_SECRET))
        return None if response.status_code == 404 else response

    return await eventually(post)


async def slack_trigger(settings: Settings) -> TriggerConfig:
    async with await AsyncConnection.connect(settings.database.url.get_secret_value()) as conn:
        project_id = await create_project(conn, "acme")
        return await create_trigger(
            conn,
            Keyring.from_setting(settings.secret_keys),
            NewTrigger(
                project_id=project_id,
                definition="slack",
                name="support",
                destinations=only(Target("noop", display_name="log only")),
                config={"event_types": ["message", "app_mention"]},
                secrets={"SLACK_SIGNING_SECRET": SIGNING_SECRET},
            ),
        )


async def test_signed_slack_event_is_delivered_and_logged(settings: Settings) -> None:
    settings = with_free_ports(settings)
    trigger = await slack_trigger(settings)
    project_id = trigger.project_id
    base = f"http://127.0.0.1:{settings.ingest.port}"
    url = f"{base}/webhooks/{trigger.trigger_id}"
    event_id = f"Ev{uuid.uuid4().hex[:10]}"
    body = orjson.dumps(
        {
            "type": "event_callback",
            "team_id": "T1",
            "api_app_id": "A1",
            "event_id": event_id,
            "event_time": int(time.time()),
            "event": {
                "type": "message",
                "channel": "C42",
                "user": "U1",
                "text": "hi",
                "ts": "17.1",
            },
        }
    )

    with running_stages(settings, "ingest", "processors", "dispatchers"):
        await wait_until_ready(f"{base}/readyz")
        async with httpx.AsyncClient() as client:
            accepted = await post_when_trigger_known(client, url, body)
            assert accepted.status_code == 200, accepted.text

            forged = await client.post(
                url, content=body, headers=slack_headers(body, "not-the-secret")
            )
            assert forged.status_code == 401
            assert "signature" in forged.json()["error"]

            challenge = orjson.dumps({"type": "url_verification", "challenge": "c-123"})
            answered = await client.post(
                url, content=challenge, headers=slack_headers(challenge, SIGNING_SECRET)
            )
            assert (answered.status_code, answered.text) == (200, "c-123")

            unknown = await client.post(
                f"{base}/webhooks/{uuid.uuid4()}",
                content=body,
                headers=slack_headers(body, SIGNING_SECRET),
            )
            assert unknown.status_code == 404

        records = await read_until(
            settings,
            DELIVERY_LOG.name(settings.topics.prefix),
            lambda seen: any(e.outcome == "delivered" for e in log_entries(seen, event_id)),
        )

    journey = log_entries(records, event_id)
    assert [(e.stage, e.outcome) for e in journey] == [
        ("processor", "routed"),
        ("dispatcher", "delivered"),
    ]
    delivered = journey[-1]
    assert delivered.trigger_id == trigger.trigger_id
    assert delivered.project_id == project_id
    assert delivered.correlation_id == "C42:17.1"
    assert (delivered.target_kind, delivered.attempt) == ("noop", 1)

    # Only the accepted event reached the raw topic: not the forgery, not the challenge.
    raw = await read_all(settings, RAW_EVENTS.name(settings.topics.prefix))
    stored = [RAW_EVENTS.decode(value) for _, value in raw]
    assert [event.body.encode() for event in stored] == [body]


async def test_an_event_near_the_body_limit_travels_the_whole_pipeline(settings: Settings) -> None:
    # JSON escaping roughly doubles this body in the raw record, and the routed event carries it
    # again; every stage must take records that large.
    settings = with_free_ports(settings)
    trigger = await slack_trigger(settings)
    event_id = f"Ev{uuid.uuid4().hex[:10]}"
    text = '"' * (settings.ingest.max_body_bytes // 2 - 1024)
    body = orjson.dumps(
        {
            "type": "event_callback",
            "team_id": "T1",
            "event_id": event_id,
            "event": {"type": "message", "channel": "C1", "text": text, "ts": "1.1"},
        }
    )
    assert len(body) <= settings.ingest.max_body_bytes
    base = f"http://127.0.0.1:{settings.ingest.port}"

    with running_stages(settings, "ingest", "processors", "dispatchers"):
        await wait_until_ready(f"{base}/readyz")
        async with httpx.AsyncClient() as client:
            url = f"{base}/webhooks/{trigger.trigger_id}"
            accepted = await post_when_trigger_known(client, url, body)
            assert accepted.status_code == 200, accepted.text
        records = await read_until(
            settings,
            DELIVERY_LOG.name(settings.topics.prefix),
            lambda seen: any(e.outcome == "delivered" for e in log_entries(seen, event_id)),
        )

    assert [e.outcome for e in log_entries(records, event_id)] == ["routed", "delivered"]
