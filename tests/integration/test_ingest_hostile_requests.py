"""Requests built to break ingest, on a real process: answered with a 4xx and counted.

Huge timestamps must not overflow anything before authentication, event ids have a bound, and
forged requests are counted by reason on the ops port (their log lines are rate-limited, which
tests/unit/test_webhook_ingress.py checks on a fake clock).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import orjson
import pytest
from slack_sdk.signature import SignatureVerifier

from runtime.settings import Settings
from tests.integration.support.ingest_process import RunningIngest, running_ingest
from tests.integration.support.trigger_configs import publish_configs, trigger_config
from tests.support.signing import slack_headers, standard_webhook_headers

pytestmark = pytest.mark.integration

SLACK_SECRET = "hostile-slack-secret"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"hostile-standard-webhooks-secret").decode()
MAX_EVENT_ID = 64
REFUSED = "triggerline_ingest_rejected_requests_total"


@dataclass(frozen=True)
class Triggers:
    ingest: RunningIngest
    slack: str
    webhook: str


@pytest.fixture(scope="module")
async def triggers(base_settings: Settings) -> AsyncIterator[Triggers]:
    async with running_ingest(base_settings, ingest__max_event_id_length=MAX_EVENT_ID) as ingest:
        unlimited = {"rate_limit": {"per_second": 100_000}}
        slack = trigger_config(
            ingest.settings, "slack", {"SLACK_SIGNING_SECRET": SLACK_SECRET}, config=unlimited
        )
        webhook = trigger_config(
            ingest.settings, "webhook", {"WEBHOOK_SECRET": WEBHOOK_SECRET}, config=unlimited
        )
        await publish_configs(ingest.settings, slack, webhook)
        for trigger in (slack, webhook):
            await ingest.wait_until_known(trigger.trigger_id)
        yield Triggers(ingest, slack.trigger_id, webhook.trigger_id)


def slack_event(event_id: str) -> bytes:
    return orjson.dumps(
        {
            "type": "event_callback",
            "event_id": event_id,
            "event": {"type": "message", "channel": "C1", "ts": "1.1", "text": "hi"},
        }
    )


async def post(
    triggers: Triggers, trigger_id: str, body: bytes, headers: dict[str, str]
) -> httpx.Response:
    ingest = triggers.ingest
    return await ingest.client.post(ingest.url(trigger_id), content=body, headers=headers)


@pytest.mark.parametrize("digits", [400, 5000])
async def test_a_huge_slack_timestamp_is_401(triggers: Triggers, digits: int) -> None:
    body = slack_event("EvHUGE")
    timestamp = "1" * digits
    # Signed by slack_sdk over the huge timestamp, so only the timestamp check can refuse it.
    signature = SignatureVerifier(SLACK_SECRET).generate_signature(timestamp=timestamp, body=body)
    headers = {
        "content-type": "application/json",
        "x-slack-request-timestamp": timestamp,
        "x-slack-signature": str(signature),
    }
    before = await triggers.ingest.counted(REFUSED, reason="malformed_timestamp")

    answer = await post(triggers, triggers.slack, body, headers)

    assert (answer.status_code, answer.json()) == (401, {"error": "invalid request signature"})
    assert await triggers.ingest.counted(REFUSED, reason="malformed_timestamp") == before + 1


@pytest.mark.parametrize("digits", [400, 5000])
async def test_a_huge_webhook_timestamp_is_401(triggers: Triggers, digits: int) -> None:
    body = b'{"order": 1}'
    headers = {**standard_webhook_headers(body, WEBHOOK_SECRET), "webhook-timestamp": "7" * digits}
    before = await triggers.ingest.counted(REFUSED, reason="malformed_timestamp")

    answer = await post(triggers, triggers.webhook, body, headers)

    assert (answer.status_code, answer.json()) == (401, {"error": "invalid request signature"})
    assert await triggers.ingest.counted(REFUSED, reason="malformed_timestamp") == before + 1


async def test_a_webhook_id_over_the_bound_is_400_and_one_at_it_is_stored(
    triggers: Triggers,
) -> None:
    body = b'{"order": 2}'
    longest = "m" * MAX_EVENT_ID

    too_long = await post(
        triggers,
        triggers.webhook,
        body,
        standard_webhook_headers(body, WEBHOOK_SECRET, msg_id=longest + "m"),
    )
    at_the_bound = await post(
        triggers,
        triggers.webhook,
        body,
        standard_webhook_headers(body, WEBHOOK_SECRET, msg_id=longest),
    )

    assert too_long.status_code == 400
    assert too_long.json() == {
        "error": f"event id (webhook-id) of {MAX_EVENT_ID + 1} characters is over the limit of "
        f"{MAX_EVENT_ID} (TRIGGERLINE_INGEST_MAX_EVENT_ID_LENGTH)"
    }
    assert at_the_bound.status_code == 200
    stored = await triggers.ingest.raw_events_of(triggers.webhook)
    assert [e.headers["webhook-id"] for e in stored if e.body.encode() == body] == [longest]


async def test_a_slack_event_id_over_the_bound_is_400(triggers: Triggers) -> None:
    body = slack_event("E" * 5000)

    answer = await post(triggers, triggers.slack, body, slack_headers(body, SLACK_SECRET))

    assert answer.status_code == 400
    assert answer.json()["error"].startswith(
        "event id (event_id) of 5000 characters is over the limit"
    )


async def test_every_forged_request_is_counted_by_reason(triggers: Triggers) -> None:
    ingest = triggers.ingest
    before = await ingest.counted(REFUSED, reason="mismatch")
    unauthorized = await ingest.requests_counted("slack", "unauthorized")

    for _ in range(40):
        body = slack_event(f"Ev{uuid.uuid4().hex[:10]}")
        answer = await post(triggers, triggers.slack, body, slack_headers(body, "a-guess"))
        assert answer.status_code == 401

    assert await ingest.counted(REFUSED, reason="mismatch") == before + 40
    assert await ingest.requests_counted("slack", "unauthorized") == unauthorized + 40
