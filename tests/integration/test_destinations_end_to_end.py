"""Destinations end to end, on real Kafka and PostgreSQL: one signed Slack event fans out to two
http destinations (each with its own signing secret, checked by the standardwebhooks library)
and a kafka destination, each with its own filter and transform; a transform that fails at run
time fails only its destination; the event's journey has a step list and an outcome per
destination; and a trigger stored before destinations still delivers once migrated."""

from __future__ import annotations

import base64
import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from aiohttp import web
from aiokafka.admin import NewTopic
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from standardwebhooks import Webhook

from deploy.migrate import MIGRATIONS_DIR, apply_migrations
from ingest.registry.api_keys import create_api_key
from runtime.kafka import admin_client, durable_producer
from runtime.secrets import Keyring
from runtime.settings import Settings
from schemas.topics import ROUTED_EVENTS, TRIGGER_CONFIG
from tests.integration.support.control_plane import WHSEC
from tests.integration.support.isolation import drop_topics, isolated_settings, scratch_database
from tests.integration.support.pipeline import Pipeline, running_pipeline
from tests.integration.support.polling import eventually
from tests.integration.support.slack_events import post_slack, slack_message
from tests.integration.support.stages import free_port
from tests.integration.support.topic_reader import read_all, read_until

pytestmark = pytest.mark.integration

SLACK_SECRET = "destinations-slack-secret"
BOT_SECRET = "whsec_" + base64.b64encode(b"bot-destination-signing-key-0001").decode()
AUDIT_SECRET = "whsec_" + base64.b64encode(b"audit-destination-signing-key-02").decode()


