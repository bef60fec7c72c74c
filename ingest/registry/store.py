"""The trigger registry in PostgreSQL.

Every write that changes what the data plane sees also appends the trigger's new state to the
outbox in the same transaction; the relay carries it to the trigger-config topic.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from runtime.secrets import Keyring
from schemas.records import TRIGGER_CONFIG
from schemas.triggers import DefinitionSlug, Target, TriggerConfig, TriggerStatus


class NameConflict(Exception):
    pass


class NotFound(Exception):
    pass


@dataclass(frozen=True, slots=True)
class NewTrigger:
    project_id: str
    definition: DefinitionSlug
    name: str
    target: Target
    config: dict[str, Any] = field(default_factory=dict)
    # Plaintext secret values; encrypted before they reach the database.
    secrets: dict[str, str] = field(default_factory=dict)
    status: TriggerStatus = "active"


async def create_project(conn: AsyncConnection[Any], name: str) -> str:
    project_id = str(uuid.uuid4())
    async with conn.transaction():
        cursor = await conn.execute(
            "INSERT INTO projects (id, name) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
            (project_id, name),
        )
        if cursor.rowcount == 0:
            raise NameConflict(f"a project named {name!r} already exists")
    return project_id


async def create_trigger(
    conn: AsyncConnection[Any], keyring: Keyring, new: NewTrigger
) -> TriggerConfig:
    trigger_id = str(uuid.uuid4())
    encrypted = {name: keyring.encrypt(value) for name, value in new.secrets.items()}
    async with conn.transaction():
        exists = await conn.execute(
            "SELECT 1 FROM triggers WHERE project_id = %s AND name = %s AND deleted_at IS NULL",
            (new.project_id, new.name),
        )
        if await exists.fetchone():
            raise NameConflict(f"a live trigger named {new.name!r} already exists in this project")
        cursor = conn.cursor(row_factory=dict_row)
        await cursor.execute(
            """
            INSERT INTO triggers (id, project_id, definition, name, status, target, config, secrets)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
            RETURNING id, project_id, definition, name, status, target, config, secrets,
                      revision, updated_at
            """,
            (
                trigger_id,
                new.project_id,
                new.definition,
                new.name,
                new.status,
                Jsonb(_target_json(new.target)),
                Jsonb(new.config),
                Jsonb(encrypted),
            ),
        )
        row = await cursor.fetchone()
        if row is None:
            raise RuntimeError("INSERT ... RETURNING yielded no row")
        record = _record_from_row(row)
        await enqueue_change(conn, trigger_id, record)
    return record


async def enqueue_change(
    conn: AsyncConnection[Any], trigger_id: str, record: TriggerConfig | None
) -> None:
    """Append a trigger's new state (or a tombstone) to the outbox; call inside the change's tx."""
    payload = None if record is None else TRIGGER_CONFIG.encode(record)
    await conn.execute(
        "INSERT INTO trigger_config_outbox (trigger_id, payload) VALUES (%s, %s)",
        (trigger_id, payload),
    )


def _target_json(target: Target) -> dict[str, Any]:
    parsed: dict[str, Any] = orjson.loads(orjson.dumps(target))
    return parsed


def _record_from_row(row: dict[str, Any]) -> TriggerConfig:
    updated_at: datetime = row["updated_at"]
    return TriggerConfig(
        trigger_id=str(row["id"]),
        project_id=str(row["project_id"]),
        definition=row["definition"],
        name=row["name"],
        status=row["status"],
        target=Target(**row["target"]),
        updated_at=updated_at,
        revision=row["revision"],
        config=row["config"],
        secrets=row["secrets"],
    )
