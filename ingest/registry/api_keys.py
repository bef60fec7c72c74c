"""Project API keys: created by an admin, shown once, stored only as a digest."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

KEY_PREFIX = "tl_"


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key_id: str
    project_id: str
    # The only time the plaintext exists outside its holder.
    plaintext: str


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
