"""The body of a schedule tick, as the cron producer writes it into a raw event."""

from __future__ import annotations

from datetime import datetime

import msgspec

from schemas.codec import RecordCodec


class CronTick(msgspec.Struct, frozen=True):
    # A deterministic hash of (trigger id, scheduled time): a tick fired twice across a leader
    # failover carries the same id, and the processors' deduplication drops the second one.
    tick_id: str
    trigger_id: str
    schedule: str
    timezone: str
    scheduled_at: datetime
    fired_at: datetime
    # With the `fire_once` misfire policy, how many scheduled ticks this one stands for.
    missed: int = 0
    v: int = 1


class CronProgress(msgspec.Struct, frozen=True):
    """The last scheduled time fired for a trigger, committed in one transaction with its tick."""

    trigger_id: str
    last_scheduled_at: datetime
    v: int = 1


# A tick travels inside a raw event's body, not as a topic's value, so it has a codec of its own.
CRON_TICK = RecordCodec(CronTick)
