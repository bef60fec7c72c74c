"""Environments: named sets of encrypted secrets in a project, shared by the triggers that
refer to them. A change to an environment's secrets republishes each of those triggers, so the
data plane never holds a stale secret."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from psycopg import AsyncConnection, sql
from psycopg.errors import UniqueViolation
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ingest.registry.config_records import DEFAULT_RECORD_BOUND
from ingest.registry.errors import EnvironmentInUse, NameConflict, NotFound
from ingest.registry.store import republish_environment_triggers
from runtime.ids import canonical_id

# Ids as text, so that a selected row converts straight into an EnvironmentRow.
_COLUMNS = sql.SQL(
    "id::text AS id, project_id::text AS project_id, name, secrets, created_at, updated_at"
)


@dataclass(frozen=True, slots=True)
class EnvironmentRow:
    id: str
    project_id: str
    name: str
    # name -> "key_id:fernet_token"
    secrets: dict[str, str]
    created_at: datetime
    updated_at: datetime


async def create_environment(
    conn: AsyncConnection[Any], project_id: str, name: str, encrypted: dict[str, str]
) -> EnvironmentRow:
    cursor = conn.cursor(row_factory=dict_row)
    try:
        async with conn.transaction():
            await cursor.execute(
                sql.SQL(
                    "INSERT INTO environments (id, project_id, name, secrets)"
                    " VALUES (%s, %s, %s, %s) RETURNING {columns}"
                ).format(columns=_COLUMNS),
                (str(uuid.uuid4()), project_id, name, Jsonb(encrypted)),
            )
    except UniqueViolation:
        raise _name_conflict(name) from None
    return _environment_row(await cursor.fetchone())


async def find_environment(
    conn: AsyncConnection[Any], project_id: str, environment_id: str, *, lock: bool = False
) -> EnvironmentRow:
    canonical = canonical_id(environment_id)
    if canonical is None:
        raise NotFound("environment")
    environment_id = canonical
    cursor = conn.cursor(row_factory=dict_row)
    query = sql.SQL(
        "SELECT {columns} FROM environments"
        " WHERE id = %s AND project_id = %s AND deleted_at IS NULL {lock}"
    ).format(columns=_COLUMNS, lock=sql.SQL("FOR UPDATE" if lock else ""))
    await cursor.execute(query, (environment_id, project_id))
    found = await cursor.fetchone()
    if found is None:
        raise NotFound("environment")
    return _environment_row(found)


async def list_environments(conn: AsyncConnection[Any], project_id: str) -> list[EnvironmentRow]:
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        sql.SQL(
            "SELECT {columns} FROM environments"
            " WHERE project_id = %s AND deleted_at IS NULL ORDER BY name"
        ).format(columns=_COLUMNS),
        (project_id,),
    )
    return [_environment_row(found) for found in await cursor.fetchall()]


async def save_environment(
    conn: AsyncConnection[Any], row: EnvironmentRow, *, record_bound: int = DEFAULT_RECORD_BOUND
) -> EnvironmentRow:
    """Write a changed environment (found with `lock=True` in this transaction); republish its
    triggers when its secrets changed. RecordTooLarge, and nothing is saved, if any of their
    records would exceed the bound."""
    cursor = conn.cursor(row_factory=dict_row)
    async with conn.transaction():
        before = await find_environment(conn, row.project_id, row.id, lock=True)
        try:
            async with conn.transaction():
                await cursor.execute(
                    sql.SQL(
                        "UPDATE environments SET name = %s, secrets = %s, updated_at = now()"
                        " WHERE id = %s AND project_id = %s AND deleted_at IS NULL"
                        " RETURNING {columns}"
                    ).format(columns=_COLUMNS),
                    (row.name, Jsonb(row.secrets), row.id, row.project_id),
                )
        except UniqueViolation:
            raise _name_conflict(row.name) from None
        saved = _environment_row(await cursor.fetchone())
        if saved.secrets != before.secrets:
            await republish_environment_triggers(conn, saved.id, record_bound=record_bound)
    return saved


async def delete_environment(
    conn: AsyncConnection[Any], project_id: str, environment_id: str
) -> None:
    async with conn.transaction():
        environment_id = (await find_environment(conn, project_id, environment_id, lock=True)).id
        cursor = await conn.execute(
            "SELECT name FROM triggers WHERE environment_id = %s AND deleted_at IS NULL"
            " ORDER BY name LIMIT 5",
            (environment_id,),
        )
        users = [name for (name,) in await cursor.fetchall()]
        if users:
            raise EnvironmentInUse(
                f"the environment is used by triggers {', '.join(users)}; detach them first"
            )
        await conn.execute(
            "UPDATE environments SET deleted_at = now(), updated_at = now() WHERE id = %s",
            (environment_id,),
        )


def _name_conflict(name: str) -> NameConflict:
    return NameConflict(f"a live environment named {name!r} already exists in this project")


def _environment_row(found: dict[str, Any] | None) -> EnvironmentRow:
    if found is None:
        raise RuntimeError("a RETURNING clause yielded no row")
    return msgspec.convert(found, EnvironmentRow)
