"""Kafka goes away mid-stream: ingest answers 503, never a 2xx for an event it did not store.

Runs its own broker (tests/integration/support/throwaway_kafka.py), stops it while senders keep
posting, restarts it, and checks every acknowledged event on the raw topic.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from deploy.migrate import apply_migrations
from runtime.settings import Settings
from schemas.topics import RAW_EVENTS
from tests.integration.support.isolation import isolated_settings, scratch_database
from tests.integration.support.polling import eventually
from tests.integration.support.stages import free_port, running_stages, wait_until_ready
from tests.integration.support.throwaway_kafka import ThrowawayBroker
from tests.integration.support.topic_reader import read_all
from tests.integration.support.trigger_configs import publish_configs, trigger_config
from tests.support.signing import slack_headers

pytestmark = pytest.mark.integration

SECRET = "outage-slack-secret"
SENDERS = 4


@dataclass(frozen=True)
class Answer:
    sent_at: float
    answered_at: float
    status: int
    raw_id: str | None
    body: bytes


class Senders:
    """Concurrent senders posting unique signed events until told to stop."""

    def __init__(self, client: httpx.AsyncClient, url: str) -> None:
        self._client = client
        self._url = url
        self.answers: list[Answer] = []
        self._stopping = asyncio.Event()

    async def _send_until_stopped(self) -> None:
        while not self._stopping.is_set():
            body = orjson.dumps(
                {
                    "type": "event_callback",
                    "event_id": f"Ev{uuid.uuid4().hex}",
                    "event": {"type": "message", "channel": "C1", "ts": "1.1", "text": "hi"},
                }
            )
            sent_at = time.monotonic()
            response = await self._client.post(
                self._url, content=body, headers=slack_headers(body, SECRET)
            )
            raw_id = response.json().get("id") if response.status_code == 200 else None
            self.answers.append(
                Answer(sent_at, time.monotonic(), response.status_code, raw_id, body)
            )

    @property
    def accepted(self) -> list[Answer]:
        return [a for a in self.answers if a.status == 200]

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(self._send_until_stopped()) for _ in range(SENDERS)]
        try:
            yield
        finally:
            self._stopping.set()
            await asyncio.gather(*tasks)

    async def until(self, count: int, status: int, after: float = 0.0) -> None:
        async def reached() -> bool | None:
            seen = [a for a in self.answers if a.status == status and a.sent_at > after]
            return True if len(seen) >= count else None

        await eventually(reached, timeout_s=60)


async def ready_status(client: httpx.AsyncClient, base: str) -> int:
    return (await client.get(f"{base}/readyz")).status_code


async def test_broker_outage_yields_503s_and_loses_no_acknowledged_event(
    base_settings: Settings, tmp_path: Path
) -> None:
    broker = ThrowawayBroker.under(tmp_path / "outage", base_settings)
    await broker.start()
    try:
        with scratch_database(base_settings.database.url.get_secret_value()) as database_url:
            apply_migrations(database_url)
            settings = base_settings.override(kafka__bootstrap_servers=broker.bootstrap_servers)
            # Topics are created from the catalogue on the throwaway broker.
            settings = await isolated_settings(settings, database_url, ingest__port=free_port())
            trigger = trigger_config(
                settings,
                "slack",
                {"SLACK_SIGNING_SECRET": SECRET},
                config={"rate_limit": {"per_second": 10_000}},
            )
            await publish_configs(settings, trigger)
            base = f"http://127.0.0.1:{settings.ingest.port}"
            url = f"{base}/webhooks/{trigger.trigger_id}"
            with running_stages(settings, "ingest"):
                await wait_until_ready(f"{base}/readyz")
                async with httpx.AsyncClient(timeout=15.0) as client:
                    senders = Senders(client, url)
                    async with senders.running():
                        await senders.until(20, 200)

                        await broker.stop()
                        stopped_at = time.monotonic()
                        await senders.until(2 * SENDERS, 503, after=stopped_at)
                        assert await ready_status(client, base) == 503

                        # The broker may answer before start() returns, so the outage ends when
                        # the restart begins, not when it is confirmed.
                        restart_began = time.monotonic()
                        await broker.start()
                        await senders.until(20, 200, after=time.monotonic())
                    assert await ready_status(client, base) == 200

            answers = senders.answers
            while_down = [
                a for a in answers if a.sent_at > stopped_at and a.answered_at < restart_began
            ]
            # Nothing could store an event while the broker was gone, so nothing was accepted.
            assert while_down
            assert {a.status for a in while_down} == {503}
            assert {a.status for a in answers} <= {200, 503}

            records = await read_all(settings, RAW_EVENTS.name(settings.topics.prefix))
            stored = {event.id: event for event in (RAW_EVENTS.decode(v) for _, v in records)}
            accepted = senders.accepted
            assert len(accepted) >= 40
            missing = [a.raw_id for a in accepted if a.raw_id not in stored]
            assert missing == []
            assert all(stored[str(a.raw_id)].body.encode() == a.body for a in accepted)
    finally:
        await broker.stop()
