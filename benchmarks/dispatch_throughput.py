"""Dispatcher deliveries/s to a local HTTP target that answers at once, against a plain client.

Runs, in one go on this machine:
1. the baseline: a plain aiohttp client loop POSTing the same bodies to the same target with the
   same concurrency (no Kafka, no signing, no delivery log): the client-side ceiling;
2. one `python -m dispatchers` process draining pre-produced routed events to the target, each
   delivery signed, logged to the delivery log and committed.

The target (benchmarks/dispatch_target.py) runs in its own process. Events go to the local
Kafka broker under a throwaway topic prefix, like a test.

    .venv/bin/python -m benchmarks.dispatch_throughput [--events 30000] [--keys 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson

from benchmarks.ingest_load import cpu_seconds
from benchmarks.processor_drain import Drain
from deploy import local_kafka, local_postgres
from deploy.migrate import apply_migrations
from runtime.settings import Settings
from schemas.topics import ROUTED_EVENTS
from tests.integration.support.dispatch_harness import (
    dispatcher_env,
    produce_routed,
    publish_trigger,
    routed_event,
)
from tests.integration.support.isolation import isolated_settings, scratch_database
from tests.integration.support.polling import eventually
from tests.integration.support.stages import free_port

TARGET = Path(__file__).resolve().parent / "dispatch_target.py"


@asynccontextmanager
async def target_process() -> AsyncIterator[str]:
    port = free_port()
    process = await asyncio.create_subprocess_exec(sys.executable, str(TARGET), str(port))
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client:

            async def up() -> bool | None:
                try:
                    return (await client.get(f"{base}/stats")).status_code == 200 or None
                except httpx.HTTPError:
                    return None

            await eventually(up, 20)
        yield base
    finally:
        process.terminate()
        await process.wait()


async def stats(base: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        if (response := await client.get(f"{base}/stats")).status_code != 200:
            raise RuntimeError(f"target stats failed: {response.status_code}")
        result: dict[str, Any] = response.json()
        return result


async def reset(base: str) -> None:
    async with httpx.AsyncClient() as client:
        await client.post(f"{base}/reset")


async def baseline(base: str, bodies: list[bytes], concurrency: int) -> float:
    """Requests/s of a plain aiohttp loop with `concurrency` requests in flight."""
    await reset(base)
    queue = iter(bodies)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for body in queue:
                async with session.post(
                    f"{base}/hook", data=body, headers={"content-type": "application/json"}
                ) as response:
                    await response.read()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return len(bodies) / (time.perf_counter() - started)


@asynccontextmanager
async def running_dispatcher(settings: Settings) -> AsyncIterator[asyncio.subprocess.Process]:
    env = dispatcher_env(
        settings,
        TRIGGERLINE_DISPATCHER_METRICS_PORT=str(free_port()),
        TRIGGERLINE_LOG_LEVEL="ERROR",
    )
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "dispatchers", env=env)
    try:
        yield process
    finally:
        process.terminate()
        await process.wait()


async def target_drain(base: str, events: int, pid: int, broker_pid: int | None = None) -> Drain:
    """Deliveries/s from the target's first request to its `events`-th, and the CPU of the
    delivering process `pid`, of the target and of the broker (`broker_pid`, if given) while
    the target was receiving."""
    pids = [pid] if broker_pid is None else [pid, broker_pid]
    window: list[tuple[float, list[float], float]] = []
    async with httpx.AsyncClient() as client:

        async def drained() -> dict[str, Any] | None:
            got: dict[str, Any] = (await client.get(f"{base}/count")).json()
            if (got["count"] > 0 and not window) or got["count"] >= events:
                window.append((time.perf_counter(), [cpu_seconds(p) for p in pids], got["cpu_s"]))
            return got if got["count"] >= events else None

        done = await eventually(drained, timeout_s=600, interval_s=0.1)
    (started, cpu_before, target_before), (ended, cpu_after, target_after) = window[0], window[-1]
    seconds = ended - started
    if seconds <= 0:
        raise RuntimeError(f"{events} deliveries arrived within one poll: too few to measure")
    cpu = [(after - before) / seconds for before, after in zip(cpu_before, cpu_after, strict=True)]
    return Drain(
        events / (done["last"] - done["first"]),
        cpu[0],
        broker_cpu=cpu[1] if broker_pid is not None else None,
        target_cpu=(target_after - target_before) / seconds,
    )


async def dispatcher_rate(settings: Settings, base: str, events: int, keys: int) -> float:
    trigger = await publish_trigger(settings, ref=f"{base}/hook")
    routed = [routed_event(trigger, f"conv-{n % keys}", n, f"{base}/hook") for n in range(events)]
    await produce_routed(settings, routed)
    await reset(base)
    async with running_dispatcher(settings) as process:
        return (await target_drain(base, events, process.pid)).events_per_s


async def measure(base_settings: Settings, events: int, keys: int, concurrency: int) -> None:
    with scratch_database(base_settings.database.url.get_secret_value()) as url:
        apply_migrations(url)
        settings = await isolated_settings(base_settings, url)
        async with target_process() as base:
            sample = routed_event(
                await publish_trigger(settings, ref=f"{base}/hook"), "k", 0, f"{base}/hook"
            )
            body = ROUTED_EVENTS.encode(sample)
            load_before = os.getloadavg()[0]
            plain = await baseline(base, [body] * events, concurrency)
            dispatched = await dispatcher_rate(settings, base, events, keys)
    print(
        orjson.dumps(
            {
                "events": events,
                "keys": keys,
                "baseline_aiohttp_loop_per_s": round(plain),
                "dispatcher_per_s": round(dispatched),
                "ratio_dispatcher_to_baseline": round(dispatched / plain, 3),
                "load_average_1m_before": load_before,
                "cpus": os.cpu_count(),
            },
            option=orjson.OPT_INDENT_2,
        ).decode()
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=30000)
    parser.add_argument("--keys", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=128)
    args = parser.parse_args()
    base_settings = Settings()
    if "KAFKA_BOOTSTRAP_SERVERS" not in os.environ:
        local_kafka.start(base_settings.local_dir)
    if "DATABASE_URL" not in os.environ:
        local_postgres.start(base_settings.local_dir)
    asyncio.run(measure(base_settings, args.events, args.keys, args.concurrency))
