"""Per-trigger summaries of the delivery log, for a page of triggers at a time: events by
outcome over a recent window, and each trigger's last error.

Every query is scoped to a project, like `ingest.registry.deliveries`: another project's rows
are never counted, even for a trigger id that is not the project's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import class_row

# A step went wrong if it carries an error or has one of these outcomes. The partial index
# `delivery_log_last_error` (deploy/migrations/0050) has this same predicate, spelled the same
# way, so that the planner uses it.
ERROR_OUTCOMES = ("failed", "dead_lettered", "filter_error", "transform_error")
_LAST_ERROR = """
SELECT t.id AS trigger_id, e.at, e.event_id, e.outcome, e.destination, e.error, e.reason
FROM unnest(%s::text[]) AS t(id)
CROSS JOIN LATERAL (
    SELECT at, event_id, outcome, destination, error, reason FROM delivery_log
    WHERE trigger_id = t.id AND project_id = %s
      AND (error IS NOT NULL
           OR outcome IN ('failed', 'dead_lettered', 'filter_error', 'transform_error'))
    ORDER BY at DESC, log_partition DESC, log_offset DESC
    LIMIT 1
) AS e
"""


@dataclass(frozen=True, slots=True)
class LastError:
    trigger_id: str
    at: datetime
    event_id: str
    outcome: str
    destination: str | None
    error: str | None
    reason: str | None


async def outcome_counts(
    conn: AsyncConnection[Any], project_id: str, trigger_ids: Sequence[str], since: datetime
) -> dict[str, dict[str, int]]:
    """Per trigger, per outcome: how many distinct events had a step with that outcome at or
    after `since` (an event retried twice and then delivered counts once under `retrying` and
    once under `delivered`). Triggers with no steps are absent."""
    if not trigger_ids:
        return {}
    cursor = await conn.execute(
        "SELECT trigger_id, outcome, count(DISTINCT event_id) FROM delivery_log"
        " WHERE project_id = %s AND trigger_id = ANY(%s) AND at >= %s"
        " GROUP BY trigger_id, outcome",
        (project_id, list(trigger_ids), since),
    )
    counts: dict[str, dict[str, int]] = {}
    for trigger_id, outcome, count in await cursor.fetchall():
        counts.setdefault(str(trigger_id), {})[str(outcome)] = int(count)
    return counts


async def last_errors(
    conn: AsyncConnection[Any], project_id: str, trigger_ids: Sequence[str]
) -> dict[str, LastError]:
    """Per trigger, its newest delivery-log row with an error or a failing outcome (within the
    log's retention); triggers without one are absent."""
    if not trigger_ids:
        return {}
    cursor = conn.cursor(row_factory=class_row(LastError))
    # One index probe per trigger (LATERAL ... LIMIT 1) rather than a scan of its history.
    await cursor.execute(_LAST_ERROR, (list(trigger_ids), project_id))
    return {row.trigger_id: row for row in await cursor.fetchall()}
