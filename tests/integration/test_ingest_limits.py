"""Rate limits, duplicates, secret rotation and trigger changes, on a real ingest process.

Triggers are published straight to the trigger-config topic (tests/integration/trigger_configs),
so a test can change one and watch ingest pick up the new revision.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest

from runtime.kafka import durable_producer
from runtime.settings import Settings
from schemas.topics import TRIGGER_CONFIG
from tests.integration.support.ingest_process import RunningIngest, running_ingest
from tests.integration.support.polling import eventually
from tests.integration.support.trigger_configs import publish_configs, trigger_config
from tests.support.signing import slack_headers, standard_webhook_headers

pytestmark = pytest.mark.integration

SECRET = "limits-slack-secret"
ROTATED = "limits-slack-secret-rotated"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"limits-standard-webhooks-secret!").decode()


def slack_event(event_id: str | None = None, event_type: str = "message") -> bytes:
    return orjson.dumps(
        {
            "type": "event_callback",
            "team_id": "T1",
            "event_id": event_id or f"Ev{uuid.uuid4().hex[:12]}",
            "event": {"type": event_type, "channel": "C1", "ts": "1.1", "text": "hi"},
        }
    )


@pytest.fixture(scope="module")
async def ingest(base_settings: Settings) -> AsyncIterator[RunningIngest]:
    async with running_ingest(base_settings) as running:
        yield running


async def new_slack_trigger(ingest: RunningIngest, **config: object) -> str:
    trigger = trigger_config(
        ingest.settings, "slack", {"SLACK_SIGNING_SECRET": SECRET}, config=dict(config)
    )
    await publish_configs(ingest.settings, trigger)
    await ingest.wait_until_known(trigger.trigger_id)
    return trigger.trigger_id


async def post_slack(
    ingest: RunningIngest, trigger_id: str, body: bytes, secret: str = SECRET, **extra: str
) -> httpx.Response:
    headers = {**slack_headers(body, secret), **extra}
    return await ingest.client.post(ingest.url(trigger_id), content=body, headers=headers)


async def test_over_the_trigger_rate_is_429_with_retry_after(ingest: RunningIngest) -> None:
    trigger_id = await new_slack_trigger(ingest, rate_limit={"per_second": 0.1, "burst": 3})
    before = await ingest.requests_counted("slack", "rate_limited")

    answers = [await post_slack(ingest, trigger_id, slack_event()) for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    limited = answers[-1]
    # One token every 10 s, nearly all of it still to come: the sender is told to wait about
    # that long rather than to try again at once.
    assert 5 < int(limited.headers["retry-after"]) <= 10
    assert "limit" in limited.json()["error"]
    assert await ingest.requests_counted("slack", "rate_limited") == before + 1
    stored = await ingest.raw_events_of(trigger_id)
    assert sorted(e.id for e in stored) == sorted(a.json()["id"] for a in answers[:3])


async def test_forged_requests_do_not_spend_the_senders_budget(ingest: RunningIngest) -> None:
    trigger_id = await new_slack_trigger(ingest, rate_limit={"per_second": 0.1, "burst": 2})

    forged = [await post_slack(ingest, trigger_id, slack_event(), "guess") for _ in range(5)]
    genuine = [await post_slack(ingest, trigger_id, slack_event()) for _ in range(2)]

    assert {f.status_code for f in forged} == {401}
    assert [g.status_code for g in genuine] == [200, 200]


async def test_a_slack_retry_is_answered_2xx_counted_and_stored_with_its_headers(
    ingest: RunningIngest,
) -> None:
    trigger_id = await new_slack_trigger(ingest)
    body = slack_event("EvRETRY1")
    before = await ingest.requests_counted("slack", "duplicate")

    first = await post_slack(ingest, trigger_id, body)
    retry = await post_slack(
        ingest,
        trigger_id,
        body,
        **{"x-slack-retry-num": "1", "x-slack-retry-reason": "http_timeout"},
    )

    assert (first.status_code, retry.status_code) == (200, 200)
    assert await ingest.requests_counted("slack", "duplicate") == before + 1
    # Both copies are stored: the processors drop the repeat, seeing every ingest process's
    # events, and they need the retry headers to tell why it came.
    stored = {e.id: e for e in await ingest.raw_events_of(trigger_id)}
    assert stored[first.json()["id"]].headers.get("x-slack-retry-num") is None
    assert stored[retry.json()["id"]].headers["x-slack-retry-num"] == "1"
    assert stored[retry.json()["id"]].headers["x-slack-retry-reason"] == "http_timeout"
    assert stored[retry.json()["id"]].body.encode() == body


async def test_a_repeated_webhook_id_is_answered_2xx_and_counted(ingest: RunningIngest) -> None:
    trigger = trigger_config(ingest.settings, "webhook", {"WEBHOOK_SECRET": WEBHOOK_SECRET})
    await publish_configs(ingest.settings, trigger)
    await ingest.wait_until_known(trigger.trigger_id)
    body = orjson.dumps({"invoice": 7})
    headers = standard_webhook_headers(body, WEBHOOK_SECRET)
    before = await ingest.requests_counted("webhook", "duplicate")

    url = ingest.url(trigger.trigger_id)
    answers = [await ingest.client.post(url, content=body, headers=headers) for _ in range(2)]

    assert [a.status_code for a in answers] == [200, 200]
    assert await ingest.requests_counted("webhook", "duplicate") == before + 1
    stored = await ingest.raw_events_of(trigger.trigger_id)
    assert [e.headers["webhook-id"] for e in stored] == [headers["webhook-id"]] * 2


async def test_valid_events_ingest_does_not_route_are_still_2xx(ingest: RunningIngest) -> None:
    # Event types outside the trigger's list, and envelopes other than event_callback: Slack
    # disables apps that fail deliveries, so these are accepted and skipped downstream.
    trigger_id = await new_slack_trigger(ingest, event_types=["app_mention"])
    rate_limited = orjson.dumps({"type": "app_rate_limited", "team_id": "T1", "minute": 1})

    answers = [
        await post_slack(ingest, trigger_id, slack_event(event_type="reaction_added")),
        await post_slack(ingest, trigger_id, rate_limited),
    ]

    assert [a.status_code for a in answers] == [200, 200]


async def test_a_rotated_secret_applies_with_the_new_revision_and_the_previous_one_lingers(
    ingest: RunningIngest,
) -> None:
    original = trigger_config(ingest.settings, "slack", {"SLACK_SIGNING_SECRET": SECRET})
    trigger_id = original.trigger_id
    await publish_configs(ingest.settings, original)
    await ingest.wait_until_known(trigger_id)
    assert (await post_slack(ingest, trigger_id, slack_event(), ROTATED)).status_code == 401

    rotating = trigger_config(
        ingest.settings,
        "slack",
        {"SLACK_SIGNING_SECRET": ROTATED, "SLACK_SIGNING_SECRET_PREVIOUS": SECRET},
        trigger_id=trigger_id,
        revision=2,
    )
    await publish_configs(ingest.settings, rotating)

    async def rotated_secret_accepted() -> bool | None:
        answer = await post_slack(ingest, trigger_id, slack_event(), ROTATED)
        return True if answer.status_code == 200 else None

    await eventually(rotated_secret_accepted, timeout_s=10)
    assert (await post_slack(ingest, trigger_id, slack_event(), SECRET)).status_code == 200

    rotated = trigger_config(
        ingest.settings,
        "slack",
        {"SLACK_SIGNING_SECRET": ROTATED},
        trigger_id=trigger_id,
        revision=3,
    )
    await publish_configs(ingest.settings, rotated)

    async def old_secret_refused() -> bool | None:
        answer = await post_slack(ingest, trigger_id, slack_event(), SECRET)
        return True if answer.status_code == 401 else None

    await eventually(old_secret_refused, timeout_s=10)
    assert (await post_slack(ingest, trigger_id, slack_event(), ROTATED)).status_code == 200


async def test_cron_and_deleted_triggers_have_no_webhook_route(ingest: RunningIngest) -> None:
    cron = trigger_config(ingest.settings, "cron", {}, config={"schedule": "* * * * *"})
    slack = trigger_config(ingest.settings, "slack", {"SLACK_SIGNING_SECRET": SECRET})
    await publish_configs(ingest.settings, cron, slack)
    await ingest.wait_until_known(slack.trigger_id)
    body = slack_event()

    assert (await post_slack(ingest, cron.trigger_id, body)).status_code == 404

    producer = durable_producer(ingest.settings)
    await producer.start()
    try:
        topic = TRIGGER_CONFIG.name(ingest.settings.topics.prefix)
        await producer.send_and_wait(topic, None, key=slack.trigger_id.encode())
    finally:
        await producer.stop()

    async def gone() -> bool | None:
        answer = await post_slack(ingest, slack.trigger_id, slack_event())
        return True if answer.status_code == 404 else None

    await eventually(gone, timeout_s=10)


async def test_readiness_checks_the_producer_connection_and_the_config(
    ingest: RunningIngest,
) -> None:
    ready = await ingest.client.get(f"{ingest.base}/readyz")

    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "checks": {"kafka_producer": True, "trigger_config": True},
    }


async def test_a_body_at_the_limit_is_stored_even_when_escaping_doubles_it(
    ingest: RunningIngest,
) -> None:
    # Every `\"` doubles when the body is JSON-escaped into the raw record; the raw topic and
    # the producer take records well past twice the body limit (schemas.topics.MAX_RECORD_BYTES).
    trigger_id = await new_slack_trigger(ingest)
    padding = ingest.settings.ingest.max_body_bytes // 2 - 64
    body = orjson.dumps({"type": "event_callback", "text": '"' * padding})
    assert len(body) <= ingest.settings.ingest.max_body_bytes

    answer = await post_slack(ingest, trigger_id, body)

    assert answer.status_code == 200, answer.text
    stored = await ingest.raw_events_of(trigger_id)
    assert [event.body.encode() for event in stored] == [body]


async def test_webhooks_are_only_posted(ingest: RunningIngest) -> None:
    trigger_id = await new_slack_trigger(ingest)

    answer = await ingest.client.get(ingest.url(trigger_id))

    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"
