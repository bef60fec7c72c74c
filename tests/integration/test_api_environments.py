"""Environments: write-only secrets, shared by triggers, republished when they change."""

from __future__ import annotations

import pytest
from psycopg import AsyncConnection

from runtime.secrets import Keyring
from runtime.settings import Settings
from schemas.topics import TRIGGER_CONFIG
from tests.integration.support.control_plane import control_plane, project_with_key, webhook_trigger

pytestmark = pytest.mark.integration

OLD = "whsec_b2xkLXNlY3JldC12YWx1ZQ=="
NEW = "whsec_bmV3LXNlY3JldC12YWx1ZQ=="


async def test_environment_secrets_are_write_only_encrypted_and_republished(
    settings: Settings,
) -> None:
    _, auth = await project_with_key(settings, "acme")
    async with control_plane(settings) as client:
        created = await client.post(
            "/environments", json={"name": "prod", "secrets": {"WEBHOOK_SECRET": OLD}}, headers=auth
        )
        assert created.status_code == 201
        environment = created.json()
        assert environment["secret_names"] == ["WEBHOOK_SECRET"]
        assert OLD not in created.text
        env_url = f"/environments/{environment['id']}"

        duplicate = await client.post("/environments", json={"name": "prod"}, headers=auth)
        assert duplicate.status_code == 409
        malformed = await client.post(
            "/environments",
            json={"name": "x", "secrets": {"WEBHOOK_SECRET": "plain"}},
            headers=auth,
        )
        assert malformed.status_code == 422
        assert "plain" not in malformed.text

        trigger = (
            await client.post(
                "/triggers",
                json=webhook_trigger("orders", environment_id=environment["id"]),
                headers=auth,
            )
        ).json()
        assert trigger["secret_names"] == []

        rotated = await client.patch(
            env_url, json={"secrets": {"WEBHOOK_SECRET": NEW, "EXTRA": "x"}}, headers=auth
        )
        assert rotated.json()["secret_names"] == ["EXTRA", "WEBHOOK_SECRET"]
        assert NEW not in rotated.text
        listed = await client.get("/environments", headers=auth)
        assert [e["name"] for e in listed.json()] == ["prod"]
        assert OLD not in listed.text
        assert NEW not in listed.text

        in_use = await client.delete(env_url, headers=auth)
        assert in_use.status_code == 409
        assert "orders" in in_use.json()["error"]

        detached = await client.patch(
            f"/triggers/{trigger['id']}",
            json={"environment_id": None, "secrets": {"WEBHOOK_SECRET": NEW}},
            headers=auth,
        )
        assert detached.status_code == 200, detached.text
        assert (await client.delete(env_url, headers=auth)).status_code == 204
        assert (await client.get(env_url, headers=auth)).status_code == 404
        again = await client.post("/environments", json={"name": "prod"}, headers=auth)
        assert again.status_code == 201

    async with await AsyncConnection.connect(settings.database.url.get_secret_value()) as conn:
        stored = await (await conn.execute("SELECT secrets::text FROM environments")).fetchall()
        cursor = await conn.execute(
            "SELECT payload FROM trigger_config_outbox WHERE trigger_id = %s ORDER BY seq",
            (trigger["id"],),
        )
        payloads = [bytes(p) for (p,) in await cursor.fetchall()]
    assert all(OLD not in text and NEW not in text for (text,) in stored)
    records = [TRIGGER_CONFIG.decode(p) for p in payloads]
    keyring = Keyring.from_setting(settings.secret_keys)
    # created, republished by the rotation, detached.
    assert [r.revision for r in records] == [1, 2, 3]
    assert [keyring.decrypt(r.secrets["WEBHOOK_SECRET"]) for r in records] == [OLD, NEW, NEW]
    assert "EXTRA" in records[1].secrets
    assert "EXTRA" not in records[2].secrets
