"""Server time of the console's pages over 100,000 delivery-log rows, beside the API's JSON
routes that read the same data.

Setup: a scratch database and topic prefix; one project with 20 triggers (made through the API)
and 100,000 delivery-log rows written as the sink writes them (COPY, one transaction), spread
over the last two hours: half of the rows belong to one busy trigger, the rest to the others.
Most events are routed and delivered; some are skipped by the filter, retried, or dead-lettered.
The timed event has a retried delivery and shares its correlation id with 20 events of its
Slack thread; it and the busy trigger's 2,000 other raw events of the last five minutes are on
the raw-events topic, for the journey's payload. Each figure is a request through the whole
ingest app in-process (httpx over ASGI, session cookie and all): routing, the queries, the Kafka
reads and the rendering, without a socket. Each console page is timed beside the API route that
reads the same data: the ratio is what the page adds. Topics and database are removed afterwards.

    .venv/bin/python -m benchmarks.console_vs_api [--rows 100000] [--requests 200]

The target is under 200 ms per page (docs/performance.md).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from psycopg import AsyncConnection

from deploy.migrate import apply_migrations
from ingest.registry.api_keys import create_api_key
from ingest.registry.store import create_project
from runtime.kafka import durable_producer
from runtime.settings import Settings
from schemas.records import RawEvent
from schemas.topics import RAW_EVENTS
from tests.integration.support.console import sign_in
from tests.integration.support.control_plane import control_plane, webhook_trigger
from tests.integration.support.isolation import drop_topics, isolated_settings, scratch_database

TARGET_MS = 200.0
TRIGGERS = 20
THREAD_EVENTS = 20
RAW_EVENTS_SEEDED = 2000
SPREAD = timedelta(hours=2)
TARGET_REF = "https://hooks.example.com/triggerline"
COLUMNS = (
    "log_partition, log_offset, event_id, trigger_id, project_id, stage, outcome, at,"
    " correlation_id, target_kind, target_ref, attempt, reason, http_status, error, latency_ms,"
    " replay, replay_id, destination, received_at"
)
JOURNEY_EVENT = "Ev-journey"
JOURNEY_THREAD = "C123:1700000000.000100"


@dataclass(frozen=True)
class Event:
    trigger_id: str
    event_id: str
    correlation_id: str
    # Chooses the journey's shape (`steps`).
    number: int
    received: datetime


@dataclass(frozen=True)
class Seeded:
    project_id: str
    busy_trigger: str
    triggers: list[str]


def steps(number: int) -> list[tuple[str, str, dict[str, Any]]]:
    """One event's journey as (stage, outcome, fields), by a fixed mix: 1 in 10 skipped by the
    filter, 1 in 20 retried then delivered, 1 in 50 dead-lettered, the rest delivered."""
    routed = ("processor", "routed", {"destination": "default"})
    delivered = (
        "dispatcher",
        "delivered",
        {"destination": "default", "attempt": 1, "http_status": 200, "latency_ms": 42.0},
    )
    if number % 10 == 0:
        return [("processor", "skipped", {"reason": 'filter: event.channel_id == "C-ops"'})]
    if number % 50 == 1:
        gone = {"destination": "default", "attempt": 1, "http_status": 410}
        return [
            routed,
            ("dispatcher", "dead_lettered", {**gone, "error": "target answered 410"}),
        ]
    if number % 20 == 3:
        retry = {"destination": "default", "attempt": 1, "http_status": 503}
        return [
            routed,
            ("dispatcher", "retrying", {**retry, "error": "target answered 503"}),
            ("dispatcher", "delivered", {**delivered[2], "attempt": 2}),
        ]
    return [routed, delivered]


def rows(seeded: Seeded, count: int, now: datetime) -> Iterator[tuple[Any, ...]]:
    """`count` rows (to the nearest event), oldest first, with offsets in order per partition."""
    others = [t for t in seeded.triggers if t != seeded.busy_trigger]
    offsets = [0] * 6
    written = 0
    number = 0
    while written < count:
        trigger = seeded.busy_trigger if number % 2 == 0 else others[number % len(others)]
        received = now - SPREAD + SPREAD * (written / count)
        thread = f"C{number % 300}:{number // 300}"
        event = Event(trigger, f"Ev{number:08d}", thread, number, received)
        yield from _event_rows(seeded, event, offsets)
        written += len(steps(number))
        number += 1
    journey = [JOURNEY_EVENT] + [f"Ev-thread-{n}" for n in range(THREAD_EVENTS)]
    for n, event_id in enumerate(journey):
        received = now - timedelta(minutes=5) + timedelta(seconds=n)
        # Shape 3: routed, a 503 retried, then delivered.
        event = Event(seeded.busy_trigger, event_id, JOURNEY_THREAD, 3, received)
        yield from _event_rows(seeded, event, offsets)


def _event_rows(seeded: Seeded, event: Event, offsets: list[int]) -> Iterator[tuple[Any, ...]]:
    partition = event.number % len(offsets)
    for step, (stage, outcome, fields) in enumerate(steps(event.number)):
        offsets[partition] += 1
        yield (
            partition,
            offsets[partition],
            event.event_id,
            event.trigger_id,
            seeded.project_id,
            stage,
            outcome,
            event.received + timedelta(milliseconds=20 * (step + 1)),
            event.correlation_id,
            "http" if stage == "dispatcher" else None,
            TARGET_REF if stage == "dispatcher" else None,
            fields.get("attempt", 0),
            fields.get("reason"),
            fields.get("http_status"),
            fields.get("error"),
            fields.get("latency_ms"),
            False,
            None,
            fields.get("destination"),
            event.received,
        )


async def seed(url: str, seeded: Seeded, count: int, now: datetime) -> int:
    written = 0
    async with await AsyncConnection.connect(url) as conn:
        async with (
            conn.transaction(),
            conn.cursor() as cursor,
            cursor.copy(f"COPY delivery_log ({COLUMNS}) FROM STDIN") as copy,
        ):
            for row in rows(seeded, count, now):
                await copy.write_row(row)
                written += 1
        # As autovacuum would soon after such a load: the planner sees the table as it is.
        await conn.execute("ANALYZE delivery_log")
        await conn.commit()
    return written


def raw_event(seeded: Seeded, event_id: str, received: datetime) -> RawEvent:
    body = {"type": "message", "text": "deploy the api", "channel": "C123", "id": event_id}
    return RawEvent(
        id=uuid.uuid4().hex,
        trigger_id=seeded.busy_trigger,
        project_id=seeded.project_id,
        definition="webhook",
        received_at=received,
        content_type="application/json",
        body=orjson.dumps(body).decode(),
        # A webhook trigger's event id is its sender's `webhook-id`.
        headers={"webhook-id": event_id},
    )


async def seed_raw(settings: Settings, seeded: Seeded, now: datetime) -> None:
    """The busy trigger's raw events of the last five minutes, as ingest wrote them: the timed
    event and its thread among RAW_EVENTS others, each at its receipt time, for the journey's
    payload."""
    journey = [JOURNEY_EVENT] + [f"Ev-thread-{n}" for n in range(THREAD_EVENTS)]
    start = now - timedelta(minutes=5)
    events = [raw_event(seeded, e, start + timedelta(seconds=n)) for n, e in enumerate(journey)]
    step = timedelta(minutes=5) / RAW_EVENTS_SEEDED
    events += [raw_event(seeded, f"Ev-raw-{n}", start + step * n) for n in range(RAW_EVENTS_SEEDED)]
    events.sort(key=lambda event: event.received_at)
    producer = durable_producer(settings, linger_ms=20)
    await producer.start()
    try:
        topic = RAW_EVENTS.name(settings.topics.prefix)
        sent = [
            await producer.send(
                topic,
                RAW_EVENTS.encode(event),
                key=event.trigger_id.encode(),
                timestamp_ms=int(event.received_at.timestamp() * 1000),
            )
            for event in events
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def make_triggers(client: httpx.AsyncClient, auth: dict[str, str], project_id: str) -> Seeded:
    triggers = []
    for n in range(TRIGGERS):
        created = await client.post(
            "/triggers", json=webhook_trigger(f"trigger-{n:02d}"), headers=auth
        )
        expect(created, 201)
        triggers.append(created.json()["id"])
    return Seeded(project_id, triggers[0], triggers)


async def timed(
    client: httpx.AsyncClient, path: str, requests: int, headers: dict[str, str] | None = None
) -> list[float]:
    """Milliseconds per request, after a few unmeasured ones (caches, the first query plans)."""
    for _ in range(5):
        expect(await client.get(path, headers=headers), 200)
    spent = []
    for _ in range(requests):
        started = time.perf_counter()
        answer = await client.get(path, headers=headers)
        spent.append((time.perf_counter() - started) * 1000)
        expect(answer, 200)
    return spent


async def payload_is_shown(client: httpx.AsyncClient, seeded: Seeded) -> None:
    """The journey timed is the usual one, with its payload found on the raw-events topic,
    not the page saying why it has none."""
    path = journey_path(seeded)
    answer = await client.get(path)
    expect(answer, 200)
    if '<pre id="payload">' not in answer.text:
        raise RuntimeError(f"{path} shows no payload; the benchmark would time another page")


def journey_path(seeded: Seeded) -> str:
    return f"/console/events/{JOURNEY_EVENT}?trigger_id={seeded.busy_trigger}"


def expect(answer: httpx.Response, status: int) -> None:
    if answer.status_code != status:
        raise RuntimeError(f"{answer.url} answered {answer.status_code}: {answer.text[:500]}")


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def pages(seeded: Seeded) -> list[tuple[str, str, str]]:
    """(what, console page, the API route that reads the same data)."""
    busy = seeded.busy_trigger
    return [
        ("triggers list", "/console/triggers", "/triggers"),
        ("trigger page", f"/console/triggers/{busy}", f"/triggers/{busy}/deliveries?limit=20"),
        (
            "events search",
            f"/console/events?trigger_id={busy}&outcome=delivered",
            f"/triggers/{busy}/deliveries?outcome=delivered&limit=50",
        ),
        (
            "journey",
            journey_path(seeded),
            f"/events/{JOURNEY_EVENT}?trigger_id={busy}",
        ),
    ]


async def main(row_count: int, requests: int) -> None:
    base = Settings()
    with scratch_database(base.database.url.get_secret_value()) as url:
        apply_migrations(url)
        settings = await isolated_settings(base, url)
        try:
            async with await AsyncConnection.connect(url, autocommit=True) as conn:
                project_id = await create_project(conn, "bench")
                key = (await create_api_key(conn, project_id)).plaintext
            auth = {"authorization": f"Bearer {key}"}
            async with control_plane(settings) as client:
                seeded = await make_triggers(client, auth, project_id)
                started = time.perf_counter()
                now = datetime.now(UTC)
                written = await seed(url, seeded, row_count, now)
                await seed_raw(settings, seeded, now)
                print(
                    f"{written} delivery-log rows for one project, {TRIGGERS} triggers (half "
                    f"the rows the busy one's), seeded in {time.perf_counter() - started:.1f} s"
                )
                await sign_in(client, key)
                await payload_is_shown(client, seeded)
                print(
                    f"{requests} requests per route, in-process; load average "
                    f"{os.getloadavg()[0]:.2f} before"
                )
                print(
                    f"{'page':>14}  {'console median':>14}  {'p95':>8}  "
                    f"{'API median':>10}  {'p95':>8}  {'ratio':>5}"
                )
                worst = 0.0
                for what, page, api in pages(seeded):
                    shown = await timed(client, page, requests)
                    baseline = await timed(client, api, requests, auth)
                    worst = max(worst, p95(shown))
                    print(
                        f"{what:>14}  {statistics.median(shown):11.1f} ms  {p95(shown):5.1f} ms  "
                        f"{statistics.median(baseline):7.1f} ms  {p95(baseline):5.1f} ms  "
                        f"{statistics.median(shown) / statistics.median(baseline):5.2f}"
                    )
                verdict = "under" if worst < TARGET_MS else "OVER"
                print(
                    f"worst p95 {worst:.1f} ms: {verdict} the {TARGET_MS:.0f} ms target; "
                    f"load average {os.getloadavg()[0]:.2f} after"
                )
        finally:
            await drop_topics(settings)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.rows, arguments.requests))
