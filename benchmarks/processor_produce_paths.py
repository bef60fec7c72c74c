"""Which way the batch engine should produce a transaction's outputs: one `send` per record, or
record batches built with `create_batch` and sent with `send_batch`, one per destination
partition (placed by murmur2 in C).

Both produce the same routed-event-sized records, keyed like routed events and delivery-log
records, in transactions of 1,000 records on a transactional producer, as a partition's commit
does, to the same broker in the same run:

    .venv/bin/python -m benchmarks.processor_produce_paths [--records 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from typing import Any

from runtime.kafka import durable_producer, key_partition
from runtime.settings import Settings, get_settings
from schemas.topics import ROUTED_EVENTS
from tests.integration.support.isolation import drop_topics, isolated_settings

PER_TRANSACTION = 1_000
VALUE = b"x" * 900


def keys(count: int) -> list[bytes]:
    # A conversation per 20 events, as in the processor workload.
    conversations = [f"C{n:02d}:{uuid.uuid4().hex[:10]}".encode() for n in range(count // 20 + 1)]
    return [conversations[n % len(conversations)] for n in range(count)]


async def by_send(producer: Any, topic: str, batch: list[bytes]) -> None:
    futures = [await producer.send(topic, VALUE, key=key) for key in batch]
    await asyncio.gather(*futures)


async def by_batches(producer: Any, topic: str, batch: list[bytes], partitions: int) -> None:
    builders: dict[int, Any] = {}
    sent = []
    for key in batch:
        partition = key_partition(key, partitions)
        builder = builders.get(partition)
        if builder is None:
            builder = builders[partition] = producer.create_batch()
        if builder.append(timestamp=None, key=key, value=VALUE, headers=[]) is None:
            sent.append(await producer.send_batch(builder, topic, partition=partition))
            builder = builders[partition] = producer.create_batch()
            builder.append(timestamp=None, key=key, value=VALUE, headers=[])
    for partition, builder in builders.items():
        sent.append(await producer.send_batch(builder, topic, partition=partition))
    await asyncio.gather(*sent)


async def rate(settings: Settings, way: str, records: list[bytes]) -> float:
    producer = durable_producer(
        settings,
        transactional_id=f"{settings.topics.prefix}-{way}",
        linger_ms=0,
        max_batch_size=1024 * 1024,
    )
    await producer.start()
    topic = ROUTED_EVENTS.name(settings.topics.prefix)
    try:
        started = time.perf_counter()
        for start in range(0, len(records), PER_TRANSACTION):
            batch = records[start : start + PER_TRANSACTION]
            await producer.begin_transaction()
            if way == "send":
                await by_send(producer, topic, batch)
            else:
                await by_batches(producer, topic, batch, ROUTED_EVENTS.partitions)
            await producer.commit_transaction()
        return len(records) / (time.perf_counter() - started)
    finally:
        await producer.stop()


async def measure(count: int) -> None:
    base = get_settings()
    settings = await isolated_settings(base, base.database.url.get_secret_value())
    records = keys(count)
    try:
        print(f"{count} records of {len(VALUE)} bytes, {PER_TRANSACTION} per transaction")
        print(f"load average before: {os.getloadavg()[0]:.2f}")
        results = {way: await rate(settings, way, records) for way in ("send", "batches")}
    finally:
        await drop_topics(settings)
    print(f"one send per record:            {results['send']:9.0f} records/s")
    print(
        f"create_batch/send_batch:        {results['batches']:9.0f} records/s "
        f"({results['batches'] / results['send']:.1f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    asyncio.run(measure(args.records))


if __name__ == "__main__":
    main()
