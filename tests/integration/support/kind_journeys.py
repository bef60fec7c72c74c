"""A trigger kind's requests through a real ingest and real processors, and what they decided.

Each kind's end-to-end test creates one trigger, posts signed requests to `python -m ingest`,
and reads the processors' journey records and routed events from the real topics.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from psycopg import AsyncConnection

from ingest.registry.inputs import TargetIn, TriggerCreate
from ingest.registry.service import ControlPlane
from ingest.registry.store import create_project
from runtime.secrets import Keyring
from runtime.settings import Settings
from schemas.records import DeliveryLogRecord, RoutedEvent
from schemas.topics import DELIVERY_LOG, ROUTED_EVENTS
from schemas.triggers import DefinitionSlug
from tests.integration.support.polling import eventually
from tests.integration.support.stages import free_port, running_stages, wait_until_ready
from tests.integration.support.topic_reader import Record, read_all, read_until


@dataclass(frozen=True)
class KindPipeline:
    settings: Settings
    client: httpx.AsyncClient
    url: str
    trigger_id: str

    async def post(self, body: bytes, headers: Mapping[str, str]) -> httpx.Response:
        return await self.client.post(self.url, content=body, headers=dict(headers))

    async def decisions(self, event_ids: set[str]) -> dict[str, DeliveryLogRecord]:
        """The processors' journey record of each event, waiting until all are there."""

        def of(records: list[Record]) -> dict[str, DeliveryLogRecord]:
            entries = (DELIVERY_LOG.decode(value) for _, value in records if value)
            return {
                entry.event_id: entry
                for entry in entries
                if entry.stage == "processor" and entry.event_id in event_ids
            }

        topic = DELIVERY_LOG.name(self.settings.topics.prefix)
        return of(await read_until(self.settings, topic, lambda seen: set(of(seen)) == event_ids))

    async def routed(self) -> list[RoutedEvent]:
        records = await read_all(self.settings, ROUTED_EVENTS.name(self.settings.topics.prefix))
        return [ROUTED_EVENTS.decode(value) for _, value in records if value]


@asynccontextmanager
async def kind_pipeline(
    settings: Settings,
    definition: DefinitionSlug,
    secrets: dict[str, str],
    config: dict[str, Any],
    known: Callable[[KindPipeline], Any],
) -> AsyncIterator[KindPipeline]:
    """Ingest and processors running with one trigger of `definition`, once ingest knows it.

    `known(pipeline)` sends a request the trigger answers with something other than 404."""
    settings = settings.override(ingest__port=free_port(), processor__metrics_port=free_port())
    # Through the control-plane service, so the kind's config and secrets are checked as the
    # API checks them.
    service = ControlPlane.from_settings(settings, Keyring.from_setting(settings.secret_keys))
    async with await AsyncConnection.connect(settings.database.url.get_secret_value()) as conn:
        project_id = await create_project(conn, f"{definition}-kind")
        given = TriggerCreate(
            definition=definition,
            name=definition,
            target=TargetIn(kind="noop"),
            config=config,
            secrets=secrets,
        )
        trigger = await service.create_trigger(conn, project_id, given)
    base = f"http://127.0.0.1:{settings.ingest.port}"
    with running_stages(settings, "ingest", "processors"):
        await wait_until_ready(f"{base}/readyz")
        async with httpx.AsyncClient() as client:
            pipeline = KindPipeline(settings, client, f"{base}/webhooks/{trigger.id}", trigger.id)

            async def reachable() -> bool | None:
                # Triggers reach ingest through the outbox relay; until then it answers 404.
                response: httpx.Response = await known(pipeline)
                return None if response.status_code == 404 else True

            await eventually(reachable)
            yield pipeline
