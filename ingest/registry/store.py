"""The trigger registry in PostgreSQL.

Every write that changes what the data plane sees also appends the trigger's new state to the
outbox in the same transaction; the relay carries it to the trigger-config topic. Every query
is scoped to a project and to live rows (`deleted_at IS NULL`): a deleted trigger is gone from
reads, from name uniqueness, and (through a tombstone) from the topic.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import msgspec
from psycopg import AsyncConnection, sql
from psycopg.errors import UniqueViolation
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ingest.registry.config_records import (
    DEFAULT_RECORD_BOUND,
    config_record,
    enqueue_tombstone,
    lock_environment,
    publish,
)
from ingest.registry.errors import NameConflict, NotFound
from runtime.ids import canonical_id
from runtime.secrets import Keyring
from schemas.triggers import DefinitionSlug, Target, TriggerConfig, TriggerStatus

_COLUMNS = sql.SQL(
    "id, project_id, definition, name, status, target, config, secrets, target_secret,"
    " environment_id, revision, created_at, updated_at"
)


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
    environment_id: str | None = None
    target_secret: str | None = None


@dataclass(frozen=True, slots=True)
class TriggerRow:
    """A live trigger as stored; secret values are ciphertexts."""

    id: str
    project_id: str
    definition: DefinitionSlug
    name: str
    status: TriggerStatus
    target: Target
    config: dict[str, Any]
    secrets: dict[str, str]
    target_secret: str | None
    environment_id: str | None
    revision: int
    created_at: datetime
    updated_at: datetime


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
    conn: AsyncConnection[Any],
    keyring: Keyring,
    new: NewTrigger,
    *,
    record_bound: int = DEFAULT_RECORD_BOUND,
) -> TriggerConfig:
    """Store a trigger (encrypting its secrets) and enqueue its first config record."""
    async with conn.transaction():
        row = await insert_trigger(
            conn,
            replace(
                new,
                secrets={name: keyring.encrypt(value) for name, value in new.secrets.items()},
                target_secret=None
                if new.target_secret is None
                else keyring.encrypt(new.target_secret),
            ),
            record_bound=record_bound,
        )
        return await config_record(conn, row)


async def insert_trigger(
    conn: AsyncConnection[Any], new: NewTrigger, *, record_bound: int = DEFAULT_RECORD_BOUND
) -> TriggerRow:
    """Insert a trigger whose secrets are already encrypted, and publish it."""
    async with conn.transaction():
        if new.environment_id is not None:
            await lock_environment(conn, new.project_id, new.environment_id)
        cursor = conn.cursor(row_factory=dict_row)
        try:
            await cursor.execute(
                sql.SQL(
                    """
                INSERT INTO triggers (id, project_id, definition, name, status, target, config,
                                      secrets, target_secret, environment_id)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                RETURNING {columns}
                """
                ).format(columns=_COLUMNS),
                (
                    str(uuid.uuid4()),
                    new.project_id,
                    new.definition,
                    new.name,
                    new.status,
                    Jsonb(_target_json(new.target)),
                    Jsonb(new.config),
                    Jsonb(new.secrets),
                    new.target_secret,
                    new.environment_id,
                ),
            )
        except UniqueViolation:
            raise _name_conflict(new.name) from None
        row = _trigger_row(await cursor.fetchone())
        await publish(conn, row, record_bound)
    return row


async def find_trigger(
    conn: AsyncConnection[Any], project_id: str, trigger_id: str, *, lock: bool = False
) -> TriggerRow:
    """A live trigger of this project; NotFound otherwise (also for another project's)."""
    trigger_id = _canonical(trigger_id)
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        sql.SQL(
            """
        SELECT {columns} FROM triggers
        WHERE id = %s AND project_id = %s AND deleted_at IS NULL
        {lock}
        """
        ).format(columns=_COLUMNS, lock=sql.SQL("FOR UPDATE" if lock else "")),
        (trigger_id, project_id),
    )
    found = await cursor.fetchone()
    if found is None:
        raise NotFound("trigger")
    return _trigger_row(found)


