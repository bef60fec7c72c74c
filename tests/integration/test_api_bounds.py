"""Bounds checked where a change enters the control plane: the number of secrets, the size of
the trigger-config record a save would publish, and the size of the request body, which is read
only after the caller is authenticated."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from psycopg import AsyncConnection

from runtime.settings import Settings
from tests.integration.support.control_plane import control_plane, project_with_key, webhook_trigger

pytestmark = pytest.mark.integration

# The largest secret value the API takes; 4 KiB encrypts to about 5.5 KiB of ciphertext.
BIG = "s" * 4096


def secrets(count: int, prefix: str = "S") -> dict[str, str]:
    return {f"{prefix}{index}": BIG for index in range(count)}


async def outbox_rows(settings: Settings) -> int:
    async with await AsyncConnection.connect(settings.database.url.get_secret_value()) as conn:
        cursor = await conn.execute("SELECT count(*) FROM trigger_config_outbox")
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def test_more_secrets_than_the_bound_are_422(settings: Settings) -> None:
    _, auth = await project_with_key(settings, "acme")
    many = {f"S{index}": "v" for index in range(settings.registry.max_secrets + 1)}
    async with control_plane(settings) as client:
        trigger = await client.post(
            "/triggers", json=webhook_trigger("t", secrets=many), headers=auth
        )
        assert trigger.status_code == 422, trigger.text
        errors = {error["path"]: error["message"] for error in trigger.json()["errors"]}
        assert "TRIGGERLINE_MAX_SECRETS" in errors["secrets"]

        environment = await client.post(
            "/environments", json={"name": "prod", "secrets": many}, headers=auth
        )
        assert environment.status_code == 422, environment.text
        assert environment.json()["errors"][0]["path"] == "secrets"
    assert await outbox_rows(settings) == 0


async def test_a_save_whose_config_record_would_exceed_the_bound_is_413(
    settings: Settings,
) -> None:
    _, auth = await project_with_key(settings, "acme")
    async with control_plane(settings) as client:
        # 50 secrets is within the count, but their ciphertexts are about 275 KiB.
        huge = webhook_trigger("huge", secrets={**secrets(49), "WEBHOOK_SECRET": "whsec_AAAA"})
        refused = await client.post("/triggers", json=huge, headers=auth)
        assert refused.status_code == 413, refused.text
        assert "TRIGGERLINE_CONFIG_RECORD_MAX_BYTES" in refused.json()["error"]
        assert (await client.get("/triggers", headers=auth)).json()["items"] == []

        environment = await client.post(
            "/environments", json={"name": "shared", "secrets": secrets(10, "E")}, headers=auth
        )
        assert environment.status_code == 201, environment.text
        env_id = environment.json()["id"]
        created = await client.post(
            "/triggers",
            json=webhook_trigger(
                "fits",
                environment_id=env_id,
                secrets={**secrets(25), "WEBHOOK_SECRET": "whsec_AAAA"},
            ),
            headers=auth,
        )
        assert created.status_code == 201, created.text
        rows_before = await outbox_rows(settings)

        # Each environment stays under its own count, but the trigger using it would not fit.
        grown = await client.patch(
            f"/environments/{env_id}", json={"secrets": secrets(20, "F")}, headers=auth
        )
        assert grown.status_code == 413, grown.text
        assert "'fits'" in grown.json()["error"]
        unchanged = await client.get(f"/environments/{env_id}", headers=auth)
        assert len(unchanged.json()["secret_names"]) == 10
        assert await outbox_rows(settings) == rows_before


async def test_request_bodies_are_bounded_while_they_stream(settings: Settings) -> None:
    settings = settings.override(registry__api_max_body_bytes=64 * 1024)
    _, auth = await project_with_key(settings, "acme")
    oversized = webhook_trigger("big", config={"note": "x" * (70 * 1024)})
    async with control_plane(settings) as client:
        declared = await client.post("/triggers", json=oversized, headers=auth)
        assert declared.status_code == 413, declared.text
        assert "TRIGGERLINE_API_MAX_BODY_BYTES" in declared.json()["error"]

        async def chunks() -> AsyncIterator[bytes]:
            # No Content-Length: the bound is counted over the bytes as they arrive.
            for _ in range(20):
                yield b" " * 4096
            yield b"{}"

        streamed = await client.post(
            "/triggers",
            content=chunks(),
            headers={**auth, "content-type": "application/json"},
        )
        assert streamed.status_code == 413, streamed.text

        within = await client.post("/triggers", json=webhook_trigger("small"), headers=auth)
        assert within.status_code == 201, within.text


async def test_an_unauthenticated_body_is_answered_401_without_being_parsed(
    settings: Settings,
) -> None:
    async with control_plane(settings) as client:
        # Not JSON at all: had the body been parsed first, this would be a 400.
        garbage = await client.post(
            "/triggers", content=b"{" * 1000, headers={"content-type": "application/json"}
        )
        assert garbage.status_code == 401, garbage.text
        assert garbage.headers["www-authenticate"] == "Bearer"
        huge = await client.post(
            "/environments",
            content=b"x" * (2 * settings.registry.api_max_body_bytes),
            headers={"authorization": "Bearer tl_not-a-key"},
        )
        assert huge.status_code == 401, huge.text
