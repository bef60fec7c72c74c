"""Hostile inputs from one tenant, sent to a running pipeline: each gets its answer where it
enters, and after each an ordinary event of another trigger is still delivered.

One pipeline serves every input in turn, as it would in production: a poison that stopped a
stage, or left a row or record blocking the others, fails the ordinary event that follows it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from runtime.kafka import durable_producer
from runtime.settings import Settings
from schemas.records import RawEvent
from schemas.topics import RAW_EVENTS
from tests.integration.support.control_plane import WHSEC, webhook_trigger
from tests.integration.support.pipeline import (
    Pipeline,
    running_pipeline,
)
from tests.integration.support.polling import eventually
from tests.support.signing import slack_headers, standard_webhook_headers

pytestmark = pytest.mark.integration

SLACK_SECRET = "poison-slack-secret"
UNKNOWN_TRIGGER_BACKLOG = 500


async def refuse_hostile_control_plane_requests(pipeline: Pipeline) -> None:
    client, auth, prefix = pipeline.client, pipeline.auth, pipeline.settings.topics.prefix
    secrets = {f"S{index}": "s" * 4096 for index in range(800)}
    huge = await client.post(
        "/triggers", json=webhook_trigger("huge", secrets=secrets), headers=auth
    )
    assert huge.status_code in (413, 422), huge.text
    await pipeline.ordinary_event_delivered()

    for internal in ("trigger-config", "routed-events", "raw-events"):
        target = {"kind": "kafka", "ref": f"{prefix}.{internal}"}
        looped = await client.post(
            "/triggers", json=webhook_trigger("loop", target=target), headers=auth
        )
        assert looped.status_code == 422, looped.text
    await pipeline.ordinary_event_delivered()

    ordinary = pipeline.ordinary_id
    urn = await client.get(f"/triggers/urn:uuid:{ordinary}", headers=auth)
    assert urn.status_code == 404, urn.text
    upper = await client.get(f"/triggers/{ordinary.upper()}", headers=auth)
    assert (upper.status_code, upper.json()["id"]) == (200, ordinary)
    nul = await client.post(
        "/triggers",
        json=webhook_trigger("nul", target={"kind": "noop", "display_name": "a\x00b"}),
        headers=auth,
    )
    assert nul.status_code == 422, nul.text
    unauthenticated = await client.post("/triggers", content=b"{" + b" " * (8 * 1024 * 1024) + b"}")
    assert unauthenticated.status_code == 401, unauthenticated.text
    await pipeline.ordinary_event_delivered()


async def refuse_hostile_webhooks(pipeline: Pipeline) -> None:
    client = pipeline.client
    slack_id = await pipeline.create_trigger(
        {
            "definition": "slack",
            "name": "slack",
            "target": {"kind": "noop"},
            "config": {"event_types": ["message"]},
            "secrets": {"SLACK_SIGNING_SECRET": SLACK_SECRET},
        }
    )
    challenge = orjson.dumps({"type": "url_verification", "challenge": "c-1"})

    async def slack_trigger_known() -> bool | None:
        headers = slack_headers(challenge, SLACK_SECRET)
        answer = await client.post(
            pipeline.webhook_url(slack_id), content=challenge, headers=headers
        )
        return None if answer.status_code == 404 else answer.text == "c-1"

    assert await eventually(slack_trigger_known)
    body = orjson.dumps({"n": 2})
    # The ordinary trigger is known to ingest: it was delivered to above.
    for digits in (400, 5000):
        stamp = "9" * digits
        headers = {**standard_webhook_headers(body, WHSEC), "webhook-timestamp": stamp}
        answer = await client.post(
            pipeline.webhook_url(pipeline.ordinary_id), content=body, headers=headers
        )
        assert answer.status_code == 401, answer.text
        slack = await client.post(
            pipeline.webhook_url(slack_id),
            content=body,
            headers=slack_headers(body, SLACK_SECRET, timestamp=stamp),
        )
        assert slack.status_code == 401, slack.text
    long_id = "m" * 1000
    too_long = await client.post(
        pipeline.webhook_url(pipeline.ordinary_id),
        content=body,
        headers=standard_webhook_headers(body, WHSEC, msg_id=long_id),
    )
    assert too_long.status_code == 400, too_long.text
    assert "event id" in too_long.text
    await pipeline.ordinary_event_delivered()


async def survive_costly_and_oversized_expressions(pipeline: Pipeline) -> None:
    costly = await pipeline.create_trigger(
        webhook_trigger("costly", config={"filter": "size(event.items.map(x, x)) > 0"})
    )
    msg_id = f"msg_{uuid.uuid4().hex}"
    items = orjson.dumps({"items": list(range(8000))})
    assert (await pipeline.post_signed(costly, items, msg_id)).status_code == 200
    failed = await pipeline.log.outcome(msg_id, "processor", "filter_error")
    assert failed.reason is not None
    assert "TRIGGERLINE_CEL_MAX_COLLECTION_ITEMS" in failed.reason
    await pipeline.ordinary_event_delivered()

    correlated = await pipeline.create_trigger(
        webhook_trigger(
            "correlated", config={"correlation": "event.a + event.a + event.a + event.a"}
        )
    )
    msg_id = f"msg_{uuid.uuid4().hex}"
    large = orjson.dumps({"a": "x" * 300_000})
    assert (await pipeline.post_signed(correlated, large, msg_id)).status_code == 200
    refused = await pipeline.log.outcome(msg_id, "processor", "filter_error")
    assert refused.reason is not None
    assert "TRIGGERLINE_PROCESSOR_MAX_CORRELATION_ID_BYTES" in refused.reason
    await pipeline.ordinary_event_delivered()

    # A NUL reaches PostgreSQL through the correlation id: the sink must still write it.
    msg_id = f"msg_{uuid.uuid4().hex}"
    assert (
        await pipeline.post_signed(correlated, orjson.dumps({"a": "a\x00b"}), msg_id)
    ).status_code == 200
    journey = await pipeline.journey(msg_id, correlated)
    assert journey["final_outcome"] == "delivered"
    assert "\x00" not in (journey["correlation_id"] or "")
    await pipeline.ordinary_event_delivered()


async def survive_a_backlog_for_unknown_triggers(pipeline: Pipeline) -> None:
    settings = pipeline.settings
    producer = durable_producer(settings)
    await producer.start()
    try:
        for _ in range(UNKNOWN_TRIGGER_BACKLOG):
            trigger_id = str(uuid.uuid4())
            raw = RawEvent(
                id=uuid.uuid4().hex,
                trigger_id=trigger_id,
                project_id=str(uuid.uuid4()),
                definition="webhook",
                received_at=datetime.now(UTC),
                content_type="application/json",
                body="{}",
            )
            await producer.send(
                RAW_EVENTS.name(settings.topics.prefix),
                RAW_EVENTS.encode(raw),
                key=trigger_id.encode(),
            )
        await producer.flush()
    finally:
        await producer.stop()
    # Each unknown id costs the processors one catch-up with the config topic (about a
    # millisecond); were it a poll interval, the backlog would hold the ordinary event for
    # minutes, well past the journey's timeout.
    await pipeline.ordinary_event_delivered()


async def a_retry_of_a_delivered_event_ends_delivered(pipeline: Pipeline) -> None:
    msg_id = f"msg_{uuid.uuid4().hex}"
    body = orjson.dumps({"n": 3})
    trigger = pipeline.ordinary_id
    assert (await pipeline.post_signed(trigger, body, msg_id)).status_code == 200
    await pipeline.log.outcome(msg_id, "dispatcher", "delivered")
    retried = await pipeline.post_signed(trigger, body, msg_id)
    assert retried.status_code == 200, retried.text
    await pipeline.log.outcome(msg_id, "processor", "duplicate")

    async def with_the_retry() -> dict[str, Any] | None:
        journey = await pipeline.journey(msg_id, trigger)
        steps = [step["outcome"] for step in journey["steps"]]
        return journey if "duplicate" in steps else None

    journey = await eventually(with_the_retry, 60)
    assert journey["final_outcome"] == "delivered"


async def test_no_hostile_input_stops_the_pipeline_for_anyone_else(settings: Settings) -> None:
    async with running_pipeline(settings) as pipeline:
        await pipeline.ordinary_event_delivered()
        await refuse_hostile_control_plane_requests(pipeline)
        await refuse_hostile_webhooks(pipeline)
        await survive_costly_and_oversized_expressions(pipeline)
        await survive_a_backlog_for_unknown_triggers(pipeline)
        await a_retry_of_a_delivered_event_ends_delivered(pipeline)
        pipeline.assert_every_stage_runs()
