"""Resident memory of every service over a long steady load: bounded, and flat.

Runs ingest, the processors (default engine), the dispatchers, the delivery-log sink and a cron
producer as separate processes, as `triggerline run` does, with one http trigger per raw
partition delivering to a local target. Each process's RSS is read once idle (the baseline:
the same process before any load), then every `SAMPLE_S` while signed webhooks go out at
`--rate` per second (1,000) for `--duration` seconds (600). It reports per service the idle
RSS, the RSS after the first minute and at the end, the largest seen, the ratio of the largest
to idle, and the growth per minute from the first minute on (a least-squares slope: a leak
shows as a steady climb, a bounded cache as a plateau). Limits: 150 MB per service, 200 MB for
the processors. It also reports what was delivered and the end-to-end latency.

    .venv/bin/python -m benchmarks.steady_resources [--rate 1000] [--duration 600]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shlex
import statistics
import sys
import time
from typing import Any

import orjson

from benchmarks.dispatch_end_to_end import percentile
from benchmarks.dispatch_throughput import stats, target_process
from benchmarks.steady_load import (
    Fleet,
    LoadResult,
    covering_triggers,
    rss_mb,
    running,
    send_steadily,
)
from deploy import local_kafka, local_postgres
from deploy.migrate import apply_migrations
from runtime.settings import Settings
from schemas.topics import RAW_EVENTS
from tests.integration.support.isolation import drop_topics, isolated_settings, scratch_database
from tests.integration.support.polling import eventually
from tests.integration.support.stages import wait_until_ready

SAMPLE_S = 10.0
IDLE_S = 20.0
LIMIT_MB = {"processors": 200}
DEFAULT_LIMIT_MB = 150


def slope_mb_per_min(series: list[tuple[float, float]]) -> float:
    """Least-squares growth of (seconds, MB) samples, in MB per minute."""
    if len(series) < 2:
        return 0.0
    return statistics.linear_regression([t for t, _ in series], [m for _, m in series]).slope * 60


async def sample_rss(
    fleet: Fleet, samples: dict[str, list[tuple[float, float]]], stop: asyncio.Event
) -> None:
    started = time.monotonic()
    while not stop.is_set():
        for name, pid in fleet.pids().items():
            samples.setdefault(name, []).append((time.monotonic() - started, rss_mb(pid)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SAMPLE_S)


def summary(idle: float, series: list[tuple[float, float]]) -> dict[str, float]:
    settled = [(t, m) for t, m in series if t >= 60] or series
    largest = max(m for _, m in series)
    return {
        "idle_mb": round(idle),
        "after_1_min_mb": round(settled[0][1]),
        "end_mb": round(series[-1][1]),
        "max_mb": round(largest),
        "max_over_idle": round(largest / idle, 2),
        "growth_mb_per_min_after_1_min": round(slope_mb_per_min(settled), 2),
    }


async def measure(base: Settings, rate: int, duration_s: float) -> dict[str, object]:
    with scratch_database(base.database.url.get_secret_value()) as url:
        apply_migrations(url)
        settings = await isolated_settings(base, url)
        try:
            async with target_process() as target:
                triggers = await covering_triggers(settings, target, RAW_EVENTS.partitions)
                fleet = Fleet(settings, {"TRIGGERLINE_CRON_ENABLED": "false"})
                for module in ("ingest", "processors", "dispatchers", "dispatchers.sink"):
                    fleet.add(module)
                fleet.add("ingest.cron")
                with running(fleet):
                    ingest = fleet.ingest_urls()[0]
                    await wait_until_ready(f"{ingest}/readyz", 90)
                    await asyncio.sleep(IDLE_S)
                    idle = {name: rss_mb(pid) for name, pid in fleet.pids().items()}
                    samples: dict[str, list[tuple[float, float]]] = {}
                    stop = asyncio.Event()
                    sampling = asyncio.create_task(sample_rss(fleet, samples, stop))
                    load = await send_steadily([ingest], triggers, rate, duration_s, LoadResult())
                    stop.set()
                    await sampling

                    async def delivered() -> dict[str, Any] | None:
                        got = await stats(target)
                        return got if got["count"] >= len(load.accepted) else None

                    got = await eventually(delivered, 300, 1.0)
        finally:
            await drop_topics(settings)
    memory = {name: summary(idle[name], series) for name, series in samples.items()}
    over = [
        name
        for name, figures in memory.items()
        if figures["max_mb"] > LIMIT_MB.get(name, DEFAULT_LIMIT_MB)
    ]
    latencies: list[float] = got["latencies_ms"]
    return {
        "webhooks_due": load.due,
        "answered_2xx": len(load.accepted),
        "refused": load.refused,
        "sender_worst_lateness_s": round(load.worst_lateness_s, 3),
        "delivered": got["count"],
        "end_to_end_p50_ms": round(percentile(latencies, 0.50), 1),
        "end_to_end_p99_ms": round(percentile(latencies, 0.99), 1),
        "rss": memory,
        "over_limit": over,
    }


async def run(base: Settings, rate: int, duration_s: float) -> None:
    load_before = os.getloadavg()
    figures = await measure(base, rate, duration_s)
    report = {
        "command": shlex.join(["python", "-m", "benchmarks.steady_resources", *sys.argv[1:]]),
        "rate_per_s": rate,
        "duration_s": duration_s,
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "cpus": os.cpu_count(),
        **figures,
    }
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=600.0)
    args = parser.parse_args()
    base_settings = Settings()
    if "KAFKA_BOOTSTRAP_SERVERS" not in os.environ:
        local_kafka.start(base_settings.local_dir)
    if "DATABASE_URL" not in os.environ:
        local_postgres.start(base_settings.local_dir)
    asyncio.run(run(base_settings, args.rate, args.duration))
