"""What processing one raw event produces, before an engine places it in a transaction.

The decision code returns records; each engine puts them in the Kafka transaction of the raw
partition the event came from, together with that partition's deduplication marks and its
consumed offset, so that they become visible together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol

import murmurhash2

# Kafka's default partitioner (the Java client's and aiokafka's): murmur2 with this seed.
_MURMUR2_SEED = 0x9747B28C

Headers = list[tuple[str, bytes]]


class Output(NamedTuple):
    """A record to produce, placed by its key's partition on `topic`."""

    topic: str
    key: bytes
    value: bytes
    headers: Headers


class SourceRecord(Protocol):
    """The raw record being processed, as both engines can present it."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    # Milliseconds since the epoch: when ingest's producer wrote it.
    @property
    def timestamp(self) -> int: ...
    # Read only when tracing is on: the trace context ingest wrote.
    @property
    def headers(self) -> Sequence[tuple[str, bytes | None]]: ...


def key_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives `key`, so that every Triggerline
    producer (and any Java client) puts one correlation id on one partition."""
    return (murmurhash2.murmurhash2(key, _MURMUR2_SEED) & 0x7FFFFFFF) % partitions
