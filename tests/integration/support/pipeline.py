"""The whole pipeline as real processes, driven over HTTP, with a running view of its journeys.

`Pipeline.ordinary_event_delivered` is the check that follows every hostile input: an ordinary
signed event for an ordinary trigger must still travel ingest -> processors -> dispatchers.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer

from runtime.kafka import whole_topic_consumer
from runtime.settings import Settings
from schemas.records import DeliveryLogRecord
from schemas.topics import DELIVERY_LOG
from tests.integration.support.control_plane import WHSEC, project_with_key, webhook_trigger
from tests.integration.support.polling import eventually
from tests.integration.support.stages import running_stages, wait_until_ready, with_free_ports
from tests.support.signing import standard_webhook_headers

JOURNEY_TIMEOUT_S = 60.0


@dataclass
class DeliveryLogWatch:
    """Every delivery-log record since the watch started, read as they arrive."""

    consumer: AIOKafkaConsumer
    entries: list[DeliveryLogRecord] = field(default_factory=list)

    async def until(
        self, done: Callable[[list[DeliveryLogRecord]], bool], timeout_s: float = JOURNEY_TIMEOUT_S
    ) -> list[DeliveryLogRecord]:
        async with asyncio.timeout(timeout_s):
            while not done(self.entries):
                batch = await self.consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    self.entries.extend(DELIVERY_LOG.decode(m.value) for m in records)
        return self.entries

    async def outcome(self, event_id: str, stage: str, outcome: str) -> DeliveryLogRecord:
        def matching(entries: list[DeliveryLogRecord]) -> list[DeliveryLogRecord]:
            return [
                e for e in entries if (e.event_id, e.stage, e.outcome) == (event_id, stage, outcome)
            ]

        return matching(await self.until(lambda entries: bool(matching(entries))))[0]


@dataclass
class Pipeline:
    settings: Settings
    processes: list[subprocess.Popen[bytes]]
    client: httpx.AsyncClient
    auth: dict[str, str]
    log: DeliveryLogWatch
    ordinary_id: str = ""

    def webhook_url(self, trigger_id: str) -> str:
        return f"/webhooks/{trigger_id}"

    async def create_trigger(self, body: dict[str, object]) -> str:
        created = await self.client.post("/triggers", json=body, headers=self.auth)
        assert created.status_code == 201, created.text
        trigger_id: str = created.json()["id"]
        return trigger_id

    async def post_signed(self, trigger_id: str, body: bytes, msg_id: str) -> httpx.Response:
        """POST once the trigger has reached ingest (until then its route answers 404)."""

        async def post() -> httpx.Response | None:
            response = await self.client.post(
                self.webhook_url(trigger_id),
                content=body,
                headers=standard_webhook_headers(body, WHSEC, msg_id=msg_id),
            )
            return None if response.status_code == 404 else response

        return await eventually(post)

    async def ordinary_event_delivered(self) -> None:
        msg_id = f"msg_{uuid.uuid4().hex}"
        accepted = await self.post_signed(self.ordinary_id, orjson.dumps({"n": 1}), msg_id)
        assert accepted.status_code == 200, accepted.text
        await self.log.outcome(msg_id, "dispatcher", "delivered")
        self.assert_every_stage_runs()

    def assert_every_stage_runs(self) -> None:
        exited = [(p.args, p.returncode) for p in self.processes if p.poll() is not None]
        assert exited == [], f"stages exited: {exited}"

    async def journey(self, event_id: str, trigger_id: str) -> dict[str, Any]:
        """The API's journey of the event, once the sink has written its final outcome."""

        async def written() -> dict[str, Any] | None:
            response = await self.client.get(
                f"/events/{event_id}", params={"trigger_id": trigger_id}, headers=self.auth
            )
            assert response.status_code in (200, 404), response.text
            if response.status_code == 404 or response.json()["final_outcome"] == "in_progress":
                return None
            journey: dict[str, Any] = response.json()
            return journey

        return await eventually(written, JOURNEY_TIMEOUT_S)


@asynccontextmanager
async def running_pipeline(
    settings: Settings, *, extra_stages: tuple[str, ...] = ()
) -> AsyncIterator[Pipeline]:
    """Ingest, processors, dispatchers and the delivery-log sink (and `extra_stages`, such as
    `ingest.cron`), with one ordinary trigger."""
    settings = with_free_ports(settings)
    _, auth = await project_with_key(settings, "tenant")
    base = f"http://127.0.0.1:{settings.ingest.port}"
    stages = ("ingest", "processors", "dispatchers", "dispatchers.sink", *extra_stages)
    consumer = await whole_topic_consumer(settings, DELIVERY_LOG.name(settings.topics.prefix))
    try:
        with running_stages(settings, *stages) as processes:
            await wait_until_ready(f"{base}/readyz")
            async with httpx.AsyncClient(base_url=base, timeout=30.0) as client:
                pipeline = Pipeline(settings, processes, client, auth, DeliveryLogWatch(consumer))
                pipeline.ordinary_id = await pipeline.create_trigger(webhook_trigger("ordinary"))
                yield pipeline
    finally:
        await consumer.stop()