@dataclass
class Receivers:
    """Two http destinations' endpoints, each verifying its own secret."""

    port: int
    secrets: dict[str, str]
    received: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    bad_signatures: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    async def handle(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = await request.read()
        try:
            Webhook(self.secrets[name]).verify(body, dict(request.headers))
        except Exception:
            self.bad_signatures += 1
            return web.Response(status=401)
        self.received.setdefault(name, []).append(orjson.loads(body))
        return web.Response(status=204)


@asynccontextmanager
async def receivers(secrets: dict[str, str]) -> AsyncIterator[Receivers]:
    server = Receivers(free_port(), secrets)
    app = web.Application()
    app.router.add_post("/{name}", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", server.port).start()
    try:
        yield server
    finally:
        await runner.cleanup()


@asynccontextmanager
async def customer_topic(settings: Settings) -> AsyncIterator[str]:
    # Outside the deployment's prefix, which kafka targets may not write; deleted afterwards.
    topic = f"{settings.topics.prefix}-deploys"
    admin = admin_client(settings)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        yield topic
    finally:
        await admin.delete_topics([topic])
        await admin.close()


@pytest.fixture
def private_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dispatchers may deliver to the loopback receivers (inherited by the stages)."""
    monkeypatch.setenv("TRIGGERLINE_DISPATCHER_ALLOW_PRIVATE_TARGETS", "true")


@pytest.mark.usefixtures("private_targets")
async def test_one_slack_event_fans_out_to_three_destinations(settings: Settings) -> None:
    async with (
        receivers({"bot": BOT_SECRET, "audit": AUDIT_SECRET}) as http,
        customer_topic(settings) as topic,
        running_pipeline(settings) as pipeline,
    ):
        destinations = [
            {
                "name": "bot",
                "target": {"kind": "http", "ref": http.url("bot"), "signing_secret": BOT_SECRET},
            },
            {
                "name": "audit",
                "target": {
                    "kind": "http",
                    "ref": http.url("audit"),
                    "signing_secret": AUDIT_SECRET,
                },
                "transform": '{"said": event.text, "in": event.channel_id}',
            },
            {
                "name": "deploys",
                "target": {"kind": "kafka", "ref": topic},
                "filter": 'event.text.startsWith("deploy")',
                "transform": "event.text",
            },
        ]
        trigger_id = await pipeline.create_trigger(
            {
                "definition": "slack",
                "name": "support",
                "destinations": destinations,
                "config": {"event_types": ["message"]},
                "secrets": {"SLACK_SIGNING_SECRET": SLACK_SECRET},
            }
        )
        await post_slack(
            pipeline, trigger_id, slack_message("Ev1", "C1", "deploy the api"), SLACK_SECRET
        )
        await post_slack(
            pipeline, trigger_id, slack_message("Ev2", "C1", "good morning"), SLACK_SECRET
        )

        first = await pipeline.journey("Ev1", trigger_id)
        second = await pipeline.journey("Ev2", trigger_id)
        deployed = await read_until(settings, topic, lambda seen: len(seen) >= 1)

    # Shown with `pytest -s`: what each destination received (the bot gets the whole event).
    for name, events in http.received.items():
        shown = [
            (e["id"], e["data"]["slack"]["text"] if name == "bot" else e["data"]) for e in events
        ]
        print(f"http {name}: {shown}")
    on_topic = [ROUTED_EVENTS.decode(value) for _, value in deployed]
    print(f"kafka deploys: {[(event.id, event.data) for event in on_topic]}")
    assert http.bad_signatures == 0
    assert [e["id"] for e in http.received["bot"]] == ["Ev1", "Ev2"]
    assert [e["data"] for e in http.received["audit"]] == [
        {"said": "deploy the api", "in": "C1"},
        {"said": "good morning", "in": "C1"},
    ]
    assert http.received["bot"][0]["data"]["slack"]["text"] == "deploy the api"
    assert [event.data for event in on_topic] == ["deploy the api"]
    assert first["final_outcome"] == "delivered"
    assert first["destinations"] == [
        {"name": "bot", "final_outcome": "delivered"},
        {"name": "audit", "final_outcome": "delivered"},
        {"name": "deploys", "final_outcome": "delivered"},
    ]
    # The second event was not for "deploys": delivered means every routed destination.
    assert second["final_outcome"] == "delivered"
    assert {d["name"]: d["final_outcome"] for d in second["destinations"]} == {
        "bot": "delivered",
        "audit": "delivered",
        "deploys": "skipped",
    }
    delivered = [s for s in first["steps"] if s["outcome"] == "delivered"]
    assert sorted(s["destination"] for s in delivered) == ["audit", "bot", "deploys"]


@pytest.mark.usefixtures("private_targets")
async def test_a_transform_failing_at_run_time_fails_only_its_destination(
    settings: Settings,
) -> None:
    async with receivers({"bot": BOT_SECRET}) as http, running_pipeline(settings) as pipeline:
        trigger_id = await pipeline.create_trigger(
            {
                "definition": "slack",
                "name": "support",
                "destinations": [
                    {
                        "name": "bot",
                        "target": {
                            "kind": "http",
                            "ref": http.url("bot"),
                            "signing_secret": BOT_SECRET,
                        },
                    },
                    # `thread_id` is null on a message outside a thread: `size` fails on it.
                    {
                        "name": "threads",
                        "target": {"kind": "noop"},
                        "transform": '{"replies": size(event.thread_id)}',
                    },
                ],
                "config": {"event_types": ["message"]},
                "secrets": {"SLACK_SIGNING_SECRET": SLACK_SECRET},
            }
        )
        event_id = f"Ev{uuid.uuid4().hex[:8]}"
        await post_slack(pipeline, trigger_id, slack_message(event_id, "C1", "hello"), SLACK_SECRET)
        journey = await pipeline.journey(event_id, trigger_id)

    assert [e["id"] for e in http.received["bot"]] == [event_id]
    outcomes = {d["name"]: d["final_outcome"] for d in journey["destinations"]}
    assert outcomes == {"bot": "delivered", "threads": "transform_error"}
    failed = next(s for s in journey["steps"] if s["outcome"] == "transform_error")
    assert failed["destination"] == "threads"
    assert failed["reason"].startswith("transform failed:")
    assert journey["final_outcome"] == "delivered"


async def store_a_trigger_as_before_destinations(
    settings: Settings, url: str, target_url: str
) -> tuple[str, str]:
    """A webhook trigger with an http target, stored and published as they were before
    destinations (schema v1): (project id, trigger id)."""
    keyring = Keyring.from_setting(settings.secret_keys)
    project_id, trigger_id = str(uuid.uuid4()), str(uuid.uuid4())
    target = {"kind": "http", "ref": target_url}
    secrets = {"WEBHOOK_SECRET": keyring.encrypt(WHSEC)}
    target_secret = keyring.encrypt(BOT_SECRET)
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO projects (id, name) VALUES (%s, 'legacy')", (project_id,))
        conn.execute(
            "INSERT INTO triggers (id, project_id, definition, name, target, secrets,"
            " target_secret) VALUES (%s, %s, 'webhook', 'legacy', %s, %s, %s)",
            (trigger_id, project_id, Jsonb(target), Jsonb(secrets), target_secret),
        )
    v1 = {
        "trigger_id": trigger_id,
        "project_id": project_id,
        "definition": "webhook",
        "name": "legacy",
        "status": "active",
        "target": target,
        "updated_at": "2026-11-01T00:00:00Z",
        "revision": 1,
        "config": {},
        "secrets": {**secrets, "TARGET_SIGNING_SECRET": target_secret},
        "v": 1,
    }
    producer = durable_producer(settings)
    await producer.start()
    try:
        topic = TRIGGER_CONFIG.name(settings.topics.prefix)
        await producer.send_and_wait(topic, orjson.dumps(v1), key=trigger_id.encode())
    finally:
        await producer.stop()
    return project_id, trigger_id


async def post_webhook(pipeline: Pipeline, trigger_id: str) -> str:
    msg_id = f"msg_{uuid.uuid4().hex}"
    accepted = await pipeline.post_signed(trigger_id, orjson.dumps({"n": 1}), msg_id)
    assert accepted.status_code == 200, accepted.text
    await pipeline.log.outcome(msg_id, "dispatcher", "delivered")
    return msg_id


@pytest.mark.usefixtures("private_targets")
async def test_a_trigger_stored_before_destinations_still_delivers(
    base_settings: Settings, tmp_path: Path
) -> None:
    before = [p for p in MIGRATIONS_DIR.glob("*.sql") if p.stem < "0040"]
    for path in before:
        shutil.copy(path, tmp_path / path.name)
    with scratch_database(base_settings.database.url.get_secret_value()) as url:
        apply_migrations(url, tmp_path)
        settings = await isolated_settings(base_settings, url)
        try:
            async with receivers({"legacy": BOT_SECRET}) as http:
                project_id, trigger_id = await store_a_trigger_as_before_destinations(
                    settings, url, http.url("legacy")
                )
                assert "0040_destinations" in apply_migrations(url)
                async with running_pipeline(settings) as pipeline:
                    # Delivered by the v1 record on the topic, read as the destination "default".
                    first = await post_webhook(pipeline, trigger_id)
                    async with await AsyncConnection.connect(url) as conn:
                        key = await create_api_key(conn, project_id)
                    renamed = await pipeline.client.patch(
                        f"/triggers/{trigger_id}",
                        json={"name": "legacy-renamed"},
                        headers={"Authorization": f"Bearer {key.plaintext}"},
                    )
                    assert renamed.status_code == 200, renamed.text
                    (default,) = renamed.json()["destinations"]
                    assert default["name"] == "default"
                    assert default["target"]["has_signing_secret"] is True

                    async def republished() -> bool | None:
                        topic = TRIGGER_CONFIG.name(settings.topics.prefix)
                        values = [v for _, v in await read_all(settings, topic) if v]
                        return True if orjson.loads(values[-1])["v"] == 2 else None

                    await eventually(republished)
                    # Delivered by the migrated row's record, signed with the migrated secret.
                    second = await post_webhook(pipeline, trigger_id)
        finally:
            await drop_topics(settings)

    assert http.bad_signatures == 0
    assert [event["id"] for event in http.received["legacy"]] == [first, second]
