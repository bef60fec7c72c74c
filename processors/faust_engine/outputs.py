"""Sends a processor's output records in the Kafka transaction of the record they came from.

faust's exactly-once mode keeps one transactional producer per source partition and commits
each partition's consumed offsets in that producer's transaction. But `topic.send()` picks the
transactional producer by the *destination* partition, so a routed record keyed by correlation
id would join the transaction of an unrelated source partition and commit independently of the
raw event that caused it; a worker killed in between then re-routes that event on restart.
Sending through the source partition's producer puts the outputs, the deduplication marks and
the consumed offset in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from processors.outputs import Output


def transactional_id(app: Any, topic: str, partition: int) -> str:
    """The id faust's TransactionManager gives the producer of a source topic's partition."""
    return f"{app.conf.id}-{app.assignor.group_for_topic(topic)}-{partition}"


@dataclass(frozen=True, slots=True)
class FaustRecord:
    """A faust message as the decision code reads raw records (timestamps in milliseconds)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int
    headers: Sequence[tuple[str, bytes | None]]

    @classmethod
    def of(cls, message: Any) -> FaustRecord:
        return cls(
            message.topic,
            message.partition,
            message.offset,
            message.key,
            message.value,
            round(message.timestamp * 1000),
            message.headers or (),
        )


class OutputSender:
    """Sends outputs through the source partition's transactional producer, or through the
    app's one producer when processing is at-least-once."""

    def __init__(self, app: Any, exactly_once: bool) -> None:
        self._app = app
        self._exactly_once = exactly_once

    async def send(self, output: Output, source: FaustRecord) -> None:
        topic, key, value, headers = output
        if self._exactly_once:
            # Partition None: the producer's partitioner places the record by its key.
            await self._app.consumer.transactions.producer.send(
                topic,
                key,
                value,
                None,
                None,
                headers,
                transactional_id=transactional_id(self._app, source.topic, source.partition),
            )
        else:
            producer = await self._app.maybe_start_producer()
            await producer.send(topic, key, value, None, None, headers)
