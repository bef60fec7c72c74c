"""Server time of the console's events, journey, dead-letters, replays and ops pages over a
delivery log of 100,000 rows, on real Kafka and PostgreSQL.

Setup: a scratch database and topic prefix; 100,000 delivery-log rows (four steps per event)
shared by 5 projects of 10 triggers each, one in 50 events dead-lettered, 500 conversations
per project; the timed project's newest 2,000 events on the raw topic (for the journey's
payload); 1,500 dead letters. Each figure is one whole request to the in-process ingest app
(session check, queries, Kafka reads, rendering), signed in as the timed project; the
median and the slowest of `--runs`. Topics and database are removed afterwards.

    .venv/bin/python -m benchmarks.console_pages [--rows 100000] [--runs 15]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import psycopg

from deploy.migrate import apply_migrations
from ingest.api.deliveries import encode_cursor
from ingest.registry.api_keys import create_api_key
from ingest.registry.deliveries import DeliveryRow
from ingest.registry.store import NewTrigger, create_project
from runtime.kafka import durable_producer
from runtime.secrets import Keyring
from runtime.settings import Settings
from schemas.records import DeadLetter, RawEvent, RoutedEvent
from schemas.topics import DEAD_LETTERS, RAW_EVENTS, ROUTED_EVENTS
from schemas.triggers import Target
from tests.integration.support.console import sign_in
from tests.integration.support.control_plane import WHSEC, control_plane
from tests.integration.support.isolation import drop_topics, isolated_settings, scratch_database
from tests.integration.support.registry import create_trigger, only

PROJECTS = 5
TRIGGERS = 10
STEPS = ("processor:routed", "dispatcher:retrying", "dispatcher:delivered", "processor:skipped")
RAW_EVENTS_SEEDED = 2000
LETTERS = 1500
NOW = datetime.now(UTC)


async def seed_registry(settings: Settings) -> tuple[list[str], list[list[str]], str]:
    """Project ids, their trigger ids, and an API key of the first project."""
    keyring = Keyring.from_setting(settings.secret_keys)
    url = settings.database.url.get_secret_value()
    projects: list[str] = []
    triggers: list[list[str]] = []
    async with await psycopg.AsyncConnection.connect(url) as conn:
        for p in range(PROJECTS):
            project_id = await create_project(conn, f"bench-{p}")
            projects.append(project_id)
            mine = []
            for t in range(TRIGGERS):
                config = await create_trigger(
                    conn,
                    keyring,
                    NewTrigger(
                        project_id=project_id,
                        definition="webhook",
                        name=f"t{t}",
                        config={},
                        secrets={"WEBHOOK_SECRET": WHSEC},
                        destinations=only(Target(kind="noop")),
                    ),
                )
                mine.append(config.trigger_id)
            triggers.append(mine)
        key = await create_api_key(conn, projects[0])
    return projects, triggers, key.plaintext


def seed_delivery_log(
    settings: Settings, rows: int, projects: list[str], triggers: list[list[str]]
) -> None:
    """`rows` rows, newest last; the timed project's event n is `ev-0-n`."""
    url = settings.database.url.get_secret_value()
    start = NOW - timedelta(seconds=rows)
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        with cursor.copy(
            "COPY delivery_log (log_partition, log_offset, event_id, trigger_id, project_id,"
            " stage, outcome, at, correlation_id, destination, attempt, http_status,"
            " latency_ms, reason, received_at) FROM STDIN"
        ) as copy:
            for n in range(rows):
                event = n // len(STEPS)
                p = event % PROJECTS
                step = STEPS[n % len(STEPS)]
                if step == "dispatcher:delivered" and event % 50 == 0:
                    step = "dispatcher:dead_lettered"
                stage, outcome = step.split(":")
                at = start + timedelta(seconds=n)
                copy.write_row(
                    (
                        n % 6,
                        n,
                        f"ev-{p}-{event // PROJECTS}",
                        triggers[p][(event // PROJECTS) % TRIGGERS],
                        projects[p],
                        stage,
                        outcome,
                        at,
                        f"C{p}:{(event // PROJECTS) % 500}",
                        "audit" if outcome == "skipped" else "default",
                        1 if stage == "dispatcher" else 0,
                        503 if outcome == "retrying" else None,
                        12.5 if stage == "dispatcher" else None,
                        "filter missed" if outcome == "skipped" else None,
                        start + timedelta(seconds=event * len(STEPS)),
                    )
                )
        cursor.execute("ANALYZE delivery_log")


async def seed_topics(
    settings: Settings, projects: list[str], triggers: list[list[str]], rows: int
) -> str:
    """The newest raw events of the timed project, and dead letters; the id of an event whose
    raw record is on the topic."""
    producer = durable_producer(settings)
    await producer.start()
    events = rows // len(STEPS)
    start = NOW - timedelta(seconds=rows)
    newest = ""
    try:
        for event in range(events - RAW_EVENTS_SEEDED * PROJECTS, events):
            if event % PROJECTS:
                continue
            trigger_id = triggers[0][(event // PROJECTS) % TRIGGERS]
            newest = f"ev-0-{event // PROJECTS}"
            raw = RawEvent(
                id=uuid.uuid4().hex,
                trigger_id=trigger_id,
                project_id=projects[0],
                definition="webhook",
                received_at=start + timedelta(seconds=event * len(STEPS)),
                content_type="application/json",
                body=orjson.dumps({"n": event, "text": "<script>alert(1)</script>"}).decode(),
                headers={"webhook-id": newest},
            )
            await producer.send(
                RAW_EVENTS.name(settings.topics.prefix),
                RAW_EVENTS.encode(raw),
                key=trigger_id.encode(),
                timestamp_ms=int(raw.received_at.timestamp() * 1000),
            )
        for n in range(LETTERS):
            p = n % PROJECTS
            routed = ROUTED_EVENTS.encode(
                RoutedEvent(
                    id=f"ev-{p}-{n}",
                    source="/bench",
                    type="webhook.message",
                    subject="c",
                    time=NOW,
                    data={"n": n},
                    triggerid=triggers[p][n % TRIGGERS],
                    projectid=projects[p],
                    targetkind="noop",
                    targetref="",
                    receivedat=NOW,
                )
            )
            letter = DeadLetter.of(
                "dispatcher",
                "gave up after 8 attempts",
                "target answered 503",
                source=(ROUTED_EVENTS.name(settings.topics.prefix), 0, n),
                key=b"c",
                value=routed,
                event_id=f"ev-{p}-{n}",
                trigger_id=triggers[p][n % TRIGGERS],
            )
            await producer.send(
                DEAD_LETTERS.name(settings.topics.prefix), DEAD_LETTERS.encode(letter), key=b"c"
            )
        await producer.flush()
    finally:
        await producer.stop()
    return newest


async def timed(client: httpx.AsyncClient, url: str, shows: str, runs: int) -> tuple[float, float]:
    """Median and slowest time of `runs` requests of a page that must show `shows`."""
    took = []
    for _ in range(runs):
        started = time.perf_counter()
        answer = await client.get(url)
        took.append((time.perf_counter() - started) * 1000)
        if answer.status_code != 200 or shows not in answer.text:
            raise RuntimeError(f"{url}: {answer.status_code} {answer.text[:500]}")
    return statistics.median(took), max(took)


async def main(rows: int, runs: int) -> None:
    base = Settings()
    with scratch_database(base.database.url.get_secret_value()) as url:
        apply_migrations(url)
        settings = await isolated_settings(base, url)
        try:
            projects, triggers, key = await seed_registry(settings)
            seed_delivery_log(settings, rows, projects, triggers)
            newest = await seed_topics(settings, projects, triggers, rows)
            middle = DeliveryRow(
                0, rows // 2, "", "", "", "", NOW - timedelta(seconds=rows // 2), None,
                None, None, 0, None, None, None, None, False, None, None,
            )  # fmt: skip
            listed = 'rel="next"'
            # What each page must show: a full page of rows, the payload, its absence...
            pages = {
                "events, first page": ("/console/events", listed),
                "events, a page halfway down": (
                    f"/console/events?cursor={encode_cursor(middle)}",
                    listed,
                ),
                "events, dead_lettered only": ("/console/events?outcome=dead_lettered", listed),
                "events, one trigger": (f"/console/events?trigger_id={triggers[0][3]}", listed),
                "events, one conversation, grouped": (
                    "/console/events?correlation_id=C0:7&group=correlation",
                    'class="group-title"',
                ),
                "journey with payload": (f"/console/events/{newest}", 'id="payload"'),
                "journey, payload aged out": ("/console/events/ev-0-3", 'id="payload-missing"'),
                "dead letters": ("/console/dead-letters", "Re-drive</button>"),
                "replays": ("/console/replays", "New replay"),
                "ops": ("/console/ops", 'id="lag"'),
            }
            async with control_plane(settings) as client:
                await sign_in(client, key)
                print(f"{rows} delivery-log rows, {PROJECTS} projects; {runs} runs each")
                for name, (path, shows) in pages.items():
                    median, slowest = await timed(client, path, shows, runs)
                    print(f"  {name:<36} median {median:7.1f} ms   slowest {slowest:7.1f} ms")
        finally:
            await drop_topics(settings)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=15)
    arguments = parser.parse_args()
    os.environ.setdefault("TRIGGERLINE_LOG_LEVEL", "WARNING")
    asyncio.run(main(arguments.rows, arguments.runs))
