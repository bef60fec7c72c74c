"""Cron ticks -> normalized events. One trigger's ticks share one correlation id: the trigger."""

from __future__ import annotations

from typing import Any

from schemas.ticks import CRON_TICK, CronTick


def parse_tick(body: str) -> CronTick:
    """The tick in a cron raw event's body; `RecordDecodeError` if it is not one."""
    return CRON_TICK.decode(body.encode())


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
