"""Replays in PostgreSQL: what was asked, by whom, its state and counts, and who runs it.

A runner holds a lease on the replay it runs and renews it with every progress update; the
update also tells it whether a cancel was asked for. An unfinished replay whose lease expired
is claimable again, and its new runner resumes from the offsets recorded in Kafka.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import msgspec
from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from ingest.registry.errors import NotFound, RegistryError
from runtime.ids import canonical_id
from schemas.triggers import Target

ReplayState = Literal["pending", "running", "cancelled", "finished", "failed"]
UNFINISHED: tuple[ReplayState, ...] = ("pending", "running")

_COLUMNS = sql.SQL("""
    id::text AS id, project_id::text AS project_id, created_by, created_at, from_time, to_time,
    trigger_ids::text[] AS trigger_ids, event_ids, target, rate_per_s, state, cancel_requested,
    error, to_scan, scanned, selected, started_at, finished_at
""")


# A replay nobody runs: pending, or its runner's lease ran out. Cancelling one ends it at once;
# a running one ends when its runner sees the request, at its next transaction.
UNHELD = sql.SQL("(state = 'pending' OR lease_until IS NULL OR lease_until < now())")


class TooManyReplays(RegistryError):
    status = 409


class ReplayFinished(RegistryError):
    """The replay has ended; it can neither be cancelled nor resumed."""

    status = 409


@dataclass(frozen=True, slots=True)
class ReplaySelection:
    """Which raw events a replay re-sends, and where to."""

    from_time: datetime
    to_time: datetime
    # None: every trigger of the project.
    trigger_ids: list[str] | None
    # None: every event in the range.
    event_ids: list[str] | None
    # None: each trigger's own target.
    target: Target | None
    rate_per_s: float


@dataclass(frozen=True, slots=True)
class Replay:
    id: str
    project_id: str
    created_by: str
    created_at: datetime
    selection: ReplaySelection
    state: ReplayState
    cancel_requested: bool
    error: str | None
    to_scan: int
    scanned: int
    selected: int
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.state not in UNFINISHED


def _replay(row: dict[str, Any]) -> Replay:
    target = row["target"]
    return Replay(
        id=row["id"],
        project_id=row["project_id"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        selection=ReplaySelection(
            from_time=row["from_time"],
            to_time=row["to_time"],
            trigger_ids=row["trigger_ids"],
            event_ids=row["event_ids"],
            target=None if target is None else msgspec.convert(target, Target),
            rate_per_s=row["rate_per_s"],
        ),
        state=row["state"],
        cancel_requested=row["cancel_requested"],
        error=row["error"],
        to_scan=row["to_scan"],
        scanned=row["scanned"],
        selected=row["selected"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
    )


async def _one(
    conn: AsyncConnection[Any], query: sql.Composed, params: tuple[Any, ...]
) -> Replay | None:
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(query, params)
    found = await cursor.fetchone()
    return None if found is None else _replay(found)


async def insert_replay(
    conn: AsyncConnection[Any],
    project_id: str,
    created_by: str,
    selection: ReplaySelection,
    max_active: int,
) -> Replay:
    """A new pending replay; TooManyReplays when the project already has `max_active`."""
    async with conn.transaction():
        # One project's inserts queue here, so two requests cannot both take the last slot.
        await conn.execute("SELECT 1 FROM projects WHERE id = %s FOR UPDATE", (project_id,))
        cursor = await conn.execute(
            "SELECT count(*) FROM replays WHERE project_id = %s AND state = ANY(%s)",
            (project_id, list(UNFINISHED)),
        )
        found = await cursor.fetchone()
        if found is not None and found[0] >= max_active:
            raise TooManyReplays(
                f"the project has {found[0]} unfinished replays, the most allowed "
                f"(TRIGGERLINE_REPLAY_MAX_ACTIVE_PER_PROJECT); wait for one or cancel it"
            )
        target = selection.target
        created = await _one(
            conn,
            sql.SQL("""
            INSERT INTO replays (id, project_id, created_by, from_time, to_time, trigger_ids,
                                 event_ids, target, rate_per_s)
            VALUES (%s, %s, %s, %s, %s, %s::uuid[], %s, %s, %s)
            RETURNING {columns}
            """).format(columns=_COLUMNS),
            (
                str(uuid.uuid4()),
                project_id,
                created_by,
                selection.from_time,
                selection.to_time,
                selection.trigger_ids,
                selection.event_ids,
                None if target is None else msgspec.json.encode(target).decode(),
                selection.rate_per_s,
            ),
        )
    if created is None:
        raise RuntimeError("INSERT ... RETURNING returned no row")
    return created


async def find_replay(conn: AsyncConnection[Any], project_id: str, replay_id: str) -> Replay:
    """A replay of this project; NotFound otherwise (also for another project's)."""
    canonical = canonical_id(replay_id)
    found = None
    if canonical is not None:
        found = await _one(
            conn,
            sql.SQL("SELECT {columns} FROM replays WHERE id = %s AND project_id = %s").format(
                columns=_COLUMNS
            ),
            (canonical, project_id),
        )
    if found is None:
        raise NotFound("replay")
    return found


async def list_replays(
    conn: AsyncConnection[Any], project_id: str, *, limit: int, before: datetime | None = None
) -> list[Replay]:
    """The project's replays, newest first."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        sql.SQL("""
        SELECT {columns} FROM replays
        WHERE project_id = %s AND (%s::timestamptz IS NULL OR created_at < %s)
        ORDER BY created_at DESC, id LIMIT %s
        """).format(columns=_COLUMNS),
        (project_id, before, before, limit),
    )
    return [_replay(row) for row in await cursor.fetchall()]


async def request_cancel(conn: AsyncConnection[Any], project_id: str, replay_id: str) -> Replay:
    """Asks the replay's runner to stop; a replay nobody runs is cancelled at once."""
    replay = await find_replay(conn, project_id, replay_id)
    if replay.finished:
        raise ReplayFinished(f"the replay has already ended ({replay.state})")
    cancelled = await _one(
        conn,
        sql.SQL("""
        UPDATE replays SET
            cancel_requested = true,
            state = CASE WHEN {unheld} THEN 'cancelled' ELSE state END,
            finished_at = CASE WHEN {unheld} THEN now() ELSE finished_at END,
            updated_at = now()
        WHERE id = %s AND state = ANY(%s)
        RETURNING {columns}
        """).format(columns=_COLUMNS, unheld=UNHELD),
        (replay.id, list(UNFINISHED)),
    )
    return cancelled or await find_replay(conn, project_id, replay_id)


async def claim(
    conn: AsyncConnection[Any], owner: str, lease_s: float, replay_id: str | None = None
) -> Replay | None:
    """Takes the lease on an unfinished replay that nobody holds (the given one, else the
    oldest), and marks it running; None if there is none."""
    return await _one(
        conn,
        sql.SQL("""
        UPDATE replays SET
            state = 'running', lease_owner = %s,
            lease_until = now() + make_interval(secs => %s),
            started_at = coalesce(started_at, now()), updated_at = now()
        WHERE id = (
            SELECT id FROM replays
            WHERE state = ANY(%s) AND NOT cancel_requested
              AND (lease_until IS NULL OR lease_until < now())
              AND (%s::uuid IS NULL OR id = %s::uuid)
            ORDER BY created_at LIMIT 1
            FOR UPDATE SKIP LOCKED
        )
        RETURNING {columns}
        """).format(columns=_COLUMNS),
        (owner, lease_s, list(UNFINISHED), replay_id, replay_id),
    )


@dataclass(frozen=True, slots=True)
class Progress:
    to_scan: int
    scanned: int
    selected: int


async def report_progress(
    conn: AsyncConnection[Any], replay_id: str, owner: str, lease_s: float, progress: Progress
) -> bool:
    """Records the counts and renews the lease; whether the runner should go on (False when a
    cancel was asked for, or when the lease passed to another runner)."""
    cursor = await conn.execute(
        """
        UPDATE replays SET
            to_scan = %s, scanned = %s, selected = %s,
            lease_until = now() + make_interval(secs => %s), updated_at = now()
        WHERE id = %s AND lease_owner = %s AND state = 'running'
        RETURNING cancel_requested
        """,
        (progress.to_scan, progress.scanned, progress.selected, lease_s, replay_id, owner),
    )
    found = await cursor.fetchone()
    return found is not None and not found[0]


async def finish(
    conn: AsyncConnection[Any],
    replay_id: str,
    owner: str,
    *,
    state: ReplayState,
    progress: Progress,
    error: str | None = None,
) -> None:
    await conn.execute(
        """
        UPDATE replays SET
            state = %s, error = %s, to_scan = %s, scanned = %s, selected = %s,
            lease_owner = NULL, lease_until = NULL, finished_at = now(), updated_at = now()
        WHERE id = %s AND lease_owner = %s
        """,
        (
            state,
            error,
            progress.to_scan,
            progress.scanned,
            progress.selected,
            replay_id,
            owner,
        ),
    )


async def record_failure(
    conn: AsyncConnection[Any], replay_id: str, owner: str, error: str
) -> None:
    """Shows why the runner stopped; the lease runs out, and a runner tries again then."""
    await conn.execute(
        "UPDATE replays SET error = %s, lease_owner = NULL, updated_at = now()"
        " WHERE id = %s AND lease_owner = %s AND state = 'running'",
        (error[:2000], replay_id, owner),
    )


async def release(conn: AsyncConnection[Any], replay_id: str, owner: str) -> None:
    """Gives the lease up without finishing: a runner that stops (shutdown) lets another
    resume at once instead of after the lease."""
    await conn.execute(
        "UPDATE replays SET lease_until = NULL, lease_owner = NULL, updated_at = now()"
        " WHERE id = %s AND lease_owner = %s AND state = 'running'",
        (replay_id, owner),
    )


async def prune_replays(conn: AsyncConnection[Any], retention_s: float) -> int:
    """Deletes ended replays older than the retention; how many."""
    cursor = await conn.execute(
        """
        DELETE FROM replays
        WHERE state <> ALL(%s) AND finished_at < now() - make_interval(secs => %s)
        """,
        (list(UNFINISHED), retention_s),
    )
    return cursor.rowcount
