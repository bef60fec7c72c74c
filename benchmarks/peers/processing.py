"""Processors beside Benthos: one worker drains a pre-loaded raw topic, filtering and routing.

The workload is benchmarks/processor_throughput.py's: 20 Slack triggers with realistic CEL
filters and a realistic mix of events (benchmarks/processor_workload.py), 2% of them sender
retries. Runs, in one go on this machine, each on topics of its own on the local broker:
1. Benthos `kafka_franz -> bloblang -> kafka_franz` (the baseline), the 20 filters and the
   correlation keying translated to bloblang (benchmarks/peers/bloblang.py), at least once;
2. `python -m processors`, each engine (batch, faust), exactly-once and at-least-once.

Benthos neither deduplicates nor is exactly-once: a sender's retry is routed again, and a
crash re-routes what was produced but not yet committed. Triggerline routes each event once.
Rates and CPU come from each consumer group's committed offsets (benchmarks/processor_drain.py),
start-up excluded. The routed records are read back: Benthos's must be every event Triggerline's
own routing code routes, retries included, with the same keys; Triggerline's, each event once.

    python -m benchmarks.peers.processing [--events 40000] [--engines batch,faust]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import orjson

from benchmarks.peers.benthos import ensure_benthos, running_benthos
from benchmarks.peers.configs import processing_config
from benchmarks.peers.report import load_averages, markdown_table, rate, ratio, share
from benchmarks.processor_drain import Drain, committed_drain, fresh_settings, load, worker_drain
from benchmarks.processor_workload import raw_events, triggers
from kinds.base import Normalized
from kinds.routing import Routed, compile_routing_trigger, decide, normalize
from runtime.settings import Settings
from schemas.records import RawEvent
from schemas.topics import RAW_EVENTS, ROUTED_EVENTS
from schemas.triggers import TriggerConfig
from tests.integration.support.isolation import drop_topics
from tests.integration.support.processor_workers import ENGINES
from tests.integration.support.stages import free_port
from tests.integration.support.topic_reader import read_all

# A routed record as both peers write it: trigger, event id and record key (correlation id).
RoutedKey = tuple[str, str, str]


@dataclass(frozen=True)
class Run:
    name: str
    drain: Drain
    routed: Counter[RoutedKey]


def expected_routed(configs: list[TriggerConfig], events: list[RawEvent]) -> Counter[RoutedKey]:
    """What Triggerline's routing code routes of `events`, each time an event comes (retries
    included): what a router that does not deduplicate writes."""
    settings = Settings()
    compiled = {
        c.trigger_id: compile_routing_trigger(
            c, settings.cel.engine, max_collection_items=settings.cel.max_collection_items
        )
        for c in configs
    }
    routed: Counter[RoutedKey] = Counter()
    for raw in events:
        trigger = compiled[raw.trigger_id]
        event = normalize(raw, trigger)
        if isinstance(event, Normalized):
            for decision in decide(raw, trigger, event):
                if isinstance(decision, Routed):
                    routed[(raw.trigger_id, event.event_id, event.correlation_id)] += 1
    return routed


async def routed_records(settings: Settings) -> Counter[RoutedKey]:
    records = await read_all(settings, ROUTED_EVENTS.name(settings.topics.prefix))
    found: Counter[RoutedKey] = Counter()
    for key, value in records:
        event = orjson.loads(value or b"{}")
        found[(event["triggerid"], event["id"], (key or b"").decode())] += 1
    return found


async def benthos_run(
    binary: Path, base: Settings, configs: list[TriggerConfig], events: list[RawEvent], work: Path
) -> Run:
    settings = await fresh_settings(base)
    try:
        await load(settings, configs, events)
        group = settings.group("benthos")
        config = processing_config(
            brokers=settings.kafka.bootstrap_servers,
            raw_topic=RAW_EVENTS.name(settings.topics.prefix),
            routed_topic=ROUTED_EVENTS.name(settings.topics.prefix),
            group=group,
            ops_port=free_port(),
            configs=configs,
        )
        async with running_benthos(binary, config, work, "processing") as benthos:
            drain = await committed_drain(settings, group, len(events), benthos.pid)
        routed = await routed_records(settings)
    finally:
        await drop_topics(settings)
    return Run("Benthos kafka_franz → bloblang → kafka_franz, at-least-once", drain, routed)


async def triggerline_run(
    base: Settings,
    configs: list[TriggerConfig],
    events: list[RawEvent],
    engine: str,
    exactly_once: bool,
) -> Run:
    settings = await fresh_settings(base)
    try:
        await load(settings, configs, events)
        env = {
            "TRIGGERLINE_PROCESSOR_ENGINE": engine,
            "TRIGGERLINE_PROCESSOR_EXACTLY_ONCE": str(exactly_once).lower(),
        }
        drain = await worker_drain(settings, len(events), env)
        routed = await routed_records(settings)
    finally:
        await drop_topics(settings)
    mode = "exactly-once" if exactly_once else "at-least-once"
    return Run(f"Triggerline processors, {engine} engine, {mode}", drain, routed)


async def benchmark(count: int, engines: list[str], work: Path) -> None:
    base = Settings()
    binary = await asyncio.to_thread(ensure_benthos, base)
    configs = triggers()
    events = raw_events(configs, count)
    expected = expected_routed(configs, events)
    before = load_averages()
    runs = [await benthos_run(binary, base, configs, events, work)]
    for engine in engines:
        for exactly_once in (True, False):
            runs.append(await triggerline_run(base, configs, events, engine, exactly_once))
    after = load_averages()
    baseline = runs[0].drain
    print(
        f"processing beside Benthos: {os.cpu_count()} CPUs, {len(configs)} Slack triggers with "
        f"filters, {count:,} raw events per run; load average {before} before, {after} after"
    )
    header = ["what", "events/s", "CPU", "broker CPU", "events per CPU-s", "routed records"]
    header += ["of Benthos", "per CPU-s, of Benthos"]
    rows = [
        [
            run.name,
            rate(d.events_per_s),
            share(d.cpu),
            "n/a" if d.broker_cpu is None else share(d.broker_cpu),
            rate(d.per_cpu_s),
            rate(run.routed.total()),
            ratio(d.events_per_s, baseline.events_per_s),
            ratio(d.per_cpu_s, baseline.per_cpu_s),
        ]
        for run in runs
        for d in [run.drain]
    ]
    print(markdown_table(header, rows))
    once = Counter(set(expected))
    print(
        f"Triggerline's routing code routes {expected.total():,} records of these events when "
        f"every sender retry is routed again, {once.total():,} when each event is routed once."
    )
    print("Benthos neither deduplicates nor is exactly-once: retries are routed again.")
    for run in runs:
        wanted = expected if run is runs[0] else once
        verdict = "as expected" if run.routed == wanted else f"DIFFERENT from {wanted.total():,}"
        print(f"{run.name}: {run.routed.total():,} routed records, {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument(
        "--engines", default=",".join(ENGINES), help="Triggerline's, comma-separated"
    )
    options = parser.parse_args()
    engines = options.engines.split(",")
    with tempfile.TemporaryDirectory(prefix="triggerline-peers-") as work:
        asyncio.run(benchmark(options.events, engines, Path(work)))


if __name__ == "__main__":
    main()
