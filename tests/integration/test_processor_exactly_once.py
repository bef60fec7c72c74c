"""Processors on the real broker, on both engines: exactly once across SIGKILLs, including one
between Kafka's commit and the local deduplication store's write, and two workers sharing the
partitions."""

from __future__ import annotations

import asyncio
import signal

import pytest

from runtime.settings import Settings
from tests.integration.support.polling import eventually
from tests.integration.support.processor_outputs import (
    all_routed,
    assert_decided_once,
    assert_exactly_once,
    routed_events,
)
from tests.integration.support.processor_records import (
    Records,
    one_trigger_per_partition,
    produce_steadily,
)
from tests.integration.support.processor_workers import (
    ENGINES,
    SHORT_SESSION,
    owned_by,
    processor_workers,
)

pytestmark = pytest.mark.integration


async def routed_at_least(settings: Settings, count: int) -> int:
    async def enough() -> int | None:
        routed = len(await routed_events(settings))
        return routed if routed >= count else None

    return await eventually(enough, timeout_s=90)


@pytest.mark.parametrize("engine", ENGINES)
async def test_killed_workers_lose_and_repeat_nothing(settings: Settings, engine: str) -> None:
    total = 3000
    async with Records(settings) as records:
        triggers = await one_trigger_per_partition(records)
        with processor_workers(settings, 1, engine, **SHORT_SESSION) as group:
            # The first replacement kills itself right after its third Kafka commit, before
            # that transaction's marks reach its local store; the next one runs on.
            supervising = asyncio.create_task(
                group.supervise({"TRIGGERLINE_PROCESSOR_FAULT": "after-commit:3"})
            )
            producing = asyncio.create_task(produce_steadily(records, triggers, total, resends=5))
            await routed_at_least(settings, 200)
            group.workers[0].process.kill()
            sent = await producing
            events = await all_routed(settings, total)
            supervising.cancel()

    assert group.exits == [-signal.SIGKILL, -signal.SIGKILL]
    assert_exactly_once(events, sent.events)
    # Resends after each restart were recognised from the restored marks.
    await assert_decided_once(settings, sent)


@pytest.mark.parametrize("engine", ENGINES)
async def test_two_workers_share_the_partitions_and_route_each_event_once(
    settings: Settings, engine: str
) -> None:
    total = 1200
    async with Records(settings) as records:
        triggers = await one_trigger_per_partition(records)
        with processor_workers(settings, 2, engine) as group:
            sent = await produce_steadily(records, triggers, total)
            events = await all_routed(settings, total)

            # Each worker reports lag for the partitions it owns: together all, none twice.
            async def both_own_partitions() -> list[set[str]] | None:
                owned = [await owned_by(worker) for worker in group.workers]
                return owned if all(owned) and sum(map(len, owned)) == len(triggers) else None

            owned = await eventually(both_own_partitions, timeout_s=30)

    assert_exactly_once(events, sent.events)
    assert owned[0].isdisjoint(owned[1])
    assert owned[0] | owned[1] == {str(p) for p in range(len(triggers))}
