"""Schedules: a cron expression in an IANA time zone, fired by ingest's cron producer.

A tick's body is a `CronTick`. One trigger's ticks share one correlation id, the trigger, so
they are delivered in order.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from kinds.base import Expression, Ignored, Normalized, TriggerKind, UnroutableEvent
from kinds.config import ConfigModel, config_error
from kinds.schedule import ScheduleError, parse_expression, parse_timezone
from schemas.codec import RecordDecodeError
from schemas.records import RawEvent
from schemas.ticks import CRON_TICK, CronTick


def _cron_expression(expression: str) -> str:
    try:
        return parse_expression(expression)
    except ScheduleError as error:
        raise config_error("cron_invalid", str(error)) from None


def _time_zone(name: str) -> str:
    try:
        parse_timezone(name)
    except ScheduleError as error:
        raise config_error("timezone_invalid", str(error)) from None
    return name


class CronConfig(ConfigModel):
    schedule: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_cron_expression)]
    timezone: Annotated[str, Field(max_length=64), AfterValidator(_time_zone)] = "UTC"
    misfire: Literal["skip", "fire_once", "backfill"] = Field(
        default="skip", description="What happens to ticks missed while nothing was running."
    )
    backfill_max_count: int = Field(
        default=100, ge=0, le=1000, description="With `backfill`: at most this many missed ticks."
    )
    backfill_max_age_s: float = Field(
        default=86_400, gt=0, le=30 * 86_400, description="With `backfill`: only this recent."
    )


def tick_fields(tick: CronTick) -> dict[str, Any]:
    """What a routed tick carries; times are RFC 3339 strings, as CEL's `timestamp()` reads."""
    return {
        "trigger_id": tick.trigger_id,
        "schedule": tick.schedule,
        "timezone": tick.timezone,
        "scheduled_at": tick.scheduled_at.isoformat(),
        "fired_at": tick.fired_at.isoformat(),
        "missed": tick.missed,
        "tick_id": tick.tick_id,
    }


class Cron(TriggerKind):
    slug = "cron"
    title = "Schedule"
    description = "Fires on a cron schedule in an IANA time zone."
    arrives_by = "schedule"
    config_model = CronConfig

    def normalize(self, raw: RawEvent, correlation: Expression | None) -> Normalized | Ignored:
        try:
            tick = CRON_TICK.decode(raw.body.encode())
        except RecordDecodeError as exc:
            raise UnroutableEvent(f"body is not a cron tick: {exc.problem}") from None
        fields = tick_fields(tick)
        return Normalized(
            event_id=tick.tick_id,
            event_type="tick",
            correlation_id=tick.trigger_id,
            time=tick.scheduled_at,
            fields=fields,
            data={"cron": fields},
        )


KIND = Cron()
