"""The durable hand-off: a raw event is accepted only once Kafka has acknowledged it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, MessageSizeTooLargeError, RecordTooLargeError
from opentelemetry.trace import use_span

from runtime.metrics import INGEST_PRODUCE_LATENCY
from runtime.settings import Settings
from runtime.tracing import Tracing
from schemas.records import RawEvent
from schemas.topics import RAW_EVENTS

# A readiness probe must answer quickly even when the broker does not.
CONNECT_PROBE_S = 0.5
# How ingest's producer departs from the durable defaults (benchmarks/ingest_throughput.py):
# - All of one trigger's events share a partition, and aiokafka keeps one open batch per
#   partition: a full batch blocks the next send until the broker answered. Batches far larger
#   than the 16 KiB default let one busy trigger go past ~25 events per round trip.
# - No linger: aiokafka has one request in flight per broker, so events arriving meanwhile
#   batch up anyway; lingering only added its 2 ms to every answer, and cost throughput.
RAW_PRODUCER_OPTIONS: dict[str, Any] = {"max_batch_size": 1024 * 1024, "linger_ms": 0}


class KafkaUnavailable(Exception):
    """Kafka did not acknowledge within the budget; the sender must retry."""


class RecordTooLarge(Exception):
    """The raw record (body, JSON-escaped, plus what ingest adds) exceeds what Kafka accepts.

    Retrying cannot help, so this is a 413, not a 503.
    """


class RawEventWriter:
    def __init__(
        self, settings: Settings, producer: AIOKafkaProducer, tracing: Tracing | None = None
    ) -> None:
        self._producer = producer
        self._tracing = tracing
        self._topic = RAW_EVENTS.name(settings.topics.prefix)
        self._budget_s = settings.ingest.produce_timeout_s
        # Trigger id -> the partition its key hashed to the first time. The default
        # partitioner's murmur2 runs in pure Python, per send; a trigger's partition only
        # changes if an operator adds partitions, and keeping the old one keeps its order.
        self._partitions: dict[str, int] = {}

    async def write(self, event: RawEvent, request_headers: Mapping[str, str]) -> str | None:
        """Stores the event; with tracing on, in a `send` span that continues the request's
        `traceparent` (or starts a trace), and returns that trace's id."""
        if self._tracing is None:
            await self._send(event, None)
            return None
        tracing = self._tracing
        span = tracing.start_send(
            self._topic,
            key=event.trigger_id,
            parent=tracing.request_context(request_headers),
        )
        # Failures are recorded as outcomes below, not as exceptions.
        with use_span(span, True, record_exception=False, set_status_on_exception=False):
            try:
                partition = await self._send(event, tracing.record_headers(span))
            except (KafkaUnavailable, RecordTooLarge) as exc:
                tracing.failed(span, str(exc))
                raise
            span.set_attribute("messaging.destination.partition.id", str(partition))
        return tracing.trace_id(span)

    async def _send(self, event: RawEvent, headers: list[tuple[str, bytes]] | None) -> int:
        """The partition the record was stored on, once Kafka acknowledged it."""
        started = time.perf_counter()
        try:
            # Keyed by trigger so one trigger's events keep their arrival order. A send cut off
            # by the budget may still land later; the sender's retry is then a duplicate, which
            # the processors drop. The reverse, 2xx for a record that is not stored, never happens.
            # A timeout scope rather than wait_for: no extra task per request.
            async with asyncio.timeout(self._budget_s):
                stored = await self._producer.send_and_wait(
                    self._topic,
                    RAW_EVENTS.encode(event),
                    key=event.trigger_id.encode(),
                    partition=self._partitions.get(event.trigger_id),
                    headers=headers,
                )
        except (MessageSizeTooLargeError, RecordTooLargeError) as exc:
            raise RecordTooLarge(type(exc).__name__) from exc
        except (TimeoutError, KafkaError) as exc:
            raise KafkaUnavailable(type(exc).__name__) from exc
        INGEST_PRODUCE_LATENCY.observe(time.perf_counter() - started)
        partition: int = stored.partition
        self._partitions[event.trigger_id] = partition
        return partition

    async def connected(self) -> bool:
        """Whether the producer holds (or can open at once) a connection to some broker."""
        client = self._producer.client
        for broker in client.cluster.brokers():
            try:
                if await asyncio.wait_for(client.ready(broker.nodeId), CONNECT_PROBE_S):
                    return True
            except (TimeoutError, KafkaError, OSError):
                continue
        return False
