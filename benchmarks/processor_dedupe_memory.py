"""A batch-engine worker's RSS while its deduplication store holds an hour of marks at 1,000
events/s (3.6M keys), against the floor of holding the same keys in a Python dict.

1. The changelog is filled with 3.6M marks stamped within the last half hour, as an hour of
   traffic would leave it, and a worker (one-hour window) takes the six raw partitions: it
   restores every mark into its RocksDB stores (the time is printed), then routes live traffic
   for a minute while its RSS is sampled.
2. The same keys in a dict, in a process of their own: what keeping them in memory costs.
3. RSS across windows: a worker with a 5 s window routes a steady stream for 60 s (12 windows);
   RSS per window should stay flat.

    .venv/bin/python -m benchmarks.processor_dedupe_memory [--marks 3600000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time

from processors.dedupe import mark_key
from runtime.kafka import durable_producer
from runtime.settings import Settings, get_settings
from schemas.topics import PROCESSOR_DEDUPE, RAW_EVENTS
from tests.integration.support.isolation import drop_topics, isolated_settings
from tests.integration.support.polling import eventually
from tests.integration.support.processor_records import (
    Records,
    Sent,
    one_trigger_per_partition,
    produce_until,
)
from tests.integration.support.processor_workers import metric, processor_workers, rss_mb

LIVE_S = 60.0
SAMPLE_S = 5.0


def keys(triggers: list[str], count: int) -> list[tuple[int, bytes]]:
    """(raw partition, mark key) for `count` distinct events spread over the triggers."""
    return [
        (n % RAW_EVENTS.partitions, mark_key(triggers[n % len(triggers)], f"Ev{n:012d}"))
        for n in range(count)
    ]


async def fill_changelog(settings: Settings, marks: list[tuple[int, bytes]]) -> None:
    producer = durable_producer(settings, linger_ms=20, max_batch_size=1024 * 1024)
    await producer.start()
    topic = PROCESSOR_DEDUPE.name(settings.topics.prefix)
    now_ms = int(time.time() * 1000)
    try:
        pending = []
        for n, (partition, key) in enumerate(marks):
            stamp = now_ms - 1_800_000 + n * 1_800_000 // len(marks)
            pending.append(
                await producer.send(topic, b"", key=key, partition=partition, timestamp_ms=stamp)
            )
            if len(pending) >= 50_000:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def full_store(base: Settings, count: int) -> None:
    settings = await isolated_settings(base, base.database.url.get_secret_value())
    try:
        sent = Sent(set(), set())
        stop = asyncio.Event()
        async with Records(settings) as records:
            triggers = await one_trigger_per_partition(records)
            started = time.monotonic()
            await fill_changelog(settings, keys(triggers, count))
            print(f"changelog filled with {count} marks in {time.monotonic() - started:.0f} s")
            with processor_workers(settings, 1, "batch") as group:
                worker = group.workers[0]
                started = time.monotonic()

                async def restored() -> float | None:
                    done = await metric(worker, "triggerline_processor_dedupe_restored_total")
                    return done if done is not None and done >= count else None

                await eventually(restored, timeout_s=900, interval_s=1.0)
                print(
                    f"worker restored {count} marks in {time.monotonic() - started:.0f} s "
                    f"(start-up included); RSS {rss_mb(worker.process.pid):.0f} MB"
                )
                producing = asyncio.create_task(produce_until(records, triggers, stop, sent))
                samples = []
                live_started = time.monotonic()
                while time.monotonic() - live_started < LIVE_S:
                    await asyncio.sleep(SAMPLE_S)
                    samples.append(rss_mb(worker.process.pid))
                stop.set()
                await producing
                held = await metric(worker, "triggerline_processor_dedupe_keys")
        print(
            f"live traffic for {LIVE_S:.0f} s ({len(sent.events)} events): store holds "
            f"{held or 0:.0f} keys (RocksDB's estimate); RSS min {min(samples):.0f} MB, "
            f"max {max(samples):.0f} MB"
        )
    finally:
        await drop_topics(settings)


def dict_floor(count: int) -> None:
    """The same number of keys in a dict, as a process of its own reports it."""
    code = (
        "import uuid, sys\n"
        "t = [str(uuid.uuid4()) for _ in range(6)]\n"
        f"d = {{f'{{t[n % 6]}}/Ev{{n:012d}}'.encode(): n for n in range({count})}}\n"
        "print(open('/proc/self/status').read().split('VmRSS:')[1].split()[0])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    print(f"the same {count} keys in a Python dict: RSS {int(out.stdout) / 1024:.0f} MB")


async def across_windows(base: Settings) -> None:
    window_s = 5.0
    settings = await isolated_settings(
        base, base.database.url.get_secret_value(), processor__dedupe_window_s=window_s
    )
    sent = Sent(set(), set())
    stop = asyncio.Event()
    try:
        async with Records(settings) as records:
            triggers = await one_trigger_per_partition(records)
            env = {"TRIGGERLINE_PROCESSOR_DEDUPE_WINDOW_S": str(window_s)}
            with processor_workers(settings, 1, "batch", **env) as group:
                worker = group.workers[0]
                producing = asyncio.create_task(produce_until(records, triggers, stop, sent))
                per_window = []
                started = time.monotonic()
                while time.monotonic() - started < LIVE_S:
                    await asyncio.sleep(window_s)
                    per_window.append(rss_mb(worker.process.pid))
                stop.set()
                await producing
        shown = ", ".join(f"{r:.0f}" for r in per_window)
        print(
            f"{window_s:.0f} s window, {len(per_window)} windows, {len(sent.events)} events: "
            f"RSS per window (MB) {shown}"
        )
    finally:
        await drop_topics(settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--marks", type=int, default=3_600_000)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    base = get_settings()
    asyncio.run(full_store(base, args.marks))
    dict_floor(args.marks)
    asyncio.run(across_windows(base))
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
