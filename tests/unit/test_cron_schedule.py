"""Schedule math in the trigger's time zone, including DST changes, with an explicit clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kinds.schedule import Schedule, ScheduleError

pytestmark = pytest.mark.unit


def local(schedule: Schedule, start: datetime, end: datetime) -> list[str]:
    fires = schedule.between(start, end, 1000)
    return [t.astimezone(schedule.timezone).isoformat() for t in fires]


def test_new_york_spring_forward_fires_a_skipped_time_once_after_the_jump() -> None:
    schedule = Schedule.parse("30 2 * * *", "America/New_York")
    fires = local(schedule, datetime(2026, 3, 7, tzinfo=UTC), datetime(2026, 3, 10, tzinfo=UTC))
    assert fires == [
        "2026-03-07T02:30:00-05:00",
        "2026-03-08T03:30:00-04:00",  # 02:30 does not exist that night
        "2026-03-09T02:30:00-04:00",
    ]


def test_new_york_fall_back_fires_a_repeated_time_once() -> None:
    schedule = Schedule.parse("30 1 * * *", "America/New_York")
    fires = local(schedule, datetime(2026, 10, 31, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=UTC))
    assert fires == [
        "2026-10-31T01:30:00-04:00",
        "2026-11-01T01:30:00-04:00",  # and not again at 01:30 EST an hour later
        "2026-11-02T01:30:00-05:00",
    ]


def test_berlin_every_half_hour_across_both_changes_never_repeats_an_instant() -> None:
    schedule = Schedule.parse("*/30 * * * *", "Europe/Berlin")
    spring = local(
        schedule, datetime(2026, 3, 29, 0, 0, tzinfo=UTC), datetime(2026, 3, 29, 2, 1, tzinfo=UTC)
    )
    assert spring == [
        "2026-03-29T01:30:00+01:00",
        "2026-03-29T03:00:00+02:00",  # 02:00 and 02:30 fall into the gap: 03:00, 03:30
        "2026-03-29T03:30:00+02:00",
        "2026-03-29T04:00:00+02:00",
    ]
    autumn = schedule.between(
        datetime(2026, 10, 24, 23, 0, tzinfo=UTC), datetime(2026, 10, 25, 3, 0, tzinfo=UTC), 100
    )
    assert len(autumn) == len(set(autumn))
    assert autumn == sorted(autumn)
    wall_clock = [t.astimezone(schedule.timezone).strftime("%H:%M") for t in autumn]
    assert wall_clock.count("02:30") == 1


def test_every_minute_after_a_repeated_hour_starts_in_its_second_pass() -> None:
    schedule = Schedule.parse("* * * * *", "America/New_York")
    second_pass = datetime(2026, 11, 1, 6, 10, tzinfo=UTC)  # 01:10 EST, the repeated hour
    assert schedule.next_after(second_pass) == datetime(2026, 11, 1, 7, 0, tzinfo=UTC)


def test_february_29_only_in_leap_years() -> None:
    schedule = Schedule.parse("0 12 29 2 *", "UTC")
    fires = schedule.between(datetime(2026, 1, 1, tzinfo=UTC), datetime(2033, 1, 1, tzinfo=UTC), 10)
    assert [t.year for t in fires] == [2028, 2032]


def test_day_31_skips_short_months() -> None:
    schedule = Schedule.parse("0 0 31 * *", "UTC")
    fires = schedule.between(
        datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 12, 31, 1, tzinfo=UTC), 20
    )
    assert [t.month for t in fires] == [1, 3, 5, 7, 8, 10, 12]


def test_every_minute() -> None:
    schedule = Schedule.parse("* * * * *")
    start = datetime(2026, 11, 27, 12, 0, 30, tzinfo=UTC)
    fires = schedule.between(start, start + timedelta(minutes=3), 10)
    assert [t.strftime("%H:%M:%S") for t in fires] == ["12:01:00", "12:02:00", "12:03:00"]


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("@hourly", datetime(2026, 11, 27, 13, 0, tzinfo=UTC)),
        ("@daily", datetime(2026, 11, 28, 0, 0, tzinfo=UTC)),
        ("@weekly", datetime(2026, 11, 29, 0, 0, tzinfo=UTC)),
        ("@monthly", datetime(2026, 12, 1, 0, 0, tzinfo=UTC)),
        ("@yearly", datetime(2027, 1, 1, 0, 0, tzinfo=UTC)),
    ],
)
def test_aliases(alias: str, expected: datetime) -> None:
    assert Schedule.parse(alias).next_after(datetime(2026, 11, 27, 12, 30, tzinfo=UTC)) == expected


def test_daily_alias_runs_at_local_midnight() -> None:
    schedule = Schedule.parse("@daily", "Europe/Berlin")
    assert schedule.next_after(datetime(2026, 11, 27, 12, tzinfo=UTC)) == datetime(
        2026, 11, 27, 23, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("expression", "timezone", "problem"),
    [
        ("* * * *", "UTC", "5 fields"),
        ("* * * * * *", "UTC", "5 fields"),
        ("61 * * * *", "UTC", "not a valid cron"),
        ("@sometimes", "UTC", "unknown alias"),
        ("* * * * *", "Mars/Olympus_Mons", "IANA"),
        ("* * * * *", "../etc/passwd", "IANA"),
    ],
)
def test_bad_schedules_are_rejected_with_a_reason(
    expression: str, timezone: str, problem: str
) -> None:
    with pytest.raises(ScheduleError, match=problem):
        Schedule.parse(expression, timezone)
