"""Processor workers as real processes, and the records they read and write, for EOS tests.

Every processor test runs on both engines unless it says otherwise: `ENGINES` is what the
tests are parametrized with, and a `WorkerGroup` starts workers of one engine.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka.partitioner import DefaultPartitioner

from runtime.kafka import admin_client, durable_producer, whole_topic_consumer
from runtime.settings import Settings
from schemas.records import DeliveryLogRecord, RawEvent, RoutedEvent
from schemas.topics import DELIVERY_LOG, RAW_EVENTS, ROUTED_EVENTS, TRIGGER_CONFIG
from schemas.triggers import Target, TriggerConfig, TriggerStatus
from tests.integration.polling import eventually
from tests.integration.stages import free_port, stage_env
from tests.integration.topic_reader import read_all

PROJECT = "p-processor-tests"
ENGINES = ("batch", "faust")


def triggers_on_every_partition() -> list[str]:
    """One trigger id per raw-events partition, so that every worker of a group owns some."""
    partitioner = DefaultPartitioner()
    partitions = list(range(RAW_EVENTS.partitions))
    by_partition: dict[int, str] = {}
    while len(by_partition) < len(partitions):
        candidate = str(uuid.uuid4())
        by_partition.setdefault(partitioner(candidate.encode(), partitions, partitions), candidate)
    return [by_partition[p] for p in partitions]


async def one_trigger_per_partition(records: Records) -> list[str]:
    """Publishes an active Slack trigger for every raw-events partition; their ids."""
    triggers = triggers_on_every_partition()
    for trigger_id in triggers:
        await records.config(slack_trigger(trigger_id))
    return triggers


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


def slack_message(
    trigger_id: str, event_id: str, text: str = "hello", *, retry: int | None = None
) -> RawEvent:
    """A Slack message event; with `retry`, Slack's resend of it (same event id)."""
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
        headers={} if retry is None else {"x-slack-retry-num": str(retry)},
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
        topic = TRIGGER_CONFIG.name(self._settings.topics.prefix)
        await self._producer.send_and_wait(
            topic, TRIGGER_CONFIG.encode(config), key=config.trigger_id.encode()
        )

    async def delete(self, trigger_id: str) -> None:
        topic = TRIGGER_CONFIG.name(self._settings.topics.prefix)
        await self._producer.send_and_wait(topic, None, key=trigger_id.encode())

    async def raw(self, *events: RawEvent) -> None:
        topic = RAW_EVENTS.name(self._settings.topics.prefix)
        futures = [
            await self._producer.send(topic, RAW_EVENTS.encode(e), key=e.trigger_id.encode())
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
    """Workers of one processors group on one engine, each with its own ops port; stopped on
    exit. `env` applies to every worker, `start(**env)` adds to it for one."""

    def __init__(self, settings: Settings, engine: str = "batch", **env: str) -> None:
        self._settings = settings
        self._env = {"TRIGGERLINE_PROCESSOR_ENGINE": engine, **env}
        self.workers: list[Worker] = []
        # Workers that exited on their own and were replaced by `supervise`, with their status.
        self.exits: list[int] = []
        self._stopping = False

    @property
    def restarts(self) -> int:
        return len(self.exits)

    def start(self, **env: str) -> Worker:
        port = free_port()
        environment = {
            **stage_env(self._settings),
            "TRIGGERLINE_PROCESSOR_METRICS_PORT": str(port),
            **self._env,
            **env,
        }
        process = subprocess.Popen([sys.executable, "-m", "processors"], env=environment)
        worker = Worker(process, port)
        self.workers.append(worker)
        return worker

    async def supervise(self, *restart_envs: dict[str, str]) -> None:
        """Restart each worker that exits on its own, as `triggerline run` does, until
        cancelled; the n-th restart adds `restart_envs[n]` (if given) to the environment."""
        while not self._stopping:
            for worker in list(self.workers):
                code = worker.process.poll()
                if not worker.stopped and code is not None:
                    self.workers.remove(worker)
                    extra = (
                        restart_envs[len(self.exits)] if len(self.exits) < len(restart_envs) else {}
                    )
                    self.exits.append(code)
                    self.start(**extra)
            await asyncio.sleep(0.2)

    async def stop_worker(self, worker: Worker, signum: int = signal.SIGTERM) -> int:
        """Signal one worker (SIGTERM by default) and wait for it to exit; its exit status."""
        worker.stopped = True
        worker.process.send_signal(signum)
        return await asyncio.to_thread(worker.process.wait, 60)

    def stop(self) -> None:
        self._stopping = True
        running = [w.process for w in self.workers if w.process.poll() is None]
        for process in running:
            process.send_signal(signal.SIGCONT)
            process.send_signal(signal.SIGTERM)
        for process in running:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def processor_workers(
    settings: Settings, count: int, engine: str = "batch", **env: str
) -> Iterator[WorkerGroup]:
    group = WorkerGroup(settings, engine, **env)
    try:
        for _ in range(count):
            group.start()
        yield group
    finally:
        group.stop()


def rss_mb(pid: int) -> float:
    """A process's resident memory, as the kernel reports it."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise LookupError(f"no VmRSS for process {pid}")


def dedupe_store_dir(settings: Settings) -> Path:
    """Where a worker on this host keeps the deduplication stores of its raw partitions."""
    return settings.local_dir / "processors" / settings.topics.prefix / "dedupe"


@dataclass
class Sent:
    """What a test stream sent: distinct events, and those of them that were resent once."""

    events: set[str]
    resent: set[str]


async def produce_steadily(
    records: Records, triggers: list[str], total: int, batch: int = 100, resends: int = 0
) -> Sent:
    """`total` distinct Slack events spread over the triggers, a batch every 50 ms; with
    `resends`, each batch also resends (as Slack retries) that many events of the one before."""
    sent: list[str] = []
    resent: set[str] = set()
    while len(sent) < total:
        ids = [f"Ev{uuid.uuid4().hex}" for _ in range(min(batch, total - len(sent)))]
        again = sent[-batch:][:resends]
        await records.raw(
            *(slack_message(trigger_of(triggers, i), i) for i in ids),
            *(slack_message(trigger_of(triggers, i), i, retry=1) for i in again),
        )
        sent.extend(ids)
        resent.update(again)
        await asyncio.sleep(0.05)
    return Sent(set(sent), resent)


async def produce_until(
    records: Records, triggers: list[str], stop: asyncio.Event, sent: Sent, resends: int = 2
) -> None:
    """20 distinct events every 50 ms, plus `resends` resends of the batch before, until
    `stop`; what was sent accumulates in `sent` as it goes."""
    previous: list[str] = []
    while not stop.is_set():
        ids = [f"Ev{uuid.uuid4().hex}" for _ in range(20)]
        again = previous[:resends]
        await records.raw(
            *(slack_message(trigger_of(triggers, i), i) for i in ids),
            *(slack_message(trigger_of(triggers, i), i, retry=1) for i in again),
        )
        sent.events.update(ids)
        sent.resent.update(again)
        previous = ids
        await asyncio.sleep(0.05)


async def routed_grows_by(settings: Settings, count: int, timeout_s: float = 90) -> int:
    """Waits until `count` more routed records are on the topic than now."""
    target = len(await routed_events(settings)) + count

    async def grown() -> int | None:
        routed = len(await routed_events(settings))
        return routed if routed >= target else None

    return await eventually(grown, timeout_s=timeout_s, interval_s=0.5)


def trigger_of(triggers: list[str], event_id: str) -> str:
    """The trigger an event id is sent to, the same for its resends."""
    return triggers[int(event_id[2:10], 16) % len(triggers)]


async def all_routed(
    settings: Settings, expected: int, timeout_s: float = 120
) -> list[RoutedEvent]:
    """The routed topic once the group has committed every raw event (nothing more can come)."""

    async def done() -> list[RoutedEvent] | None:
        if not await raw_events_committed(settings):
            return None
        events = await routed_events(settings)
        return events if len(events) >= expected else None

    try:
        return await eventually(done, timeout_s=timeout_s, interval_s=1.0)
    except TimeoutError:
        behind = await uncommitted_raw_events(settings)
        routed = len(await routed_events(settings))
        raise AssertionError(
            f"{routed} of {expected} events routed; uncommitted raw records by partition: {behind}"
        ) from None


def assert_exactly_once(events: list[RoutedEvent], sent: set[str]) -> None:
    repeated = [i for i, n in Counter(e.id for e in events).items() if n > 1]
    routed = {e.id for e in events}
    assert repeated == [], f"routed more than once: {repeated}"
    assert routed == sent, f"missing: {sorted(sent - routed)}; unexpected: {sorted(routed - sent)}"


async def assert_decided_once(settings: Settings, sent: Sent) -> None:
    """One `routed` decision per event sent, and one `duplicate` per resend of one."""
    decisions = await processor_decisions(settings)
    routed = Counter(d.event_id for d in decisions if d.outcome == "routed")
    duplicates = Counter(d.event_id for d in decisions if d.outcome == "duplicate")
    assert routed == Counter(sent.events)
    assert duplicates == Counter(sent.resent)


async def routed_events(settings: Settings) -> list[RoutedEvent]:
    records = await read_all(settings, ROUTED_EVENTS.name(settings.topics.prefix))
    return [ROUTED_EVENTS.decode(value) for _, value in records]


async def processor_decisions(settings: Settings) -> list[DeliveryLogRecord]:
    records = await read_all(settings, DELIVERY_LOG.name(settings.topics.prefix))
    entries = (DELIVERY_LOG.decode(value) for _, value in records)
    return [e for e in entries if e.stage == "processor"]


async def uncommitted_raw_events(settings: Settings) -> dict[int, int]:
    """Per raw-events partition, how many records the processors group has not committed."""
    consumer = await whole_topic_consumer(settings, RAW_EVENTS.name(settings.topics.prefix))
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


async def metric(worker: Worker, name: str) -> float | None:
    """A label-less metric's value from the worker's /metrics (None while it does not answer)."""
    async with httpx.AsyncClient() as client:
        try:
            text = (await client.get(f"http://127.0.0.1:{worker.metrics_port}/metrics")).text
        except httpx.HTTPError:
            return None
    for line in text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    return None


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
