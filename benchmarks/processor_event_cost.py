"""Triggerline's own per-event cost in the processors, without Kafka: µs per raw record.

The processor workload (20 Slack triggers with CEL filters, the realistic event mix) goes
through the decision code both engines share (`RawEventHandler.handle`) with a real RocksDB
deduplication store, its marks committed every 1,000 events as a transaction would. The floor,
in the same run, is what any processor must do per record: decode the raw event and encode one
output record. Fetching and producing are not counted (see benchmarks/processor_throughput.py).

    .venv/bin/python -m benchmarks.processor_event_cost [--events 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from aiokafka import ConsumerRecord

from benchmarks.processor_workload import raw_events, triggers
from kinds.routing import RoutingTrigger, compile_routing_trigger
from processors.dedupe import PartitionMarks
from processors.dedupe_store import DedupeStore, StoreMemory
from processors.handler import RawEventHandler
from schemas.topics import RAW_EVENTS

COMMIT_EVERY = 1_000
RUNS = 5


class CompiledTriggers:
    """The trigger-config view's lookup seam, over triggers compiled once."""

    def __init__(self, compiled: dict[str, RoutingTrigger]) -> None:
        self._compiled = compiled

    def get(self, trigger_id: str) -> RoutingTrigger | None:
        return self._compiled.get(trigger_id)

    async def lookup(self, trigger_id: str) -> RoutingTrigger | None:
        return self._compiled.get(trigger_id)

    def unusable(self, trigger_id: str) -> str | None:
        return None


def records(count: int) -> tuple[list[ConsumerRecord], CompiledTriggers]:
    configs = triggers()
    now_ms = int(time.time() * 1000)
    values = [RAW_EVENTS.encode(e) for e in raw_events(configs, count)]
    batch = [
        ConsumerRecord("bench.raw-events", 0, n, now_ms, 0, b"k", value, None, len(b"k"), 0, [])
        for n, value in enumerate(values)
    ]
    return batch, CompiledTriggers(
        {
            c.trigger_id: compile_routing_trigger(c, "cel-expr-python", max_collection_items=1000)
            for c in configs
        }
    )


async def handler_cost(
    batch: list[ConsumerRecord], view: CompiledTriggers, store_dir: Path
) -> float:
    handler = RawEventHandler(view, "bench", max_correlation_id_bytes=256)
    store = DedupeStore(store_dir, 3_600_000, StoreMemory.of(32 << 20))
    marks = PartitionMarks(0, store)
    offset = 0
    started = time.perf_counter()
    for n, record in enumerate(batch, 1):
        await handler.handle(record, marks)
        if n % COMMIT_EVERY == 0:
            written = marks.begin_commit()
            offset += len(written)
            marks.committed(offset)
    elapsed = time.perf_counter() - started
    store.destroy()
    return elapsed / len(batch) * 1e6


def floor_cost(batch: list[ConsumerRecord]) -> float:
    started = time.perf_counter()
    for record in batch:
        RAW_EVENTS.encode(RAW_EVENTS.decode(record.value))
    return (time.perf_counter() - started) / len(batch) * 1e6


async def measure(count: int) -> None:
    batch, view = records(count)
    handler_runs, floor_runs = [], []
    for run in range(RUNS):
        with tempfile.TemporaryDirectory() as scratch:
            handler_runs.append(await handler_cost(batch, view, Path(scratch) / f"store-{run}"))
        floor_runs.append(floor_cost(batch))
    handler, floor = statistics.median(handler_runs), statistics.median(floor_runs)
    print(f"{count} raw events, median of {RUNS} runs, load average {os.getloadavg()[0]:.2f}")
    print(f"decode + encode one record (the floor): {floor:6.1f} µs/event")
    print(
        f"decision code, cel-expr-python:        {handler:6.1f} µs/event "
        f"({handler / floor:.1f}x the floor)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    asyncio.run(measure(args.events))


if __name__ == "__main__":
    main()
