"""Signed-out console sessions, remembered until they would have expired.

A session is identified by the digest of its CSRF token: random, secret, and never stored in
clear. The table holds at most the sessions signed out within one TTL
(TRIGGERLINE_CONSOLE_SESSION_TTL_S); every sign-out deletes the rows past their expiry.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import AsyncConnection


def session_digest(csrf: str) -> bytes:
    return hashlib.sha256(csrf.encode()).digest()


async def record_sign_out(conn: AsyncConnection[Any], csrf: str, ttl_s: float) -> None:
    """Ends the session for every copy of its cookie: no token issued before now outlives
    now + TTL, so neither need its row."""
    now = datetime.now(UTC)
    async with conn.transaction():
        await conn.execute("DELETE FROM console_sign_outs WHERE expires_at < %s", (now,))
        await conn.execute(
            "INSERT INTO console_sign_outs (session_digest, expires_at) VALUES (%s, %s)"
            " ON CONFLICT (session_digest) DO NOTHING",
            (session_digest(csrf), now + timedelta(seconds=ttl_s)),
        )


async def signed_out(conn: AsyncConnection[Any], csrf: str) -> bool:
    cursor = await conn.execute(
        "SELECT 1 FROM console_sign_outs WHERE session_digest = %s", (session_digest(csrf),)
    )
    return await cursor.fetchone() is not None
