"""Processor workers as real processes, and the records they read and write, for EOS tests."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from aiokafka.partitioner import DefaultPartitioner

from runtime.kafka import admin_client, durable_producer, whole_topic_consumer
from runtime.settings import Settings
from schemas.records import (
    DELIVERY_LOG_RECORD,
    RAW_EVENT,
    ROUTED_EVENT,
    TRIGGER_CONFIG,
    DeliveryLogRecord,
    RawEvent,
    RoutedEvent,
)
from schemas.topics import DELIVERY_LOG, RAW_EVENTS, ROUTED_EVENTS
from schemas.topics import TRIGGER_CONFIG as TRIGGER_CONFIG_TOPIC
from schemas.triggers import Target, TriggerConfig, TriggerStatus
from tests.integration.stages import free_port, stage_env
from tests.integration.topic_reader import read_all

PROJECT = "p-processor-tests"


def triggers_on_every_partition() -> list[str]:
    """One trigger id per raw-events partition, so that every worker of a group owns some."""
    partitioner = DefaultPartitioner()
    partitions = list(range(RAW_EVENTS.partitions))
    by_partition: dict[int, str] = {}
    while len(by_partition) < len(partitions):
        candidate = str(uuid.uuid4())
        by_partition.setdefault(partitioner(candidate.encode(), partitions, partitions), candidate)
    return [by_partition[p] for p in partitions]


def slack_trigger(
    trigger_id: str, *, revision: int = 1, status: TriggerStatus = "active", **config: Any
) -> TriggerConfig:
    return TriggerConfig(
        trigger_id=trigger_id,
        project_id=PROJECT,
        definition="slack",
        name=f"slack-{trigger_id[:8]}",
        status=status,
        target=Target("noop"),
        updated_at=datetime.now(UTC),
        revision=revision,
        config=config,
    )


def slack_message(trigger_id: str, event_id: str, text: str = "hello") -> RawEvent:
    envelope = {
        "type": "event_callback",
        "team_id": "T1",
        "event_id": event_id,
        "event_time": 1_764_000_000,
        "event": {"type": "message", "channel": "C1", "user": "U1", "text": text, "ts": "1.1"},
    }
    return RawEvent(
        id=uuid.uuid4().hex,
        trigger_id=trigger_id,
        project_id=PROJECT,
        definition="slack",
        received_at=datetime.now(UTC),
        content_type="application/json",
        body=orjson.dumps(envelope).decode(),
    )


class Records:
    """An idempotent producer for test input on the raw and trigger-config topics."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._producer = durable_producer(settings, linger_ms=5)

    async def __aenter__(self) -> Records:
        await self._producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._producer.stop()

    async def config(self, config: TriggerConfig) -> None:
        topic = TRIGGER_CONFIG_TOPIC.name(self._settings.topic_prefix)
        await self._producer.send_and_wait(
            topic, TRIGGER_CONFIG.encode(config), key=config.trigger_id.encode()
        )

    async def delete(self, trigger_id: str) -> None:
        topic = TRIGGER_CONFIG_TOPIC.name(self._settings.topic_prefix)
        await self._producer.send_and_wait(topic, None, key=trigger_id.encode())

    async def raw(self, *events: RawEvent) -> None:
        topic = RAW_EVENTS.name(self._settings.topic_prefix)
        futures = [
            await self._producer.send(topic, RAW_EVENT.encode(e), key=e.trigger_id.encode())
            for e in events
        ]
        for future in futures:
            await future


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    metrics_port: int
    # Set when the test stops the worker, so that supervision does not restart it.
    stopped: bool = False


class WorkerGroup:
    """Workers of one processors group, each with its own ops port; stopped on exit."""

    def __init__(self, settings: Settings, **env: str) -> None:
        self._settings = settings
        self._env = env
        self.workers: list[Worker] = []
        # Workers that exited on their own and were replaced by `supervise`.
        self.restarts = 0
        self._stopping = False

    def start(self) -> Worker:
        port = free_port()
        env = {
            **stage_env(self._settings),
            "TRIGGERLINE_PROCESSOR_METRICS_PORT": str(port),
            **self._env,
        }
        worker = Worker(subprocess.Popen([sys.executable, "-m", "processors"], env=env), port)
        self.workers.append(worker)
        return worker

    async def supervise(self) -> None:
        """Restart each worker that exits on its own, as `triggerline run` does; until cancelled."""
        while not self._stopping:
            for worker in list(self.workers):
                if not worker.stopped and worker.process.poll() is not None:
                    self.workers.remove(worker)
                    self.restarts += 1
                    self.start()
            await asyncio.sleep(0.5)

    async def stop_worker(self, worker: Worker) -> int:
        """SIGTERM one worker and wait for it to exit; its exit status."""
        worker.stopped = True
        worker.process.send_signal(signal.SIGTERM)
        return await asyncio.to_thread(worker.process.wait, 30)

    def stop(self) -> None:
        self._stopping = True
        running = [w.process for w in self.workers if w.process.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        for process in running:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def processor_workers(settings: Settings, count: int, **env: str) -> Iterator[WorkerGroup]:
    group = WorkerGroup(settings, **env)
    try:
        for _ in range(count):
            group.start()
        yield group
    finally:
        group.stop()


async def routed_events(settings: Settings) -> list[RoutedEvent]:
    records = await read_all(settings, ROUTED_EVENTS.name(settings.topic_prefix))
    return [ROUTED_EVENT.decode(value) for _, value in records]


async def processor_decisions(settings: Settings) -> list[DeliveryLogRecord]:
    records = await read_all(settings, DELIVERY_LOG.name(settings.topic_prefix))
    entries = (DELIVERY_LOG_RECORD.decode(value) for _, value in records)
    return [e for e in entries if e.stage == "processor"]


async def uncommitted_raw_events(settings: Settings) -> dict[int, int]:
    """Per raw-events partition, how many records the processors group has not committed."""
    consumer = await whole_topic_consumer(settings, RAW_EVENTS.name(settings.topic_prefix))
    admin = admin_client(settings)
    await admin.start()
    try:
        ends = await consumer.end_offsets(list(consumer.assignment()))
        committed = await admin.list_consumer_group_offsets(settings.group("processors"))
    finally:
        await admin.close()
        await consumer.stop()
    behind = {}
    for tp, end in ends.items():
        offset = committed.get(tp)
        done = offset.offset if offset is not None and offset.offset >= 0 else 0
        if end > done:
            behind[tp.partition] = end - done
    return behind


async def raw_events_committed(settings: Settings) -> bool:
    """Whether the processors group has committed every raw event now on the topic."""
    return not await uncommitted_raw_events(settings)


async def owned_by(worker: Worker) -> set[str]:
    """The raw partitions a worker reports owning (none while its ops server is not up)."""
    async with httpx.AsyncClient() as client:
        try:
            text = (await client.get(f"http://127.0.0.1:{worker.metrics_port}/metrics")).text
        except httpx.HTTPError:
            return set()
    prefix = 'triggerline_processor_consumer_lag{partition="'
    return {
        line[len(prefix) :].split('"')[0] for line in text.splitlines() if line.startswith(prefix)
    }
