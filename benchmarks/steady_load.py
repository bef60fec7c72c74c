"""A whole local pipeline of several processes per stage, and steady signed webhook load on it.

Shared by the scale-out and resource benchmarks:

- `scaled_catalogue`: the topic catalogue with the event topics at N partitions (the
  deduplication changelog stays co-partitioned with raw-events);
- `covering_triggers`: http triggers whose ids hash to every raw partition, since raw-events is
  keyed by trigger id and one trigger alone would keep all but one processor idle;
- `Fleet`: named stage processes, each on ports of its own, that can be SIGKILLed and restarted;
- `send_steadily`: open-loop load (request n is due at start + n / rate, whatever the servers
  do), signed as it goes so that a long run never sends a stale Standard Webhooks timestamp,
  spread over several ingest processes; it records the id ingest answered for each 2xx.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import orjson
from aiokafka.partitioner import murmur2
from standardwebhooks import Webhook

from benchmarks.dispatch_end_to_end import WEBHOOK_SECRET
from runtime.settings import Settings
from runtime.topic_catalogue import deployed_catalogue
from schemas.topics import (
    DEAD_LETTERS,
    DELIVERY_LOG,
    PROCESSOR_DEDUPE,
    RAW_EVENTS,
    ROUTED_EVENTS,
    TopicSpec,
)
from tests.integration.support.dispatch_harness import dispatcher_env, publish_trigger
from tests.integration.support.stages import free_port

SCALED = frozenset(spec.suffix for spec in (RAW_EVENTS, ROUTED_EVENTS, DELIVERY_LOG, DEAD_LETTERS))
CONVERSATIONS = 500


def scaled_catalogue(settings: Settings, partitions: int) -> tuple[TopicSpec, ...]:
    return tuple(
        replace(spec, partitions=partitions)
        if spec.suffix in SCALED or spec.suffix == PROCESSOR_DEDUPE.suffix
        else spec
        for spec in deployed_catalogue(settings)
    )


def raw_partition(trigger_id: str, partitions: int) -> int:
    """The raw partition a trigger's events land on (Kafka's default partitioner)."""
    return (int(murmur2(trigger_id.encode())) & 0x7FFFFFFF) % partitions


async def covering_triggers(settings: Settings, target: str, partitions: int) -> list[str]:
    """One trigger per raw partition, each delivering to `target`."""
    chosen: dict[int, str] = {}
    for _ in range(50 * partitions):
        trigger = await publish_trigger(
            settings,
            ref=f"{target}/hook",
            config={
                "correlation": "event.conv",
                # Far above the load: this run is not about ingest's per-trigger limiter.
                "rate_limit": {"per_second": 10_000, "burst": 10_000},
            },
            secrets={"WEBHOOK_SECRET": WEBHOOK_SECRET},
        )
        chosen.setdefault(raw_partition(trigger.trigger_id, partitions), trigger.trigger_id)
        if len(chosen) == partitions:
            return [chosen[p] for p in range(partitions)]
    raise RuntimeError(f"no trigger for every one of {partitions} raw partitions")


@dataclass
class StageProcess:
    name: str
    module: str
    env: dict[str, str]
    ops_port: int
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", self.module], env=self.env)

    def kill(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.process = None

    @property
    def pid(self) -> int | None:
        return None if self.process is None or self.process.poll() is not None else self.process.pid


@dataclass
class Fleet:
    """Stage processes by name (`processors-2`, say), stopped on exit."""

    settings: Settings
    extra_env: dict[str, str]
    stages: dict[str, StageProcess] = field(default_factory=dict)

    def add(self, module: str, count: int = 1) -> list[StageProcess]:
        added = []
        for n in range(1, count + 1):
            name = module.replace("dispatchers.sink", "sink").replace("ingest.cron", "cron")
            name = f"{name}-{n}" if count > 1 else name
            ingest_port, ops_port = free_port(), free_port()
            # Every stage reads only its own port settings; one free port serves them all.
            ports = {
                f"TRIGGERLINE_{stage}_METRICS_PORT": str(ops_port)
                for stage in ("INGEST", "PROCESSOR", "DISPATCHER", "SINK", "CRON")
            }
            env = dispatcher_env(
                self.settings,
                **ports,
                TRIGGERLINE_INGEST_PORT=str(ingest_port),
                **{"TRIGGERLINE_LOG_LEVEL": "ERROR", **self.extra_env},
            )
            stage = StageProcess(name, module, env, ops_port)
            self.stages[name] = stage
            added.append(stage)
        return added

    def ingest_urls(self) -> list[str]:
        return [
            f"http://127.0.0.1:{s.env['TRIGGERLINE_INGEST_PORT']}"
            for s in self.stages.values()
            if s.module == "ingest"
        ]

    def start(self) -> None:
        for stage in self.stages.values():
            stage.start()

    def pids(self) -> dict[str, int]:
        return {name: pid for name, s in self.stages.items() if (pid := s.pid) is not None}

    def stop(self) -> None:
        running = [s.process for s in self.stages.values() if s.process is not None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        for process in running:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def running(fleet: Fleet) -> Iterator[Fleet]:
    fleet.start()
    try:
        yield fleet
    finally:
        fleet.stop()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise LookupError(f"no VmRSS for process {pid}")


@dataclass
class LoadResult:
    due: int = 0
    # Event id (the `webhook-id` sent, which the delivery log records) -> wall time answered.
    accepted: dict[str, float] = field(default_factory=dict)
    refused: int = 0
    first_refusal: str = ""
    answer_ms: list[float] = field(default_factory=list)
    # (wall time a request was due, its answer in ms, its status; 0 when it got none) for every
    # request, so that a report can say when slow answers and refusals happened.
    answers: list[tuple[float, float, int]] = field(default_factory=list)
    # The most the sender fell behind its schedule, in seconds: large means the figures are the
    # load generator's, not the pipeline's.
    worst_lateness_s: float = 0.0


async def send_steadily(
    urls: list[str],
    triggers: list[str],
    rate: float,
    duration_s: float,
    result: LoadResult,
) -> LoadResult:
    """POST signed webhooks at `rate` per second for `duration_s`, round robin over ingest
    `urls` and `triggers`, into `result` (which the caller may read while it runs)."""
    webhook = Webhook(WEBHOOK_SECRET)
    pending: set[asyncio.Task[None]] = set()
    connector = aiohttp.TCPConnector(limit=512)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(n: int, due: float) -> None:
            body = orjson.dumps({"conv": f"c{n % CONVERSATIONS}", "n": n})
            msg_id = f"msg_{uuid.uuid4().hex}"
            now = datetime.now(UTC)
            headers = {
                "content-type": "application/json",
                "webhook-id": msg_id,
                "webhook-timestamp": str(int(now.timestamp())),
                "webhook-signature": webhook.sign(msg_id, now, body.decode()),
            }
            url = f"{urls[n % len(urls)]}/webhooks/{triggers[n % len(triggers)]}"
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    answer = await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                answer, status = repr(exc).encode(), 0
            answered_ms = (time.perf_counter() - due) * 1000
            result.answers.append((due_wall + n / rate, answered_ms, status))
            if status == 200:
                result.accepted[msg_id] = time.time()
                result.answer_ms.append(answered_ms)
            else:
                result.refused += 1
                result.first_refusal = result.first_refusal or f"{status} {answer[:200]!r}"

        start, due_wall = time.perf_counter(), time.time()
        total = int(rate * duration_s)
        for n in range(total):
            due = start + n / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                result.worst_lateness_s = max(result.worst_lateness_s, -delay)
            task = asyncio.create_task(one(n, due))
            pending.add(task)
            task.add_done_callback(pending.discard)
            result.due += 1
        await asyncio.gather(*pending)
    return result
