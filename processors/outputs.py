"""What processing one raw event produces, before an engine places it in a transaction.

The decision code returns records; each engine puts them in the Kafka transaction of the raw
partition the event came from, together with that partition's deduplication marks and its
consumed offset, so that they become visible together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol

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
