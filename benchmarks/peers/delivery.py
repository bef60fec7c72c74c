"""Delivery beside Benthos: routed records on the broker, POSTed to a local HTTP target.

Runs, in one go on this machine, against the same target (benchmarks/dispatch_target.py, its
own process, answering 204 at once):
1. Benthos `kafka_franz -> http_client` (the baseline), 128 requests in flight, retries on;
2. one `python -m dispatchers` process (benchmarks/dispatch_throughput.py's setup).

Each first drains `--events` routed records produced beforehand (`--keys` correlation ids):
deliveries/s from the target's first request to its last, and the CPU of the delivering process
meanwhile (the broker's and the target's beside it: a target near one core holds both peers'
rate down, and per CPU-second is then the fair comparison). Then, caught up, it delivers records
produced at `--rate` per second for `--seconds` seconds: end to end is from a record's
`receivedat` (stamped as it is produced) to the target's receipt. The dispatcher signs every
request, logs each delivery to the delivery log (acks=all) and keeps one correlation id's
deliveries in order; Benthos does none of that.

    python -m benchmarks.peers.delivery [--events 60000] [--keys 2000] [--rate 1000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.dispatch_throughput import (
    reset,
    running_dispatcher,
    stats,
    target_drain,
    target_process,
)
from benchmarks.ingest_load import cpu_seconds
from benchmarks.peers.benthos import ensure_benthos, running_benthos
from benchmarks.peers.configs import delivery_config
from benchmarks.peers.report import load_averages, markdown_table, rate, ratio, share
from benchmarks.processor_drain import Drain, local_broker_pid
from deploy.migrate import apply_migrations
from runtime.kafka import durable_producer
from runtime.settings import Settings
from schemas.topics import DESTINATION_HEADER, ROUTED_EVENTS
from schemas.triggers import TriggerConfig
from tests.integration.support.dispatch_harness import produce_routed, publish_trigger, routed_event
from tests.integration.support.isolation import drop_topics, isolated_settings, scratch_database
from tests.integration.support.polling import eventually
from tests.integration.support.stages import free_port


@dataclass(frozen=True)
class Paced:
    p50_ms: float
    p99_ms: float
    cpu: float


@dataclass(frozen=True)
class Run:
    name: str
    drain: Drain
    paced: Paced


async def produce_paced(
    settings: Settings, trigger: TriggerConfig, ref: str, options: argparse.Namespace
) -> int:
    """Routed records at a fixed rate, each stamped `receivedat` as it is sent."""
    producer = durable_producer(settings)
    await producer.start()
    topic = ROUTED_EVENTS.name(settings.topics.prefix)
    total = int(options.rate * options.seconds)
    try:
        started = time.perf_counter()
        sent = []
        for n in range(total):
            delay = started + n / options.rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            event = routed_event(trigger, f"conv-{n % options.keys}", n, ref)
            sent.append(
                await producer.send(
                    topic,
                    ROUTED_EVENTS.encode(event),
                    key=event.subject.encode(),
                    headers=[(DESTINATION_HEADER, event.destination.encode())],
                )
            )
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
    return total


async def paced(
    settings: Settings, trigger: TriggerConfig, target: str, pid: int, options: argparse.Namespace
) -> Paced:
    await reset(target)
    cpu_before, started = cpu_seconds(pid), time.perf_counter()
    total = await produce_paced(settings, trigger, f"{target}/hook", options)

    async def delivered() -> list[float] | None:
        got = await stats(target)
        return got["latencies_ms"] if got["count"] >= total else None

    latencies: list[float] = await eventually(delivered, timeout_s=120, interval_s=0.5)
    cpu = (cpu_seconds(pid) - cpu_before) / (time.perf_counter() - started)
    q = statistics.quantiles(latencies, n=100)
    return Paced(q[49], q[98], cpu)


async def prepared(settings: Settings, target: str, options: argparse.Namespace) -> TriggerConfig:
    """A trigger delivering to the target, and `--events` routed records for it."""
    trigger = await publish_trigger(settings, ref=f"{target}/hook")
    ref = f"{target}/hook"
    records = [
        routed_event(trigger, f"conv-{n % options.keys}", n, ref) for n in range(options.events)
    ]
    await produce_routed(settings, records)
    await reset(target)
    return trigger


async def benthos_run(
    binary: Path, settings: Settings, target: str, options: argparse.Namespace, work: Path
) -> Run:
    trigger = await prepared(settings, target, options)
    config = delivery_config(
        brokers=settings.kafka.bootstrap_servers,
        routed_topic=ROUTED_EVENTS.name(settings.topics.prefix),
        group=settings.group("benthos"),
        ops_port=free_port(),
        url=f"{target}/hook",
    )
    async with running_benthos(binary, config, work, "delivery") as benthos:
        drain = await target_drain(target, options.events, benthos.pid, local_broker_pid(settings))
        latency = await paced(settings, trigger, target, benthos.pid, options)
    return Run("Benthos kafka_franz → http_client", drain, latency)


async def triggerline_run(settings: Settings, target: str, options: argparse.Namespace) -> Run:
    trigger = await prepared(settings, target, options)
    async with running_dispatcher(settings) as dispatcher:
        drain = await target_drain(
            target, options.events, dispatcher.pid, local_broker_pid(settings)
        )
        latency = await paced(settings, trigger, target, dispatcher.pid, options)
    return Run("Triggerline dispatchers (one process)", drain, latency)


async def benchmark(options: argparse.Namespace, work: Path) -> None:
    base = Settings()
    binary = await asyncio.to_thread(ensure_benthos, base)
    with scratch_database(base.database.url.get_secret_value()) as url:
        apply_migrations(url)
        async with target_process() as target:
            before = load_averages()
            # Each peer has topics of its own, so that neither reads the other's records.
            benthos_settings = await isolated_settings(base, url)
            triggerline_settings = await isolated_settings(base, url)
            try:
                runs = [
                    await benthos_run(binary, benthos_settings, target, options, work),
                    await triggerline_run(triggerline_settings, target, options),
                ]
            finally:
                await drop_topics(benthos_settings)
                await drop_topics(triggerline_settings)
            after = load_averages()
    baseline = runs[0].drain
    print(
        f"delivery beside Benthos: {os.cpu_count()} CPUs, {options.events:,} routed records "
        f"({options.keys:,} correlation ids) drained, then {options.rate:,}/s for "
        f"{options.seconds} s; load average {before} before, {after} after"
    )
    header = ["what", "deliveries/s", "CPU", "broker CPU", "target CPU", "deliveries per CPU-s"]
    header += ["of Benthos"]
    header += ["per CPU-s, of Benthos", f"at {options.rate:,}/s: end to end p50 / p99", "CPU"]
    rows = [
        [
            run.name,
            rate(d.events_per_s),
            share(d.cpu),
            "n/a" if d.broker_cpu is None else share(d.broker_cpu),
            "n/a" if d.target_cpu is None else share(d.target_cpu),
            rate(d.per_cpu_s),
            ratio(d.events_per_s, baseline.events_per_s),
            ratio(d.per_cpu_s, baseline.per_cpu_s),
            f"{run.paced.p50_ms:.1f} / {run.paced.p99_ms:.1f} ms",
            share(run.paced.cpu),
        ]
        for run in runs
        for d in [run.drain]
    ]
    print(markdown_table(header, rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--keys", type=int, default=2_000)
    parser.add_argument("--rate", type=int, default=1_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="triggerline-peers-") as work:
        asyncio.run(benchmark(options, Path(work)))


if __name__ == "__main__":
    main()
