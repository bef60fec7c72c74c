"""The trigger-config record a registry row publishes, and the outbox rows that carry it.

A record is checked against the bound before anything is saved, so every row in the outbox is
one the relay can publish. The record holds the trigger's environment secrets under its own,
still encrypted; the environment is share-locked while the record is built, so it cannot be
deleted under a trigger that refers to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from psycopg import AsyncConnection

from ingest.registry.errors import RecordTooLarge, UnknownEnvironment
from runtime.ids import canonical_id
from runtime.settings import RegistrySettings
from schemas.topics import TRIGGER_CONFIG
from schemas.triggers import TriggerConfig

if TYPE_CHECKING:
    from ingest.registry.store import TriggerRow


# The settings' bound, for callers that do not pass their own.
DEFAULT_RECORD_BOUND: int = RegistrySettings.model_fields["config_record_max_bytes"].default


async def lock_environment(
    conn: AsyncConnection[Any], project_id: str, environment_id: str
) -> dict[str, str]:
    """A live environment's secrets, share-locked so it cannot be deleted under a referrer."""
    if canonical_id(environment_id) is None:
        raise UnknownEnvironment()
    environment_id = environment_id.lower()
    cursor = await conn.execute(
        """
        SELECT secrets FROM environments
        WHERE id = %s AND project_id = %s AND deleted_at IS NULL FOR SHARE
        """,
        (environment_id, project_id),
    )
    found = await cursor.fetchone()
    if found is None:
        raise UnknownEnvironment()
    secrets: dict[str, str] = found[0]
    return secrets


async def config_record(conn: AsyncConnection[Any], row: TriggerRow) -> TriggerConfig:
    """What the data plane sees: the trigger, its environment's secrets under its own, and its
    destinations, each with its signing secret; values stay encrypted."""
    secrets: dict[str, str] = {}
    if row.environment_id is not None:
        secrets.update(await lock_environment(conn, row.project_id, row.environment_id))
    secrets.update(row.secrets)
    # The record's fields are the row's of the same name, but for its id, its secrets, its
    # schema version (`v`) and the v1 `target`, which belong to the record.
    shared = {
        name: getattr(row, name)
        for name in TriggerConfig.__struct_fields__
        if name not in ("trigger_id", "secrets", "v", "target")
    }
    return TriggerConfig(trigger_id=row.id, secrets=secrets, **shared)


async def publish(conn: AsyncConnection[Any], row: TriggerRow, record_bound: int) -> None:
    """Enqueue a trigger's new config record; RecordTooLarge if it would exceed the bound, so a
    record that the relay could never publish is refused before it is saved."""
    payload = TRIGGER_CONFIG.encode(await config_record(conn, row))
    if len(payload) > record_bound:
        raise RecordTooLarge(row.name, len(payload), record_bound)
    await _enqueue(conn, row.id, payload)


async def enqueue_tombstone(conn: AsyncConnection[Any], trigger_id: str) -> None:
    await _enqueue(conn, trigger_id, None)


async def _enqueue(conn: AsyncConnection[Any], trigger_id: str, payload: bytes | None) -> None:
    """Append a trigger's new state (or a tombstone) to the outbox; call inside the change's tx."""
    await conn.execute(
        "INSERT INTO trigger_config_outbox (trigger_id, payload) VALUES (%s, %s)",
        (trigger_id, payload),
    )
