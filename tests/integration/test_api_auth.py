"""`current_project`: a live bearer API key names a project; anything else is 401."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from psycopg import AsyncConnection

from ingest.api.auth import ProjectId
from ingest.api.database import registry_pool
from ingest.api.errors import install_error_handlers
from ingest.api.gate import ControlPlaneGate
from runtime.settings import Settings
from tests.integration.support.control_plane import project_with_key

pytestmark = pytest.mark.integration


@asynccontextmanager
async def whoami_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An app behind the control plane's gate with one route that answers the caller's project."""
    app = FastAPI()
    app.add_middleware(ControlPlaneGate)
    install_error_handlers(app)

    @app.get("/definitions/whoami")
    async def whoami(project_id: ProjectId) -> dict[str, str]:
        return {"project_id": project_id}

    async with registry_pool(settings) as pool:
        app.state.registry_pool = pool
        app.state.settings = settings
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
            yield client


async def test_keys_name_their_project_and_bad_ones_are_401(settings: Settings) -> None:
    acme_id, acme = await project_with_key(settings, "acme")
    globex_id, globex = await project_with_key(settings, "globex")
    key = acme["authorization"].removeprefix("Bearer ")
    async with whoami_client(settings) as client:
        assert (await client.get("/definitions/whoami", headers=acme)).json() == {
            "project_id": acme_id
        }
        assert (await client.get("/definitions/whoami", headers=globex)).json() == {
            "project_id": globex_id
        }

        missing = await client.get("/definitions/whoami")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        assert "API key" in missing.json()["error"]
        for bad in ("Bearer tl_not-a-key", f"Bearer {key[:-1]}", f"Basic {key}", "Bearer"):
            response = await client.get("/definitions/whoami", headers={"authorization": bad})
            assert response.status_code == 401, bad

    async with await AsyncConnection.connect(settings.database.url.get_secret_value()) as conn:
        cursor = await conn.execute(
            "SELECT key_hash, key_prefix FROM api_keys WHERE project_id = %s", (acme_id,)
        )
        rows = await cursor.fetchall()
    assert len(rows) == 1
    stored_hash, prefix = rows[0]
    assert key not in stored_hash
    assert key.startswith(prefix)
    assert len(prefix) < len(key) // 3
