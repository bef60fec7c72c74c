"""The trigger registry in PostgreSQL.

Every write that changes what the data plane sees also appends the trigger's new state to the
outbox in the same transaction; the relay carries it to the trigger-config topic. Every query
is scoped to a project and to live rows (`deleted_at IS NULL`): a deleted trigger is gone from
reads, from name uniqueness, and (through a tombstone) from the topic. Secret values arrive
here already encrypted (`ingest.registry.service` encrypts them).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

import msgspec
from psycopg import AsyncConnection, sql
from psycopg.errors import UniqueViolation
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ingest.registry.config_records import (
    DEFAULT_RECORD_BOUND,
    enqueue_tombstone,
    lock_environment,
    publish,
)
from ingest.registry.errors import NameConflict, NotFound
from runtime.ids import canonical_id
from schemas.triggers import DefinitionSlug, Destination, TriggerStatus

# Ids as text, so that a selected row converts straight into a TriggerRow.
_COLUMNS = sql.SQL(
    "id::text AS id, project_id::text AS project_id, definition, name, status, destinations,"
    " config, secrets, environment_id::text AS environment_id, revision, created_at, updated_at"
)


@dataclass(frozen=True, slots=True)
class NewTrigger:
    """What a trigger holds, as written; secret values (its own and its destinations' signing
    secrets) are ciphertexts."""

    project_id: str
    definition: DefinitionSlug
    name: str
    # In order, names unique, at least one (the service checks; a CHECK constraint holds the
    # last). Stored as msgspec encodes them, so a row converts straight back.
    destinations: tuple[Destination, ...]
    config: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    status: TriggerStatus = "active"
    environment_id: str | None = None

    def destination(self, name: str) -> Destination | None:
        return next((d for d in self.destinations if d.name == name), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class TriggerRow(NewTrigger):
    """A live trigger as stored."""

    id: str
    revision: int
    created_at: datetime
    updated_at: datetime


# A trigger's columns that a write sets; a trigger's project and definition never change.
_WRITTEN = tuple(f.name for f in fields(NewTrigger))
_CHANGEABLE = tuple(name for name in _WRITTEN if name not in ("project_id", "definition"))


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


async def insert_trigger(
    conn: AsyncConnection[Any], new: NewTrigger, *, record_bound: int = DEFAULT_RECORD_BOUND
) -> TriggerRow:
    """Insert a trigger and publish it."""
    query = sql.SQL("INSERT INTO triggers (id, {columns}) VALUES (%(id)s, {values})").format(
        columns=sql.SQL(", ").join(map(sql.Identifier, _WRITTEN)),
        values=sql.SQL(", ").join(map(sql.Placeholder, _WRITTEN)),
    )
    return await _write(conn, query, new, str(uuid.uuid4()), record_bound)


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
    query = sql.SQL(
        "UPDATE triggers SET {changes}, revision = revision + 1, updated_at = now()"
        " WHERE id = %(id)s AND project_id = %(project_id)s AND deleted_at IS NULL"
    ).format(
        changes=sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(name), sql.Placeholder(name))
            for name in _CHANGEABLE
        )
    )
    return await _write(conn, query, row, row.id, record_bound)


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


async def _write(
    conn: AsyncConnection[Any],
    query: sql.Composed,
    trigger: NewTrigger,
    trigger_id: str,
    record_bound: int,
) -> TriggerRow:
    """Run an INSERT or UPDATE of one trigger, by `id` and the written columns, and publish the
    row it leaves."""
    values = {name: getattr(trigger, name) for name in _WRITTEN}
    for name in ("destinations", "config", "secrets"):
        values[name] = Jsonb(msgspec.to_builtins(values[name]))
    async with conn.transaction():
        if trigger.environment_id is not None:
            await lock_environment(conn, trigger.project_id, trigger.environment_id)
        cursor = conn.cursor(row_factory=dict_row)
        try:
            await cursor.execute(
                sql.SQL("{query} RETURNING {columns}").format(query=query, columns=_COLUMNS),
                {**values, "id": trigger_id},
            )
        except UniqueViolation:
            raise _name_conflict(trigger.name) from None
        found = await cursor.fetchone()
        if found is None:
            raise NotFound("trigger")
        saved = _trigger_row(found)
        await publish(conn, saved, record_bound)
    return saved


def _name_conflict(name: str) -> NameConflict:
    return NameConflict(f"a live trigger named {name!r} already exists in this project")


def _canonical(trigger_id: str) -> str:
    canonical = canonical_id(trigger_id)
    if canonical is None:
        raise NotFound("trigger")
    return canonical


def _trigger_row(found: dict[str, Any]) -> TriggerRow:
    return msgspec.convert(found, TriggerRow)
