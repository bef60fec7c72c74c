from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ingest.cron.misfire import plan_ticks
from ingest.cron.triggers import CronTrigger, MisfirePolicy
from kinds.schedule import Schedule

pytestmark = pytest.mark.unit

# The producer was down from 11:50:00 (last tick fired) until 12:00:30.
LAST_FIRED = datetime(2026, 11, 27, 11, 50, tzinfo=UTC)
NOW = datetime(2026, 11, 27, 12, 0, 30, tzinfo=UTC)


def trigger(
    misfire: MisfirePolicy, max_count: int = 100, max_age: timedelta = timedelta(days=1)
) -> CronTrigger:
    return CronTrigger(
        trigger_id="t1",
        project_id="p1",
        definition="cron",
        active=True,
        changed_at=datetime(2026, 11, 1, tzinfo=UTC),
        schedule=Schedule.parse("* * * * *"),
        misfire=misfire,
        backfill_max_count=max_count,
        backfill_max_age=max_age,
    )


def minutes(plan_ticks_: list[datetime]) -> list[str]:
    return [t.strftime("%H:%M") for t in plan_ticks_]


def test_skip_fires_only_the_tick_that_is_not_yet_late() -> None:
    plan = plan_ticks(trigger("skip"), LAST_FIRED, NOW)
    assert minutes([t.scheduled_at for t in plan.ticks]) == ["12:00"]
    assert plan.skipped == 9  # 11:51 .. 11:59
    assert plan.cursor == datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_fire_once_fires_one_catch_up_tick_counting_the_missed_ones() -> None:
    plan = plan_ticks(trigger("fire_once"), LAST_FIRED, NOW)
    assert [(t.scheduled_at.strftime("%H:%M"), t.missed) for t in plan.ticks] == [
        ("11:59", 9),
        ("12:00", 0),
    ]


def test_backfill_fires_every_missed_tick_up_to_the_count_cap() -> None:
    plan = plan_ticks(trigger("backfill", max_count=4), LAST_FIRED, NOW)
    assert minutes([t.scheduled_at for t in plan.ticks]) == [
        "11:56",
        "11:57",
        "11:58",
        "11:59",
        "12:00",
    ]
    assert plan.skipped == 5


def test_backfill_drops_ticks_older_than_the_age_cap() -> None:
    plan = plan_ticks(trigger("backfill", max_age=timedelta(minutes=3)), LAST_FIRED, NOW)
    assert minutes([t.scheduled_at for t in plan.ticks]) == ["11:58", "11:59", "12:00"]


def test_a_tick_late_by_less_than_the_grace_period_is_fired_whatever_the_policy() -> None:
    failover_end = datetime(2026, 11, 27, 12, 0, 12, tzinfo=UTC)
    plan = plan_ticks(trigger("skip"), datetime(2026, 11, 27, 11, 59, tzinfo=UTC), failover_end)
    assert minutes([t.scheduled_at for t in plan.ticks]) == ["12:00"]
    assert plan.skipped == 0


def test_nothing_due_changes_nothing() -> None:
    cursor = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    plan = plan_ticks(trigger("backfill"), cursor, cursor + timedelta(seconds=59))
    assert (plan.ticks, plan.skipped, plan.cursor) == ([], 0, cursor)
