"""End-to-end latency, from ingest acceptance to target receipt, at a fixed rate, every stage local.

Runs ingest, processors and dispatchers as separate processes (as `triggerline run` does) plus an
HTTP target (benchmarks/dispatch_target.py), then sends signed generic webhooks at a fixed rate
(1,000/s by default) and reports p50/p99 of target receipt minus the CloudEvent's `receivedat`,
the time ingest accepted the event. The processors' exactly-once commit interval bounds how soon
routed events become visible to the dispatchers, so the run can be repeated for each interval
given (the shipped default otherwise).

The baseline printed alongside is the same send loop's own ingest answer latency (p50/p99 of the
HTTP round trip to ingest): the part of the journey the sender sees before the pipeline starts.
Each process's CPU over the measured part (in % of one core) shows which stage the two cores
are spent on.

    .venv/bin/python -m benchmarks.dispatch_end_to_end [--rate 1000] [--duration 15] \
        [--commit-intervals 0.1,0.05,0.02]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from standardwebhooks import Webhook

from benchmarks.dispatch_throughput import reset, stats, target_process
from deploy import local_kafka, local_postgres
from deploy.local_kafka import KafkaLayout
from deploy.migrate import apply_migrations
from runtime.kafka import reached, whole_topic_consumer
from runtime.settings import Settings
from schemas.topics import ROUTED_EVENTS
from tests.integration.support.dispatch_harness import dispatcher_env, publish_trigger
from tests.integration.support.isolation import isolated_settings, scratch_database
from tests.integration.support.polling import eventually
from tests.integration.support.stages import free_port, wait_until_ready

WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
STAGES = ("ingest", "processors", "dispatchers")
WARMUP_S = 3.0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_shares(pids: dict[str, int], before: dict[str, float], seconds: float) -> dict[str, int]:
    """Per process, the percentage of one core it used since `before`."""
    return {
        name: round((cpu_seconds(pid) - before[name]) / seconds * 100) for name, pid in pids.items()
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def signed_requests(count: int) -> list[tuple[bytes, dict[str, str]]]:
    """Pre-signed bodies, so that the sender spends no CPU on HMAC during the run."""
    webhook = Webhook(WEBHOOK_SECRET)
    now = datetime.now(UTC)
    requests = []
    for n in range(count):
        body = orjson.dumps({"conv": f"c{n % 500}", "n": n})
        msg_id = f"msg_{uuid.uuid4().hex}"
        headers = {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": webhook.sign(msg_id, now, body.decode()),
        }
        requests.append((body, headers))
    return requests


async def send_at_rate(
    url: str, requests: list[tuple[bytes, dict[str, str]]], rate: int
) -> list[float]:
    """POST each request at its slot of a fixed schedule; returns the answer latencies in ms."""
    answered: list[float] = []
    failures = 0
    first_failure = ""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as session:

        async def one(body: bytes, headers: dict[str, str]) -> None:
            nonlocal failures, first_failure
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    failures += 1
                    first_failure = first_failure or f"{response.status} {await response.text()}"
            answered.append((time.perf_counter() - started) * 1000)

        start = time.perf_counter()
        tasks = []
        for n, (body, headers) in enumerate(requests):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(body, headers)))
        await asyncio.gather(*tasks)
    if failures:
        raise RuntimeError(f"{failures} webhooks were not accepted; first: {first_failure}")
    return answered


async def one_setting(
    base_settings: Settings, commit_interval_s: float, rate: int, duration_s: float
) -> dict[str, Any]:
    with scratch_database(base_settings.database.url.get_secret_value()) as url:
        apply_migrations(url)
        settings = await isolated_settings(base_settings, url)
        async with target_process() as target:
            trigger = await publish_trigger(
                settings,
                ref=f"{target}/hook",
                config={
                    "correlation": "event.conv",
                    # Above the measured rate: this benchmark is not about the limiter.
                    "rate_limit": {"per_second": rate * 4, "burst": rate * 4},
                },
                secrets={"WEBHOOK_SECRET": WEBHOOK_SECRET},
            )
            ingest_port = free_port()
            env = dispatcher_env(
                settings,
                TRIGGERLINE_INGEST_PORT=str(ingest_port),
                TRIGGERLINE_PROCESSOR_METRICS_PORT=str(free_port()),
                TRIGGERLINE_DISPATCHER_METRICS_PORT=str(free_port()),
                TRIGGERLINE_PROCESSOR_COMMIT_INTERVAL_S=str(commit_interval_s),
                TRIGGERLINE_CRON_ENABLED="false",
                TRIGGERLINE_LOG_LEVEL="ERROR",
            )
            stages = [
                await asyncio.create_subprocess_exec(sys.executable, "-m", stage, env=env)
                for stage in STAGES
            ]
            try:
                base = f"http://127.0.0.1:{ingest_port}"
                await wait_until_ready(f"{base}/readyz", 90)
                hook = f"{base}/webhooks/{trigger.trigger_id}"
                # Warm up every stage (and wait for the processors' partitions) first.
                warm = signed_requests(int(rate * WARMUP_S))
                await send_at_rate(hook, warm, rate)

                async def warmed() -> bool | None:
                    return (await stats(target))["count"] >= len(warm) or None

                await eventually(warmed, 120, 0.5)
                await reset(target)
                measured = signed_requests(int(rate * duration_s))
                pids = {
                    "broker": int(KafkaLayout.under(settings.local_dir).pid_file.read_text()),
                    "load generator": os.getpid(),
                    **{name: p.pid for name, p in zip(STAGES, stages, strict=True)},
                }
                cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
                started = time.monotonic()
                answers = await send_at_rate(hook, measured, rate)

                async def all_delivered() -> dict[str, Any] | None:
                    got = await stats(target)
                    return got if got["count"] >= len(measured) else None

                done = await eventually(all_delivered, 120, 0.5)
                cpu = cpu_shares(pids, cpu_before, time.monotonic() - started)
            finally:
                for process in stages:
                    process.terminate()
                for process in stages:
                    await process.wait()
        routed_lag = await routed_lags(settings, done["received"])
    latencies: list[float] = done["latencies_ms"]
    to_routed = [lag for lag, _ in routed_lag]
    to_target = [lag for _, lag in routed_lag]
    return {
        "commit_interval_s": commit_interval_s,
        "events": len(latencies),
        "end_to_end_p50_ms": round(percentile(latencies, 0.50), 1),
        "end_to_end_p99_ms": round(percentile(latencies, 0.99), 1),
        "end_to_end_mean_ms": round(statistics.fmean(latencies), 1),
        "ingest_to_routed_topic_p50_ms": round(percentile(to_routed, 0.50), 1),
        "ingest_to_routed_topic_p99_ms": round(percentile(to_routed, 0.99), 1),
        "routed_topic_to_target_p50_ms": round(percentile(to_target, 0.50), 1),
        "routed_topic_to_target_p99_ms": round(percentile(to_target, 0.99), 1),
        "baseline_ingest_answer_p50_ms": round(percentile(answers, 0.50), 1),
        "baseline_ingest_answer_p99_ms": round(percentile(answers, 0.99), 1),
        "cpu_percent_of_one_core": cpu,
    }


async def routed_lags(settings: Settings, receipts: dict[str, float]) -> list[tuple[float, float]]:
    """Per delivered event, in ms: (ingest acceptance -> routed record appended, routed record
    appended -> target receipt), from the routed records' timestamps."""
    consumer = await whole_topic_consumer(settings, ROUTED_EVENTS.name(settings.topics.prefix))
    lags = []
    try:
        ends = await consumer.end_offsets(list(consumer.assignment()))
        while not await reached(consumer, ends):
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    event = ROUTED_EVENTS.decode(record.value)
                    if event.id in receipts:
                        routed_at = record.timestamp / 1000
                        lags.append(
                            (
                                (routed_at - event.receivedat.timestamp()) * 1000,
                                (receipts[event.id] - routed_at) * 1000,
                            )
                        )
    finally:
        await consumer.stop()
    return lags


async def measure(
    base_settings: Settings, intervals: list[float], rate: int, duration_s: float
) -> None:
    load_before = os.getloadavg()[0]
    results = [await one_setting(base_settings, i, rate, duration_s) for i in intervals]
    print(
        orjson.dumps(
            {
                "rate_per_s": rate,
                "duration_s": duration_s,
                "results": results,
                "load_average_1m_before": load_before,
                "cpus": os.cpu_count(),
            },
            option=orjson.OPT_INDENT_2,
        ).decode()
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument(
        "--commit-intervals", help="processor commit intervals to compare (default: shipped)"
    )
    args = parser.parse_args()
    base_settings = Settings()
    if "KAFKA_BOOTSTRAP_SERVERS" not in os.environ:
        local_kafka.start(base_settings.local_dir)
    if "DATABASE_URL" not in os.environ:
        local_postgres.start(base_settings.local_dir)
    shipped = str(base_settings.processor.commit_interval_s)
    intervals = [float(v) for v in (args.commit_intervals or shipped).split(",")]
    asyncio.run(measure(base_settings, intervals, args.rate, args.duration))
