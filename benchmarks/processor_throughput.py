"""Processor events/s per worker, per engine, against the limit: a plain aiokafka consume -> json
-> produce loop, on the same broker, in the same run.

Setup: 20 active Slack triggers, each with a realistic CEL filter, and a realistic mix of
events (benchmarks/processor_workload.py) already on the raw topic. One `python -m processors`
worker drains it per configuration (each engine, with and without exactly-once); the rate is
measured from the group's committed offsets, so worker start-up is not counted. Each run has
its own topics on the local broker, deleted afterwards. In the same run,
benchmarks/faust_floor.py shows what faust itself costs: the same exactly-once app shape
doing no work.

    .venv/bin/python -m benchmarks.processor_throughput [--events 50000] [--celpy] [--latency]
        [--destinations] [--tracing]

`--celpy` adds the batch engine with the reference CEL engine. `--destinations` instead runs
the exactly-once batch engine with one destination per trigger and with three (one plain, one
with a transform, one with its own filter), and reports events/s and routed records/s of each.
`--latency` instead measures what the transaction commit interval costs end to end: events
written at a steady rate, the time from ingest acceptance to the routed record being readable
by a read_committed consumer, per TRIGGERLINE_PROCESSOR_COMMIT_INTERVAL_S. `--tracing` instead
runs the exactly-once batch engine with tracing off, then on with every trace sampled, then on
with one trace in 100 sampled, exporting to an OTLP endpoint in this process that counts the
spans; the raw records carry a `traceparent` each in every run, as ingest writes them with
tracing on.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from msgspec.structs import replace

from benchmarks.processor_drain import (
    FLOOR_MODULE,
    fresh_settings,
    load,
    start_worker,
    stop_worker,
    worker_rate,
)
from benchmarks.processor_workload import raw_events, triggers
from benchmarks.tracing_sink import ingest_headers, otlp_sink
from runtime.kafka import durable_producer, group_consumer
from runtime.settings import Settings
from runtime.tracing import ENDPOINT_VARIABLES
from schemas.topics import RAW_EVENTS, ROUTED_EVENTS
from schemas.triggers import Destination, Target
from tests.integration.support.isolation import drop_topics
from tests.integration.support.processor_workers import ENGINES
from tests.integration.support.stages import free_port, wait_until_ready
from tests.integration.support.topic_reader import read_all

CONFIGS = triggers()
# For the latency runs: a trigger that routes every event, so that only the pipeline is timed.
ROUTE_ALL = replace(CONFIGS[0], trigger_id=f"bench-all-{uuid.uuid4().hex[:8]}", config={})


async def plain_loop_rate(settings: Settings, total: int) -> float:
    """The limit: consume, parse and re-serialize the JSON, produce, commit. Nothing else."""
    consumer = group_consumer(
        settings, RAW_EVENTS.name(settings.topics.prefix), group=settings.group("plain")
    )
    producer = durable_producer(settings)
    sink = ROUTED_EVENTS.name(settings.topics.prefix)
    await consumer.start()
    await producer.start()
    try:
        seen, started = 0, 0.0
        while seen < total:
            batches = await consumer.getmany(timeout_ms=500, max_records=2000)
            if not started and batches:
                started = time.perf_counter()
            futures = []
            for records in batches.values():
                for record in records:
                    value = orjson.dumps(orjson.loads(record.value))
                    futures.append(await producer.send(sink, value, key=record.key))
            await asyncio.gather(*futures)
            await consumer.commit()
            seen += len(futures)
        return total / (time.perf_counter() - started)
    finally:
        await producer.stop()
        await consumer.stop()


async def throughput(base: Settings, count: int, celpy: bool) -> None:
    events = raw_events(CONFIGS, count)
    print(f"{len(CONFIGS)} slack triggers with CEL filters, {count} raw events per run")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    settings = await fresh_settings(base)
    await load(settings, CONFIGS, events)
    limit = await plain_loop_rate(settings, count)
    await drop_topics(settings)
    print(f"plain aiokafka consume -> json -> produce loop:  {limit:8.0f} events/s")
    settings = await fresh_settings(base)
    await load(settings, CONFIGS, events)
    rate = await worker_rate(settings, count, {}, FLOOR_MODULE)
    await drop_topics(settings)
    print(
        f"faust exactly-once, acknowledge only:            {rate:8.0f} events/s "
        f"({rate / limit:.2f} of the plain loop)"
    )
    runs = [(engine, "cel-expr-python", eos) for engine in ENGINES for eos in (True, False)]
    if celpy:
        runs.append(("batch", "celpy", True))
    for engine, cel_engine, exactly_once in runs:
        settings = await fresh_settings(base)
        await load(settings, CONFIGS, events)
        env = {
            "TRIGGERLINE_PROCESSOR_ENGINE": engine,
            "TRIGGERLINE_CEL_ENGINE": cel_engine,
            "TRIGGERLINE_PROCESSOR_EXACTLY_ONCE": str(exactly_once).lower(),
        }
        rate = await worker_rate(settings, count, env)
        await drop_topics(settings)
        mode = "exactly-once " if exactly_once else "at-least-once"
        print(
            f"processor {engine:5s} {cel_engine:15s} {mode}: {rate:8.0f} events/s "
            f"({rate / limit:.2f} of the plain loop)"
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


FAN_OUT = (
    Destination("bot", Target("noop")),
    Destination(
        "audit",
        Target("noop"),
        transform='{"channel": event.channel_id, "user": event.user_id, "text": event.text}',
    ),
    Destination("alerts", Target("noop"), filter='event.text.contains("deploy")'),
)


async def fan_out(base: Settings, count: int) -> None:
    events = raw_events(CONFIGS, count)
    print(f"{len(CONFIGS)} slack triggers with CEL filters, {count} raw events per run")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    single = 0.0
    for label, configs in (
        ("1 destination ", CONFIGS),
        ("3 destinations", [replace(c, destinations=FAN_OUT) for c in CONFIGS]),
    ):
        settings = await fresh_settings(base)
        await load(settings, configs, events)
        rate = await worker_rate(settings, count, {})
        routed = len(await read_all(settings, ROUTED_EVENTS.name(settings.topics.prefix)))
        await drop_topics(settings)
        single = single or rate
        print(
            f"processor batch exactly-once, {label}: {rate:8.0f} events/s "
            f"{rate * routed / count:8.0f} routed records/s ({routed / count:.2f} per event; "
            f"{rate / single:.2f} of one destination's events/s)"
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


TRACING_RUNS = (
    ("off", 1.0, False),
    ("on, every trace sampled", 1.0, True),
    ("on, 1 in 100", 0.01, True),
)


async def tracing_cost(base: Settings, count: int) -> None:
    events = raw_events(CONFIGS, count)
    print(f"{len(CONFIGS)} slack triggers with CEL filters, {count} raw events per run")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    # Only a run's own environment turns tracing on.
    for name in ENDPOINT_VARIABLES:
        os.environ.pop(name, None)
    off = 0.0
    async with otlp_sink() as sink:
        for label, sampled_share, on in TRACING_RUNS:
            settings = await fresh_settings(base)
            await load(settings, CONFIGS, events, ingest_headers(count, sampled_share))
            env = {"OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint} if on else {}
            exported = sink.spans
            # The worker exports what its span queue still holds when it stops.
            rate = await worker_rate(settings, count, env)
            await drop_topics(settings)
            off = off or rate
            print(
                f"processor batch exactly-once, tracing {label:23s}: {rate:8.0f} events/s "
                f"({rate / off:.2f} of tracing off), {sink.spans - exported:7d} spans exported"
            )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


async def latency(base: Settings, per_s: int, seconds: float) -> None:
    print(f"end-to-end latency (raw accepted -> routed readable), {per_s} events/s for {seconds}s")
    for interval in ("0.02", "0.1", "0.5", "1.0"):
        settings = await fresh_settings(base)
        await load(settings, [ROUTE_ALL], [])
        env = {"TRIGGERLINE_PROCESSOR_COMMIT_INTERVAL_S": interval}
        samples = await measure_latency(settings, env, per_s, seconds)
        q = statistics.quantiles(samples, n=100)
        print(
            f"commit interval {interval:>4s} s: p50 {q[49] * 1000:7.1f} ms  "
            f"p99 {q[98] * 1000:7.1f} ms  ({len(samples)} routed)"
        )


async def measure_latency(
    settings: Settings, env: dict[str, str], per_s: int, seconds: float
) -> list[float]:
    port = free_port()
    worker = await start_worker(settings, env, port=port)
    consumer = group_consumer(
        settings, ROUTED_EVENTS.name(settings.topics.prefix), group=settings.group("latency")
    )
    producer = durable_producer(settings)
    await consumer.start()
    await producer.start()
    total = int(per_s * seconds)
    events = raw_events([ROUTE_ALL], total)
    samples: list[float] = []
    try:
        raw_topic = RAW_EVENTS.name(settings.topics.prefix)
        # A warm-up event: the worker has started and owns the partition once it is routed;
        # it is ready once every partition's deduplication marks are restored.
        await producer.send_and_wait(raw_topic, RAW_EVENTS.encode(events[0]), key=b"warm-up")
        while not await consumer.getmany(timeout_ms=500):
            pass
        await wait_until_ready(f"http://127.0.0.1:{port}/readyz")
        for n, event in enumerate(events):
            stamped = replace(event, received_at=datetime.now(UTC))
            await producer.send(
                raw_topic, RAW_EVENTS.encode(stamped), key=event.trigger_id.encode()
            )
            if n % 10 == 9:
                await asyncio.sleep(10 / per_s)
            samples.extend(await arrivals(consumer, timeout_ms=0))
        deadline = time.monotonic() + 30
        while len(samples) < total * 0.9 and time.monotonic() < deadline:
            samples.extend(await arrivals(consumer, timeout_ms=200))
    finally:
        await producer.stop()
        await consumer.stop()
        await stop_worker(worker)
    return samples


async def arrivals(consumer: Any, timeout_ms: int) -> list[float]:
    """Seconds from ingest acceptance to now, for each routed record readable now."""
    batches = await consumer.getmany(timeout_ms=timeout_ms)
    now = datetime.now(UTC)
    return [
        (now - ROUTED_EVENTS.decode(record.value).receivedat).total_seconds()
        for records in batches.values()
        for record in records
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--celpy", action="store_true", help="also the reference CEL engine")
    parser.add_argument("--latency", action="store_true")
    parser.add_argument("--destinations", action="store_true", help="one against three")
    parser.add_argument("--tracing", action="store_true", help="tracing off against on")
    parser.add_argument("--rate", type=int, default=200, help="events/s for --latency")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration for --latency")
    args = parser.parse_args()
    base = Settings()
    if args.latency:
        asyncio.run(latency(base, args.rate, args.seconds))
    elif args.destinations:
        asyncio.run(fan_out(base, args.events))
    elif args.tracing:
        asyncio.run(tracing_cost(base, args.events))
    else:
        asyncio.run(throughput(base, args.events, args.celpy))


if __name__ == "__main__":
    main()
