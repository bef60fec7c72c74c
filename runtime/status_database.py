"""What `triggerline status` reads from PostgreSQL: the relay backlog and the replays in
progress. Read-only, on one short-lived connection."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import AsyncConnection

from runtime.settings import Settings

CONNECT_TIMEOUT_S = 3

# The outbox rows the relay has yet to publish (ingest/registry/relay.py): neither published nor
# set aside as unpublishable. The partial index `trigger_config_outbox_pending` holds exactly
# these, so this stays cheap however long the table's history is.
_RELAY_BACKLOG = """
SELECT count(*), extract(epoch FROM now() - min(created_at))
FROM trigger_config_outbox WHERE published_at IS NULL AND failed_at IS NULL
"""
_SET_ASIDE = "SELECT count(*) FROM trigger_config_outbox WHERE failed_at IS NOT NULL"
_ACTIVE_REPLAYS = """
SELECT id::text, state, scanned, to_scan FROM replays
WHERE state IN ('pending', 'running') ORDER BY created_at
"""


@dataclass(frozen=True, slots=True)
class RelayBacklog:
    # Outbox rows committed but not yet on the trigger-config topic.
    waiting: int
    # Age of the oldest of them, in seconds; None when none waits.
    oldest_s: float | None
    # Rows set aside as unpublishable (kept for TRIGGERLINE_OUTBOX_SET_ASIDE_RETENTION_S).
    set_aside: int


@dataclass(frozen=True, slots=True)
class ActiveReplay:
    replay_id: str
    state: str
    scanned: int
    to_scan: int


@dataclass(frozen=True, slots=True)
class DatabaseFacts:
    address: str
    reachable: bool
    # Why it could not be read, when it could not.
    problem: str | None = None
    relay: RelayBacklog | None = None
    replays: tuple[ActiveReplay, ...] = field(default=())


async def read_database(settings: Settings) -> DatabaseFacts:
    url = settings.database.url.get_secret_value()
    address = database_address(url)
    try:
        conn = await AsyncConnection.connect(
            url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
        )
    except psycopg.Error as exc:
        return DatabaseFacts(address, False, problem=_first_line(exc))
    try:
        async with conn:
            return DatabaseFacts(
                address, True, relay=await relay_backlog(conn), replays=await active_replays(conn)
            )
    except psycopg.Error as exc:
        # Reached, but not readable as Triggerline's database (not migrated, say).
        return DatabaseFacts(address, True, problem=_first_line(exc))


async def relay_backlog(conn: AsyncConnection[Any]) -> RelayBacklog:
    cursor = await conn.execute(_RELAY_BACKLOG)
    waiting, oldest_s = await cursor.fetchone() or (0, None)
    cursor = await conn.execute(_SET_ASIDE)
    (set_aside,) = await cursor.fetchone() or (0,)
    return RelayBacklog(
        waiting=int(waiting),
        oldest_s=None if oldest_s is None else float(oldest_s),
        set_aside=int(set_aside),
    )


async def active_replays(conn: AsyncConnection[Any]) -> tuple[ActiveReplay, ...]:
    cursor = await conn.execute(_ACTIVE_REPLAYS)
    return tuple(
        ActiveReplay(str(replay_id), state, int(scanned), int(to_scan))
        for replay_id, state, scanned, to_scan in await cursor.fetchall()
    )


def database_address(url: str) -> str:
    """Host, port and database of a URL, without its user or password."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    host, port, name = info.get("host", "localhost"), info.get("port", "5432"), info.get("dbname")
    return f"{host}:{port}/{name or ''}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
