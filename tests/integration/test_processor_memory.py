"""A batch-engine worker's memory stays bounded over many deduplication windows: with a
2-second window and a steady stream of distinct events for 40 s (20 windows), the marks in its
local store, the changelog on the broker and the worker's RSS all stop growing.

The faust engine keeps its marks in the same store and changelog; its RSS is faust's own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from runtime.kafka import whole_topic_consumer
from runtime.settings import Settings
from schemas.topics import PROCESSOR_DEDUPE
from tests.integration.support.isolation import drop_topics, isolated_settings
from tests.integration.support.processor_records import (
    Records,
    one_trigger_per_partition,
    steady_stream,
)
from tests.integration.support.processor_workers import metric, processor_workers, rss_mb

pytestmark = pytest.mark.integration

WINDOW_S = 2.0
RUN_S = 40.0
SAMPLE_EVERY_S = 2.0
# The local broker looks for segments past their retention this often
# (deploy/kafka/server.properties, log.retention.check.interval.ms).
RETENTION_CHECK_S = 10.0


@pytest.fixture
async def short_window(base_settings: Settings, database_url: str) -> AsyncIterator[Settings]:
    """Topics created for a 2 s window: the changelog keeps 4 s, in 0.5 s segments."""
    settings = await isolated_settings(
        base_settings, database_url, processor__dedupe_window_s=WINDOW_S
    )
    yield settings
    await drop_topics(settings)


@dataclass
class Sample:
    at_s: float
    rss_mb: float
    store_keys: float
    changelog_records: int


async def changelog_records(settings: Settings) -> int:
    """Records the broker holds on the changelog: end offsets minus start offsets."""
    consumer = await whole_topic_consumer(settings, PROCESSOR_DEDUPE.name(settings.topics.prefix))
    try:
        partitions = list(consumer.assignment())
        starts = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return sum(ends[tp] - starts[tp] for tp in partitions)


async def test_store_changelog_and_rss_stop_growing_over_many_windows(
    short_window: Settings,
) -> None:
    settings = short_window
    samples: list[Sample] = []
    env = {"TRIGGERLINE_PROCESSOR_DEDUPE_WINDOW_S": str(WINDOW_S)}
    async with Records(settings) as records:
        triggers = await one_trigger_per_partition(records)
        with processor_workers(settings, 1, "batch", **env) as group:
            worker = group.workers[0]
            started = time.monotonic()
            async with steady_stream(records, triggers) as sent:
                while time.monotonic() - started < RUN_S:
                    await asyncio.sleep(SAMPLE_EVERY_S)
                    keys = await metric(worker, "triggerline_processor_dedupe_keys")
                    samples.append(
                        Sample(
                            time.monotonic() - started,
                            rss_mb(worker.process.pid),
                            keys or 0.0,
                            await changelog_records(settings),
                        )
                    )
            assert worker.process.poll() is None

    rate = len(sent.events) / RUN_S
    # After the first third the stream has run many windows; the last third may not exceed it.
    middle = [s for s in samples if RUN_S / 3 <= s.at_s < 2 * RUN_S / 3]
    last = [s for s in samples if s.at_s >= 2 * RUN_S / 3]
    # The store keeps at most two windows of marks (RocksDB's count is an estimate).
    assert max(s.store_keys for s in last) <= 2 * WINDOW_S * rate * 1.5, samples
    # The broker keeps two windows, plus the open quarter-window segment, up to one retention
    # check's worth, and a few seconds of scheduling slack; and it holds that level.
    held_s = 2 * WINDOW_S + WINDOW_S / 4 + RETENTION_CHECK_S + 5
    assert max(s.changelog_records for s in last) <= rate * held_s, samples
    assert max(s.changelog_records for s in last) <= max(s.changelog_records for s in middle) * 1.5
    assert max(s.rss_mb for s in last) <= max(s.rss_mb for s in middle) + 15, samples
