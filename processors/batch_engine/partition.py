"""One raw partition's work in the batch engine: outputs collected, then committed together.

Processing a raw record only appends its outputs to the partition's buffer; nothing is sent per
event. Each commit interval the buffer becomes one transaction of the partition's own
transactional producer: the outputs go out as one record batch per destination partition
(built in C by aiokafka, which needs the destination partition, hence the murmur2 placement
here), then the deduplication marks as a batch on the changelog partition, then the consumed
offset, then the commit. While that runs, the partition keeps processing into a fresh buffer;
its next commit waits for this one. Only once Kafka has committed do the marks go to the local
store (see processors/dedupe.py).

Any failure in a commit stops the worker (processors/stop.py): the transaction is aborted by
Kafka and its events are read again after the restart.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Awaitable
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from processors.dedupe import PartitionMarks
from processors.faults import Faults
from processors.outputs import Output
from processors.stop import stop_worker_now
from runtime.kafka import key_partition
from runtime.metrics import PROCESSOR_COMMIT_LATENCY


class Placement:
    """The partition count of each output topic, read from the cluster once at start-up."""

    def __init__(self, partitions: dict[str, int]) -> None:
        self._partitions = partitions

    def partition(self, topic: str, key: bytes) -> int:
        return key_partition(key, self._partitions[topic])


class OffsetCommitter(Protocol):
    """Makes a partition's produced outputs and its consumed offset final."""

    async def commit(self, tp: TopicPartition, offset: int, faults: Faults) -> None: ...


class TransactionCommitter:
    """Exactly-once: the offset joins the partition's transaction, which then commits."""

    def __init__(self, producer: AIOKafkaProducer, group: str) -> None:
        self._producer = producer
        self._group = group

    async def commit(self, tp: TopicPartition, offset: int, faults: Faults) -> None:
        faults.reach("send-offsets")
        await self._producer.send_offsets_to_transaction({tp: offset}, self._group)
        faults.reach("before-commit")
        await self._producer.commit_transaction()
        faults.reach("after-commit")
        # No request yet: the next transaction starts with its first batch.
        await self._producer.begin_transaction()


class ConsumerCommitter:
    """At-least-once: the outputs were acknowledged; commit the offset through the group."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self._consumer = consumer

    async def commit(self, tp: TopicPartition, offset: int, faults: Faults) -> None:
        faults.reach("send-offsets")
        await self._consumer.commit({tp: offset})
        faults.reach("after-commit")


class PartitionWork:
    """The buffer, commit point and in-flight commit of one assigned raw partition."""

    def __init__(
        self,
        tp: TopicPartition,
        *,
        producer: AIOKafkaProducer,
        committer: OffsetCommitter,
        marks: PartitionMarks,
        placement: Placement,
        changelog_topic: str,
        next_offset: int,
        faults: Faults,
    ) -> None:
        self.tp = tp
        self.producer = producer
        self.marks = marks
        self._committer = committer
        self._placement = placement
        self._changelog_topic = changelog_topic
        self._faults = faults
        # The raw offset to process next, and the one the last finished commit made final.
        self.next_offset = next_offset
        self.committed_offset = next_offset
        self.outputs: list[Output] = []
        # False until the partition's deduplication marks are restored.
        self.ready = False
        self.last_commit_started = time.monotonic()
        self._committing: asyncio.Task[None] | None = None
        self._committing_offset = next_offset

    @property
    def committing(self) -> bool:
        return self._committing is not None

    @property
    def has_work(self) -> bool:
        return self.next_offset > self._committing_offset or bool(self.outputs)

    def start_commit(self) -> None:
        """Commit everything processed so far, in the background. Only when not committing."""
        if self._committing is not None:
            raise RuntimeError(f"{self.tp} is already committing")
        outputs, self.outputs = self.outputs, []
        offset = self.next_offset
        marks = self.marks.begin_commit()
        self.last_commit_started = time.monotonic()
        self._committing_offset = offset
        # A fresh context: the commit's log lines must not carry an event's ids.
        self._committing = asyncio.get_running_loop().create_task(
            self._commit(outputs, marks, offset),
            name=f"commit-{self.tp.partition}",
            context=contextvars.Context(),
        )

    async def wait_committed(self) -> None:
        if self._committing is not None:
            await asyncio.shield(self._committing)

    async def finish(self) -> None:
        """Wait for the commit in flight, then commit what is left."""
        await self.wait_committed()
        if self.has_work:
            self.start_commit()
            await self.wait_committed()

    async def _commit(
        self, outputs: list[Output], marks: list[tuple[bytes, int]], offset: int
    ) -> None:
        started = time.perf_counter()
        try:
            changelog_end = await self._produce(outputs, marks)
            await self._committer.commit(self.tp, offset, self._faults)
        except BaseException as exc:
            stop_worker_now(exc)
        self.marks.committed(changelog_end)
        self.committed_offset = offset
        self._committing = None
        PROCESSOR_COMMIT_LATENCY.observe(time.perf_counter() - started)

    async def _produce(self, outputs: list[Output], marks: list[tuple[bytes, int]]) -> int | None:
        """Sends the outputs and marks, one batch per destination partition; waits until
        Kafka has them. Returns the changelog offset after the last mark, if any."""
        producer = self.producer
        placement = self._placement
        batches: dict[tuple[str, int], Any] = {}
        sent: list[Awaitable[Any]] = []
        for topic, key, value, headers in outputs:
            target = (topic, placement.partition(topic, key))
            batch = batches.get(target)
            if batch is None:
                batch = batches[target] = producer.create_batch()
            if batch.append(timestamp=None, key=key, value=value, headers=headers) is None:
                # Full: send it and start the next one (Kafka takes them in order). An empty
                # batch takes any one record, however large.
                sent.append(await producer.send_batch(batch, topic, partition=target[1]))
                batch = batches[target] = producer.create_batch()
                if batch.append(timestamp=None, key=key, value=value, headers=headers) is None:
                    raise RuntimeError(f"an empty record batch refused a record for {topic}")
        for (topic, partition), batch in batches.items():
            sent.append(await producer.send_batch(batch, topic, partition=partition))
        changelog: Awaitable[Any] | None = None
        count = 0
        if marks:
            batch = producer.create_batch()
            for key, timestamp_ms in marks:
                if batch.append(timestamp=timestamp_ms, key=key, value=b"", headers=[]) is None:
                    sent.append(await self._send_changelog(batch))
                    batch = producer.create_batch()
                    batch.append(timestamp=timestamp_ms, key=key, value=b"", headers=[])
                    count = 0
                count += 1
            changelog = await self._send_changelog(batch)
        await asyncio.gather(*sent)
        if changelog is None:
            return None
        return int((await changelog).offset) + count

    async def _send_changelog(self, batch: Any) -> Awaitable[Any]:
        future: Awaitable[Any] = await self.producer.send_batch(
            batch, self._changelog_topic, partition=self.tp.partition
        )
        return future
