"""Batch-engine workers joining and leaving a group mid-stream (SIGTERM and SIGKILL): every
event is still routed once and decided once, and no worker has to stop itself.

The faust engine runs the same scenario in benchmarks/processor_rebalance_soak.py: faust loses
its transaction in some rebalances and is restarted, which a soak counts better than a test."""

from __future__ import annotations

import signal

import pytest

from runtime.settings import Settings
from tests.integration.support.polling import eventually
from tests.integration.support.processor_outputs import (
    all_routed,
    assert_decided_once,
    assert_exactly_once,
    routed_grows_by,
)
from tests.integration.support.processor_records import (
    Records,
    one_trigger_per_partition,
    steady_stream,
)
from tests.integration.support.processor_workers import (
    SHORT_SESSION,
    Worker,
    owned_by,
    processor_workers,
)

pytestmark = pytest.mark.integration


async def owns_partitions(worker: Worker) -> set[str]:
    async def owning() -> set[str] | None:
        return await owned_by(worker) or None

    return await eventually(owning, timeout_s=60)


async def test_workers_joining_and_leaving_mid_stream_route_each_event_once(
    settings: Settings,
) -> None:
    async with Records(settings) as records:
        triggers = await one_trigger_per_partition(records)
        with processor_workers(settings, 1, "batch", **SHORT_SESSION) as group:
            async with steady_stream(records, triggers) as sent:
                await routed_grows_by(settings, 200)
                polite = group.start()
                await owns_partitions(polite)
                await routed_grows_by(settings, 200)
                left_politely = await group.stop_worker(polite)
                await routed_grows_by(settings, 200)
                crashing = group.start()
                await owns_partitions(crashing)
                await routed_grows_by(settings, 200)
                killed = await group.stop_worker(crashing, signal.SIGKILL)
                # The survivor takes the dead worker's partitions once its session expires.
                await routed_grows_by(settings, 400)
            events = await all_routed(settings, len(sent.events))
            survivor_exit = group.workers[0].process.poll()

    assert (left_politely, killed, survivor_exit) == (0, -signal.SIGKILL, None)
    assert_exactly_once(events, sent.events)
    await assert_decided_once(settings, sent)
