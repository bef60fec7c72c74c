"""Two cron producers, one leader: kill the leader and the standby carries on, firing no tick
twice and skipping none. Runs on the real clock with a `* * * * *` schedule.

The trigger was created minutes ago and backfills what it missed, so the first leader fires
the past minutes at once and is killed right after; the standby must fire none of them again
and fire the next minute. The test therefore waits for one minute boundary at most, not two."""

from __future__ import annotations

import asyncio
import itertools
import signal
import sys
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from runtime.settings import Settings
from schemas.topics import RAW_EVENTS
from tests.integration.support.cron import cron_config, publish, ticks_of, wait_for_ticks
from tests.integration.support.polling import eventually
from tests.integration.support.stages import free_port, stage_env
from tests.integration.support.topic_reader import read_all

pytestmark = pytest.mark.integration

SESSION_TIMEOUT_S = 10
# Past minutes the first leader fires at once: the trigger was created this long ago.
BACKFILLED = 3


async def leads(client: httpx.AsyncClient, port: int) -> bool:
    try:
        metrics = (await client.get(f"http://127.0.0.1:{port}/metrics", timeout=1)).text
    except httpx.HTTPError:
        return False
    return "triggerline_cron_leader 1.0" in metrics


async def test_standby_takes_over_without_duplicates_or_gaps(settings: Settings) -> None:
    config = cron_config(
        "* * * * *",
        datetime.now(UTC) - timedelta(minutes=BACKFILLED),
        misfire="backfill",
        backfill_max_count=BACKFILLED,
    )
    await publish(settings, config)
    ports = [free_port(), free_port()]
    processes = []
    for port in ports:
        env = {**stage_env(settings), "TRIGGERLINE_CRON_METRICS_PORT": str(port)}
        processes.append(
            await asyncio.create_subprocess_exec(sys.executable, "-m", "ingest.cron", env=env)
        )
    try:
        async with httpx.AsyncClient() as client:

            async def leader() -> int | None:
                states = [await leads(client, port) for port in ports]
                return states.index(True) if states.count(True) == 1 else None

            await wait_for_ticks(settings, BACKFILLED, timeout_s=60)
            killed = await eventually(leader)
            processes[killed].send_signal(signal.SIGKILL)
            await processes[killed].wait()
            # Whatever the dead leader fired, a next minute included if it was that close.
            before = ticks_of(await read_all(settings, RAW_EVENTS.name(settings.topics.prefix)))
            standby = 1 - killed
            # The standby is elected once the dead member's session times out, and must fire the
            # very next scheduled minute, late by at most the failover time.

            async def standby_leads() -> bool | None:
                return await leads(client, ports[standby]) or None

            await eventually(standby_leads, timeout_s=3 * SESSION_TIMEOUT_S)
            ticks = await wait_for_ticks(
                settings, len(before) + 1, timeout_s=60 + 3 * SESSION_TIMEOUT_S
            )
    finally:
        for process in processes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                await process.wait()

    scheduled = [t.scheduled_at for t in ticks]
    assert len({t.tick_id for t in ticks}) == len(ticks), "a tick was fired twice"
    assert all(b - a == timedelta(minutes=1) for a, b in itertools.pairwise(scheduled))
    after_failover = ticks[len(before) :]
    assert after_failover, "the standby fired nothing"
    assert all(
        t.fired_at - t.scheduled_at < timedelta(seconds=SESSION_TIMEOUT_S * 3)
        for t in after_failover
    )
