"""`triggerline keys rotate` leaves nothing encrypted under an old key: afterwards the new key
alone decrypts every stored secret and every trigger's newest config record."""

from __future__ import annotations

from typing import Any

import pytest
from psycopg import AsyncConnection
from pydantic import SecretStr

from ingest.registry.environments import create_environment
from ingest.registry.rotation import Rotation, rotate_secrets
from ingest.registry.store import (
    NewTrigger,
    create_project,
    delete_trigger,
)
from runtime.secrets import Keyring, new_key_setting
from runtime.settings import Settings
from schemas.topics import TRIGGER_CONFIG
from schemas.triggers import Target
from tests.integration.support.cli import triggerline
from tests.integration.support.control_plane import WHSEC
from tests.integration.support.registry import create_trigger, only

pytestmark = pytest.mark.integration


async def registry_under(conn: AsyncConnection[Any], keyring: Keyring) -> None:
    """Triggers with every kind of secret, two environments (one unused), a deleted trigger."""
    project_id = await create_project(conn, "acme")
    environment = await create_environment(
        conn, project_id, "prod", {"SLACK_SIGNING_SECRET": keyring.encrypt("env-signing")}
    )
    await create_environment(conn, project_id, "idle", {"UNUSED": keyring.encrypt("idle")})
    for index in range(5):
        await create_trigger(
            conn,
            keyring,
            NewTrigger(
                project_id,
                "slack",
                f"env-{index}",
                only(Target("noop")),
                environment_id=environment.id,
                secrets={"EXTRA": f"extra-{index}"},
            ),
        )
    await create_trigger(
        conn,
        keyring,
        NewTrigger(
            project_id,
            "webhook",
            "signed",
            only(Target("http", "https://example.com/hook"), signing_secret=WHSEC),
            secrets={"WEBHOOK_SECRET": WHSEC},
        ),
    )
    gone = await create_trigger(
        conn,
        keyring,
        NewTrigger(project_id, "slack", "gone", only(Target("noop")), secrets={"S": "deleted"}),
    )
    await delete_trigger(conn, project_id, gone.trigger_id)


async def stored_ciphertexts(conn: AsyncConnection[Any]) -> list[str]:
    cursor = await conn.execute("SELECT secrets, destinations FROM triggers")
    stored = [
        value
        for secrets, destinations in await cursor.fetchall()
        for value in [*secrets.values(), *(d["signing_secret"] for d in destinations)]
        if value is not None
    ]
    cursor = await conn.execute("SELECT secrets FROM environments")
    stored += [value for (secrets,) in await cursor.fetchall() for value in secrets.values()]
    return stored


async def newest_records(conn: AsyncConnection[Any]) -> list[bytes]:
    cursor = await conn.execute(
        "SELECT DISTINCT ON (trigger_id) payload FROM trigger_config_outbox"
        " ORDER BY trigger_id, seq DESC"
    )
    return [bytes(payload) for (payload,) in await cursor.fetchall() if payload is not None]


def assert_only(keyring: Keyring, ciphertexts: list[str]) -> None:
    for stored in ciphertexts:
        assert stored.startswith(f"{keyring.active_key_id}:")
        keyring.decrypt(stored)


async def test_rotation_re_encrypts_every_secret_under_the_first_key(settings: Settings) -> None:
    k1, k2 = new_key_setting("k1"), new_key_setting("k2")
    old = Keyring.from_setting(SecretStr(k1))
    url = settings.database.url.get_secret_value()
    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        await registry_under(conn, old)
        before = await stored_ciphertexts(conn)
        assert len(before) == 10

        both = Keyring.from_setting(SecretStr(f"{k2},{k1}"))
        done = await rotate_secrets(conn, both, record_bound=256 * 1024, batch_size=2)
        assert (done.environments, done.triggers) == (2, 7)

        only_new = Keyring.from_setting(SecretStr(k2))
        after = await stored_ciphertexts(conn)
        assert len(after) == len(before)
        assert_only(only_new, after)
        records = [TRIGGER_CONFIG.decode(payload) for payload in await newest_records(conn)]
        assert len(records) == 6
        for record in records:
            assert_only(only_new, list(record.secrets.values()))
        signed = next(r for r in records if r.name == "signed")
        assert {only_new.decrypt(v) for v in signed.secrets.values()} == {WHSEC}
        shared = next(r for r in records if r.name == "env-0")
        assert only_new.decrypt(shared.secrets["SLACK_SIGNING_SECRET"]) == "env-signing"

        assert await rotate_secrets(conn, both, record_bound=256 * 1024) == Rotation(0, 0)


async def test_the_cli_rotates_under_the_configured_keys(settings: Settings) -> None:
    k1, k2 = new_key_setting("k1"), new_key_setting("k2")
    url = settings.database.url.get_secret_value()
    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        await registry_under(conn, Keyring.from_setting(SecretStr(k1)))
    rotated = settings.override(secret_keys=SecretStr(f"{k2},{k1}"))
    result = await triggerline(rotated, "keys", "rotate")
    assert result.code == 0, result.stderr
    assert "'k2'" in result.stdout
    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        assert_only(Keyring.from_setting(SecretStr(k2)), await stored_ciphertexts(conn))
