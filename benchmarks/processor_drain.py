"""Draining a pre-loaded raw topic, for the processor benchmarks: fresh topics, the load, a
worker process, and the rate and CPU from the consumer group's committed offsets."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

from aiokafka.errors import GroupCoordinatorNotAvailableError

from benchmarks.faust_floor import FLOOR_GROUP
from benchmarks.ingest_load import cpu_seconds
from deploy.ports import holder
from deploy.topics import ensure_topics
from runtime.kafka import admin_client, durable_producer
from runtime.settings import Settings
from schemas.records import RawEvent
from schemas.topics import RAW_EVENTS, TRIGGER_CONFIG
from schemas.triggers import TriggerConfig
from tests.integration.support.stages import free_port

FLOOR_MODULE = "benchmarks.faust_floor"
# Longer than any drain takes here, even the slowest engine's.
DRAIN_TIMEOUT_S = 600
# How often the committed offsets are read: a drain's ends are known to within this.
POLL_INTERVAL_S = 0.05
# The share of the events committed at which a drain's measured window opens and closes.
WINDOW = (0.05, 0.95)


async def fresh_settings(base: Settings) -> Settings:
    settings = base.override(topics__prefix=f"bench-{uuid.uuid4().hex[:10]}")
    await ensure_topics(settings)
    return settings


async def load(
    settings: Settings,
    configs: list[TriggerConfig],
    events: list[RawEvent],
    headers: list[list[tuple[str, bytes]]] | None = None,
) -> None:
    producer = durable_producer(settings, linger_ms=20)
    await producer.start()
    try:
        for config in configs:
            await producer.send_and_wait(
                TRIGGER_CONFIG.name(settings.topics.prefix),
                TRIGGER_CONFIG.encode(config),
                key=config.trigger_id.encode(),
            )
        topic = RAW_EVENTS.name(settings.topics.prefix)
        futures = [
            await producer.send(
                topic,
                RAW_EVENTS.encode(e),
                key=e.trigger_id.encode(),
                headers=None if headers is None else headers[n],
            )
            for n, e in enumerate(events)
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def committed_total(admin: Any, group: str) -> int:
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    except GroupCoordinatorNotAvailableError:
        # A fresh broker creates its offsets topic on the first group's request.
        return 0
    return sum(max(0, o.offset) for o in offsets.values())


async def start_worker(
    settings: Settings, env: dict[str, str], module: str = "processors", port: int = 0
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        env={
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
            "TRIGGERLINE_TOPIC_PREFIX": settings.topics.prefix,
            "TRIGGERLINE_LOCAL_DIR": str(settings.local_dir),
            "TRIGGERLINE_PROCESSOR_METRICS_PORT": str(port or free_port()),
            "TRIGGERLINE_LOG_LEVEL": "WARNING",
            **env,
        },
    )


async def stop_worker(worker: asyncio.subprocess.Process) -> None:
    worker.terminate()
    await asyncio.wait_for(worker.wait(), 30)


@dataclass(frozen=True)
class Drain:
    """A process draining a pre-loaded topic: its rate, and its CPU over the same window."""

    events_per_s: float
    # CPU time of the draining process per second of the drain: 1.0 is one core busy.
    cpu: float
    # The same for the broker, when it runs on this machine.
    broker_cpu: float | None = None
    # The same for the HTTP target a delivery drain delivers to.
    target_cpu: float | None = None

    @property
    def per_cpu_s(self) -> float:
        return self.events_per_s / self.cpu


def local_broker_pid(settings: Settings) -> int | None:
    """The process listening on the first bootstrap server's port, if it is on this machine."""
    host, port = settings.kafka.bootstrap_servers.split(",")[0].rsplit(":", 1)
    if host not in {"127.0.0.1", "localhost"}:
        return None
    found = holder(int(port))
    return None if found is None else found.pid


async def committed_drain(settings: Settings, group: str, total: int, pid: int) -> Drain:
    """Events/s from `group`'s committed offsets, and the CPU of the process `pid` and of a
    local broker, between the commits of the first 5% and of 95% of `total`: start-up is not
    counted, nor a last commit that waits for a timer. Returns once every event is committed."""
    broker = local_broker_pid(settings)
    pids = [pid] if broker is None else [pid, broker]
    admin = admin_client(settings)
    await admin.start()
    marks = [share * total for share in WINDOW]
    window: list[tuple[float, int, list[float]]] = []
    try:
        async with asyncio.timeout(DRAIN_TIMEOUT_S):
            while True:
                done = await committed_total(admin, group)
                while len(window) < len(marks) and done >= marks[len(window)]:
                    window.append((time.perf_counter(), done, [cpu_seconds(p) for p in pids]))
                if done >= total:
                    break
                await asyncio.sleep(POLL_INTERVAL_S)
    finally:
        await admin.close()
    (started, first, cpu_before), (ended, last, cpu_after) = window
    if last == first:
        raise RuntimeError(f"{total} events drained in one commit: too few to measure a rate")
    seconds = ended - started
    cpu = [(after - before) / seconds for before, after in zip(cpu_before, cpu_after, strict=True)]
    return Drain((last - first) / seconds, cpu[0], cpu[1] if broker is not None else None)


async def worker_drain(
    settings: Settings, total: int, env: dict[str, str], module: str = "processors"
) -> Drain:
    worker = await start_worker(settings, env, module)
    try:
        group = settings.group(FLOOR_GROUP if module == FLOOR_MODULE else "processors")
        return await committed_drain(settings, group, total, worker.pid)
    finally:
        await stop_worker(worker)


async def worker_rate(
    settings: Settings, total: int, env: dict[str, str], module: str = "processors"
) -> float:
    return (await worker_drain(settings, total, env, module)).events_per_s
