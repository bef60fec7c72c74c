"""What the cron producer needs to know about a trigger, compiled once per config revision."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from kinds import KINDS
from kinds.schedule import Schedule
from schemas.triggers import DefinitionSlug, TriggerConfig

MisfirePolicy = Literal["skip", "fire_once", "backfill"]
MISFIRE_POLICIES: tuple[MisfirePolicy, ...] = ("skip", "fire_once", "backfill")

DEFAULT_BACKFILL_MAX_COUNT = 100
DEFAULT_BACKFILL_MAX_AGE = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class CronTrigger:
    trigger_id: str
    project_id: str
    definition: DefinitionSlug
    active: bool
    # A change (creation, resume, schedule update) starts the schedule afresh from here, so a
    # paused period or an old schedule never counts as missed ticks.
    changed_at: datetime
    schedule: Schedule
    misfire: MisfirePolicy
    backfill_max_count: int
    backfill_max_age: timedelta


def compile_cron_trigger(config: TriggerConfig) -> CronTrigger | None:
    """None for triggers of other definitions, which the cron producer does not schedule."""
    kind = KINDS.get(config.definition)
    if kind is None or kind.arrives_by != "schedule":
        return None
    settings = config.config
    misfire = settings.get("misfire", "skip")
    if misfire not in MISFIRE_POLICIES:
        raise ValueError(f"misfire must be one of {', '.join(MISFIRE_POLICIES)}")
    return CronTrigger(
        trigger_id=config.trigger_id,
        project_id=config.project_id,
        definition=config.definition,
        active=config.active,
        changed_at=config.updated_at,
        schedule=Schedule.parse(str(settings["schedule"]), str(settings.get("timezone", "UTC"))),
        misfire=misfire,
        backfill_max_count=int(settings.get("backfill_max_count", DEFAULT_BACKFILL_MAX_COUNT)),
        backfill_max_age=timedelta(
            seconds=float(
                settings.get("backfill_max_age_s", DEFAULT_BACKFILL_MAX_AGE.total_seconds())
            )
        ),
    )