async def list_triggers(
    conn: AsyncConnection[Any],
    project_id: str,
    *,
    definition: DefinitionSlug | None,
    status: TriggerStatus | None,
    limit: int,
    after: tuple[datetime, str] | None,
) -> list[TriggerRow]:
    """One page of live triggers, oldest first, after the (created_at, id) of the last seen."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        sql.SQL(
            """
        SELECT {columns} FROM triggers
        WHERE project_id = %(project)s AND deleted_at IS NULL
          AND (%(definition)s::text IS NULL OR definition = %(definition)s)
          AND (%(status)s::text IS NULL OR status = %(status)s)
          AND (%(after_at)s::timestamptz IS NULL
               OR (created_at, id) > (%(after_at)s, %(after_id)s::uuid))
        ORDER BY created_at, id
        LIMIT %(limit)s
        """
        ).format(columns=_COLUMNS),
        {
            "project": project_id,
            "definition": definition,
            "status": status,
            "after_at": after[0] if after else None,
            "after_id": after[1] if after else None,
            "limit": limit,
        },
    )
    return [_trigger_row(found) for found in await cursor.fetchall()]


async def save_trigger(
    conn: AsyncConnection[Any], row: TriggerRow, *, record_bound: int = DEFAULT_RECORD_BOUND
) -> TriggerRow:
    """Write a changed live trigger (found with `lock=True` in this transaction) and publish it."""
    async with conn.transaction():
        if row.environment_id is not None:
            await lock_environment(conn, row.project_id, row.environment_id)
        cursor = conn.cursor(row_factory=dict_row)
        try:
            await cursor.execute(
                sql.SQL(
                    """
                UPDATE triggers SET name = %s, status = %s, target = %s, config = %s,
                    secrets = %s, target_secret = %s, environment_id = %s,
                    revision = revision + 1, updated_at = now()
                WHERE id = %s AND project_id = %s AND deleted_at IS NULL
                RETURNING {columns}
                """
                ).format(columns=_COLUMNS),
                (
                    row.name,
                    row.status,
                    Jsonb(_target_json(row.target)),
                    Jsonb(row.config),
                    Jsonb(row.secrets),
                    row.target_secret,
                    row.environment_id,
                    row.id,
                    row.project_id,
                ),
            )
        except UniqueViolation:
            raise _name_conflict(row.name) from None
        found = await cursor.fetchone()
        if found is None:
            raise NotFound("trigger")
        saved = _trigger_row(found)
        await publish(conn, saved, record_bound)
    return saved


async def delete_trigger(conn: AsyncConnection[Any], project_id: str, trigger_id: str) -> None:
    """Soft-delete a live trigger and publish its tombstone; NotFound if there is none."""
    trigger_id = _canonical(trigger_id)
    async with conn.transaction():
        cursor = await conn.execute(
            """
            UPDATE triggers SET deleted_at = now(), updated_at = now(), revision = revision + 1
            WHERE id = %s AND project_id = %s AND deleted_at IS NULL
            """,
            (trigger_id, project_id),
        )
        if cursor.rowcount == 0:
            raise NotFound("trigger")
        await enqueue_tombstone(conn, trigger_id)


async def republish_environment_triggers(
    conn: AsyncConnection[Any], environment_id: str, *, record_bound: int = DEFAULT_RECORD_BOUND
) -> int:
    """Bump and publish every live trigger that uses an environment whose secrets changed;
    RecordTooLarge (and the caller's transaction rolls back) if any record would exceed the
    bound."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        sql.SQL(
            """
        UPDATE triggers SET revision = revision + 1, updated_at = now()
        WHERE environment_id = %s AND deleted_at IS NULL
        RETURNING {columns}
        """
        ).format(columns=_COLUMNS),
        (environment_id,),
    )
    rows = [_trigger_row(found) for found in await cursor.fetchall()]
    for row in sorted(rows, key=lambda r: r.id):
        await publish(conn, row, record_bound)
    return len(rows)


def _name_conflict(name: str) -> NameConflict:
    return NameConflict(f"a live trigger named {name!r} already exists in this project")


def _canonical(trigger_id: str) -> str:
    canonical = canonical_id(trigger_id)
    if canonical is None:
        raise NotFound("trigger")
    return canonical


def _target_json(target: Target) -> dict[str, Any]:
    parsed: dict[str, Any] = msgspec.to_builtins(target)
    return parsed


def _trigger_row(found: dict[str, Any] | None) -> TriggerRow:
    if found is None:
        raise RuntimeError("a RETURNING clause yielded no row")
    return TriggerRow(
        id=str(found["id"]),
        project_id=str(found["project_id"]),
        definition=found["definition"],
        name=found["name"],
        status=found["status"],
        target=Target(**found["target"]),
        config=found["config"],
        secrets=found["secrets"],
        target_secret=found["target_secret"],
        environment_id=None if found["environment_id"] is None else str(found["environment_id"]),
        revision=found["revision"],
        created_at=found["created_at"],
        updated_at=found["updated_at"],
    )
