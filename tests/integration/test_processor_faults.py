"""Injected failures stop a worker instead of being skipped, on both engines: a rebalance
listener that fails while taking on partitions, and a transaction step (sending the consumed
offsets) that fails. Each worker exits with status 75 at once, and after the restarts every
event is still routed once and decided once."""

from __future__ import annotations

import asyncio

import pytest

from processors.stop import EXIT_TRANSACTION_LOST
from runtime.settings import Settings
from tests.integration.support.processor_outputs import (
    all_routed,
    assert_decided_once,
    assert_exactly_once,
)
from tests.integration.support.processor_records import (
    Records,
    one_trigger_per_partition,
    produce_steadily,
)
from tests.integration.support.processor_workers import ENGINES, SHORT_SESSION, processor_workers

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_failed_listener_and_a_failed_transaction_step_stop_the_worker(
    settings: Settings, engine: str
) -> None:
    async with Records(settings) as records:
        triggers = await one_trigger_per_partition(records)
        # A worker that stops dead leaves the group when its session expires.
        with processor_workers(settings, 0, engine, **SHORT_SESSION) as group:
            # The first worker fails taking on its partitions; its replacement fails sending
            # the offsets of its third transaction; the next one runs on.
            group.start(TRIGGERLINE_PROCESSOR_FAULT="assigned:1")
            supervising = asyncio.create_task(
                group.supervise({"TRIGGERLINE_PROCESSOR_FAULT": "send-offsets:3"})
            )
            sent = await produce_steadily(records, triggers, 1500, resends=5)
            events = await all_routed(settings, len(sent.events))
            supervising.cancel()

    assert group.exits == [EXIT_TRANSACTION_LOST, EXIT_TRANSACTION_LOST]
    assert_exactly_once(events, sent.events)
    await assert_decided_once(settings, sent)
