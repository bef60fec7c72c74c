"""The webhook endpoint's answers, from a real `python -m ingest` on real Kafka and PostgreSQL.

One ingest process serves the whole module: starting it and waiting for triggers to propagate
costs seconds, and every test here only sends requests. Tests that look at shared state (the raw
topic, the metrics) key their assertions by trigger or event id, or by counter deltas.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from psycopg import AsyncConnection

from deploy.migrate import apply_migrations
from ingest.registry.store import NewTrigger, create_project
from runtime.secrets import Keyring
from runtime.settings import Settings
from schemas.records import RawEvent
from schemas.topics import RAW_EVENTS
from schemas.triggers import DefinitionSlug, Target, TriggerStatus
from tests.integration.support.isolation import isolated_settings, scratch_database
from tests.integration.support.polling import eventually
from tests.integration.support.registry import create_trigger, only
from tests.integration.support.stages import free_port, running_stages, wait_until_ready
from tests.integration.support.topic_reader import read_all
from tests.support.signing import FORM, slack_headers, standard_webhook_headers

pytestmark = pytest.mark.integration

# Small enough that a test body can exceed it cheaply; large enough for every valid body here.
MAX_BODY = 2048
SLACK_SECRET = "ingest-http-slack-secret"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"ingest-http-standard-webhooks!!!").decode()

MESSAGE = orjson.dumps(
    {
        "type": "event_callback",
        "team_id": "T1",
        "event_id": "Ev1",
        "event": {"type": "message", "channel": "C1", "ts": "1.1", "text": "hi"},
    }
)


@dataclass(frozen=True)
class Ingest:
    settings: Settings
    # The public port, and the ops port (127.0.0.1) with the metrics.
    base: str
    ops: str
    client: httpx.AsyncClient
    slack: str
    paused: str
    webhook: str

    def url(self, trigger_id: str) -> str:
        return f"{self.base}/webhooks/{trigger_id}"


async def no_server_errors(response: httpx.Response) -> None:
    # A 5xx here is a bug in ingest (or Kafka being unavailable), never an expected answer.
    assert response.status_code < 500, f"{response.request.url} answered {response.status_code}"


async def create_triggers(settings: Settings) -> dict[str, str]:
    keyring = Keyring.from_setting(settings.secret_keys)
    specs: dict[str, tuple[DefinitionSlug, dict[str, str], TriggerStatus]] = {
        "slack": ("slack", {"SLACK_SIGNING_SECRET": SLACK_SECRET}, "active"),
        "paused": ("slack", {"SLACK_SIGNING_SECRET": SLACK_SECRET}, "paused"),
        "webhook": ("webhook", {"WEBHOOK_SECRET": WEBHOOK_SECRET}, "active"),
    }
    async with await AsyncConnection.connect(settings.database.url.get_secret_value()) as conn:
        project_id = await create_project(conn, "ingest-http")
        ids: dict[str, str] = {}
        for name, (definition, secrets, status) in specs.items():
            new = NewTrigger(
                project_id, definition, name, only(Target("noop")), secrets=secrets, status=status
            )
            ids[name] = (await create_trigger(conn, keyring, new)).trigger_id
    return ids


@pytest.fixture(scope="module")
async def ingest(base_settings: Settings) -> AsyncIterator[Ingest]:
    with scratch_database(base_settings.database.url.get_secret_value()) as database_url:
        apply_migrations(database_url)
        settings = await isolated_settings(
            base_settings,
            database_url,
            ingest__port=free_port(),
            ingest__metrics_port=free_port(),
            ingest__max_body_bytes=MAX_BODY,
        )
        ids = await create_triggers(settings)
        base = f"http://127.0.0.1:{settings.ingest.port}"
        ops = f"http://127.0.0.1:{settings.ingest.metrics_port}"
        with running_stages(settings, "ingest"):
            await wait_until_ready(f"{base}/readyz")
            async with httpx.AsyncClient(event_hooks={"response": [no_server_errors]}) as client:
                ingest = Ingest(
                    settings, base, ops, client, ids["slack"], ids["paused"], ids["webhook"]
                )
                for trigger_id in ids.values():
                    await wait_until_known(ingest, trigger_id)
                yield ingest


async def wait_until_known(ingest: Ingest, trigger_id: str) -> None:
    """Triggers reach ingest through the outbox relay; until then their route answers 404."""

    async def known() -> bool | None:
        response = await ingest.client.post(ingest.url(trigger_id), content=b"{}")
        return None if response.status_code == 404 else True

    await eventually(known)


async def raw_events_of(ingest: Ingest, trigger_id: str) -> list[RawEvent]:
    records = await read_all(ingest.settings, RAW_EVENTS.name(ingest.settings.topics.prefix))
    return [RAW_EVENTS.decode(value) for key, value in records if key == trigger_id.encode()]


async def requests_counted(ingest: Ingest, definition: str, outcome: str) -> float:
    text = (await ingest.client.get(f"{ingest.ops}/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "triggerline_ingest_requests_total" and sample.labels == {
                "definition": definition,
                "outcome": outcome,
            }:
                return sample.value
    return 0.0


def oversized_body() -> bytes:
    body = orjson.dumps({"type": "event_callback", "padding": "x" * (3 * MAX_BODY)})
    assert len(body) > MAX_BODY
    return body


async def in_chunks(body: bytes, size: int = 512) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def test_a_body_over_the_limit_is_413_by_its_content_length(ingest: Ingest) -> None:
    body = oversized_body()
    response = await ingest.client.post(
        ingest.url(ingest.slack), content=body, headers=slack_headers(body, SLACK_SECRET)
    )

    assert response.request.headers["content-length"] == str(len(body))
    assert response.status_code == 413
    assert response.json() == {"error": f"body exceeds {MAX_BODY} bytes"}


async def test_a_chunked_body_over_the_limit_is_413_while_streaming(ingest: Ingest) -> None:
    body = oversized_body()
    response = await ingest.client.post(
        ingest.url(ingest.slack), content=in_chunks(body), headers=slack_headers(body, SLACK_SECRET)
    )

    # Without a Content-Length the limit can only come from counting what arrives.
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.status_code == 413


async def test_a_chunked_body_within_the_limit_is_accepted_unchanged(ingest: Ingest) -> None:
    body = orjson.dumps({**orjson.loads(MESSAGE), "padding": "y" * (MAX_BODY // 2)})
    assert len(body) <= MAX_BODY
    response = await ingest.client.post(
        ingest.url(ingest.slack), content=in_chunks(body), headers=slack_headers(body, SLACK_SECRET)
    )

    assert response.status_code == 200, response.text
    stored = [e for e in await raw_events_of(ingest, ingest.slack) if e.id == response.json()["id"]]
    assert [event.body.encode() for event in stored] == [body]


async def test_text_plain_is_415(ingest: Ingest) -> None:
    headers = slack_headers(MESSAGE, SLACK_SECRET, content_type="text/plain")
    response = await ingest.client.post(ingest.url(ingest.slack), content=MESSAGE, headers=headers)

    assert response.status_code == 415
    assert "application/json" in response.json()["error"]


async def test_correctly_signed_malformed_json_is_400(ingest: Ingest) -> None:
    body = b'{"type": "event_callback", '
    response = await ingest.client.post(
        ingest.url(ingest.slack), content=body, headers=slack_headers(body, SLACK_SECRET)
    )

    assert response.status_code == 400
    assert response.json()["error"].startswith("malformed JSON")


def without_slack_headers(body: bytes) -> dict[str, str]:
    return {"content-type": "application/json"}


def non_numeric_timestamp(body: bytes) -> dict[str, str]:
    # Correctly signed over the text timestamp: only the timestamp check can reject it.
    return slack_headers(body, SLACK_SECRET, timestamp="12e8")


def stale_timestamp(body: bytes) -> dict[str, str]:
    # Correctly signed, but 301 s old, one second past the five-minute replay window.
    return slack_headers(body, SLACK_SECRET, timestamp=str(int(time.time()) - 301))


@pytest.mark.parametrize(
    "make_headers", [without_slack_headers, non_numeric_timestamp, stale_timestamp]
)
async def test_unverifiable_requests_are_401(
    ingest: Ingest, make_headers: Callable[[bytes], dict[str, str]]
) -> None:
    response = await ingest.client.post(
        ingest.url(ingest.slack), content=MESSAGE, headers=make_headers(MESSAGE)
    )

    assert response.status_code == 401
    assert response.json() == {"error": "invalid request signature"}


@pytest.mark.parametrize("trigger_id", [str(uuid.uuid4()), "not-a-uuid"])
async def test_unknown_trigger_ids_are_404(ingest: Ingest, trigger_id: str) -> None:
    headers = slack_headers(MESSAGE, SLACK_SECRET)
    response = await ingest.client.post(ingest.url(trigger_id), content=MESSAGE, headers=headers)

    assert response.status_code == 404
    assert response.json() == {"error": "no webhook trigger with this id"}


async def test_url_verification_is_answered_in_plain_text(ingest: Ingest) -> None:
    body = orjson.dumps({"type": "url_verification", "challenge": "challenge-7"})
    response = await ingest.client.post(
        ingest.url(ingest.slack), content=body, headers=slack_headers(body, SLACK_SECRET)
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "challenge-7"


async def test_a_paused_trigger_answers_200_without_forwarding(ingest: Ingest) -> None:
    response = await ingest.client.post(
        ingest.url(ingest.paused), content=MESSAGE, headers=slack_headers(MESSAGE, SLACK_SECRET)
    )

    assert response.status_code == 200
    assert response.json()["forwarded"] is False
    # The answer comes after any produce would have been acknowledged, so nothing can follow.
    assert await raw_events_of(ingest, ingest.paused) == []


async def test_an_interactivity_form_is_accepted_and_stored_as_sent(ingest: Ingest) -> None:
    payload = {"type": "block_actions", "team": {"id": "T1"}, "channel": {"id": "C1"}}
    body = urlencode({"payload": orjson.dumps(payload).decode()}).encode()
    response = await ingest.client.post(
        ingest.url(ingest.slack),
        content=body,
        headers=slack_headers(body, SLACK_SECRET, content_type=FORM),
    )

    assert response.status_code == 200, response.text
    stored = [e for e in await raw_events_of(ingest, ingest.slack) if e.id == response.json()["id"]]
    assert [(e.content_type, e.body.encode()) for e in stored] == [(FORM, body)]


async def test_a_standard_webhook_is_verified(ingest: Ingest) -> None:
    body = orjson.dumps({"order": 42, "status": "paid"})
    headers = standard_webhook_headers(body, WEBHOOK_SECRET)

    accepted = await ingest.client.post(ingest.url(ingest.webhook), content=body, headers=headers)
    tampered = await ingest.client.post(
        ingest.url(ingest.webhook), content=body.replace(b"42", b"43"), headers=headers
    )

    assert accepted.status_code == 200, accepted.text
    assert tampered.status_code == 401
    stored = await raw_events_of(ingest, ingest.webhook)
    assert [(e.id, e.body.encode(), e.headers["webhook-id"]) for e in stored] == [
        (accepted.json()["id"], body, headers["webhook-id"])
    ]


async def test_health_and_readiness_on_both_ports(ingest: Ingest) -> None:
    for base in (ingest.base, ingest.ops):
        assert (await ingest.client.get(f"{base}/healthz")).status_code == 200
        ready = await ingest.client.get(f"{base}/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"kafka_producer": True, "trigger_config": True}


@pytest.mark.parametrize("path", ["/metrics", "/openapi.json", "/docs", "/redoc"])
async def test_metrics_and_the_api_schema_are_not_on_the_public_port(
    ingest: Ingest, path: str
) -> None:
    assert (await ingest.client.get(f"{ingest.base}{path}")).status_code == 404


async def test_metrics_are_on_the_ops_port(ingest: Ingest) -> None:
    counted = [("slack", "unauthorized"), ("unknown", "not_found")]
    before = [await requests_counted(ingest, *labels) for labels in counted]
    unsigned = await ingest.client.post(ingest.url(ingest.slack), content=MESSAGE)
    unknown = await ingest.client.post(ingest.url(str(uuid.uuid4())), content=MESSAGE)
    assert (unsigned.status_code, unknown.status_code) == (401, 404)

    after = [await requests_counted(ingest, *labels) for labels in counted]
    assert after == [count + 1 for count in before]
    metrics = (await ingest.client.get(f"{ingest.ops}/metrics")).text
    assert 'triggerline_ingest_requests_total{definition="slack",outcome="unauthorized"}' in metrics
