"""Which ticks fire when the producer finds scheduled times in the past.

A tick that is late by no more than the grace period (a failover, a slow loop) is simply fired
late. Ticks later than that were missed, and the trigger's policy decides:
`skip` fires none of them, `fire_once` fires one tick standing for all of them, `backfill` fires
each of them, bounded by a count and an age.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ingest.cron.triggers import CronTrigger

DEFAULT_GRACE = timedelta(seconds=60)
# Enough to count a week of every-minute ticks; a longer outage reports this many as missed.
MAX_COUNTED = 10_080


@dataclass(frozen=True, slots=True)
class PlannedTick:
    scheduled_at: datetime
    missed: int = 0


@dataclass(frozen=True, slots=True)
class Plan:
    ticks: list[PlannedTick]
    skipped: int
    # The newest scheduled time dealt with (fired or skipped); the trigger's next cursor.
    cursor: datetime


def plan_ticks(
    trigger: CronTrigger, cursor: datetime, now: datetime, grace: timedelta = DEFAULT_GRACE
) -> Plan:
    due = trigger.schedule.between(cursor, now, MAX_COUNTED)
    if not due:
        return Plan([], 0, cursor)
    on_time = [PlannedTick(t) for t in due if now - t <= grace]
    missed = [t for t in due if now - t > grace]
    if not missed:
        return Plan(on_time, 0, due[-1])
    if trigger.misfire == "fire_once":
        catch_up = PlannedTick(missed[-1], missed=len(missed))
        return Plan([catch_up, *on_time], len(missed) - 1, due[-1])
    if trigger.misfire == "backfill":
        recent = [t for t in missed if now - t <= trigger.backfill_max_age]
        kept = recent[-trigger.backfill_max_count :] if trigger.backfill_max_count > 0 else []
        backfilled = [PlannedTick(t) for t in kept]
        return Plan([*backfilled, *on_time], len(missed) - len(kept), due[-1])
    return Plan(on_time, len(missed), due[-1])
