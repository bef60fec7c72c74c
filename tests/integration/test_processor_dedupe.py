"""Deduplication marks across restarts, on both engines: an event whose first transaction was
aborted is routed once (its mark went with the transaction), and resends are recognised after a
warm restart (local store kept) and a cold one (local store deleted, rebuilt from the
changelog)."""

from __future__ import annotations

import asyncio
import shutil
import signal
import uuid

import pytest

from runtime.settings import Settings
from tests.integration.support.polling import eventually
from tests.integration.support.processor_outputs import (
    all_routed,
    assert_decided_once,
    assert_exactly_once,
    raw_events_committed,
)
from tests.integration.support.processor_records import (
    Records,
    Sent,
    one_trigger_per_partition,
    slack_message,
    trigger_of,
)
from tests.integration.support.processor_workers import (
    ENGINES,
    SHORT_SESSION,
    Worker,
    WorkerGroup,
    dedupe_store_dir,
    metric,
    processor_workers,
)
from tests.integration.support.stages import wait_until_ready

pytestmark = pytest.mark.integration

RESTORED = "triggerline_processor_dedupe_restored_total"


async def send_and_settle(
    records: Records, triggers: list[str], settings: Settings, new: int, resend: list[str]
) -> list[str]:
    """Sends `new` fresh events and resends of `resend`; waits until all are committed."""
    ids = [f"Ev{uuid.uuid4().hex}" for _ in range(new)]
    await records.raw(
        *(slack_message(trigger_of(triggers, i), i) for i in ids),
        *(slack_message(trigger_of(triggers, i), i, retry=1) for i in resend),
    )

    async def committed() -> bool | None:
        return True if await raw_events_committed(settings) else None

    await eventually(committed, timeout_s=90, interval_s=0.5)
    return ids


async def restored_marks(worker: Worker) -> float:
    """How many marks the worker read from the changelog, once it has taken its partitions."""

    async def reported() -> float | None:
        return await metric(worker, RESTORED)

    return await eventually(reported, timeout_s=30)


async def stop_when_ready(group: WorkerGroup, worker: Worker) -> None:
    """SIGTERM once the worker has restored its partitions' marks (its /readyz says so)."""
    await wait_until_ready(f"http://127.0.0.1:{worker.metrics_port}/readyz")
    assert await group.stop_worker(worker) == 0


@pytest.mark.parametrize("engine", ENGINES)
async def test_marks_survive_warm_and_cold_restarts_and_die_with_an_aborted_transaction(
    settings: Settings, engine: str
) -> None:
    async with Records(settings) as records:
        triggers = await one_trigger_per_partition(records)
        # The killed worker leaves the group when its session expires.
        with processor_workers(settings, 0, engine, **SHORT_SESSION) as group:
            # The first worker dies just before its first commit: that transaction, with its
            # routed records and marks, is aborted. Its replacement runs on.
            group.start(TRIGGERLINE_PROCESSOR_FAULT="before-commit:1")
            supervising = asyncio.create_task(group.supervise())
            first = await send_and_settle(records, triggers, settings, 60, [])
            supervising.cancel()
            assert group.exits == [-signal.SIGKILL]

            await stop_when_ready(group, group.workers[-1])
            warm = group.start()
            resent_warm = first[:20]
            second = await send_and_settle(records, triggers, settings, 20, resent_warm)
            warm_restored = await restored_marks(warm)

            await stop_when_ready(group, warm)
            shutil.rmtree(dedupe_store_dir(settings))
            cold = group.start()
            resent_cold = first[20:40]
            third = await send_and_settle(records, triggers, settings, 20, resent_cold)
            cold_restored = await restored_marks(cold)

    sent = Sent(set(first + second + third), set(resent_warm + resent_cold))
    assert_exactly_once(await all_routed(settings, len(sent.events)), sent.events)
    await assert_decided_once(settings, sent)
    # Warm, the local store was complete; cold, all 80 marks came back from the changelog.
    assert (warm_restored, cold_restored) == (0, 80)
