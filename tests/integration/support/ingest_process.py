"""A real `python -m ingest` for a test module, and reading its counters from its ops port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

from deploy.migrate import apply_migrations
from runtime.settings import Settings
from schemas.records import RawEvent
from schemas.topics import RAW_EVENTS
from tests.integration.support.isolation import isolated_settings, scratch_database
from tests.integration.support.polling import eventually
from tests.integration.support.stages import free_port, running_stages, wait_until_ready
from tests.integration.support.topic_reader import read_all


@dataclass(frozen=True)
class RunningIngest:
    settings: Settings
    # The public port (webhooks, control plane, health) and the ops port (metrics, health).
    base: str
    ops: str
    client: httpx.AsyncClient

    def url(self, trigger_id: str) -> str:
        return f"{self.base}/webhooks/{trigger_id}"

    async def counted(self, name: str, **labels: str) -> float:
        text = (await self.client.get(f"{self.ops}/metrics")).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and sample.labels == labels:
                    return sample.value
        return 0.0

    async def requests_counted(self, definition: str, outcome: str) -> float:
        return await self.counted(
            "triggerline_ingest_requests_total", definition=definition, outcome=outcome
        )

    async def raw_events_of(self, trigger_id: str) -> list[RawEvent]:
        records = await read_all(self.settings, RAW_EVENTS.name(self.settings.topics.prefix))
        return [RAW_EVENTS.decode(value) for key, value in records if key == trigger_id.encode()]

    async def wait_until_known(self, trigger_id: str) -> None:
        """Configs reach ingest through the trigger-config topic; until then the route is 404."""

        async def known() -> bool | None:
            response = await self.client.post(self.url(trigger_id), content=b"{}")
            return None if response.status_code == 404 else True

        await eventually(known)


@asynccontextmanager
async def running_ingest(
    base_settings: Settings, **overrides: object
) -> AsyncIterator[RunningIngest]:
    """Ingest on its own ports, topic prefix and database, started once and ready."""
    with scratch_database(base_settings.database.url.get_secret_value()) as database_url:
        apply_migrations(database_url)
        settings = await isolated_settings(
            base_settings,
            database_url,
            ingest__port=free_port(),
            ingest__metrics_port=free_port(),
            **overrides,
        )
        base = f"http://127.0.0.1:{settings.ingest.port}"
        ops = f"http://127.0.0.1:{settings.ingest.metrics_port}"
        with running_stages(settings, "ingest"):
            await wait_until_ready(f"{base}/readyz")
            async with httpx.AsyncClient(timeout=10.0) as client:
                yield RunningIngest(settings, base, ops, client)
