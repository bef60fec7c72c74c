"""Schedule math: when a cron trigger fires, in its own time zone, across DST changes.

The rule (wall-clock cron, as people read a crontab):
- Schedules are evaluated on the local wall clock of the trigger's IANA time zone.
- A wall-clock time that occurs twice (the repeated hour when clocks go back) fires once, at
  its first occurrence.
- A wall-clock time that does not exist (the skipped hour when clocks go forward) fires at the
  same distance past the jump, as PEP 495 reads it (02:30 becomes 03:30 in New York). If that
  instant is also a regular fire time, it fires once.
So no time fires twice and no scheduled day is lost; fire instants only ever move forward.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from croniter import CroniterBadDateError, croniter

ALIASES = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)


class ScheduleError(ValueError):
    """The cron expression or the time zone is not usable; the message says why."""


def parse_expression(expression: str) -> str:
    """The expression in canonical spacing, if it is 5-field cron or an alias that fires."""
    expression = " ".join(expression.split())
    if expression.startswith("@"):
        if expression not in ALIASES:
            raise ScheduleError(f"unknown alias; use one of {', '.join(sorted(ALIASES))}")
    elif len(expression.split(" ")) != 5:
        raise ScheduleError("a cron expression has 5 fields: minute hour day month weekday")
    if not croniter.is_valid(expression):
        raise ScheduleError("not a valid cron expression")
    try:
        croniter(expression, datetime(2000, 1, 1)).get_next(datetime)
    except CroniterBadDateError:
        # Valid syntax that matches no date, such as 30 February.
        raise ScheduleError("this schedule never fires") from None
    return expression


def parse_timezone(name: str) -> ZoneInfo:
    # The IANA list, not whatever ZoneInfo would open: it also reads files such as "posixrules".
    if name not in _iana_names():
        raise ScheduleError("not an IANA time zone name, e.g. Europe/Berlin or UTC")
    return ZoneInfo(name)


@cache
def _iana_names() -> frozenset[str]:
    return frozenset(available_timezones())


@dataclass(frozen=True, slots=True)
class Schedule:
    expression: str
    timezone: ZoneInfo

    @classmethod
    def parse(cls, expression: str, timezone: str = "UTC") -> Schedule:
        return cls(parse_expression(expression), parse_timezone(timezone))

    def fire_times(self, after: datetime) -> Iterator[datetime]:
        """Fire instants (UTC) strictly after `after`, in order, without end."""
        local_after = after.astimezone(self.timezone).replace(tzinfo=None)
        # Start one hour early so that a wall-clock time in a repeated hour that lies before
        # `local_after` on the wall clock, but after `after` in real time, is not missed.
        wall_clock = croniter(self.expression, local_after - timedelta(hours=1))
        last = after
        while True:
            naive: datetime = wall_clock.get_next(datetime)
            instant = naive.replace(tzinfo=self.timezone, fold=0).astimezone(UTC)
            if instant > last:
                last = instant
                yield instant

    def next_after(self, after: datetime) -> datetime:
        return next(self.fire_times(after))

    def between(self, after: datetime, until: datetime, limit: int) -> list[datetime]:
        """Up to `limit` fire instants in (after, until], oldest first."""
        found: list[datetime] = []
        for instant in self.fire_times(after):
            if instant > until or len(found) >= limit:
                break
            found.append(instant)
        return found
