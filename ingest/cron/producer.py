"""The cron producer: fires ticks for every active cron trigger while it is the leader.

Ticks and the progress record that says they were fired commit in one Kafka transaction under a
fixed transactional id. A new leader's producer fences the previous one's, so a stalled former
leader can never commit another tick, and a restart resumes exactly where the last commit ended.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaProducer
from aiokafka.errors import IllegalOperation, KafkaError

from ingest.cron.election import LeaderElection
from ingest.cron.misfire import DEFAULT_GRACE, Plan, plan_ticks
from ingest.cron.progress import load_progress
from ingest.cron.triggers import CronTrigger, compile_cron_trigger
from runtime.config_view import TriggerConfigView
from runtime.kafka import durable_producer
from runtime.logging import log_context
from runtime.metrics import CRON_ACTIVE_SCHEDULES, CRON_LATENESS, CRON_TICKS
from runtime.settings import Settings
from schemas.records import RawEvent
from schemas.ticks import CRON_TICK, CronProgress, CronTick
from schemas.topics import CRON_PROGRESS, RAW_EVENTS

log = logging.getLogger("triggerline.cron")

Clock = Callable[[], datetime]
# Config changes (pause, schedule update, delete) are noticed at least this often.
MAX_IDLE_S = 1.0
RETRY_AFTER_ERROR_S = 5.0


def utc_now() -> datetime:
    return datetime.now(UTC)


def tick_id(trigger_id: str, scheduled_at: datetime) -> str:
    """The same (trigger, scheduled time) always yields the same id, whoever fires it."""
    stamp = scheduled_at.astimezone(UTC).isoformat()
    return hashlib.sha256(f"{trigger_id}|{stamp}".encode()).hexdigest()[:32]


class CronProducer:
    def __init__(
        self,
        settings: Settings,
        clock: Clock = utc_now,
        grace: timedelta = DEFAULT_GRACE,
        session_timeout_ms: int = 10_000,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._grace = grace
        self._raw_topic = RAW_EVENTS.name(settings.topics.prefix)
        self._progress_topic = CRON_PROGRESS.name(settings.topics.prefix)
        self.view: TriggerConfigView[CronTrigger | None] = TriggerConfigView(
            settings, "cron", compile_cron_trigger
        )
        self.election = LeaderElection(settings, session_timeout_ms)

    async def run(self) -> None:
        await self.view.start()
        try:
            # Cancelled while it waits, the view must still stop: its consumer would outlive
            # the producer.
            await self.view.wait_ready()
            await self.election.start()
            while True:
                await self.election.elected.wait()
                try:
                    await self._lead()
                except (KafkaError, IllegalOperation) as exc:
                    # Fenced by a newer leader (aiokafka may report that as a send outside a
                    # transaction), or the broker went away. Nothing uncommitted counts; wait
                    # for the group to settle who leads before firing again.
                    log.warning("stopped firing ticks", extra={"error": repr(exc)})
                    deposed = asyncio.create_task(self.election.deposed.wait())
                    await asyncio.wait({deposed}, timeout=RETRY_AFTER_ERROR_S)
                    deposed.cancel()
        finally:
            await self.election.stop()
            await self.view.stop()

    async def _lead(self) -> None:
        # init_transactions under the fixed id bumps its epoch and fences any former leader.
        producer = durable_producer(
            self._settings, transactional_id=f"{self._settings.topics.prefix}.cron-producer"
        )
        await producer.start()
        try:
            cursors = await load_progress(self._settings)
            log.info("firing ticks", extra={"triggers_with_progress": len(cursors)})
            while self.election.is_leader:
                wait_s = await self.fire_due(producer, cursors, self._clock())
                deposed = asyncio.create_task(self.election.deposed.wait())
                await asyncio.wait({deposed}, timeout=wait_s)
                deposed.cancel()
        finally:
            await producer.stop()

    async def fire_due(
        self, producer: AIOKafkaProducer, cursors: dict[str, datetime], now: datetime
    ) -> float:
        """Fire what is due at `now`; return how long to wait before looking again."""
        triggers = {t.trigger_id: t for t in self.view.values() if t is not None and t.active}
        CRON_ACTIVE_SCHEDULES.set(len(triggers))
        plans: dict[str, Plan] = {}
        for trigger in triggers.values():
            cursor = max(cursors.get(trigger.trigger_id, trigger.changed_at), trigger.changed_at)
            plan = plan_ticks(trigger, cursor, now, self._grace)
            if plan.cursor != cursor or plan.ticks:
                plans[trigger.trigger_id] = plan
        forgotten = [i for i in cursors if i not in triggers and self.view.get(i) is None]
        if plans or forgotten:
            await self._commit(producer, triggers, plans, forgotten, now)
            for trigger_id, plan in plans.items():
                cursors[trigger_id] = plan.cursor
            for trigger_id in forgotten:
                del cursors[trigger_id]
        return self._seconds_until_next(triggers, cursors, now)

    async def _commit(
        self,
        producer: AIOKafkaProducer,
        triggers: dict[str, CronTrigger],
        plans: dict[str, Plan],
        forgotten: list[str],
        now: datetime,
    ) -> None:
        async with producer.transaction():
            for trigger_id, plan in plans.items():
                trigger = triggers[trigger_id]
                for planned in plan.ticks:
                    await self._send_tick(
                        producer, trigger, planned.scheduled_at, planned.missed, now
                    )
                progress = CronProgress(trigger_id, plan.cursor)
                await producer.send(
                    self._progress_topic, CRON_PROGRESS.encode(progress), key=trigger_id.encode()
                )
                CRON_TICKS.labels("skipped").inc(plan.skipped)
            # A deleted trigger's progress goes too, so the compacted topic does not grow forever.
            for trigger_id in forgotten:
                await producer.send(self._progress_topic, None, key=trigger_id.encode())
        acknowledged = self._clock()
        for plan in plans.values():
            for planned in plan.ticks:
                CRON_TICKS.labels("fired").inc()
                CRON_LATENESS.observe((acknowledged - planned.scheduled_at).total_seconds())

    async def _send_tick(
        self,
        producer: AIOKafkaProducer,
        trigger: CronTrigger,
        scheduled_at: datetime,
        missed: int,
        now: datetime,
    ) -> None:
        tick = CronTick(
            tick_id=tick_id(trigger.trigger_id, scheduled_at),
            trigger_id=trigger.trigger_id,
            schedule=trigger.schedule.expression,
            timezone=trigger.schedule.timezone.key,
            scheduled_at=scheduled_at,
            fired_at=now,
            missed=missed,
        )
        event = RawEvent(
            id=uuid.uuid4().hex,
            trigger_id=trigger.trigger_id,
            project_id=trigger.project_id,
            definition=trigger.definition,
            received_at=now,
            content_type="application/json",
            body=CRON_TICK.encode(tick).decode(),
        )
        with log_context(event_id=tick.tick_id, trigger_id=trigger.trigger_id):
            log.info("tick", extra={"scheduled_at": scheduled_at.isoformat(), "missed": missed})
        await producer.send(
            self._raw_topic, RAW_EVENTS.encode(event), key=trigger.trigger_id.encode()
        )

    def _seconds_until_next(
        self, triggers: dict[str, CronTrigger], cursors: dict[str, datetime], now: datetime
    ) -> float:
        upcoming = [
            trigger.schedule.next_after(max(cursors.get(i, now), trigger.changed_at))
            for i, trigger in triggers.items()
        ]
        if not upcoming:
            return MAX_IDLE_S
        return max(0.0, min(MAX_IDLE_S, (min(upcoming) - now).total_seconds()))
