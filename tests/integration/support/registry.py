"""Registry changes made straight through the store, and the check that the compacted
trigger-config topic ended up equal to the triggers table."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import msgspec
from psycopg import AsyncConnection

from ingest.registry.config_records import config_record
from ingest.registry.errors import NotFound
from ingest.registry.store import (
    NewTrigger,
    delete_trigger,
    find_trigger,
    insert_trigger,
    save_trigger,
)
from runtime.secrets import Keyring
from runtime.settings import Settings
from schemas.topics import TRIGGER_CONFIG
from schemas.triggers import (
    DEFAULT_DESTINATION,
    Destination,
    Target,
    TriggerConfig,
    TriggerStatus,
)
from tests.integration.support.topic_reader import read_all


def only(target: Target, signing_secret: str | None = None) -> tuple[Destination, ...]:
    """A trigger's destinations when it has just one, "default" (as the API's `target`)."""
    return (Destination(DEFAULT_DESTINATION, target, signing_secret=signing_secret),)


async def create_trigger(
    conn: AsyncConnection[Any], keyring: Keyring, new: NewTrigger
) -> TriggerConfig:
    """Store a trigger given with plaintext secrets, unchecked, and return its first config
    record: fixtures that the control-plane service would refuse (a slack trigger without its
    signing secret) still exercise the store, the outbox and the relay. Destinations' signing
    secrets are plaintext too."""
    encrypted = replace(
        new,
        secrets={name: keyring.encrypt(value) for name, value in new.secrets.items()},
        destinations=tuple(
            d
            if d.signing_secret is None
            else msgspec.structs.replace(d, signing_secret=keyring.encrypt(d.signing_secret))
            for d in new.destinations
        ),
    )
    async with conn.transaction():
        return await config_record(conn, await insert_trigger(conn, encrypted))


async def outbox_counts(conn: AsyncConnection[Any]) -> tuple[int, int]:
    """(published, pending) outbox rows."""
    cursor = await conn.execute(
        "SELECT count(published_at), count(*) - count(published_at) FROM trigger_config_outbox"
    )
    row = await cursor.fetchone()
    assert row is not None
    return row[0], row[1]


async def change_many(url: str, project_id: str, ids: list[str], changes: int) -> None:
    """Pause/resume/reconfigure and now and then delete triggers, in a scattered order."""
    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        for step in range(changes):
            await change_one(conn, project_id, ids[(step * 7919) % len(ids)], step)
            await asyncio.sleep(0.005)


async def change_one(
    conn: AsyncConnection[Any], project_id: str, trigger_id: str, step: int
) -> None:
    try:
        if step % 37 == 36:
            await delete_trigger(conn, project_id, trigger_id)
            return
        async with conn.transaction():
            row = await find_trigger(conn, project_id, trigger_id, lock=True)
            status: TriggerStatus = "paused" if row.status == "active" else "active"
            config = {"event_types": ["message"], "step": step}
            await save_trigger(conn, replace(row, status=status, config=config))
    except NotFound:
        return


async def assert_topic_equals_table(settings: Settings, conn: AsyncConnection[Any]) -> int:
    """The topic's last value per trigger is the table's revision (None once deleted), and each
    trigger's revisions on the topic never go down. Returns how many records the topic holds."""
    cursor = await conn.execute("SELECT id, deleted_at IS NOT NULL, revision FROM triggers")
    expected = {
        str(trigger_id): None if deleted else revision
        for trigger_id, deleted, revision in await cursor.fetchall()
    }
    records = await read_all(settings, TRIGGER_CONFIG.name(settings.topics.prefix))
    last: dict[str, int | None] = {}
    for key, value in records:
        assert key is not None
        trigger_id = key.decode()
        revision = None if value is None else TRIGGER_CONFIG.decode(value).revision
        if trigger_id in last:
            previous = last[trigger_id]
            assert previous is not None, f"{trigger_id}: a record after its tombstone"
            assert revision is None or revision >= previous, (
                f"{trigger_id}: revision {revision} after {previous}"
            )
        last[trigger_id] = revision
    assert last == expected
    return len(records)
