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
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

ALIASES = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)


class ScheduleError(ValueError):
    """The cron expression or the time zone is not usable; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Schedule:
    expression: str
    timezone: ZoneInfo

    @classmethod
    def parse(cls, expression: str, timezone: str = "UTC") -> Schedule:
        expression = " ".join(expression.split())
        if expression not in ALIASES and len(expression.split(" ")) != 5:
            raise ScheduleError(
                f"{expression!r} is not a 5-field cron expression or an alias such as @hourly"
            )
        if not croniter.is_valid(expression):
            raise ScheduleError(f"{expression!r} is not a valid cron expression")
        try:
            zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ScheduleError(f"{timezone!r} is not an IANA time zone") from None
        return cls(expression, zone)

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
