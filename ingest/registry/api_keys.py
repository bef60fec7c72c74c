"""Project API keys: created by an admin, shown once, stored only as a digest; listed by their
first characters, and revoked for good (a revoked key is refused from the next request on)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

KEY_PREFIX = "tl_"


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key_id: str
    project_id: str
    # The only time the plaintext exists outside its holder.
    plaintext: str


@dataclass(frozen=True, slots=True)
class ApiKeyRow:
    key_id: str
    project_id: str
    # The key's first characters: enough to tell keys apart, useless to authenticate.
    key_prefix: str
    created_at: datetime
    revoked_at: datetime | None


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def create_api_key(conn: AsyncConnection[Any], project_id: str) -> IssuedKey:
    key_id = str(uuid.uuid4())
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO api_keys (id, project_id, key_hash, key_prefix) VALUES (%s, %s, %s, %s)",
            (key_id, project_id, digest(plaintext), plaintext[:10]),
        )
    return IssuedKey(key_id=key_id, project_id=project_id, plaintext=plaintext)


async def project_for_key(conn: AsyncConnection[Any], key: str) -> str | None:
    """The project a live key belongs to, or None for an unknown or revoked key."""
    if not key.startswith(KEY_PREFIX):
        return None
    cursor = await conn.execute(
        "SELECT project_id FROM api_keys WHERE key_hash = %s AND revoked_at IS NULL",
        (digest(key),),
    )
    row = await cursor.fetchone()
    return None if row is None else str(row[0])


async def list_api_keys(conn: AsyncConnection[Any], project_id: str) -> list[ApiKeyRow]:
    """A project's keys, live and revoked, oldest first."""
    cursor = await conn.execute(
        "SELECT id, project_id, key_prefix, created_at, revoked_at FROM api_keys"
        " WHERE project_id = %s ORDER BY created_at, id",
        (project_id,),
    )
    return [
        ApiKeyRow(str(key_id), str(project), prefix, created_at, revoked_at)
        for key_id, project, prefix, created_at, revoked_at in await cursor.fetchall()
    ]


async def revoke_api_key(conn: AsyncConnection[Any], project_id: str, key_id: str) -> bool:
    """Revoke a live key of this project; False if there is none (unknown, another project's,
    or already revoked)."""
    async with conn.transaction():
        cursor = await conn.execute(
            "UPDATE api_keys SET revoked_at = now()"
            " WHERE id = %s AND project_id = %s AND revoked_at IS NULL",
            (key_id, project_id),
        )
    return cursor.rowcount == 1
