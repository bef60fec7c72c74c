"""A stalled worker is fenced: SIGSTOP worker A past its session timeout, let worker B take its
partitions over, then SIGCONT A. A's next transactional step fails against B's newer epoch, so
A exits (status 75) without a single record of its own becoming visible, on both engines."""

from __future__ import annotations

import asyncio
import signal

import pytest

from processors.stop import EXIT_TRANSACTION_LOST
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
    ENGINES,
    SHORT_SESSION,
    owned_by,
    processor_workers,
)

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_stalled_worker_is_fenced_and_nothing_it_wrote_afterwards_is_seen(
    settings: Settings, engine: str
) -> None:
    async with Records(settings) as records:
        triggers = await one_trigger_per_partition(records)
        with processor_workers(settings, 0, engine, **SHORT_SESSION) as group:
            # A commits every 5 s, so it surely holds processed, uncommitted work when stopped.
            stalled = group.start(TRIGGERLINE_PROCESSOR_COMMIT_INTERVAL_S="5")
            async with steady_stream(records, triggers) as sent:
                await routed_grows_by(settings, 100)
                stalled.process.send_signal(signal.SIGSTOP)
                successor = group.start()

                async def owns_everything() -> bool | None:
                    return True if len(await owned_by(successor)) == len(triggers) else None

                await eventually(owns_everything, timeout_s=90)
                await routed_grows_by(settings, 200)
                stalled.process.send_signal(signal.SIGCONT)
                stalled_exit = await asyncio.to_thread(stalled.process.wait, 60)
                await routed_grows_by(settings, 200)
            events = await all_routed(settings, len(sent.events))
            successor_exit = successor.process.poll()

    assert (stalled_exit, successor_exit) == (EXIT_TRANSACTION_LOST, None)
    assert_exactly_once(events, sent.events)
    await assert_decided_once(settings, sent)
