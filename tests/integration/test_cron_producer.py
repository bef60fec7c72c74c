"""The cron producer on real Kafka: misfire policies, pause, fencing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka.errors import IllegalOperation, KafkaError

from ingest.cron.producer import CronProducer, tick_id
from ingest.cron.triggers import MisfirePolicy
from runtime.kafka import durable_producer
from runtime.settings import Settings
from schemas.ticks import CronProgress
from tests.integration.support.cron import SteppedClock, cron_config, publish, wait_for_ticks
from tests.integration.support.polling import eventually

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 27, 12, 0, 30, tzinfo=UTC)
LAST_FIRED = datetime(2026, 11, 27, 11, 50, tzinfo=UTC)


@asynccontextmanager
async def running(producer: CronProducer) -> AsyncIterator[CronProducer]:
    task = asyncio.create_task(producer.run())
    try:
        yield producer
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.mark.parametrize(
    ("misfire", "expected"),
    [
        ("skip", [("12:00", 0)]),
        ("fire_once", [("11:59", 9), ("12:00", 0)]),
        ("backfill", [("11:57", 0), ("11:58", 0), ("11:59", 0), ("12:00", 0)]),
    ],
)
async def test_misfire_policy_after_an_outage(
    settings: Settings, misfire: MisfirePolicy, expected: list[tuple[str, int]]
) -> None:
    # The last leader fired 11:50, then every producer was down until 12:00:30.
    config = cron_config(
        "* * * * *", datetime(2026, 11, 1, tzinfo=UTC), misfire=misfire, backfill_max_count=3
    )
    await publish(settings, config, progress=[CronProgress(config.trigger_id, LAST_FIRED)])

    async with running(CronProducer(settings, clock=SteppedClock(NOW))):
        ticks = await wait_for_ticks(settings, len(expected))

    assert [(t.scheduled_at.strftime("%H:%M"), t.missed) for t in ticks] == expected
    assert all(t.tick_id == tick_id(config.trigger_id, t.scheduled_at) for t in ticks)
    assert all(t.fired_at == NOW for t in ticks)


async def test_pause_takes_effect_before_the_next_tick(settings: Settings) -> None:
    clock = SteppedClock(datetime(2026, 11, 27, 12, 0, 30, tzinfo=UTC))
    created = datetime(2026, 11, 27, 11, 59, 30, tzinfo=UTC)
    paused_one = cron_config("* * * * *", created)
    sentinel = cron_config("* * * * *", created)
    await publish(settings, paused_one, sentinel)

    async with running(CronProducer(settings, clock=clock)) as producer:
        first = await wait_for_ticks(settings, 2)
        assert sorted(t.trigger_id for t in first) == sorted(
            [paused_one.trigger_id, sentinel.trigger_id]
        )

        paused = cron_config(
            "* * * * *", clock.now, status="paused", revision=2, trigger_id=paused_one.trigger_id
        )
        await publish(settings, paused)

        async def pause_seen() -> bool | None:
            entry = producer.view.get(paused_one.trigger_id)
            return True if entry is not None and not entry.active else None

        await eventually(pause_seen)
        clock.now = datetime(2026, 11, 27, 12, 1, 30, tzinfo=UTC)
        # The sentinel's 12:01 tick proves the producer evaluated both triggers at 12:01:30.
        ticks = await wait_for_ticks(settings, 3)

    later = [t for t in ticks if t.scheduled_at.minute == 1]
    assert [t.trigger_id for t in later] == [sentinel.trigger_id]


async def test_a_fenced_former_leader_cannot_fire(settings: Settings) -> None:
    clock = SteppedClock(NOW)
    config = cron_config("* * * * *", NOW - timedelta(minutes=5))
    await publish(settings, config)
    producer = CronProducer(settings, clock=clock)
    await producer.view.start()
    await producer.view.wait_ready(30)
    stale = durable_producer(settings, transactional_id=f"{settings.topics.prefix}.cron-producer")
    await stale.start()
    try:
        # A newer leader initialises the same transactional id, bumping its epoch.
        newer = durable_producer(
            settings, transactional_id=f"{settings.topics.prefix}.cron-producer"
        )
        await newer.start()
        await newer.stop()
        # Depending on when the fencing reaches it, aiokafka reports it as a Kafka error or
        # as a send outside a transaction; the leader loop stops firing on either.
        with pytest.raises((KafkaError, IllegalOperation)):
            await producer.fire_due(stale, {}, NOW)
    finally:
        await stale.stop()
        await producer.view.stop()


async def test_a_producer_cancelled_while_its_view_loads_leaves_no_consumer_behind(
    settings: Settings,
) -> None:
    task = asyncio.create_task(CronProducer(settings).run())
    # Let it start its view and begin waiting for it to load, then cancel (as ingest's
    # shutdown does when it comes early).
    for _ in range(3):
        await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    views = [t for t in asyncio.all_tasks() if t.get_name().startswith("config-view-")]
    assert views == []
