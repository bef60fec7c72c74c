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
    trigger_id: str,
    where: DeliveryFilter,
    *,
    limit: int,
    after: PageAfter | None = None,
) -> list[DeliveryRow]:
    """A trigger's delivery-log rows, newest first."""
    conditions: list[sql.Composable] = [sql.SQL("project_id = %s"), sql.SQL("trigger_id = %s")]
    params: list[Any] = [project_id, trigger_id]
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
