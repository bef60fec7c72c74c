"""The stages' logs, from real processes handling real webhooks: one line per event outcome
with the event, trigger and correlation ids, and never a secret, an API key or a body.

The stages log at DEBUG here, so that every line any of them can write about these events is
scanned."""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from runtime.kafka import whole_topic_consumer
from runtime.settings import Settings
from schemas.topics import DELIVERY_LOG
from tests.integration.support.control_plane import WHSEC, project_with_key
from tests.integration.support.dispatch_harness import SIGNING_SECRET, target_server
from tests.integration.support.pipeline import DeliveryLogWatch
from tests.integration.support.polling import eventually
from tests.integration.support.stages import stage_env, wait_until_ready, with_free_ports
from tests.support.signing import standard_webhook_headers

pytestmark = pytest.mark.integration

STAGES = ("ingest", "processors", "dispatchers")


@contextmanager
def logging_stages(settings: Settings, logs: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """The stages at DEBUG, each writing its log to `logs/<stage>.log`."""
    env = {
        **stage_env(settings),
        "TRIGGERLINE_LOG_LEVEL": "DEBUG",
        "TRIGGERLINE_LOG_FORMAT": "json",
        "TRIGGERLINE_DISPATCHER_ALLOW_PRIVATE_TARGETS": "true",
        "TRIGGERLINE_DISPATCHER_BACKOFF_BASE_S": "0.1",
    }
    processes = []
    for stage in STAGES:
        with (logs / f"{stage}.log").open("wb") as log:
            processes.append(subprocess.Popen([sys.executable, "-m", stage], env=env, stderr=log))
    try:
        yield processes
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def lines_of(logs: Path) -> dict[str, list[str]]:
    return {stage: (logs / f"{stage}.log").read_text().splitlines() for stage in STAGES}


def outcome_lines(lines: list[str], outcome: str, event_id: str) -> list[dict[str, Any]]:
    entries = [orjson.loads(line) for line in lines]
    return [e for e in entries if e["msg"] == outcome and e.get("event_id") == event_id]


async def test_stages_log_each_outcome_with_its_ids_and_no_secret_or_body(
    settings: Settings, tmp_path: Path
) -> None:
    settings = with_free_ports(settings)
    _, auth = await project_with_key(settings, "acme")
    api_key = auth["authorization"].removeprefix("Bearer ")
    marker = f"private-body-text-{uuid.uuid4().hex}"
    consumer = await whole_topic_consumer(settings, DELIVERY_LOG.name(settings.topics.prefix))
    base = f"http://127.0.0.1:{settings.ingest.port}"
    try:
        async with target_server() as target:
            with logging_stages(settings, tmp_path):
                await wait_until_ready(f"{base}/readyz")
                async with httpx.AsyncClient(base_url=base, timeout=30.0) as client:
                    created = await client.post(
                        "/triggers",
                        headers=auth,
                        json={
                            "definition": "webhook",
                            "name": "orders",
                            "secrets": {"WEBHOOK_SECRET": WHSEC},
                            "destinations": [
                                {
                                    "name": "flaky",
                                    "target": {
                                        "kind": "http",
                                        "ref": target.url("/fail-twice"),
                                        "signing_secret": SIGNING_SECRET,
                                    },
                                },
                                {
                                    "name": "gone",
                                    "target": {
                                        "kind": "http",
                                        "ref": target.url("/gone"),
                                        "signing_secret": SIGNING_SECRET,
                                        "max_attempts": 1,
                                    },
                                },
                            ],
                        },
                    )
                    assert created.status_code == 201, created.text
                    trigger_id = created.json()["id"]
                    body = orjson.dumps({"seq": 1, "note": marker})
                    msg_id = f"msg_{uuid.uuid4().hex}"
                    url = f"/webhooks/{trigger_id}"

                    async def accepted() -> httpx.Response | None:
                        answer = await client.post(
                            url,
                            content=body,
                            headers=standard_webhook_headers(body, WHSEC, msg_id=msg_id),
                        )
                        return None if answer.status_code == 404 else answer

                    assert (await eventually(accepted)).status_code == 200
                    forged = await client.post(
                        url,
                        content=body,
                        headers=standard_webhook_headers(body, "whsec_" + "A" * 32, msg_id=msg_id),
                    )
                    assert forged.status_code == 401
                    watch = DeliveryLogWatch(consumer)
                    await watch.outcome(msg_id, "dispatcher", "delivered")
                    await watch.outcome(msg_id, "dispatcher", "dead_lettered")
    finally:
        await consumer.stop()

    logs = lines_of(tmp_path)
    everything = [line for stage in STAGES for line in logs[stage]]
    secrets = {
        "signing secret": WHSEC,
        "its key": WHSEC.removeprefix("whsec_"),
        "target signing secret": SIGNING_SECRET,
        "its key too": SIGNING_SECRET.removeprefix("whsec_"),
        "API key": api_key,
        "body": marker,
    }
    for what, secret in secrets.items():
        assert [line for line in everything if secret in line] == [], what
    # One line per outcome, with the ids that follow the event through the stages.
    [ingested] = outcome_lines(logs["ingest"], "accepted", msg_id)
    assert ingested["trigger_id"] == trigger_id
    [refused] = [orjson.loads(line) for line in logs["ingest"] if '"msg":"unauthorized"' in line]
    assert (refused["trigger_id"], refused["status"]) == (trigger_id, 401)
    routed = outcome_lines(logs["processors"], "routed", msg_id)
    assert sorted(r["destination"] for r in routed) == ["flaky", "gone"]
    assert {(r["trigger_id"], r["correlation_id"]) for r in routed} == {(trigger_id, msg_id)}
    dispatched = [
        (entry["destination"], entry["msg"])
        for outcome in ("retrying", "delivered", "failed", "dead_lettered")
        for entry in outcome_lines(logs["dispatchers"], outcome, msg_id)
    ]
    assert sorted(dispatched) == sorted(
        [
            ("flaky", "retrying"),
            ("flaky", "retrying"),
            ("flaky", "delivered"),
            ("gone", "failed"),
            ("gone", "dead_lettered"),
        ]
    )
    assert all(
        entry["trigger_id"] == trigger_id and entry["correlation_id"] == msg_id
        for entry in (orjson.loads(line) for line in logs["dispatchers"])
        if entry.get("event_id") == msg_id
    )
