"""Live end-to-end latency while a large replay runs, against the same live load without one.

One run, one broker: ingest (which also runs the replay worker), processors, dispatchers and the
delivery-log sink as separate processes, and two HTTP targets (benchmarks/dispatch_target.py),
one for a "live" trigger and one for a "history" trigger, so that live latency is measured on
live events only. First the history trigger's raw topic gets `--history` events (produced
straight to the raw topic, as ingest writes them) and the pipeline delivers them all; then:

- phase A, the baseline: signed webhooks for the live trigger at `--rate` per second;
- phase B: the replay of the whole history at `--replay-rate` (POST /replays) and, while it
  runs, the same live load.

Both phases last as long as the replay should take at its rate (`--history / --replay-rate`),
at least `--duration` and at most 150 s. Latency is target receipt minus the CloudEvent's
`receivedat`. Phase B is also reported for the live events ingest accepted while replayed
copies were reaching their target (first to last replayed delivery), and the replay's rate both
as selected by the runner over its wall time (the replay's counts) and as delivered by the
dispatchers. By default the two triggers hash to the same raw partition, the worst case: a
replay's transactions then hold back the live records behind them (`--partition other` puts
them on different ones). `--transaction-events` sets the replay's copies per transaction
(TRIGGERLINE_REPLAY_TRANSACTION_EVENTS; the shipped default otherwise): the runner writes each
transaction's copies in one burst.

    .venv/bin/python -m benchmarks.replay_live_latency [--history 100000] [--rate 1000] \
        [--replay-rate 500] [--duration 30] [--partition same|other] [--transaction-events N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shlex
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from aiokafka.partitioner import murmur2
from psycopg import AsyncConnection

from benchmarks.dispatch_end_to_end import (
    WEBHOOK_SECRET,
    routed_lags,
    send_at_rate,
    signed_requests,
)
from benchmarks.dispatch_throughput import reset, stats, target_process
from benchmarks.replay_live_figures import LivePhase, ReplayFigures, live_phase, print_report
from deploy import local_kafka, local_postgres
from deploy.migrate import apply_migrations
from runtime.kafka import durable_producer
from runtime.settings import Settings
from schemas.records import RawEvent
from schemas.topics import RAW_EVENTS
from tests.integration.support.control_plane import project_with_key
from tests.integration.support.dispatch_harness import SIGNING_SECRET, dispatcher_env
from tests.integration.support.isolation import isolated_settings, scratch_database
from tests.integration.support.polling import eventually
from tests.integration.support.stages import wait_until_ready, with_free_ports

STAGES = ("ingest", "processors", "dispatchers", "dispatchers.sink")
MAX_PHASE_S = 150.0
WARMUP_S = 3.0
CONVERSATIONS = 500
DELIVERED = """
SELECT count(*) FROM delivery_log
WHERE trigger_id = %s AND stage = 'dispatcher' AND outcome = 'delivered'
"""


@dataclass(frozen=True, slots=True)
class Options:
    history: int
    rate: int
    replay_rate: float
    duration_s: float
    partition: str
    transaction_events: int

    @property
    def phase_s(self) -> float:
        return min(MAX_PHASE_S, max(self.duration_s, self.history / self.replay_rate))


@dataclass
class Bench:
    settings: Settings
    client: httpx.AsyncClient
    auth: dict[str, str]
    project_id: str
    live_target: str
    history_target: str
    live_trigger: str = ""
    history_trigger: str = ""

    def hook(self, trigger_id: str) -> str:
        return f"{str(self.client.base_url).rstrip('/')}/webhooks/{trigger_id}"


def raw_partition(trigger_id: str) -> int:
    """The raw-topic partition a trigger's events go to (Kafka's default partitioner)."""
    return (int(murmur2(trigger_id.encode())) & 0x7FFFFFFF) % RAW_EVENTS.partitions


def listening_pid(port: int) -> int:
    """The process listening on 127.0.0.1:`port` (the broker, a target), from `ss`."""
    found = subprocess.run(
        ["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    if (match := re.search(r"pid=(\d+)", found)) is None:
        raise RuntimeError(f"no process listens on port {port}")
    return int(match.group(1))


async def create_trigger(bench: Bench, name: str, target: str, rate: float) -> str:
    body = {
        "definition": "webhook",
        "name": name,
        "target": {"kind": "http", "ref": target, "signing_secret": SIGNING_SECRET},
        "secrets": {"WEBHOOK_SECRET": WEBHOOK_SECRET},
        "config": {
            "correlation": "event.conv",
            # Above the measured rate: this benchmark is not about ingest's limiter.
            "rate_limit": {"per_second": rate * 4, "burst": rate * 4},
        },
    }
    created = await bench.client.post("/triggers", json=body, headers=bench.auth)
    if created.status_code != 201:
        raise RuntimeError(f"trigger not created: {created.status_code} {created.text}")
    trigger_id: str = created.json()["id"]
    return trigger_id


async def create_triggers(bench: Bench, options: Options) -> None:
    """The live trigger, and a history trigger on the raw partition `--partition` asks for."""
    rate = max(options.rate, options.replay_rate)
    bench.live_trigger = await create_trigger(bench, "live", f"{bench.live_target}/live", rate)
    wanted = raw_partition(bench.live_trigger)
    for attempt in range(100):
        candidate = await create_trigger(
            bench, f"history-{attempt}", f"{bench.history_target}/history", rate
        )
        same = raw_partition(candidate) == wanted
        if same == (options.partition == "same"):
            bench.history_trigger = candidate
            return
        deleted = await bench.client.delete(f"/triggers/{candidate}", headers=bench.auth)
        if deleted.status_code != 204:
            raise RuntimeError(f"trigger not deleted: {deleted.status_code} {deleted.text}")
    raise RuntimeError("no history trigger on the wanted raw partition after 100 tries")


async def warm_up(bench: Bench, rate: int) -> None:
    """Both triggers known to every stage, and every stage warm, before anything is measured."""
    async with httpx.AsyncClient() as client:
        for trigger_id in (bench.live_trigger, bench.history_trigger):

            async def known(url: str = bench.hook(trigger_id)) -> bool | None:
                body, headers = signed_requests(1)[0]
                answer = await client.post(url, content=body, headers=headers)
                return None if answer.status_code == 404 else True

            await eventually(known, 60, 0.2)
    warm = signed_requests(int(rate * WARMUP_S))
    await send_at_rate(bench.hook(bench.live_trigger), warm, rate)

    async def delivered() -> bool | None:
        live, history = await stats(bench.live_target), await stats(bench.history_target)
        return True if live["count"] >= len(warm) + 1 and history["count"] >= 1 else None

    await eventually(delivered, 120, 0.5)


async def past_this_millisecond() -> datetime:
    """Now, once the clock has moved past the millisecond of the records sent before the call
    (Kafka's timestamps are whole milliseconds)."""
    await asyncio.sleep(0.002)
    return datetime.now(UTC)


async def seed_history(bench: Bench, count: int) -> tuple[datetime, datetime]:
    """`count` raw events of the history trigger, as ingest would have written them; the time
    range holding exactly them."""
    since = await past_this_millisecond()
    producer = durable_producer(bench.settings, linger_ms=20)
    await producer.start()
    try:
        topic = RAW_EVENTS.name(bench.settings.topics.prefix)
        key = bench.history_trigger.encode()
        pending = []
        for n in range(count):
            event = RawEvent(
                id=uuid.uuid4().hex,
                trigger_id=bench.history_trigger,
                project_id=bench.project_id,
                definition="webhook",
                received_at=datetime.now(UTC),
                content_type="application/json",
                # Conversations of their own: the live events' are c0, c1, ... (the routed
                # topic is keyed by correlation id alone, whatever the trigger).
                body=orjson.dumps({"conv": f"h{n % CONVERSATIONS}", "n": n}).decode(),
                headers={"webhook-id": f"msg_{uuid.uuid4().hex}"},
            )
            pending.append(await producer.send(topic, RAW_EVENTS.encode(event), key=key))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return since, await past_this_millisecond()


async def drained(bench: Bench, count: int) -> None:
    """Every history event (and the warm-up one) delivered, and on the delivery log table."""
    url = bench.settings.database.url.get_secret_value()
    async with await AsyncConnection.connect(url, autocommit=True) as conn:

        async def logged() -> bool | None:
            if (await stats(bench.history_target))["count"] <= count:
                return None
            cursor = await conn.execute(DELIVERED, (bench.history_trigger,))
            row = await cursor.fetchone()
            return True if row is not None and row[0] > count else None

        await eventually(logged, 900, 1.0)


async def shown(bench: Bench, replay_id: str) -> dict[str, Any]:
    answer = await bench.client.get(f"/replays/{replay_id}", headers=bench.auth)
    if answer.status_code != 200:
        raise RuntimeError(f"replay not shown: {answer.status_code} {answer.text}")
    replay: dict[str, Any] = answer.json()
    return replay


async def replay_phase(
    bench: Bench, options: Options, since: datetime, until: datetime, pids: dict[str, int]
) -> tuple[LivePhase, ReplayFigures]:
    await reset(bench.history_target)
    body = {
        "from": since.isoformat(),
        "to": until.isoformat(),
        "trigger_ids": [bench.history_trigger],
        "rate_per_s": options.replay_rate,
    }
    created = await bench.client.post("/replays", json=body, headers=bench.auth)
    if created.status_code != 201:
        raise RuntimeError(f"replay not started: {created.status_code} {created.text}")
    replay_id = created.json()["id"]

    async def running() -> bool | None:
        return True if (await shown(bench, replay_id))["state"] != "pending" else None

    await eventually(running, 60, 0.1)
    live = await live_phase(bench.live_target, bench.hook(bench.live_trigger), options, pids)
    at_live_end = await shown(bench, replay_id)

    async def ended() -> dict[str, Any] | None:
        replay = await shown(bench, replay_id)
        return replay if replay["settled"] else None

    try:
        final = await eventually(ended, options.history / options.replay_rate * 3 + 120, 1.0)
    except TimeoutError:
        final = await shown(bench, replay_id)
    return live, ReplayFigures(
        shown=final,
        selected_at_live_end=at_live_end["counts"]["selected"],
        target=await stats(bench.history_target),
    )


def measured_pids(
    settings: Settings, stages: list[asyncio.subprocess.Process], targets: dict[str, str]
) -> dict[str, int]:
    broker_port = int(settings.kafka.bootstrap_servers.split(",")[0].rsplit(":", 1)[1])
    return {
        "broker": listening_pid(broker_port),
        "load generator": os.getpid(),
        **{name: process.pid for name, process in zip(STAGES, stages, strict=True)},
        **{name: listening_pid(int(base.rsplit(":", 1)[1])) for name, base in targets.items()},
    }


async def run(base_settings: Settings, options: Options) -> None:
    with scratch_database(base_settings.database.url.get_secret_value()) as url:
        apply_migrations(url)
        settings = with_free_ports(await isolated_settings(base_settings, url))
        project_id, auth = await project_with_key(settings, "bench")
        env = dispatcher_env(
            settings,
            TRIGGERLINE_CRON_ENABLED="false",
            TRIGGERLINE_LOG_LEVEL="ERROR",
            TRIGGERLINE_REPLAY_POLL_INTERVAL_S="0.2",
            TRIGGERLINE_REPLAY_TRANSACTION_EVENTS=str(options.transaction_events),
        )
        async with target_process() as live_target, target_process() as history_target:
            stages = [
                await asyncio.create_subprocess_exec(sys.executable, "-m", stage, env=env)
                for stage in STAGES
            ]
            try:
                base = f"http://127.0.0.1:{settings.ingest.port}"
                await wait_until_ready(f"{base}/readyz", 90)
                async with httpx.AsyncClient(base_url=base, timeout=30.0) as client:
                    bench = Bench(settings, client, auth, project_id, live_target, history_target)
                    await create_triggers(bench, options)
                    await warm_up(bench, options.rate)
                    seeding = time.monotonic()
                    since, until = await seed_history(bench, options.history)
                    await drained(bench, options.history)
                    seeded_s = time.monotonic() - seeding
                    pids = measured_pids(
                        settings,
                        stages,
                        {"live target": live_target, "history target": history_target},
                    )
                    await reset(live_target)
                    await reset(history_target)
                    baseline = await live_phase(
                        live_target, bench.hook(bench.live_trigger), options, pids
                    )
                    during, replay = await replay_phase(bench, options, since, until, pids)
            finally:
                for process in stages:
                    process.terminate()
                for process in stages:
                    await process.wait()
        baseline.legs = await routed_lags(settings, baseline.received)
        during.legs = await routed_lags(settings, during.received)
    print_report(
        command=shlex.join(["python", "-m", "benchmarks.replay_live_latency", *sys.argv[1:]]),
        options=options,
        seeded_s=seeded_s,
        same_partition=raw_partition(bench.live_trigger) == raw_partition(bench.history_trigger),
        baseline=baseline,
        during=during,
        replay=replay,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=1000, help="live webhooks per second")
    parser.add_argument(
        "--replay-rate", type=float, help="default: TRIGGERLINE_REPLAY_DEFAULT_RATE_PER_S"
    )
    parser.add_argument("--duration", type=float, default=30.0, help="shortest phase, seconds")
    parser.add_argument("--partition", choices=("same", "other"), default="same")
    parser.add_argument("--transaction-events", type=int)
    args = parser.parse_args()
    base_settings = Settings()
    if "KAFKA_BOOTSTRAP_SERVERS" not in os.environ:
        local_kafka.start(base_settings.local_dir)
    if "DATABASE_URL" not in os.environ:
        local_postgres.start(base_settings.local_dir)
    options = Options(
        args.history,
        args.rate,
        args.replay_rate or base_settings.replay.default_rate_per_s,
        args.duration,
        args.partition,
        args.transaction_events or base_settings.replay.transaction_events,
    )
    asyncio.run(run(base_settings, options))
