"""How far the outbox relay is behind: registry changes not yet on the trigger-config topic.

Every ingest process measures it, the relay's leader or not, on a connection of its own: a relay
stuck on a broker outage, or no relay holding the lock at all, is seen by the others. Both
queries read the outbox's index of pending rows, and the count stops at a bound, so a large
backlog costs no more to measure than a small one.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg import Error as DatabaseError

from runtime.metrics import OUTBOX_OLDEST_PENDING_AGE, OUTBOX_PENDING_ROWS
from runtime.settings import Settings

log = logging.getLogger("triggerline.relay")

MEASURE_INTERVAL_S = 5.0
# The count stops here: past it the backlog's age says more than its size.
MAX_COUNTED_ROWS = 10_000

PENDING = """
SELECT
    (SELECT count(*) FROM (
        SELECT 1 FROM trigger_config_outbox
        WHERE published_at IS NULL AND failed_at IS NULL LIMIT %s) AS counted),
    (SELECT extract(epoch FROM clock_timestamp() - created_at) FROM trigger_config_outbox
        WHERE published_at IS NULL AND failed_at IS NULL ORDER BY seq LIMIT 1)
"""


@dataclass(frozen=True)
class OutboxBacklog:
    """Pending rows (at most MAX_COUNTED_ROWS) and the oldest one's age in seconds (0: none)."""

    rows: int
    oldest_age_s: float


async def measure_backlog(conn: AsyncConnection[Any]) -> OutboxBacklog:
    cursor = await conn.execute(PENDING, (MAX_COUNTED_ROWS,))
    row = await cursor.fetchone()
    if row is None:
        raise RuntimeError("the backlog query returned no row")
    rows, age = row
    return OutboxBacklog(int(rows), max(0.0, float(age)) if age is not None else 0.0)


class OutboxBacklogGauge:
    """Measures the backlog every `interval_s` until cancelled, surviving database outages."""

    def __init__(self, settings: Settings, interval_s: float = MEASURE_INTERVAL_S) -> None:
        self._url = settings.database.url.get_secret_value()
        self._interval_s = interval_s

    async def run(self) -> None:
        while True:
            try:
                async with await AsyncConnection.connect(self._url, autocommit=True) as conn:
                    while True:
                        report(await measure_backlog(conn))
                        await asyncio.sleep(self._interval_s)
            except DatabaseError as exc:
                # The gauges keep their last values. While the database is away no change
                # enters the outbox, and the registry API answers 503, which is the alarm.
                log.warning("outbox backlog not measured", extra={"error": str(exc)})
                await asyncio.sleep(self._interval_s)


def report(backlog: OutboxBacklog) -> None:
    OUTBOX_PENDING_ROWS.set(backlog.rows)
    OUTBOX_OLDEST_PENDING_AGE.set(backlog.oldest_age_s)
