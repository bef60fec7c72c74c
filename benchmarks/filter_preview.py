"""How long a filter preview takes on real Kafka and PostgreSQL: the newest 100 and 1,000
events of a trigger, and a time range, with a two-clause filter.

Setup: one webhook trigger in a scratch database; on the raw topic, its 1,000 events scattered
among 10,000 events of other triggers whose ids hash to the same partition (the worst case:
every record read is one the preview must decode and skip). Each figure is the whole service
call (`ingest.replay.preview.preview_filter`): the trigger's lookup, a consumer's start, the
reads and the verdicts. Topics and database are removed afterwards.

    .venv/bin/python -m benchmarks.filter_preview [--events 1000] [--others 10000] [--runs 7]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import orjson
from aiokafka.partitioner import DefaultPartitioner
from psycopg import AsyncConnection

from deploy.migrate import apply_migrations
from ingest.registry.store import NewTrigger, create_project
from ingest.replay.preview import FilterPreview, PreviewWindow, preview_filter
from ingest.replay.rules import RuleOverrides
from runtime.kafka import durable_producer
from runtime.secrets import Keyring
from runtime.settings import Settings
from schemas.records import RawEvent
from schemas.topics import RAW_EVENTS
from schemas.triggers import Target
from tests.integration.support.control_plane import WHSEC
from tests.integration.support.isolation import drop_topics, isolated_settings, scratch_database
from tests.integration.support.registry import create_trigger, only

FILTER = 'event.x == 1 && event.y.startsWith("a")'


def ids_on_partition(partition: int, count: int) -> list[str]:
    """Trigger ids whose events go to `partition` of the raw topic."""
    partitions = list(range(RAW_EVENTS.partitions))
    partitioner = DefaultPartitioner()
    found: list[str] = []
    while len(found) < count:
        candidate = str(uuid.uuid4())
        if partitioner(candidate.encode(), partitions, partitions) == partition:
            found.append(candidate)
    return found


def event(trigger_id: str, number: int) -> RawEvent:
    body = {
        "x": number % 3,
        "y": ("abc", "bcd", "axe", "xyz")[number % 4],
        "order": {"id": f"ord_{number}", "total": number * 7, "currency": "EUR"},
        "customer": {"id": f"cus_{number % 97}", "email": f"c{number}@example.com"},
        "items": [{"sku": f"sku-{n}", "qty": n} for n in range(5)],
    }
    return RawEvent(
        id=uuid.uuid4().hex,
        trigger_id=trigger_id,
        project_id="bench",
        definition="webhook",
        received_at=datetime.now(UTC),
        content_type="application/json",
        body=orjson.dumps(body).decode(),
        headers={"webhook-id": f"msg_{trigger_id[:8]}_{number}"},
    )


async def seed(settings: Settings, trigger_id: str, events: int, others: int) -> None:
    partition = DefaultPartitioner()(
        trigger_id.encode(), list(range(RAW_EVENTS.partitions)), list(range(RAW_EVENTS.partitions))
    )
    neighbours = ids_on_partition(partition, 20)
    records = [event(trigger_id, n) for n in range(events)]
    records += [event(neighbours[n % len(neighbours)], n) for n in range(others)]
    # Random ids: the trigger's events end up scattered among the others.
    records.sort(key=lambda record: record.id)
    producer = durable_producer(settings, linger_ms=20, max_batch_size=1024 * 1024)
    await producer.start()
    try:
        topic = RAW_EVENTS.name(settings.topics.prefix)
        futures = [
            await producer.send(topic, RAW_EVENTS.encode(r), key=r.trigger_id.encode())
            for r in records
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def timed(
    settings: Settings, project_id: str, trigger_id: str, window: PreviewWindow, runs: int
) -> tuple[list[float], FilterPreview]:
    seconds: list[float] = []
    previews: list[FilterPreview] = []
    for _ in range(runs):
        async with await AsyncConnection.connect(
            settings.database.url.get_secret_value(), autocommit=True
        ) as conn:
            started = time.perf_counter()
            previews.append(
                await preview_filter(
                    conn,
                    settings,
                    project_id=project_id,
                    trigger_id=trigger_id,
                    overrides=RuleOverrides(filter=FILTER),
                    window=window,
                )
            )
            seconds.append(time.perf_counter() - started)
    return seconds, previews[-1]


async def main(events: int, others: int, runs: int) -> None:
    base = Settings()
    with scratch_database(base.database.url.get_secret_value()) as url:
        apply_migrations(url)
        settings = await isolated_settings(base, url)
        try:
            async with await AsyncConnection.connect(url, autocommit=True) as conn:
                project_id = await create_project(conn, "bench")
                keyring = Keyring.from_setting(settings.secret_keys)
                new = NewTrigger(
                    project_id,
                    "webhook",
                    "bench",
                    only(Target("noop")),
                    secrets={"WEBHOOK_SECRET": WHSEC},
                )
                trigger_id = (await create_trigger(conn, keyring, new)).trigger_id
            since = datetime.now(UTC) - timedelta(seconds=1)
            await seed(settings, trigger_id, events, others)
            until = datetime.now(UTC) + timedelta(seconds=1)
            print(
                f"{events} events of the trigger among {others} of others on its partition; "
                f"median and max of {runs} runs; load average {os.getloadavg()[0]:.2f}"
            )
            windows = {
                "last 100": PreviewWindow(last=100),
                f"last {events}": PreviewWindow(last=events),
                "time range (all)": PreviewWindow(since=since, until=until),
            }
            for name, window in windows.items():
                seconds, preview = await timed(settings, project_id, trigger_id, window, runs)
                print(
                    f"{name:>18}: {statistics.median(seconds) * 1000:7.1f} ms median, "
                    f"{max(seconds) * 1000:7.1f} ms max; {len(preview.events)} events, "
                    f"{preview.scanned} records scanned"
                    f"{' (the bound)' if preview.scan_bound_reached else ''}, "
                    f"totals {preview.totals}"
                )
            print(f"load average after: {os.getloadavg()[0]:.2f}")
        finally:
            await drop_topics(settings)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--others", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.events, arguments.others, arguments.runs))
