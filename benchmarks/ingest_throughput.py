"""Ingest throughput and latency with signed, unique Slack events, against a bare FastAPI baseline.

Runs, in one go on this machine:
1. the bare endpoint (benchmarks/bare_endpoint.py) under full load: the server stack's ceiling;
2. one `python -m ingest` process under full load: accepted events/s, p50 and p99;
3. the same ingest process under open-loop load at a fixed rate (1,000/s by default).

Full load comes from wrk (installed with apt if missing) replaying pre-signed requests
(benchmarks/ingest_signed.lua), so the load generator does no HMAC or JSON work per request;
the fixed rate from benchmarks/paced_load.py. Events go to the local Kafka broker under a
throwaway topic prefix and database, like a test's.

    .venv/bin/python -m benchmarks.ingest_throughput [--duration 15] [--connections 64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx

from benchmarks.ingest_load import (
    HEADER,
    Figures,
    ensure_wrk,
    fixed_rate,
    full_load,
    kafka_alone,
    signed_events,
)
from deploy import local_kafka, local_postgres
from deploy.migrate import apply_migrations
from runtime.kafka import admin_client, whole_topic_consumer
from runtime.settings import Settings
from schemas.records import RawEvent
from schemas.topics import RAW_EVENTS
from tests.integration.support.isolation import isolated_settings, scratch_database
from tests.integration.support.polling import eventually
from tests.integration.support.stages import free_port, stage_env, wait_until_ready
from tests.integration.support.trigger_configs import publish_configs, trigger_config

SECRET = "benchmark-signing-secret"
WARMUP_S = 3
# More events than either server answers per second, so no event is sent twice.
EVENTS_PER_S = 12_000


async def wait_until_known(url: str) -> None:
    async with httpx.AsyncClient() as client:

        async def known() -> bool | None:
            try:
                response = await client.post(url, content=b"{}")
            except httpx.HTTPError:
                return None  # still starting
            return None if response.status_code == 404 else True

        await eventually(known, timeout_s=60)


def start_process(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@asynccontextmanager
async def ingest_target(base: Settings, work: Path) -> AsyncIterator[tuple[str, int, Settings]]:
    """One ingest process with one Slack trigger, on a throwaway topic prefix and database.

    Yields the trigger's webhook URL, the process id and the settings.
    """
    with scratch_database(base.database.url.get_secret_value()) as database_url:
        apply_migrations(database_url)
        settings = await isolated_settings(base, database_url, ingest__port=free_port())
        trigger = trigger_config(
            settings,
            "slack",
            {"SLACK_SIGNING_SECRET": SECRET},
            config={"rate_limit": {"per_second": 1_000_000}},
        )
        await publish_configs(settings, trigger)
        env = {**stage_env(settings), "TRIGGERLINE_CRON_ENABLED": "false"}
        ingest = start_process([sys.executable, "-m", "ingest"], env, work / "ingest.log")
        try:
            root = f"http://127.0.0.1:{settings.ingest.port}"
            url = f"{root}/webhooks/{trigger.trigger_id}"
            await wait_until_ready(f"{root}/readyz")
            await wait_until_known(url)
            yield url, ingest.pid, settings
        finally:
            stop_process(ingest)
            await delete_topics(settings)


async def delete_topics(settings: Settings) -> None:
    admin = admin_client(settings)
    await admin.start()
    try:
        names = [n for n in await admin.list_topics() if n.startswith(settings.topics.prefix + ".")]
        await admin.delete_topics(names)
    finally:
        await admin.close()


async def raw_topic_size(settings: Settings) -> int:
    consumer = await whole_topic_consumer(settings, RAW_EVENTS.name(settings.topics.prefix))
    try:
        ends = await consumer.end_offsets(list(consumer.assignment()))
        return sum(ends.values())
    finally:
        await consumer.stop()


async def measure_bare(wrk: str, options: argparse.Namespace, work: Path) -> Figures:
    port = free_port()
    bare = start_process(
        [sys.executable, "-m", "benchmarks.bare_endpoint", str(port)],
        dict(os.environ),
        work / "bare.log",
    )
    try:
        url = f"http://127.0.0.1:{port}/webhooks/x"
        await wait_until_known(url)
        events = signed_events(SECRET, options.duration * EVENTS_PER_S)
        load = {"connections": options.connections}
        full_load(wrk, url, events, bare.pid, work, seconds=WARMUP_S, **load)
        return full_load(wrk, url, events, bare.pid, work, seconds=options.duration, **load)
    finally:
        stop_process(bare)


async def benchmark(options: argparse.Namespace, work: Path) -> None:
    wrk = ensure_wrk()
    base = Settings()
    if "KAFKA_BOOTSTRAP_SERVERS" not in os.environ:
        await asyncio.to_thread(local_kafka.start, base.local_dir)
    if "DATABASE_URL" not in os.environ:
        await asyncio.to_thread(local_postgres.start, base.local_dir)
    load_before = os.getloadavg()

    bare = await measure_bare(wrk, options, work)
    async with ingest_target(base, work) as (url, pid, settings):
        load = {"connections": options.connections}
        warmup = signed_events(SECRET, WARMUP_S * EVENTS_PER_S)
        full_load(wrk, url, warmup, pid, work, seconds=WARMUP_S, **load)
        events = signed_events(SECRET, options.duration * EVENTS_PER_S)
        accepted = full_load(wrk, url, events, pid, work, seconds=options.duration, **load)
        paced = signed_events(SECRET, options.duration * options.rate)
        fixed = await fixed_rate(url, paced, pid, rate=options.rate, seconds=options.duration)
        on_topic = await raw_topic_size(settings)
        # What the ingest process stored, minus the HTTP: the latency floor on this machine.
        record = RAW_EVENTS.encode(
            RawEvent(
                id=uuid.uuid4().hex,
                trigger_id=str(uuid.uuid4()),
                project_id="p",
                definition="slack",
                received_at=datetime.now(UTC),
                content_type="application/json",
                body=paced[0].body.decode(),
                headers={"content-type": "application/json"},
            )
        )
        floor = await kafka_alone(settings, record, rate=options.rate, seconds=options.duration)
    load_after = os.getloadavg()

    print(
        f"ingest benchmark: {os.cpu_count()} CPUs, wrk -t2 -c{options.connections}, "
        f"{options.duration} s per run, load average {load_before[0]:.2f} before and "
        f"{load_after[0]:.2f} after"
    )
    print(HEADER)
    print(bare.row("bare FastAPI endpoint, full load"))
    print(accepted.row("ingest, full load (accepted)"))
    print(fixed.row(f"ingest, open loop at {options.rate}/s"))
    print(floor.row(f"Kafka produce alone at {options.rate}/s"))
    print(f"ingest / bare: {accepted.ok_per_s / bare.ok_per_s:.2f}")
    print(f"raw events on the topic: {on_topic:,} (every 2xx of every run is one of them)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds per measured run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rate", type=int, default=1000, help="the fixed-rate run's target")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="triggerline-bench-") as work:
        asyncio.run(benchmark(options, Path(work)))


if __name__ == "__main__":
    main()
