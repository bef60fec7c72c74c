"""What the pipeline did with a replay's copies, counted from the delivery log by replay id."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

# An event counts once per destination, stage and outcome, however often its delivery was
# attempted; the processors' decisions about the whole event name no destination. The last row
# counts the events the processors decided about, whatever their number of destinations.
OUTCOMES = """
SELECT stage, outcome, count(DISTINCT (trigger_id, event_id, coalesce(destination, '')))
FROM delivery_log WHERE replay_id = %(replay)s GROUP BY stage, outcome
UNION ALL
SELECT 'processor', '*decided', count(DISTINCT (trigger_id, event_id))
FROM delivery_log WHERE replay_id = %(replay)s AND stage = 'processor'
"""


@dataclass(frozen=True, slots=True)
class ReplayOutcomes:
    # Counted per destination of an event.
    routed: int = 0
    # Skipped by the trigger's or a destination's rules, or ignored (handshakes, paused or
    # deleted triggers).
    skipped: int = 0
    delivered: int = 0
    # Filter and transform errors and dead letters, of the processors or the dispatchers.
    failed: int = 0
    # Routed and neither delivered nor dead-lettered yet.
    in_flight: int = 0
    # Copies (events) the processors have decided about.
    decided: int = 0

    def settled(self, selected: int) -> bool:
        """Whether every copy sent so far has reached its end."""
        return self.decided >= selected and self.in_flight == 0


async def replay_outcomes(conn: AsyncConnection[Any], replay_id: str) -> ReplayOutcomes:
    cursor = await conn.execute(OUTCOMES, {"replay": replay_id})
    found: dict[tuple[str, str], int] = {
        (stage, outcome): count for stage, outcome, count in await cursor.fetchall()
    }

    def of(stage: str, *outcomes: str) -> int:
        return sum(found.get((stage, outcome), 0) for outcome in outcomes)

    routed = of("processor", "routed")
    skipped = of("processor", "skipped", "ignored", "duplicate")
    processor_failed = of("processor", "filter_error", "transform_error", "dead_lettered")
    delivered = of("dispatcher", "delivered")
    dispatcher_failed = of("dispatcher", "dead_lettered")
    return ReplayOutcomes(
        routed=routed,
        skipped=skipped,
        delivered=delivered,
        failed=processor_failed + dispatcher_failed,
        in_flight=max(0, routed - delivered - dispatcher_failed),
        decided=of("processor", "*decided"),
    )
