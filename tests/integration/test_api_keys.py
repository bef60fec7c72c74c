"""API keys are listed by their first characters only, and a revoked key is refused at once,
through the API and through `triggerline api-keys`."""

from __future__ import annotations

import pytest
from psycopg import AsyncConnection

from ingest.registry.api_keys import create_api_key
from runtime.settings import Settings
from tests.integration.support.cli import triggerline
from tests.integration.support.control_plane import control_plane, project_with_key

pytestmark = pytest.mark.integration


async def test_keys_are_listed_without_their_material_and_revoked_at_once(
    settings: Settings,
) -> None:
    acme_id, acme = await project_with_key(settings, "acme")
    _, globex = await project_with_key(settings, "globex")
    async with await AsyncConnection.connect(settings.database.url.get_secret_value()) as conn:
        second = await create_api_key(conn, acme_id)
    second_auth = {"authorization": f"Bearer {second.plaintext}"}
    async with control_plane(settings) as client:
        listed = await client.get("/api-keys", headers=acme)
        assert listed.status_code == 200, listed.text
        keys = listed.json()
        assert len(keys) == 2
        assert second.plaintext not in listed.text
        assert acme["authorization"].removeprefix("Bearer ") not in listed.text
        assert set(keys[0]) == {"id", "key_prefix", "created_at", "revoked_at"}
        assert keys[1]["id"] == second.key_id
        assert second.plaintext.startswith(keys[1]["key_prefix"])

        # Another project's key is as unknown as a missing one.
        assert (
            await client.delete(f"/api-keys/{second.key_id}", headers=globex)
        ).status_code == 404
        assert (await client.get("/definitions", headers=second_auth)).status_code == 200

        revoked = await client.delete(f"/api-keys/{second.key_id.upper()}", headers=acme)
        assert revoked.status_code == 204, revoked.text
        refused = await client.get("/definitions", headers=second_auth)
        assert refused.status_code == 401
        again = await client.delete(f"/api-keys/{second.key_id}", headers=acme)
        assert again.status_code == 404
        after = (await client.get("/api-keys", headers=acme)).json()
        assert [key["revoked_at"] is not None for key in after] == [False, True]


async def test_the_cli_lists_and_revokes_keys(settings: Settings) -> None:
    acme_id, acme = await project_with_key(settings, "acme")
    key_id = await _only_key_id(settings, acme_id)

    listed = await triggerline(settings, "api-keys", "list", "acme")
    assert listed.code == 0, listed.stderr
    assert key_id in listed.stdout
    assert "live" in listed.stdout
    assert acme["authorization"].removeprefix("Bearer ") not in listed.stdout

    revoked = await triggerline(settings, "api-keys", "revoke", "acme", key_id)
    assert revoked.code == 0, revoked.stderr
    async with control_plane(settings) as client:
        assert (await client.get("/definitions", headers=acme)).status_code == 401
    again = await triggerline(settings, "api-keys", "revoke", "acme", key_id)
    assert again.code != 0
    assert "no live key" in again.stderr


async def _only_key_id(settings: Settings, project_id: str) -> str:
    async with await AsyncConnection.connect(settings.database.url.get_secret_value()) as conn:
        cursor = await conn.execute("SELECT id FROM api_keys WHERE project_id = %s", (project_id,))
        [(key_id,)] = await cursor.fetchall()
    return str(key_id)
