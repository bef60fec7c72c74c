"""What the pipeline did with a replay's copies, counted from the delivery log by replay id."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

# An event counts once per stage and outcome, however often its delivery was attempted.
OUTCOMES = """
SELECT stage, outcome, count(DISTINCT (trigger_id, event_id)) FROM delivery_log
WHERE replay_id = %s GROUP BY stage, outcome
"""


@dataclass(frozen=True, slots=True)
class ReplayOutcomes:
    routed: int = 0
    # Skipped by the trigger's rules, or ignored (handshakes, paused or deleted triggers).
    skipped: int = 0
    delivered: int = 0
    # Filter errors and dead letters, of the processors or the dispatchers.
    failed: int = 0
    # Routed and neither delivered nor dead-lettered yet.
    in_flight: int = 0
    # Copies the processors have decided about.
    decided: int = 0

    def settled(self, selected: int) -> bool:
        """Whether every copy sent so far has reached its end."""
        return self.decided >= selected and self.in_flight == 0


async def replay_outcomes(conn: AsyncConnection[Any], replay_id: str) -> ReplayOutcomes:
    cursor = await conn.execute(OUTCOMES, (replay_id,))
    found: dict[tuple[str, str], int] = {
        (stage, outcome): count for stage, outcome, count in await cursor.fetchall()
    }

    def of(stage: str, *outcomes: str) -> int:
        return sum(found.get((stage, outcome), 0) for outcome in outcomes)

    routed = of("processor", "routed")
    skipped = of("processor", "skipped", "ignored", "duplicate")
    processor_failed = of("processor", "filter_error", "dead_lettered")
    delivered = of("dispatcher", "delivered")
    dispatcher_failed = of("dispatcher", "dead_lettered")
    return ReplayOutcomes(
        routed=routed,
        skipped=skipped,
        delivered=delivered,
        failed=processor_failed + dispatcher_failed,
        in_flight=max(0, routed - delivered - dispatcher_failed),
        decided=routed + skipped + processor_failed,
    )
