"""The ingest app in-process, driven over ASGI, with projects and API keys made directly, and
the request bodies tests send it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from psycopg import AsyncConnection

from ingest.app import create_app
from ingest.registry.api_keys import create_api_key
from ingest.registry.store import create_project
from runtime.settings import Settings

# A Standard Webhooks signing secret the API accepts.
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def webhook_trigger(name: str, **fields: object) -> dict[str, object]:
    """The API body creating a webhook trigger with a noop target; `fields` replace or add
    top-level fields. Unless it names an environment, it carries its own signing secret."""
    body: dict[str, object] = {"definition": "webhook", "name": name, "target": {"kind": "noop"}}
    if "environment_id" not in fields:
        body["secrets"] = {"WEBHOOK_SECRET": WHSEC}
    return {**body, **fields}


@asynccontextmanager
async def control_plane(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the whole ingest app, started with its lifespan (Kafka, relay, pool)."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
            yield client


async def project_with_key(settings: Settings, name: str) -> tuple[str, dict[str, str]]:
    """A new project and the bearer header of a fresh API key for it."""
    async with await AsyncConnection.connect(settings.database.url.get_secret_value()) as conn:
        project_id = await create_project(conn, name)
        key = await create_api_key(conn, project_id)
    return project_id, {"authorization": f"Bearer {key.plaintext}"}
