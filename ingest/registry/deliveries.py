"""Queries over the delivery log that the delivery-log sink keeps in PostgreSQL.

Every query is scoped to a project: rows of another project's triggers and events are never
returned, so they look exactly like missing ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import class_row

_COLUMNS = sql.SQL(
    "log_partition, log_offset, event_id, trigger_id, stage, outcome, at, correlation_id,"
    " target_kind, target_ref, attempt, reason, http_status, error, latency_ms, replay,"
    " received_at, destination"
)


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    log_partition: int
    log_offset: int
    event_id: str
    trigger_id: str
    stage: str
    outcome: str
    at: datetime
    correlation_id: str | None
    target_kind: str | None
    target_ref: str | None
    attempt: int
    reason: str | None
    http_status: int | None
    error: str | None
    latency_ms: float | None
    replay: bool
    received_at: datetime | None
    destination: str | None


@dataclass(frozen=True, slots=True)
class DeliveryFilter:
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    event_id: str | None = None
    correlation_id: str | None = None
    destination: str | None = None


# A page position: (at, log_partition, log_offset) of the last row of the previous page.
PageAfter = tuple[datetime, int, int]


async def list_deliveries(
    conn: AsyncConnection[Any],
    project_id: str,
    trigger_id: str | None,
    where: DeliveryFilter,
    *,
    limit: int,
    after: PageAfter | None = None,
) -> list[DeliveryRow]:
    """A trigger's delivery-log rows, or with no trigger the whole project's, newest first.

    The keyset (at, log_partition, log_offset) is the order of the indexes by trigger and by
    project (migration 0051), so a page reads only its own rows whatever its depth.
    """
    conditions: list[sql.Composable] = [sql.SQL("project_id = %s")]
    params: list[Any] = [project_id]
    if trigger_id is not None:
        conditions.append(sql.SQL("trigger_id = %s"))
        params.append(trigger_id)
    for column, value in (
        ("outcome", where.outcome),
        ("event_id", where.event_id),
        ("correlation_id", where.correlation_id),
        ("destination", where.destination),
    ):
        if value is not None:
            conditions.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
            params.append(value)
    if where.since is not None:
        conditions.append(sql.SQL("at >= %s"))
        params.append(where.since)
    if where.until is not None:
        conditions.append(sql.SQL("at < %s"))
        params.append(where.until)
    if after is not None:
        conditions.append(sql.SQL("(at, log_partition, log_offset) < (%s, %s, %s)"))
        params.extend(after)
    query = sql.SQL(
        "SELECT {columns} FROM delivery_log WHERE {where}"
        " ORDER BY at DESC, log_partition DESC, log_offset DESC LIMIT %s"
    ).format(columns=_COLUMNS, where=sql.SQL(" AND ").join(conditions))
    cursor = conn.cursor(row_factory=class_row(DeliveryRow))
    await cursor.execute(query, [*params, limit])
    return await cursor.fetchall()


async def event_journey(
    conn: AsyncConnection[Any], project_id: str, event_id: str, trigger_id: str | None = None
) -> list[DeliveryRow]:
    """Every delivery-log row of one event (of one trigger, if given), in the order of steps."""
    conditions = [sql.SQL("project_id = %s"), sql.SQL("event_id = %s")]
    params = [project_id, event_id]
    if trigger_id is not None:
        conditions.append(sql.SQL("trigger_id = %s"))
        params.append(trigger_id)
    cursor = conn.cursor(row_factory=class_row(DeliveryRow))
    await cursor.execute(
        sql.SQL(
            "SELECT {columns} FROM delivery_log WHERE {where}"
            " ORDER BY at, log_partition, log_offset"
        ).format(columns=_COLUMNS, where=sql.SQL(" AND ").join(conditions)),
        params,
    )
    return await cursor.fetchall()


@dataclass(frozen=True, slots=True)
class CorrelatedEvent:
    event_id: str
    trigger_id: str
    # Its newest step.
    at: datetime


# Rows of one correlation id looked at, at most, to find its newest events: a long Slack thread
# has a few steps per event, so this covers well over the events a page lists.
CORRELATED_ROWS = 1000


async def correlated_events(
    conn: AsyncConnection[Any], project_id: str, correlation_id: str, *, limit: int
) -> list[CorrelatedEvent]:
    """The newest `limit` events (event id and trigger) of one correlation id, newest first,
    found among its newest CORRELATED_ROWS delivery-log rows."""
    cursor = conn.cursor(row_factory=class_row(CorrelatedEvent))
    await cursor.execute(
        """
        SELECT event_id, trigger_id, max(at) AS at FROM (
            SELECT event_id, trigger_id, at FROM delivery_log
            WHERE project_id = %s AND correlation_id = %s
            ORDER BY at DESC LIMIT %s
        ) AS newest
        GROUP BY event_id, trigger_id
        ORDER BY max(at) DESC, event_id LIMIT %s
        """,
        (project_id, correlation_id, CORRELATED_ROWS, limit),
    )
    return await cursor.fetchall()
